/**
 * The self-service namespaces API as it answers, in JSON: one contract for
 * the three programs that speak it — the proxy builds these
 * (proxy/namespaces/api.ts), the CLI and the console read them. It lives
 * here, among the console's modules, because the console's program can
 * import nothing outside its folder while the others can import from it.
 * Types only: nothing here runs.
 */

export type NamespaceStatus =
  'awaiting-approval' | 'provisioning' | 'ready' | 'failed' | 'denied' | 'retiring' | 'retired';

/** A Kubernetes LabelSelector as JSON. */
export interface SelectorJson {
  matchLabels?: Record<string, string>;
  matchExpressions?: {
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }[];
}

export interface NamespaceMember {
  kind: 'User' | 'Group' | 'Robot';
  name: string;
  role: string;
  /** The owner's own binding (the profile's owner role). */
  owner: boolean;
}

export interface NamespaceView {
  cluster: string;
  name: string;
  profile: string;
  owner: string;
  ownerKind: 'user' | 'robot';
  status: NamespaceStatus;
  message: string;
  approvalId?: string;
  /** Set while the namespace's deletion waits for an approver. */
  retireApprovalId?: string;
  requestedBy: string;
  reason: string;
  createdAt: string;
  readyAt: string | null;
  reconciledAt: string | null;
  endedAt: string | null;
  /** Objects the reconcile put back since the namespace was made. */
  drift: number;
  /** Whether the caller may change it (its owner, or an admin). */
  mayManage: boolean;
  /** The caller's role in it (the owner's role, or a member's; absent for an admin who is neither). */
  yourRole?: string;
  /** One namespace only: its owner and members. */
  members?: NamespaceMember[];
}

export interface NamespaceProfileView {
  name: string;
  description: string;
  clusters: { names?: string[]; selector?: SelectorJson };
  naming: { prefix: string; pattern: string; maxLength: number };
  quota: Record<string, string>;
  limits: {
    default?: Record<string, string>;
    defaultRequest?: Record<string, string>;
    max?: Record<string, string>;
  };
  networkPolicy: 'default-deny' | 'none';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  ownerRole: string;
  memberRoles: string[];
  perUserLimit: number;
  requesterGroups: string[];
  /** pendingFor in seconds. */
  approval: {
    approvers: { groups: string[]; count: number };
    pendingFor: number;
    onDelete: boolean;
  } | null;
  version: number;
  updatedBy: string;
  updatedAt: string;
}
