/**
 * Bootstrap YAML for attaching a cluster: `kubectl apply -f` it on the
 * cluster. It holds the namespace, the agent's ServiceAccount and its
 * minimal RBAC, a Secret with the one-time bootstrap token and the pinned
 * proxy CA, and the agent Deployment. Each RBAC rule says why it exists.
 */
import { stringify } from 'yaml';
import { managedNamespaceLabel, managedObjectPrefix } from '../../common/tunnel-protocol.js';

export interface BootstrapInput {
  cluster: string;
  token: string;
  tunnelAddress: string;
  tunnelServerName: string;
  /** host:port of the enrollment listener (first enrollment and renewal). */
  enrollAddress: string;
  proxyCaPem: string;
  image: string;
  namespace?: string;
  /**
   * How the agent runs requests on the cluster, and so which permissions it
   * gets (agentRbacRules): `jit` (default) or `impersonate`.
   */
  forwardMode?: ForwardMode;
}

/** The agent's forwarding mode (KUBEGATE_FORWARD_MODE): it decides the agent's RBAC. */
export type ForwardMode = 'jit' | 'impersonate';

/**
 * Data shared with the agent Helm chart (helm/kubegate-agent): the chart
 * renders the same objects from these, and test/integration/agent-chart.test.ts
 * proves both paths produce identical manifests.
 */
export const agentLabels = {
  'app.kubernetes.io/name': 'kubegate-agent',
  'app.kubernetes.io/managed-by': 'kubegate',
} as const;

/** One RBAC rule as Kubernetes spells it (rbac.authorization.k8s.io/v1 PolicyRule). */
export interface AgentRbacRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
  nonResourceURLs?: string[];
}

/** The agent's RBAC in one mode: `cluster` → its ClusterRole, `namespace` → its Role. */
export interface AgentRbac {
  cluster: AgentRbacRule[];
  namespace: AgentRbacRule[];
}

/** In both modes: the agent keeps its client certificate in one Secret between restarts. */
const identitySecretRules: AgentRbacRule[] = [
  {
    apiGroups: [''],
    resources: ['secrets'],
    resourceNames: ['kubegate-agent-identity'],
    verbs: ['get', 'update'],
  },
  // create cannot be limited by name in Kubernetes RBAC; it is limited to this
  // namespace, and in JIT mode to that one name by the admission policy below.
  { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
];

/**
 * In both modes: self-service namespaces, which the agent keeps as itself
 * (agent/namespaces/). In JIT mode agentAdmissionPolicy narrows these to
 * namespaces labelled as kubegate's and `kubegate-…` objects inside them.
 */
const managedNamespaceRules: AgentRbacRule[] = [
  // Managed namespaces: read to tell ours from others' (JIT accounts also read
  // one before binding in it), create and label (server-side apply), retire.
  // RBAC cannot limit these by label; the admission policy does.
  {
    apiGroups: [''],
    resources: ['namespaces'],
    verbs: ['get', 'create', 'patch', 'delete'],
  },
  // Managed namespaces: the quota and limits a profile puts in each one, kept
  // as desired (replaced when changed by hand, deleted when the profile drops them).
  {
    apiGroups: [''],
    resources: ['resourcequotas', 'limitranges'],
    verbs: ['get', 'list', 'create', 'update', 'patch', 'delete'],
  },
  // Managed namespaces: the network policies a profile puts in each one, likewise.
  {
    apiGroups: ['networking.k8s.io'],
    resources: ['networkpolicies'],
    verbs: ['get', 'list', 'create', 'update', 'patch', 'delete'],
  },
];

/**
 * The agent's own permissions, per forwarding mode: the single lists both the
 * bootstrap YAML and the agent chart install (the chart reads the generated
 * copy in helm/kubegate-agent/files/bootstrap-shared.json; `make docs`
 * regenerates it). Each mode gets only what it uses (security.md, "A
 * compromised agent"): impersonation only in `impersonate` mode; in `jit` mode
 * no impersonation at all, and the RBAC writes it cannot avoid (escalate,
 * bind) fenced by agentAdmissionPolicy. Every rule says why it exists.
 */
export const agentRbacRules: Record<ForwardMode, AgentRbac> = {
  jit: {
    cluster: [
      // JIT accounts read namespaces too: RoleBindings go only into ones that exist.
      ...managedNamespaceRules,
      // JIT accounts: one ClusterRole per central role, content-addressed. `escalate`
      // and `bind` are needed because central roles may grant what the agent itself
      // does not hold, and RBAC cannot limit them to the agent's names (those are
      // content-addressed): agentAdmissionPolicy limits them to `kubegate:…` roles
      // bound to `kg-…` ServiceAccounts of the agent's namespace.
      // KUBEGATE_JIT_CEILING_FILE caps what the agent will grant.
      {
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['clusterroles'],
        verbs: ['get', 'list', 'create', 'delete', 'escalate', 'bind'],
      },
      // JIT accounts: the user's bindings, cluster-wide or per namespace; clean-up
      // lists them by label and deletes only kubegate-labelled ones (and the
      // admission policy refuses any other).
      {
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['clusterrolebindings', 'rolebindings'],
        verbs: ['get', 'list', 'create', 'delete'],
      },
    ],
    namespace: [
      // JIT accounts: one ServiceAccount per subject in the agent's namespace; the
      // last-use time is an annotation, so idle clean-up survives restarts.
      {
        apiGroups: [''],
        resources: ['serviceaccounts'],
        verbs: ['get', 'list', 'create', 'delete', 'patch'],
      },
      // JIT accounts: short-lived tokens via TokenRequest, kept in memory only
      // (the admission policy allows them for `kg-…` accounts only).
      { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] },
      ...identitySecretRules,
    ],
  },
  impersonate: {
    cluster: [
      // Requests run as the signed-in kubegate user and their groups (the agent
      // refuses any system: name; robots are kubegate:robot:<name>), so the
      // cluster's RBAC decides. Only in this mode.
      { apiGroups: [''], resources: ['users', 'groups'], verbs: ['impersonate'] },
      ...managedNamespaceRules,
    ],
    namespace: [...identitySecretRules],
  },
};

/** Name of the admission policy (and its binding) that fences the JIT agent's writes. */
export const agentPolicyName = 'kubegate-agent-jit-fence';

const managedKey = 'app.kubernetes.io/managed-by';
const managed = (o: string) =>
  `(has(${o}.metadata.labels) && '${managedKey}' in ${o}.metadata.labels && ${o}.metadata.labels['${managedKey}'] == 'kubegate')`;
/** Labelled as a namespace kubegate manages (common/tunnel-protocol.ts managedNamespaceLabel). */
const managedNs = (o: string) =>
  `(${managed(o)} && '${managedNamespaceLabel}' in ${o}.metadata.labels && ${o}.metadata.labels['${managedNamespaceLabel}'] == 'true')`;

/** An agent environment variable read from the bootstrap Secret. */
const fromBootstrapSecret = (name: string, key: string) => ({
  name,
  valueFrom: { secretKeyRef: { name: 'kubegate-agent-bootstrap', key } },
});

/**
 * A ValidatingAdmissionPolicy (GA since Kubernetes 1.30) that holds the JIT
 * agent to the objects it makes: whatever its RBAC would allow, a request by
 * a ServiceAccount named `kubegate-agent` (any namespace: the policy is the
 * same for every install) may only write
 *  - ClusterRoles named `kubegate:…` and labelled managed-by kubegate;
 *  - ClusterRoleBindings and RoleBindings named `kg-…`, labelled managed-by
 *    kubegate with a `kubegate.dev/user` key, whose roleRef is such a
 *    ClusterRole and whose one subject is a `kg-…` ServiceAccount of the
 *    agent's own namespace (deletes: kg-… bindings labelled with a user key, which idle
 *    clean-up needs for orphans; the agent cannot label anything itself);
 *  - ServiceAccounts `kg-…` (labelled) in its namespace, and tokens for them only;
 *  - the Secret `kubegate-agent-identity`, never a service-account-token Secret;
 *  - Namespaces labelled managed-by kubegate and kubegate.dev/managed-namespace
 *    (an update: before and after, so no namespace of someone else's is
 *    adopted by labelling it; a delete: as it was);
 *  - ResourceQuotas, LimitRanges and NetworkPolicies named `kubegate-…`,
 *    labelled managed-by kubegate, in such a namespace.
 * So a compromised agent cannot bind cluster-admin (or anything) to a subject
 * of its choosing, bind anything to itself, mint a token for another account,
 * remove the cluster's own roles and bindings, or delete or loosen a
 * namespace (or its policies) that kubegate does not manage.
 */
export function agentAdmissionPolicy(): Record<string, unknown>[] {
  const agent =
    "request.userInfo.username.startsWith('system:serviceaccount:') && request.userInfo.username.endsWith(':kubegate-agent')";
  const write = ['CREATE', 'UPDATE', 'DELETE'];
  const del = "request.operation == 'DELETE'";
  const bindingOk = [
    "object.metadata.name.startsWith('kg-')",
    managed('object'),
    "'kubegate.dev/user' in object.metadata.labels",
    "object.roleRef.kind == 'ClusterRole'",
    "object.roleRef.name.startsWith('kubegate:')",
    'has(object.subjects) && size(object.subjects) == 1',
    "object.subjects.all(s, s.kind == 'ServiceAccount' && s.name.startsWith('kg-') && has(s.namespace) && s.namespace == variables.ns)",
  ].join(' && ');
  // Deletes: the agent's own JIT bindings only (named kg-…, labelled managed-by
  // kubegate with a user key) — idle clean-up removes orphans whose subject is
  // gone, so the subject is not checked; the agent's own `kubegate-agent`
  // binding carries the managed-by label too, and must stay out of reach.
  const bindingDeleteOk = [
    "oldObject.metadata.name.startsWith('kg-')",
    managed('oldObject'),
    "'kubegate.dev/user' in oldObject.metadata.labels",
  ].join(' && ');
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: agentPolicyName, labels: agentLabels },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: ['rbac.authorization.k8s.io'],
              apiVersions: ['*'],
              operations: write,
              resources: ['clusterroles', 'clusterrolebindings', 'roles', 'rolebindings'],
            },
            {
              apiGroups: [''],
              apiVersions: ['*'],
              operations: write,
              resources: [
                'serviceaccounts',
                'serviceaccounts/token',
                'secrets',
                'namespaces',
                'resourcequotas',
                'limitranges',
              ],
            },
            {
              apiGroups: ['networking.k8s.io'],
              apiVersions: ['*'],
              operations: write,
              resources: ['networkpolicies'],
            },
          ],
        },
        matchConditions: [{ name: 'kubegate-agent', expression: agent }],
        variables: [
          // The agent's namespace, from its own user name system:serviceaccount:<ns>:kubegate-agent.
          { name: 'ns', expression: "request.userInfo.username.split(':')[2]" },
          { name: 'res', expression: 'request.resource.resource' },
        ],
        validations: [
          {
            expression: "variables.res != 'roles'",
            message: 'the kubegate agent never writes Roles',
          },
          {
            expression: `variables.res != 'clusterroles' || (${del} ? (oldObject.metadata.name.startsWith('kubegate:') && ${managed('oldObject')}) : (object.metadata.name.startsWith('kubegate:') && ${managed('object')}))`,
            message:
              'the kubegate agent may only write ClusterRoles named kubegate:… and labelled app.kubernetes.io/managed-by=kubegate',
          },
          {
            expression: `!(variables.res in ['clusterrolebindings', 'rolebindings']) || (${del} ? (${bindingDeleteOk}) : (${bindingOk}))`,
            message:
              "the kubegate agent may only write bindings named kg-…, labelled managed-by kubegate, of a kubegate:… ClusterRole to one kg-… ServiceAccount in the agent's namespace",
          },
          {
            expression: `variables.res != 'serviceaccounts' || request.subResource == 'token' || (request.namespace == variables.ns && (${del} ? (oldObject.metadata.name.startsWith('kg-') && ${managed('oldObject')}) : (object.metadata.name.startsWith('kg-') && ${managed('object')})))`,
            message:
              "the kubegate agent may only write ServiceAccounts named kg-… and labelled managed-by kubegate, in the agent's namespace",
          },
          {
            expression: `variables.res != 'serviceaccounts' || request.subResource != 'token' || (request.namespace == variables.ns && request.name.startsWith('kg-'))`,
            message:
              'the kubegate agent may only request tokens for kg-… ServiceAccounts of its namespace',
          },
          {
            expression: `variables.res != 'secrets' || (request.operation != 'DELETE' && request.namespace == variables.ns && object.metadata.name == 'kubegate-agent-identity' && (!has(object.type) || object.type != 'kubernetes.io/service-account-token'))`,
            message:
              'the kubegate agent may only write its own Secret kubegate-agent-identity (never a service-account token)',
          },
          {
            expression: `variables.res != 'namespaces' || (${del} ? ${managedNs('oldObject')} : request.operation == 'CREATE' ? ${managedNs('object')} : (${managedNs('object')} && ${managedNs('oldObject')}))`,
            message: `the kubegate agent may only write namespaces labelled ${managedKey}=kubegate and ${managedNamespaceLabel}=true`,
          },
          {
            expression: `!(variables.res in ['resourcequotas', 'limitranges', 'networkpolicies']) || (${managedNs('namespaceObject')} && (${del} ? (oldObject.metadata.name.startsWith('${managedObjectPrefix}') && ${managed('oldObject')}) : (object.metadata.name.startsWith('${managedObjectPrefix}') && ${managed('object')})))`,
            message: `the kubegate agent may only write ResourceQuotas, LimitRanges and NetworkPolicies named ${managedObjectPrefix}… and labelled ${managedKey}=kubegate, in a namespace labelled ${managedNamespaceLabel}=true`,
          },
        ],
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: agentPolicyName, labels: agentLabels },
      spec: { policyName: agentPolicyName, validationActions: ['Deny'] },
    },
  ];
}

const labels = agentLabels;

/** The Kubernetes objects, in apply order. */
export function bootstrapObjects(input: BootstrapInput): Record<string, unknown>[] {
  const ns = input.namespace ?? 'kubegate-system';
  const mode = input.forwardMode ?? 'jit';
  const rules = agentRbacRules[mode];
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels } },
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'kubegate-agent', namespace: ns, labels },
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'kubegate-agent', labels },
      rules: rules.cluster,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'kubegate-agent', labels },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'kubegate-agent',
      },
      subjects: [{ kind: 'ServiceAccount', name: 'kubegate-agent', namespace: ns }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'kubegate-agent', namespace: ns, labels },
      rules: rules.namespace,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'kubegate-agent', namespace: ns, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kubegate-agent' },
      subjects: [{ kind: 'ServiceAccount', name: 'kubegate-agent', namespace: ns }],
    },
    ...(mode === 'jit' ? agentAdmissionPolicy() : []),
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'kubegate-agent-bootstrap', namespace: ns, labels },
      type: 'Opaque',
      stringData: {
        cluster: input.cluster,
        'tunnel-address': input.tunnelAddress,
        'tunnel-server-name': input.tunnelServerName,
        'enroll-address': input.enrollAddress,
        token: input.token,
        'ca.crt': input.proxyCaPem,
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'kubegate-agent', namespace: ns, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: { 'app.kubernetes.io/name': 'kubegate-agent' } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'kubegate-agent',
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 65532,
              seccompProfile: { type: 'RuntimeDefault' },
            },
            containers: [
              {
                name: 'agent',
                image: input.image,
                args: ['agent'],
                env: [
                  fromBootstrapSecret('KUBEGATE_CLUSTER', 'cluster'),
                  fromBootstrapSecret('KUBEGATE_TUNNEL_ADDRESS', 'tunnel-address'),
                  fromBootstrapSecret('KUBEGATE_TUNNEL_SERVER_NAME', 'tunnel-server-name'),
                  fromBootstrapSecret('KUBEGATE_ENROLL_ADDRESS', 'enroll-address'),
                  { name: 'KUBEGATE_PROXY_CA_FILE', value: '/etc/kubegate/bootstrap/ca.crt' },
                  { name: 'KUBEGATE_BOOTSTRAP_TOKEN_FILE', value: '/etc/kubegate/bootstrap/token' },
                  {
                    name: 'KUBEGATE_NAMESPACE',
                    valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } },
                  },
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  // Its RBAC above is for this mode only (the agent's default is jit).
                  ...(mode === 'impersonate'
                    ? [{ name: 'KUBEGATE_FORWARD_MODE', value: 'impersonate' }]
                    : []),
                ],
                volumeMounts: [
                  { name: 'bootstrap', mountPath: '/etc/kubegate/bootstrap', readOnly: true },
                ],
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ['ALL'] },
                },
                resources: {
                  requests: { cpu: '50m', memory: '64Mi' },
                  limits: { memory: '512Mi' },
                },
              },
            ],
            volumes: [{ name: 'bootstrap', secret: { secretName: 'kubegate-agent-bootstrap' } }],
          },
        },
      },
    },
  ];
}

export function renderBootstrapYaml(input: BootstrapInput): string {
  const header = `# kubegate agent bootstrap for cluster "${input.cluster}".\n# Apply on that cluster: kubectl apply -f <this file>\n# It holds a one-time token; it stops working once the agent has enrolled.\n`;
  return (
    header +
    bootstrapObjects(input)
      .map((o) => '---\n' + stringify(o, { lineWidth: 0 }))
      .join('')
  );
}
