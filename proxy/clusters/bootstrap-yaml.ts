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
  proxyCaPem: string;
  image: string;
  namespace?: string;
}

const labels = {
  'app.kubernetes.io/name': 'kubegate-agent',
  'app.kubernetes.io/managed-by': 'kubegate',
};

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
      rules: [
        // Requests run as the signed-in kubegate user and their groups (the
        // agent refuses any system: name), so the cluster's RBAC decides.
        { apiGroups: [''], resources: ['users', 'groups'], verbs: ['impersonate'] },
      ],
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
      rules: [
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
