/**
 * Every `kubegate` command, in one table: its path, one-line summary,
 * positionals, options (parsed strictly: an option not listed here is an
 * error), longer help and handler. `--help` on any command, and on any
 * group of commands (`kubegate admin token --help`), is generated from it.
 * Handlers are imported when their command runs, so `--help` and the agent
 * load nothing they do not use.
 */
import type { ArgSpec, Invocation, OptionSpec } from './args.js';
import { filterNames } from '../audit/query.js';

export interface Command {
  /** The words after `kubegate`: 'admin token create'. */
  path: string;
  summary: string;
  args?: ArgSpec[];
  options?: Record<string, OptionSpec>;
  /** More than the summary, for `--help`. */
  help?: string;
  run: Handler;
}

/** Groups of commands: `kubegate admin --help` shows this line and the commands below it. */
export const groups: Record<string, string> = {
  '': 'kubegate — zero-trust access to a fleet of Kubernetes clusters',
  admin: 'administer kubegate straight in its database (DATABASE_URL)',
  'admin cluster': 'registered clusters and their agents',
  'admin token': 'bearer tokens',
  'admin role': 'RBAC roles',
  'admin binding': 'RBAC bindings',
  'admin user': 'users who signed in',
  'admin robot': 'robots (non-human identities) and their tokens',
  'admin audit': 'the audit log',
  'admin approval': 'approval policies and webhooks',
  'admin approval policy': 'approval policies',
  'admin approval webhook': 'approval webhooks',
  'admin runbook': 'stored runbooks (definitions of governed operations)',
  'admin recording':
    'session recordings of exec, attach and port-forward (through the proxy, as yourself)',
  request: 'ask for access and decide approvals as yourself, through the proxy',
  runs: 'runbook runs: history, one run, cancel (through the proxy, as yourself)',
  runbook: 'the runbooks you may ask to run (through the proxy)',
  namespace: 'self-service namespaces: ask for one, its members, its owner (through the proxy)',
  'admin namespace-profile':
    'namespace profiles: what self-service namespaces get (through the proxy, as yourself)',
};

const out: OptionSpec = { value: 'FILE', doc: 'write to FILE (mode 0600) instead of stdout' };
const group: OptionSpec = {
  value: 'G',
  repeatable: true,
  doc: 'a group of the identity (repeat, or a,b)',
};
/** Where a binding or an access request applies: clusters by name, namespaces. */
const clusterName: OptionSpec = { value: 'NAME', repeatable: true, doc: 'a cluster, by name' };
const namespace: OptionSpec = {
  value: 'NS',
  repeatable: true,
  doc: 'a namespace (default: every one)',
};
/** The token being minted is a robot's (admin token create, admin kubeconfig). */
const robotToken: OptionSpec = { type: 'boolean', doc: 'the token names a robot, not a user' };
const forwardMode: OptionSpec = {
  value: 'jit|impersonate',
  doc: "the agent's forward mode, which decides the RBAC the YAML grants it (default jit)",
};
const kubeconfigOpt: OptionSpec = {
  value: 'FILE',
  doc: 'the fleet kubeconfig whose current context names the proxy and your token (default $KUBECONFIG, ~/.kube/config; KUBEGATE_SERVER + KUBEGATE_TOKEN win)',
};
const auditFilters: Record<string, OptionSpec> = Object.fromEntries(
  filterNames.map((n) => [n, { value: n === 'since' ? '1h' : 'V', doc: `filter: ${n}` }]),
);
auditFilters.from!.doc = 'events at or after T (RFC 3339 or a duration ago)';
auditFilters.to!.doc = 'events before T (RFC 3339 or a duration ago)';
auditFilters.since!.doc = 'events in the last DURATION';
auditFilters.resource!.value = 'pods|deployments.apps|pods/exec';
auditFilters.decision!.value = 'allow|deny|error';
auditFilters.code!.value = '403|4xx';
auditFilters.source!.value = 'kube|admin|runbook';

/** A command's handler: its exit code (0 when it returns nothing); -1: still running (a server). */
type Handler = (p: Invocation) => Promise<number | void>;
type HandlerName<M> = { [K in keyof M]: M[K] extends Handler ? K : never }[keyof M];

/**
 * The handlers of one module, by name (`rbac('roleGet')`); the module is
 * imported when one of its commands runs, not before.
 */
function handlersIn<M>(load: () => Promise<M>): (name: HandlerName<M>) => Handler {
  return (name) => async (p) => ((await load())[name] as Handler)(p);
}
const audit = handlersIn(() => import('./admin-audit.js'));
const clusters = handlersIn(() => import('./admin-cluster.js'));
const identity = handlersIn(() => import('./admin-identity.js'));
const rbac = handlersIn(() => import('./admin-rbac.js'));
const tokens = handlersIn(() => import('./admin-token.js'));
const approvals = handlersIn(() => import('./approvals.js'));
const runbooks = handlersIn(() => import('./runbooks.js'));
const recordings = handlersIn(() => import('./recordings.js'));
const namespaces = handlersIn(() => import('./namespaces.js'));

const name = (n = 'NAME', doc?: string): ArgSpec[] => [{ name: n, ...(doc ? { doc } : {}) }];
const outputOpt: OptionSpec = {
  value: 'text|json|yaml',
  short: 'o',
  doc: 'readable text (default), or what the API answers as JSON or YAML',
};

const runHelp = `Asks the proxy for a run (POST /api/v1/runs) as the identity of your fleet
kubeconfig; you need the verb "run" on the runbook (resource "runbooks", API
group kubegate.dev) in the run's namespace on every cluster named. The steps
run in the cluster as the runbook's own ServiceAccount, never as you.

Parameters are sent as the text given (--param replicas=3); the proxy turns
them into integers or booleans as the runbook declares. A value may hold '='
and ','; a name given twice is an error. "kubegate runbook get NAME" lists a
runbook's parameters.

Prints the run's id on stdout (a script can keep it) and its status on
stderr; exits 0 once the run is asked for. With --wait it follows the run,
printing each cluster's status and each step as it starts and finishes: its
message and, once finished, the changed lines of its diff ("kubegate runs
get ID" shows the whole diff); then one summary line. It exits 0 when the
run succeeded and 1 when it failed, ended unknown, offline, denied, expired
or cancelled. Interrupting --wait does not stop the run:
"kubegate runs cancel ID" does.

A refused request (422) lists every problem, one per line. No
Idempotency-Key is sent unless --idempotency-key is given: then asking again
with the same key and the same request answers the run made the first time
instead of making a second one (the same key with another request is
refused), so a retried script never runs twice.`;

const createNamespaceHelp = `Asks the proxy for a namespace made from profile P (POST /api/v1/namespaces)
on each cluster named, as the identity of your fleet kubeconfig; you become its
owner. The profile decides the name rule, the clusters, what the namespace gets
(quota, limits, network policy, labels), how many you may own, and whether an
approver must say yes first ("kubegate admin namespace-profile get P" shows it).

Without --wait it prints each namespace's status and what to do next. With
--wait it follows them, printing each status as it changes, until every one is
ready (exit 0) or one failed or was denied (exit 1). A request that waits for
approval names its approval ("kubegate request get ID"). A refused request says
why: the name is taken, breaks the profile's rule, a cluster is outside the
profile, or you reached the profile's limit.`;

/** `NAME --cluster C`: the namespace a command acts on. */
const onNamespace = {
  args: name('NAME', 'the namespace'),
  cluster: { value: 'C', required: true, doc: 'the cluster it is on' } as OptionSpec,
};
const memberOpts: Record<string, OptionSpec> = {
  user: { value: 'U', doc: 'the member is this user' },
  group: { value: 'G', doc: 'the member is this group' },
};

function namespaceCommands(): Command[] {
  return [
    {
      path: 'namespace create',
      summary: 'ask for a namespace made from a profile; you own it',
      args: onNamespace.args,
      options: {
        profile: { value: 'P', required: true, doc: 'the namespace profile' },
        cluster: { value: 'C', repeatable: true, doc: 'a cluster (repeat, or a,b; at least one)' },
        reason: { value: 'TEXT', doc: 'why (approvers see it)' },
        wait: { type: 'boolean', doc: 'follow until ready; exit 0 only if every one is ready' },
        kubeconfig: kubeconfigOpt,
      },
      help: createNamespaceHelp,
      run: namespaces('namespaceCreate'),
    },
    {
      path: 'namespace list',
      summary: 'your namespaces (owner or member): status, profile, your role, drift',
      options: {
        cluster: { value: 'C', doc: 'only namespaces on this cluster' },
        all: { type: 'boolean', doc: 'every managed namespace (admins)' },
        output: outputOpt,
        kubeconfig: kubeconfigOpt,
      },
      run: namespaces('namespaceList'),
    },
    {
      path: 'namespace get',
      summary: 'one namespace: status, owner, your role, drift, members',
      args: onNamespace.args,
      options: { cluster: onNamespace.cluster, output: outputOpt, kubeconfig: kubeconfigOpt },
      run: namespaces('namespaceGet'),
    },
    {
      path: 'namespace delete',
      summary: 'retire a namespace and its bindings (owners and admins)',
      args: onNamespace.args,
      options: { cluster: onNamespace.cluster, kubeconfig: kubeconfigOpt },
      help: 'The namespace and everything in it is deleted on the cluster, and every binding it gave goes with it. Where the profile says so, the deletion first waits for an approver.',
      run: namespaces('namespaceDelete'),
    },
    {
      path: 'namespace members',
      summary: 'who works in a namespace, with which role',
      args: onNamespace.args,
      options: { cluster: onNamespace.cluster, output: outputOpt, kubeconfig: kubeconfigOpt },
      run: namespaces('namespaceMembers'),
    },
    {
      path: 'namespace add-member',
      summary: 'add a user or group with a role, or change its role (owners)',
      args: onNamespace.args,
      options: {
        cluster: onNamespace.cluster,
        ...memberOpts,
        role: { value: 'R', required: true, doc: 'a role the profile lets owners hand out' },
        kubeconfig: kubeconfigOpt,
      },
      help: 'Exactly one of --user or --group. The role must be one the profile allows members, and never more than you hold. The member can work in the namespace within a second.',
      run: namespaces('namespaceAddMember'),
    },
    {
      path: 'namespace remove-member',
      summary: 'take a user or group out of a namespace (owners)',
      args: onNamespace.args,
      options: { cluster: onNamespace.cluster, ...memberOpts, kubeconfig: kubeconfigOpt },
      help: 'Exactly one of --user or --group. Their access, open watches included, ends within a second.',
      run: namespaces('namespaceRemoveMember'),
    },
    {
      path: 'namespace transfer',
      summary: 'make another user the owner (owners and admins)',
      args: onNamespace.args,
      options: {
        cluster: onNamespace.cluster,
        to: { value: 'USER', required: true, doc: 'the new owner' },
        kubeconfig: kubeconfigOpt,
      },
      run: namespaces('namespaceTransfer'),
    },
    {
      path: 'admin namespace-profile list',
      summary: 'namespace profiles: clusters, approval, per-user limit, version',
      options: { output: outputOpt, kubeconfig: kubeconfigOpt },
      run: namespaces('profileList'),
    },
    {
      path: 'admin namespace-profile get',
      summary: 'one namespace profile, as "apply -f" takes it',
      args: name(),
      options: {
        output: { value: 'yaml|json', short: 'o', doc: 'YAML (default) or JSON' },
        kubeconfig: kubeconfigOpt,
      },
      run: namespaces('profileGet'),
    },
    {
      path: 'admin namespace-profile apply',
      summary: 'create a namespace profile, or replace the one of that name',
      options: {
        file: {
          value: 'profile.yaml',
          short: 'f',
          required: true,
          doc: 'the profile, YAML or JSON; - for stdin',
        },
        kubeconfig: kubeconfigOpt,
      },
      help: `Through the proxy, as you (an admin). The profile: name, description,
clusters (names and/or selector), naming, quota, limits, networkPolicy,
labels, annotations, ownerRole, memberRoles, perUserLimit, approval
(docs/namespaces.md). Fields "get" adds (version, updatedBy, updatedAt) are
ignored. The server lists every problem, one per line.`,
      run: namespaces('profileApply'),
    },
    {
      path: 'admin namespace-profile delete',
      summary: 'delete a namespace profile (refused while namespaces use it)',
      args: name(),
      options: { kubeconfig: kubeconfigOpt },
      run: namespaces('profileDelete'),
    },
  ];
}

const decide = (verb: 'approve' | 'deny' | 'withdraw', summary: string): Command => ({
  path: `request ${verb}`,
  summary,
  args: name('ID'),
  options: { reason: { value: 'TEXT', doc: 'why' }, kubeconfig: kubeconfigOpt },
  run: async (p) => (await import('./approvals.js')).requestDecide(verb)(p),
});

export const commands: readonly Command[] = [
  {
    path: 'proxy',
    summary: 'run a proxy replica (config from KUBEGATE_* env; see docs/configuration.md)',
    run: async () => {
      const { runProxy } = await import('../main.js');
      await runProxy();
      return -1;
    },
  },
  {
    path: 'agent',
    summary: 'run the cluster agent (config from KUBEGATE_* env)',
    run: async () => {
      const { runAgent } = await import('../../agent/main.js');
      await runAgent();
      return -1;
    },
  },
  {
    path: 'dev',
    summary: 'run the whole stack locally (a source checkout; see README)',
    run: async () => {
      // Not in the image: a path the compiler does not follow.
      const devStack = '../../test/dev/dev-stack.js';
      const { runDev } = (await import(devStack)) as { runDev(args: string[]): Promise<void> };
      await runDev([]);
      return -1;
    },
  },
  {
    path: 'migrate',
    summary: 'apply database migrations (DATABASE_URL)',
    run: async (p) => {
      const { withPool } = await import('./args.js');
      const { migrate } = await import('../db/migrate.js');
      const r = await withPool(p, (pool) =>
        migrate(pool, undefined, (m) => p.io.stderr.write(m + '\n')),
      );
      p.io.stderr.write(
        r.applied.length
          ? `applied ${r.applied.length} migration(s); schema at ${r.current}\n`
          : `schema up to date at ${r.current}\n`,
      );
    },
  },
  {
    path: 'config-reference',
    summary: 'print the configuration reference (docs/configuration.md; used by make docs)',
    run: async (p) => {
      p.io.stdout.write((await import('./config-reference.js')).configReference());
    },
  },
  {
    path: 'agent-chart-data',
    summary: "print the agent chart's shared data (used by make docs)",
    run: async (p) => {
      p.io.stdout.write((await import('./agent-chart-data.js')).agentChartData());
    },
  },

  {
    path: 'admin cluster add',
    summary: 'register a cluster and write its bootstrap YAML',
    args: name(),
    options: {
      label: { value: 'k=v', repeatable: true, doc: 'a label of the cluster (repeat, or a=b,c=d)' },
      'forward-mode': forwardMode,
      out,
    },
    help: 'Needs DATABASE_URL, KUBEGATE_MASTER_KEY and KUBEGATE_TUNNEL_ADDRESS (and reads the enrollment address, bootstrap token TTL and agent image settings).',
    run: clusters('clusterAdd'),
  },
  {
    path: 'admin cluster bootstrap',
    summary: 'a fresh one-time bootstrap YAML for NAME',
    args: name(),
    options: { 'forward-mode': forwardMode, out },
    help: 'Needs DATABASE_URL, KUBEGATE_MASTER_KEY and KUBEGATE_TUNNEL_ADDRESS.',
    run: clusters('clusterBootstrap'),
  },
  {
    path: 'admin cluster list',
    summary: 'list registered clusters (name, labels, enabled)',
    run: clusters('clusterList'),
  },
  {
    path: 'admin cluster revoke-agent',
    summary: "revoke NAME's agent certificates: its tunnels close on every replica",
    args: name(),
    help: `Revoke every certificate held by cluster NAME's agent, at once:
  - every tunnel of NAME closes on every proxy replica within a second, and
    requests to NAME get 503 "cluster is offline" until an agent is back;
  - the agent's certificate (and any earlier one) is refused for new tunnels
    and for renewal; unspent bootstrap tokens of NAME are voided too;
  - the revocation is recorded in the audit log (verb revoke, resource
    agentcertificates) with who ran it.
The cluster stays registered, with its labels and bindings. To attach it
again, enroll a fresh agent with a new one-time bootstrap token:
  kubegate admin cluster bootstrap NAME --out bootstrap.yaml
  kubectl delete secret -n kubegate-system kubegate-agent-identity
  kubectl apply -f bootstrap.yaml
  kubectl rollout restart -n kubegate-system deployment/kubegate-agent
Use it when an agent's key may be compromised, or a cluster must be cut off
now. Needs DATABASE_URL. REST: POST /api/v1/clusters/NAME/revoke-agent.`,
    run: clusters('clusterRevokeAgent'),
  },

  {
    path: 'admin token create',
    summary: 'mint a bearer token (printed once)',
    options: {
      user: { value: 'NAME', required: true, doc: 'whose token' },
      group,
      ttl: { value: '8h', doc: 'lifetime (default KUBEGATE_TOKEN_TTL, 12h)' },
      robot: robotToken,
      out,
    },
    help: 'Needs only DATABASE_URL.',
    run: tokens('tokenCreate'),
  },
  {
    path: 'admin token list',
    summary: 'list tokens (never the token itself): id, owner, state, times',
    options: {
      user: { value: 'NAME', doc: "only this user's tokens" },
      robot: { value: 'NAME', doc: "only this robot's tokens" },
      all: { type: 'boolean', doc: 'expired and revoked tokens too' },
    },
    help: 'Newest first, at most 500. Needs only DATABASE_URL.',
    run: tokens('tokenList'),
  },
  {
    path: 'admin token revoke',
    summary: 'revoke a token: every replica drops it and ends the requests using it',
    args: name('ID', 'the id `admin token list` shows'),
    help: 'Needs only DATABASE_URL. REST: DELETE /api/v1/tokens/ID (as an admin).',
    run: tokens('tokenRevoke'),
  },
  {
    path: 'admin kubeconfig',
    summary: 'write a fleet kubeconfig with a fresh token',
    options: {
      user: { value: 'NAME', required: true, doc: 'whose kubeconfig' },
      group,
      ttl: { value: '8h', doc: 'lifetime of its token (default KUBEGATE_TOKEN_TTL, 12h)' },
      robot: robotToken,
      out,
    },
    help: 'One context per cluster the identity can reach now. Needs DATABASE_URL, KUBEGATE_PUBLIC_URL and KUBEGATE_MASTER_KEY.',
    run: tokens('kubeconfig'),
  },

  {
    path: 'admin role list',
    summary: 'list built-in and custom roles',
    run: rbac('roleList'),
  },
  {
    path: 'admin role get',
    summary: 'print a role as YAML',
    args: name(),
    run: rbac('roleGet'),
  },
  {
    path: 'admin role create',
    summary: 'create a custom role',
    args: name(),
    options: {
      file: {
        value: 'rules.yaml',
        required: true,
        doc: 'YAML or JSON: a list of rules, or {description, rules} (a ClusterRole works); - for stdin',
      },
      description: { value: 'TEXT', doc: 'what the role is for' },
    },
    run: rbac('roleCreate'),
  },
  {
    path: 'admin role delete',
    summary: 'delete a custom role (refused while bindings use it)',
    args: name(),
    run: rbac('roleDelete'),
  },
  {
    path: 'admin binding list',
    summary: 'list bindings',
    options: {
      subject: { value: 'NAME', doc: 'only bindings naming this subject' },
      role: { value: 'ROLE', doc: 'only bindings of this role' },
      cluster: { value: 'NAME', doc: 'only bindings reaching this cluster' },
    },
    run: rbac('bindingList'),
  },
  {
    path: 'admin binding get',
    summary: 'print a binding as YAML',
    args: name('ID'),
    run: rbac('bindingGet'),
  },
  {
    path: 'admin binding create',
    summary: 'create a binding; prints its id',
    options: {
      group: { value: 'G', repeatable: true, doc: 'a Group subject' },
      user: { value: 'U', repeatable: true, doc: 'a User subject' },
      robot: { value: 'R', repeatable: true, doc: 'a Robot subject' },
      role: { value: 'ROLE', doc: 'the role granted' },
      cluster: clusterName,
      selector: { value: "'env=prod,tier in (a,b)'", doc: 'clusters, by label selector' },
      namespace,
      expires: { value: '2h|RFC3339', doc: 'when the binding ends' },
      reason: { value: 'TEXT', doc: 'why (kept in the change log)' },
    },
    help: 'At least one subject and a role; problems are listed one per line.',
    run: rbac('bindingCreate'),
  },
  {
    path: 'admin binding delete',
    summary: 'delete a binding',
    args: name('ID'),
    run: rbac('bindingDelete'),
  },

  {
    path: 'admin user list',
    summary: 'list users who signed in',
    run: identity('userList'),
  },
  {
    path: 'admin user deactivate',
    summary: 'deactivate a user: every token revoked, sessions ended',
    args: name('NAME|ID'),
    run: identity('userDeactivate'),
  },
  {
    path: 'admin user activate',
    summary: 'let a deactivated user sign in again',
    args: name('NAME|ID'),
    run: identity('userActivate'),
  },
  {
    path: 'admin robot list',
    summary: 'list robots',
    run: identity('robotList'),
  },
  {
    path: 'admin robot create',
    summary: 'create a robot; prints its first token (shown once)',
    args: name(),
    options: {
      group,
      description: { value: 'TEXT', doc: 'what the robot is for' },
      ttl: { value: '90d', doc: 'lifetime of its token (default KUBEGATE_ROBOT_TOKEN_TTL)' },
      out,
    },
    run: identity('robotCreate'),
  },
  {
    path: 'admin robot rotate',
    summary: 'a new token; earlier ones stop after the overlap',
    args: name(),
    options: {
      overlap: { value: '10m', doc: 'how long earlier tokens keep working' },
      ttl: { value: '90d', doc: 'lifetime of the new token' },
      out,
    },
    run: identity('robotRotate'),
  },
  {
    path: 'admin robot delete',
    summary: 'delete a robot and revoke its tokens',
    args: name(),
    run: identity('robotDelete'),
  },

  {
    path: 'admin audit list',
    summary: 'audit events, newest first',
    options: {
      ...auditFilters,
      limit: { value: 'N', doc: 'events per page, 1 to 1000 (default 50)' },
      output: { value: 'table|json', doc: 'a table (default) or JSON lines' },
      continue: { value: 'TOKEN', doc: 'the next page, as the previous one said' },
    },
    run: audit('auditList'),
  },
  {
    path: 'admin audit export',
    summary: 'every matching event as NDJSON',
    options: {
      ...auditFilters,
      format: { value: 'kubegate|kube', doc: "kubegate's events or Kubernetes audit.k8s.io/v1" },
      out,
    },
    run: audit('auditExport'),
  },

  {
    path: 'admin approval policy list',
    summary: 'list approval policies',
    run: approvals('policyList'),
  },
  {
    path: 'admin approval policy get',
    summary: 'print an approval policy as YAML',
    args: name(),
    run: approvals('policyGet'),
  },
  {
    path: 'admin approval policy apply',
    summary: 'create or replace a policy',
    options: { file: { value: 'policy.yaml', required: true, doc: 'the policy; - for stdin' } },
    run: approvals('policyApply'),
  },
  {
    path: 'admin approval policy delete',
    summary: 'delete an approval policy',
    args: name(),
    run: approvals('policyDelete'),
  },
  {
    path: 'admin approval webhook list',
    summary: 'list approval webhooks',
    run: approvals('webhookList'),
  },
  {
    path: 'admin approval webhook add',
    summary: 'add a webhook; prints its signing secret once',
    args: name('URL'),
    options: {
      format: { value: 'json|slack', doc: 'the body it gets (default json)' },
      description: { value: 'TEXT', doc: 'what it is for' },
    },
    help: 'Needs DATABASE_URL and KUBEGATE_MASTER_KEY (the secret is sealed with it).',
    run: approvals('webhookAdd'),
  },
  {
    path: 'admin approval webhook delete',
    summary: 'delete an approval webhook',
    args: name('ID'),
    run: approvals('webhookDelete'),
  },

  {
    path: 'admin runbook list',
    summary: 'list runbooks: built-in and stored, with versions',
    run: runbooks('adminRunbookList'),
  },
  {
    path: 'admin runbook apply',
    summary: 'create a runbook, or save a new version of a stored one',
    options: {
      file: {
        value: 'runbook.yaml',
        required: true,
        doc: 'the definition, YAML or JSON; - for stdin',
      },
    },
    help: `The definition: name, description, parameters, targets, steps (docs/runbooks.md).
A runbook by that name is replaced by a new version (runs already made keep
theirs); the same definition again changes nothing. Problems are listed one
per line. Built-in runbooks cannot be replaced. Fields "runbook get --output yaml"
adds (version, builtin, updatedBy, updatedAt) are ignored. Needs DATABASE_URL.`,
    run: runbooks('adminRunbookApply'),
  },
  {
    path: 'admin runbook delete',
    summary: 'delete a stored runbook (its runs stay in the history)',
    args: name(),
    run: runbooks('adminRunbookDelete'),
  },

  {
    path: 'request create',
    summary: 'ask for time-bound access; prints the approval id',
    options: {
      role: { value: 'ROLE', required: true, doc: 'the role asked for' },
      cluster: clusterName,
      selector: { value: "'env=prod'", doc: 'clusters, by label selector' },
      namespace,
      duration: { value: '15m', required: true, doc: 'how long the access lasts' },
      reason: { value: 'TEXT', required: true, doc: 'why (approvers see it)' },
      kubeconfig: kubeconfigOpt,
    },
    run: approvals('requestCreate'),
  },
  {
    path: 'request list',
    summary: 'list approvals',
    options: {
      view: { value: 'mine|approvable|all', doc: 'whose' },
      status: { value: 'pending', doc: 'only this status' },
      kind: { value: 'KIND', doc: 'only this kind' },
      kubeconfig: kubeconfigOpt,
    },
    run: approvals('requestList'),
  },
  {
    path: 'request get',
    summary: 'one approval, with the diff of a gated change',
    args: name('ID'),
    options: { kubeconfig: kubeconfigOpt },
    run: approvals('requestGet'),
  },
  {
    path: 'run',
    summary: 'ask for a runbook run; --wait follows it to the end',
    args: name('NAME', 'the runbook ("kubegate runbook list")'),
    options: {
      cluster: { value: 'NAME', repeatable: true, doc: 'a cluster to run on (repeat, or a,b)' },
      selector: { value: "'env=prod'", doc: 'the clusters whose labels match' },
      param: {
        value: 'k=v',
        repeatable: true,
        doc: 'a parameter (repeat; the value may hold = and ,)',
      },
      ticket: { value: 'INC-42', doc: 'the ticket the run is for (kept with the run)' },
      reason: { value: 'TEXT', doc: 'why (approvers see it)' },
      'dry-run': {
        type: 'boolean',
        doc: 'every step with dryRun=All: the diffs, nothing changed',
      },
      wait: { type: 'boolean', doc: 'follow the run; exit 0 only if it succeeds' },
      canary: { value: 'N', doc: 'run on N clusters first; the rest only if they succeed' },
      concurrency: { value: 'N', doc: 'at most N clusters at a time (default 5)' },
      'offline-wait': {
        value: '5m',
        doc: 'how long an offline cluster is waited for before it is reported offline (default 60s)',
      },
      'idempotency-key': {
        value: 'K',
        doc: 'the same K and request answer the same run (none is sent by default)',
      },
      kubeconfig: kubeconfigOpt,
    },
    help: runHelp,
    run: runbooks('runCreate'),
  },
  {
    path: 'admin recording list',
    summary: 'session recordings, newest first',
    options: {
      user: { value: 'NAME', doc: 'only sessions of this user or robot' },
      cluster: { value: 'NAME', doc: 'only sessions on this cluster' },
      namespace: { value: 'NS', doc: 'only sessions in this namespace' },
      pod: { value: 'NAME', doc: 'only sessions into this pod' },
      container: { value: 'NAME', doc: 'only sessions into this container' },
      command: { value: 'TEXT', doc: 'only sessions whose command contains TEXT' },
      status: { value: 'STATUS', doc: 'recording, complete, incomplete or unrecorded' },
      from: { value: 'T', doc: 'sessions started at or after T (RFC 3339 or a duration ago: 2h)' },
      to: { value: 'T', doc: 'sessions started before T (RFC 3339 or a duration ago)' },
      limit: { value: 'N', doc: 'at most N, 1 to 1000 (default 100)' },
      continue: { value: 'TOKEN', doc: 'the next page, as the previous one said' },
      output: outputOpt,
      kubeconfig: kubeconfigOpt,
    },
    help: `Through the proxy, as you: you must be in an admin group or a recording
viewer group (recordingViewerGroups, default kubegate-auditors), or hold a role
with verbs get and list on resource recordings (API group kubegate.dev) where
the sessions ran; you see those recordings only.`,
    run: recordings('recordingList'),
  },
  {
    path: 'admin recording get',
    summary: "one recording's metadata: who, where, what ran, status, sizes",
    args: name('ID'),
    options: { output: outputOpt, kubeconfig: kubeconfigOpt },
    run: recordings('recordingGet'),
  },
  {
    path: 'admin recording download',
    summary: 'a recording as an asciicast v2 file (.cast); the download is audited',
    args: name('ID'),
    options: { out, kubeconfig: kubeconfigOpt },
    help: 'Play it with any asciicast v2 player (asciinema play FILE).',
    run: recordings('recordingDownload'),
  },
  {
    path: 'runs list',
    summary: "runs, newest first: yours (admins: everyone's)",
    options: {
      runbook: { value: 'NAME', doc: 'only runs of this runbook' },
      status: { value: 'STATUS', doc: 'only runs in this status (succeeded, failed, running, …)' },
      ticket: { value: 'INC-42', doc: 'only runs for this ticket' },
      requester: { value: 'NAME', doc: 'only runs this user or robot asked for' },
      limit: { value: 'N', doc: 'at most N runs, 1 to 500 (default 50)' },
      output: outputOpt,
      kubeconfig: kubeconfigOpt,
    },
    help: "A table: id, runbook and version, the run's status, each cluster's status, who asked, ticket, when.",
    run: runbooks('runsList'),
  },
  {
    path: 'runs get',
    summary: "one run: who asked, each cluster's steps, messages, diffs and results",
    args: name('ID'),
    options: { output: outputOpt, kubeconfig: kubeconfigOpt },
    run: runbooks('runsGet'),
  },
  {
    path: 'runs cancel',
    summary: 'cancel a run: steps not yet started never run',
    args: name('ID'),
    options: { reason: { value: 'TEXT', doc: 'why' }, kubeconfig: kubeconfigOpt },
    run: runbooks('runsCancel'),
  },
  {
    path: 'runbook list',
    summary: 'the runbooks: name, version, built in, description',
    options: { output: outputOpt, kubeconfig: kubeconfigOpt },
    run: runbooks('runbookList'),
  },
  {
    path: 'runbook get',
    summary: 'one runbook: parameters (types, defaults, bounds), targets, steps',
    args: name(),
    options: { output: outputOpt, kubeconfig: kubeconfigOpt },
    help: '"--output yaml" prints the definition as "kubegate admin runbook apply -f" takes it.',
    run: runbooks('runbookGet'),
  },
  ...namespaceCommands(),
  decide('approve', 'approve a request'),
  decide('deny', 'deny a request'),
  decide('withdraw', 'withdraw your own request'),
];
