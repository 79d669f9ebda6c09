/**
 * The built-in roles `view`, `edit`, `admin` and `cluster-admin`, mirroring
 * the Kubernetes default ClusterRoles after aggregation (view ⊂ edit ⊂ admin),
 * as listed in the project's golden file
 * plugin/pkg/auth/authorizer/rbac/bootstrappolicy/testdata/cluster-roles.yaml
 * (kubernetes/kubernetes@025f2834a128798cef30018a5e6a6ae82b5ad885;
 * https://kubernetes.io/docs/reference/access-authn-authz/rbac/#user-facing-roles).
 *
 * Kubernetes builds `view` from `system:aggregate-to-view`, `edit` from
 * `system:aggregate-to-edit` plus `view`, and `admin` from
 * `system:aggregate-to-admin` plus `edit`. CRDs that aggregate into those
 * roles on a cluster are not known here; grant them with a custom role.
 *
 * Also here: the baseline every identity with at least one effective binding
 * on a cluster gets, mirroring what Kubernetes binds to `system:authenticated`
 * (system:discovery, system:public-info-viewer, system:basic-user) — without
 * discovery, kubectl cannot work for a user bound only in a namespace.
 */
import type { PolicyRule } from './policy-rule.js';

export interface BuiltinRole {
  name: string;
  description: string;
  rules: PolicyRule[];
}

const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'delete', 'deletecollection', 'patch', 'update'];
const READ_WRITE = [
  'create',
  'delete',
  'deletecollection',
  'get',
  'list',
  'patch',
  'update',
  'watch',
];

function rule(apiGroups: string[], resources: string[], verbs: string[]): PolicyRule {
  return { apiGroups, resources, verbs };
}

/** system:aggregate-to-view: read-only, never Secrets or anything that reads them (exec, proxy). */
const viewRules: PolicyRule[] = [
  rule(
    [''],
    [
      'configmaps',
      'endpoints',
      'persistentvolumeclaims',
      'persistentvolumeclaims/status',
      'pods',
      'replicationcontrollers',
      'replicationcontrollers/scale',
      'serviceaccounts',
      'services',
      'services/status',
    ],
    READ,
  ),
  rule(
    [''],
    [
      'bindings',
      'events',
      'limitranges',
      'namespaces/status',
      'pods/log',
      'pods/status',
      'replicationcontrollers/status',
      'resourcequotas',
      'resourcequotas/status',
    ],
    READ,
  ),
  // Read access to namespaces at the namespace scope lets a user read *this* namespace.
  rule([''], ['namespaces'], READ),
  rule(['discovery.k8s.io'], ['endpointslices'], READ),
  rule(
    ['apps'],
    [
      'controllerrevisions',
      'daemonsets',
      'daemonsets/status',
      'deployments',
      'deployments/scale',
      'deployments/status',
      'replicasets',
      'replicasets/scale',
      'replicasets/status',
      'statefulsets',
      'statefulsets/scale',
      'statefulsets/status',
    ],
    READ,
  ),
  rule(['autoscaling'], ['horizontalpodautoscalers', 'horizontalpodautoscalers/status'], READ),
  rule(['batch'], ['cronjobs', 'cronjobs/status', 'jobs', 'jobs/status'], READ),
  rule(
    ['extensions'],
    [
      'daemonsets',
      'daemonsets/status',
      'deployments',
      'deployments/scale',
      'deployments/status',
      'ingresses',
      'ingresses/status',
      'networkpolicies',
      'replicasets',
      'replicasets/scale',
      'replicasets/status',
      'replicationcontrollers/scale',
    ],
    READ,
  ),
  rule(['policy'], ['poddisruptionbudgets', 'poddisruptionbudgets/status'], READ),
  rule(['networking.k8s.io'], ['ingresses', 'ingresses/status', 'networkpolicies'], READ),
];

/** system:aggregate-to-edit: user-level writes in a namespace, including exec and Secrets. */
const editOnlyRules: PolicyRule[] = [
  // Read on escalating resources.
  rule(
    [''],
    ['pods/attach', 'pods/exec', 'pods/portforward', 'pods/proxy', 'secrets', 'services/proxy'],
    READ,
  ),
  rule([''], ['serviceaccounts'], ['impersonate']),
  rule([''], ['pods', 'pods/attach', 'pods/exec', 'pods/portforward', 'pods/proxy'], WRITE),
  rule([''], ['pods/eviction'], ['create']),
  rule(
    [''],
    [
      'configmaps',
      'events',
      'persistentvolumeclaims',
      'replicationcontrollers',
      'replicationcontrollers/scale',
      'secrets',
      'serviceaccounts',
      'services',
      'services/proxy',
    ],
    WRITE,
  ),
  rule([''], ['serviceaccounts/token'], ['create']),
  rule(
    ['apps'],
    [
      'daemonsets',
      'deployments',
      'deployments/rollback',
      'deployments/scale',
      'replicasets',
      'replicasets/scale',
      'statefulsets',
      'statefulsets/scale',
    ],
    WRITE,
  ),
  rule(['autoscaling'], ['horizontalpodautoscalers'], WRITE),
  rule(['batch'], ['cronjobs', 'jobs'], WRITE),
  rule(
    ['extensions'],
    [
      'daemonsets',
      'deployments',
      'deployments/rollback',
      'deployments/scale',
      'ingresses',
      'networkpolicies',
      'replicasets',
      'replicasets/scale',
      'replicationcontrollers/scale',
    ],
    WRITE,
  ),
  rule(['policy'], ['poddisruptionbudgets'], WRITE),
  rule(['networking.k8s.io'], ['ingresses', 'networkpolicies'], WRITE),
  rule(['coordination.k8s.io'], ['leases'], READ_WRITE),
];

/** system:aggregate-to-admin: edit plus granting access inside the namespace. */
const adminOnlyRules: PolicyRule[] = [
  rule(['authorization.k8s.io'], ['localsubjectaccessreviews'], ['create']),
  rule(['rbac.authorization.k8s.io'], ['rolebindings', 'roles'], READ_WRITE),
];

const clusterAdminRules: PolicyRule[] = [
  rule(['*'], ['*'], ['*']),
  { nonResourceURLs: ['*'], verbs: ['*'] },
  // Kubegate's `*` does not grant these (docs/security.md); cluster-admin names them.
  rule(['*'], ['*'], ['impersonate', 'escalate', 'bind']),
];

/** Built-ins are shared by every snapshot: freeze them all the way down. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** The built-in roles, in order of increasing power. */
export const builtinRoles: ReadonlyArray<BuiltinRole> = deepFreeze([
  {
    name: 'view',
    description:
      'Read-only access to most objects (no Secrets, no exec/attach/port-forward); Kubernetes "view".',
    rules: viewRules,
  },
  {
    name: 'edit',
    description:
      'Read and write most objects incl. Secrets, exec, attach and port-forward; no Roles or RoleBindings; Kubernetes "edit".',
    rules: [...editOnlyRules, ...viewRules],
  },
  {
    name: 'admin',
    description:
      'Everything in edit plus Roles, RoleBindings and local access reviews; Kubernetes "admin".',
    rules: [...adminOnlyRules, ...editOnlyRules, ...viewRules],
  },
  {
    name: 'cluster-admin',
    description:
      'Every verb on every resource and non-resource URL, including impersonate, escalate and bind; Kubernetes "cluster-admin".',
    rules: clusterAdminRules,
  },
]);

/**
 * What Kubernetes grants every authenticated user (system:discovery,
 * system:public-info-viewer, system:basic-user). Kubegate applies it to an
 * identity on a cluster only when that identity has at least one effective
 * binding there, whatever its namespaces; never to anyone else.
 */
export const authenticatedBaseline: BuiltinRole = deepFreeze({
  name: 'system:authenticated',
  description:
    'Discovery, health and self-review endpoints every user with access to a cluster needs (kubectl discovery, auth can-i, auth whoami).',
  rules: [
    {
      nonResourceURLs: [
        '/api',
        '/api/*',
        '/apis',
        '/apis/*',
        '/healthz',
        '/livez',
        '/openapi',
        '/openapi/*',
        '/readyz',
        '/version',
        '/version/',
      ],
      verbs: ['get'],
    },
    rule(
      ['authorization.k8s.io'],
      ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'],
      ['create'],
    ),
    rule(['authentication.k8s.io'], ['selfsubjectreviews'], ['create']),
  ],
});
