/**
 * The runbooks kubegate ships: the everyday operations a developer asks a
 * platform team for. Each is an ordinary runbook (validateRunbook accepts
 * it; the unit tests check that every entry does and renders).
 */
import type { ParamSpec, ResourceRef, RunbookSpec } from './definition.js';

/** Object names: DNS subdomains (the grammar render checks again). */
const objectName = '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*';
const label = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
/**
 * A container image reference: optional registry host (with port), path
 * components of lowercase letters and digits joined by '.', '_', '__' or
 * '-', an optional tag and an optional sha256 digest.
 */
const imagePattern =
  '([a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*(:[0-9]{1,5})?/)?' +
  '[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*' +
  '(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?';

const namespaceParam: ParamSpec = {
  name: 'namespace',
  type: 'string',
  required: true,
  description: 'The namespace the object is in.',
  pattern: label,
  maxLength: 63,
};

function nameParam(name: string, description: string): ParamSpec {
  return { name, type: 'string', required: true, description, pattern: objectName, maxLength: 253 };
}

const deployments: ResourceRef = {
  group: 'apps',
  version: 'v1',
  resource: 'deployments',
  namespaced: true,
};
const cronjobs: ResourceRef = {
  group: 'batch',
  version: 'v1',
  resource: 'cronjobs',
  namespaced: true,
};
const pods: ResourceRef = { group: '', version: 'v1', resource: 'pods', namespaced: true };
const nodes: ResourceRef = { group: '', version: 'v1', resource: 'nodes', namespaced: false };

const inNamespace = { namespace: { param: 'namespace' } };
const noNamespace = { namespace: { none: true as const } };

/** What each on/off runbook does, in words. */
const toggleDescriptions: Record<string, string> = {
  'suspend-cronjob':
    'Stop a CronJob from starting new Jobs (sets spec.suspend); Jobs already running go on.',
  'resume-cronjob':
    'Let a suspended CronJob start Jobs on its schedule again (clears spec.suspend).',
  'cordon-node':
    'Mark a node unschedulable so no new pods are placed on it; pods already there keep running.',
  'uncordon-node': 'Mark a cordoned node schedulable again so new pods may be placed on it.',
};

/** A runbook that sets one field by a merge patch (suspend a CronJob, cordon a node). */
function toggle(
  name: string,
  param: ParamSpec,
  ref: ResourceRef,
  patch: Record<string, unknown>,
): RunbookSpec {
  return {
    name,
    description: toggleDescriptions[name]!,
    parameters: ref.namespaced ? [namespaceParam, param] : [param],
    targets: ref.namespaced ? inNamespace : noNamespace,
    steps: [
      {
        name: name.split('-')[0]!,
        action: 'patch',
        target: { ...ref, name: `{{${param.name}}}` },
        patchType: 'merge',
        patch,
      },
    ],
  };
}

const cronjobParam = nameParam('cronjob', 'The CronJob to change.');
const nodeParam = nameParam('node', 'The node to change.');

export const catalogue: RunbookSpec[] = [
  {
    name: 'scale-deployment',
    description: 'Set the number of replicas of a Deployment (0 to 100).',
    parameters: [
      namespaceParam,
      nameParam('deployment', 'The Deployment to scale.'),
      {
        name: 'replicas',
        type: 'integer',
        required: true,
        description: 'How many pods it should run.',
        minimum: 0,
        maximum: 100,
      },
    ],
    targets: inNamespace,
    steps: [
      {
        name: 'scale',
        action: 'scale',
        target: { ...deployments, name: '{{deployment}}' },
        replicas: '{{replicas}}',
      },
    ],
  },
  {
    name: 'rollout-restart',
    description:
      'Restart every pod of a Deployment with a rolling update, as `kubectl rollout restart` does.',
    parameters: [namespaceParam, nameParam('deployment', 'The Deployment to restart.')],
    targets: inNamespace,
    steps: [
      { name: 'restart', action: 'restart', target: { ...deployments, name: '{{deployment}}' } },
    ],
  },
  {
    name: 'set-image',
    description:
      'Change the image of one container of a Deployment; its pods are replaced with a rolling update.',
    parameters: [
      namespaceParam,
      nameParam('deployment', 'The Deployment to change.'),
      {
        name: 'container',
        type: 'string',
        required: true,
        description: 'The name of the container whose image changes.',
        pattern: label,
        maxLength: 63,
      },
      {
        name: 'image',
        type: 'string',
        required: true,
        description: 'The new image, e.g. registry.example.com/team/app:1.4.2.',
        pattern: imagePattern,
        maxLength: 512,
      },
    ],
    targets: inNamespace,
    steps: [
      {
        name: 'set-image',
        action: 'patch',
        target: { ...deployments, name: '{{deployment}}' },
        patchType: 'strategic',
        // Strategic merge matches containers by name: only this one changes.
        patch: {
          spec: {
            template: { spec: { containers: [{ name: '{{container}}', image: '{{image}}' }] } },
          },
        },
      },
    ],
  },
  {
    name: 'delete-pod',
    description:
      'Delete one pod; if a controller (Deployment, StatefulSet, …) owns it, a new pod replaces it.',
    parameters: [namespaceParam, nameParam('pod', 'The pod to delete.')],
    targets: inNamespace,
    steps: [{ name: 'delete', action: 'delete', target: { ...pods, name: '{{pod}}' } }],
  },
  ...[true, false].map((on) =>
    toggle(on ? 'suspend-cronjob' : 'resume-cronjob', cronjobParam, cronjobs, {
      spec: { suspend: on },
    }),
  ),
  ...[true, false].map((on) =>
    toggle(on ? 'cordon-node' : 'uncordon-node', nodeParam, nodes, {
      spec: { unschedulable: on },
    }),
  ),
];
