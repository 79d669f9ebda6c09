/**
 * Bootstrap YAML for attaching a cluster: `kubectl apply -f` it on the
 * cluster. It holds the namespace, the agent's ServiceAccount and its
 * minimal RBAC, a Secret with the one-time bootstrap token and the pinned
 * proxy CA, and the agent Deployment. Each RBAC rule says why it exists.
 */
import { stringify } from 'yaml';

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
}

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

/**
 * The agent's own permissions, the single list both the bootstrap YAML and
 * the agent chart install (the chart reads the generated copy in
 * helm/kubegate-agent/files/bootstrap-shared.json; `make docs` regenerates it).
 * `cluster` goes into the ClusterRole, `namespace` into the Role in the
 * agent's namespace. Every rule says why it exists; keep them minimal.
 */
export const agentRbacRules: { cluster: AgentRbacRule[]; namespace: AgentRbacRule[] } = {
  cluster: [
    // Requests run as the signed-in kubegate user and their groups (the
    // agent refuses any system: name), so the cluster's RBAC decides.
    { apiGroups: [''], resources: ['users', 'groups'], verbs: ['impersonate'] },
    // JIT accounts: RoleBindings go only into namespaces that exist (never created).
    { apiGroups: [''], resources: ['namespaces'], verbs: ['get'] },
    // JIT accounts: one ClusterRole per central role, content-addressed. `escalate`
    // and `bind` are needed because central roles may grant what the agent itself
    // does not hold; KUBEGATE_JIT_CEILING_FILE caps what the agent will grant.
    {
      apiGroups: ['rbac.authorization.k8s.io'],
      resources: ['clusterroles'],
      verbs: ['get', 'list', 'create', 'delete', 'escalate', 'bind'],
    },
    // JIT accounts: the user's bindings, cluster-wide or per namespace; clean-up
    // lists them by label and deletes only kubegate-labelled ones.
    {
      apiGroups: ['rbac.authorization.k8s.io'],
      resources: ['clusterrolebindings', 'rolebindings'],
      verbs: ['get', 'list', 'create', 'delete'],
    },
  ],
  namespace: [
    // JIT accounts: one ServiceAccount per user in the agent's namespace; the
    // last-use time is an annotation, so idle clean-up survives restarts.
    {
      apiGroups: [''],
      resources: ['serviceaccounts'],
      verbs: ['get', 'list', 'create', 'delete', 'patch'],
    },
    // JIT accounts: short-lived tokens via TokenRequest, kept in memory only.
    { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] },
    // The agent keeps its client certificate in one Secret between restarts.
    {
      apiGroups: [''],
      resources: ['secrets'],
      resourceNames: ['kubegate-agent-identity'],
      verbs: ['get', 'update'],
    },
    // create cannot be limited by name in Kubernetes RBAC; it is limited to this namespace.
    { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
  ],
};

const labels = agentLabels;

/** The Kubernetes objects, in apply order. */
export function bootstrapObjects(input: BootstrapInput): Record<string, unknown>[] {
  const ns = input.namespace ?? 'kubegate-system';
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
      rules: agentRbacRules.cluster,
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
      rules: agentRbacRules.namespace,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'kubegate-agent', namespace: ns, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kubegate-agent' },
      subjects: [{ kind: 'ServiceAccount', name: 'kubegate-agent', namespace: ns }],
    },
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
                  {
                    name: 'KUBEGATE_CLUSTER',
                    valueFrom: {
                      secretKeyRef: { name: 'kubegate-agent-bootstrap', key: 'cluster' },
                    },
                  },
                  {
                    name: 'KUBEGATE_TUNNEL_ADDRESS',
                    valueFrom: {
                      secretKeyRef: { name: 'kubegate-agent-bootstrap', key: 'tunnel-address' },
                    },
                  },
                  {
                    name: 'KUBEGATE_TUNNEL_SERVER_NAME',
                    valueFrom: {
                      secretKeyRef: { name: 'kubegate-agent-bootstrap', key: 'tunnel-server-name' },
                    },
                  },
                  {
                    name: 'KUBEGATE_ENROLL_ADDRESS',
                    valueFrom: {
                      secretKeyRef: { name: 'kubegate-agent-bootstrap', key: 'enroll-address' },
                    },
                  },
                  { name: 'KUBEGATE_PROXY_CA_FILE', value: '/etc/kubegate/bootstrap/ca.crt' },
                  { name: 'KUBEGATE_BOOTSTRAP_TOKEN_FILE', value: '/etc/kubegate/bootstrap/token' },
                  {
                    name: 'KUBEGATE_NAMESPACE',
                    valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } },
                  },
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
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
