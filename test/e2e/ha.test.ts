/**
 * Horizontal scale and high availability (issue #9), end to end: three
 * proxy replicas behind a loopback TCP load balancer (fronts and tunnel
 * listeners each), two real clusters whose agents dial the balanced tunnel
 * address. kubectl works through every replica whether or not it holds the
 * cluster's tunnel (peer forwarding); agents spread over distinct replicas;
 * a rolling restart of all three with a watch, an exec session and a
 * request loop open loses no request and no audit event; kill -9 of a
 * tunnel-holding replica is measured until requests succeed again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as tls from 'node:tls';
import { startStack, type Stack } from '../support/stack.js';
import { startLoadBalancer, type LoadBalancer } from '../support/lb.js';
import { startKubegate, type Proc } from '../support/proc.js';
import { kubectl, kubectlOk, kubectlPath } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { httpGet, until } from '../support/http.js';
import { percentile } from '../../bench/stats.js';

interface Replica {
  name: string;
  env: NodeJS.ProcessEnv;
  proc: Proc;
  front: string;
}

let stack: Stack;
let front: LoadBalancer;
let tunnels: LoadBalancer;
const replicas: Replica[] = [];
let ca: string;
let token: string;
let adminToken: string;
let lbKubeconfig: string;
const execChildren: ChildProcess[] = [];
const log = (m: string) => process.stderr.write(`# ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Replica ids (heart-beating, not draining) holding a tunnel for a cluster. */
async function holders(cluster: string): Promise<string[]> {
  const rows = await stack.sql<{ replica_id: string }>(
    `SELECT DISTINCT t.replica_id FROM replica_tunnels t JOIN replicas r ON r.id = t.replica_id
      WHERE t.cluster = $1 AND NOT r.draining AND r.heartbeat_at > now() - interval '1.2 seconds'`,
    [cluster],
  );
  return rows.map((r) => r.replica_id);
}

async function spread(timeoutMs = 60_000): Promise<void> {
  await until(
    async () => (await holders('east')).length >= 2 && (await holders('west')).length >= 2,
    timeoutMs,
    'each agent has tunnels on two distinct replicas',
  );
}

function replicaId(r: Replica): Promise<string> {
  return r.proc
    .waitFor(/kubegate proxy listening/)
    .then((l) => (JSON.parse(l) as { replica: string }).replica);
}

async function start(r: Replica): Promise<void> {
  r.proc = startKubegate(['proxy'], r.env, r.name);
  await r.proc.waitFor(/kubegate proxy listening/, 60_000);
}

interface ExecSession {
  label: string;
  send(line: string): void;
  out(): string;
  ended(): boolean;
  /** When kubectl exited, and how. */
  exited: Promise<{ code: number | null; at: number }>;
}

/** `kubectl exec -i sleeper -- cat` through one replica's own front (no balancer). */
function openExec(r: Replica, label: string): ExecSession {
  const cfg = `${lbKubeconfig}-${label}`;
  writeFileSync(
    cfg,
    readFileSync(lbKubeconfig, 'utf8').replaceAll(`https://${front.address}`, `https://${r.front}`),
  );
  const child = spawn(
    kubectlPath(),
    [
      '--kubeconfig',
      cfg,
      '--context',
      'east',
      'exec',
      '-i',
      'sleeper',
      '-n',
      'default',
      '--',
      'cat',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let done = false;
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stdin!.on('error', () => undefined);
  // Timed at 'exit'; settled at 'close', once its output is all read.
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => {
    let at = 0;
    child.once('exit', () => (at = Date.now()));
    child.once('close', (code) => {
      done = true;
      resolve({ code, at: at || Date.now() });
    });
  });
  execChildren.push(child);
  return {
    label,
    send: (line) => void child.stdin!.write(`${label}:${line}\n`),
    out: () => out,
    ended: () => done,
    exited,
  };
}

const kget = (cluster: string, url = front.address) =>
  httpGet(`https://${url}/k8s/${cluster}/api/v1/namespaces/default/configmaps?limit=1`, {
    token,
    ca,
    timeoutMs: 10_000,
  });

describe('scale-out: three replicas, two clusters', { timeout: 900_000 }, () => {
  before(async () => {
    stack = await startStack({
      clusters: [
        { name: 'east', labels: { env: 'ha' }, nodes: 1 },
        { name: 'west', labels: { env: 'ha' } },
      ],
      proxyEnv: {
        KUBEGATE_REPLICA_HEARTBEAT: '500ms',
        KUBEGATE_REPLICA_STALE_AFTER: '3s',
        KUBEGATE_DRAIN_TIMEOUT: '4s',
      },
      agentEnv: { KUBEGATE_REBALANCE_INTERVAL: '1s' },
      log,
    });
    replicas.push({
      name: 'proxy-0',
      env: stack.env,
      proc: stack.proxy,
      front: stack.env.KUBEGATE_LISTEN!,
    });
    for (const i of [1, 2]) {
      const r = await stack.startReplica();
      replicas.push({
        name: `proxy-${i}`,
        env: r.env,
        proc: r.proxy,
        front: r.env.KUBEGATE_LISTEN!,
      });
    }
    front = await startLoadBalancer(replicas.map((r) => r.front));
    tunnels = await startLoadBalancer(replicas.map((r) => r.env.KUBEGATE_TUNNEL_LISTEN!));
    // The agents dial the balanced address, as behind a Kubernetes Service.
    for (const name of ['east', 'west']) {
      await stack.agents.get(name)!.stop();
      await stack.startAgent(name, tunnels.address);
    }
    await grant(stack, { users: ['hana'], role: 'edit', selector: { matchLabels: { env: 'ha' } } });
    const cfg = await stack.kubeconfig('hana');
    const text = readFileSync(cfg, 'utf8');
    token = /token: (kg_\S+)/.exec(text)![1]!;
    ca = Buffer.from(/certificate-authority-data: (\S+)/.exec(text)![1]!, 'base64').toString();
    lbKubeconfig = cfg + '-lb';
    writeFileSync(lbKubeconfig, text.replaceAll(stack.publicUrl, `https://${front.address}`));
    const adminCfg = readFileSync(await stack.kubeconfig('ada', ['kubegate-admins']), 'utf8');
    adminToken = /token: (kg_\S+)/.exec(adminCfg)![1]!;
    await spread();
  });
  after(async () => {
    for (const c of execChildren) if (c.exitCode === null) c.kill('SIGKILL');
    for (const r of replicas) await r.proc.stop('SIGKILL');
    await front?.close();
    await tunnels?.close();
    await stack?.stop();
  });

  test('kubectl works through every replica, holding the tunnel or not; health shows where', async () => {
    const ids = await Promise.all(replicas.map(replicaId));
    for (const cluster of ['east', 'west']) {
      const held = await holders(cluster);
      assert.ok(held.length >= 2, `${cluster} is on two replicas: ${held.join(', ')}`);
      assert.ok(
        ids.some((id) => !held.includes(id)),
        `some replica holds no ${cluster} tunnel (peer forwarding is exercised)`,
      );
      for (const r of replicas) {
        const cfg = lbKubeconfig.replace(/-lb$/, `-${r.name}`);
        writeFileSync(cfg, readFileSync(lbKubeconfig, 'utf8').replaceAll(front.address, r.front));
        const out = await kubectlOk(
          [
            '--context',
            cluster,
            'get',
            'configmap',
            'kube-root-ca.crt',
            '-n',
            'default',
            '-o',
            'name',
          ],
          { kubeconfig: cfg },
        );
        assert.equal(out.trim(), 'configmap/kube-root-ca.crt', `${cluster} via ${r.name}`);
      }
    }
    const h = await httpGet(`https://${front.address}/api/v1/clusters/east`, {
      token: adminToken,
      ca,
    });
    assert.equal(h.status, 200, h.body);
    const health = (JSON.parse(h.body) as { health: Record<string, unknown> }).health as {
      online: boolean;
      agentVersion: string;
      replicas: { replica: string; tunnels: number }[];
    };
    assert.equal(health.online, true);
    assert.match(health.agentVersion, /^\d+\.\d+\.\d+/);
    assert.deepEqual(health.replicas.map((r) => r.replica).sort(), (await holders('east')).sort());
    const list = await httpGet(`https://${front.address}/api/v1/clusters`, {
      token: adminToken,
      ca,
    });
    const items = (
      JSON.parse(list.body) as { items: { name: string; health: { online: boolean } }[] }
    ).items;
    assert.deepEqual(
      items.map((c) => [c.name, c.health.online]),
      [
        ['east', true],
        ['west', true],
      ],
    );
  });

  test('the peer listener takes replica certificates only', async () => {
    const [row] = await stack.sql<{ peer_address: string }>(
      'SELECT peer_address FROM replicas LIMIT 1',
    );
    const [host, port] = row!.peer_address.split(':');
    // No client certificate: the handshake is refused.
    const outcome = await new Promise<string>((resolve) => {
      const s = tls.connect({
        host,
        port: Number(port),
        ca,
        ALPNProtocols: ['h2'],
        rejectUnauthorized: false,
      });
      s.on('secureConnect', () => s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
      s.on('data', () => resolve('answered'));
      s.on('error', () => resolve('refused'));
      s.on('close', () => resolve('refused'));
    });
    assert.equal(outcome, 'refused');
  });

  test('rolling restart of all three: watch keeps printing, exec sessions survive other replicas and end with their own, no request fails, all audited', async (t) => {
    const admin = { kubeconfig: stack.clusters.get('east')!.kubeconfig };
    await kubectlOk(['run', 'sleeper', '--image=busybox', '-n', 'default'], admin);
    await kubectlOk(
      ['wait', '--for=condition=Ready', 'pod/sleeper', '-n', 'default', '--timeout=120s'],
      {
        ...admin,
        timeoutMs: 130_000,
      },
    );
    const user = { kubeconfig: lbKubeconfig };
    // A watch, re-run whenever it ends (as an informer re-watches); it must
    // end cleanly each time (exit 0), never with an error.
    let watchOut = '';
    let watchRuns = 0;
    const watchErrors: string[] = [];
    let stopping = false;
    let watcher: ChildProcess | undefined;
    const watchLoop = (async () => {
      while (!stopping) {
        watchRuns++;
        const child = (watcher = spawn(
          kubectlPath(),
          [
            '--kubeconfig',
            lbKubeconfig,
            '--context',
            'east',
            'get',
            'configmaps',
            '-n',
            'default',
            '-w',
            '-o',
            'name',
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        ));
        let err = '';
        child.stdout!.on('data', (b: Buffer) => (watchOut += b.toString()));
        child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
        const code = await new Promise<number | null>((r) => child.once('exit', r));
        if (!stopping && code !== 0) watchErrors.push(`exit ${code}: ${err}`);
      }
    })();
    // Two exec sessions echoing what they are sent, each opened on one replica's
    // own front: "stay" on a replica that holds an east tunnel itself (so its
    // stream touches no other replica) and is restarted last; "moving" on a
    // replica restarted first. Each must keep working through the other
    // replicas' restarts, and end promptly (not hang) when its own replica drains.
    const ids = await Promise.all(replicas.map(replicaId));
    const stayId = (await holders('east'))[0]!;
    const stayReplica = replicas[ids.indexOf(stayId)]!;
    assert.ok(stayReplica, `${stayId} is one of ours`);
    const order = [...replicas.filter((r) => r !== stayReplica), stayReplica];
    const stay = openExec(stayReplica, 'stay');
    const moving = openExec(order[0]!, 'moving');
    for (const e of [stay, moving]) {
      e.send('hello-1');
      await until(async () => e.out().includes(`${e.label}:hello-1`), 30_000, `${e.label} echoes`);
    }
    // Requests through the balancer all the time, to both clusters; every answer's audit id kept.
    const auditIds: string[] = [];
    const failures: string[] = [];
    let created = 0;
    let requestsDone = false;
    const requestLoop = (async () => {
      let i = 0;
      while (!requestsDone) {
        const cluster = i++ % 2 ? 'east' : 'west';
        try {
          const r = await kget(cluster);
          const id = r.headers['audit-id'];
          if (typeof id === 'string') auditIds.push(id);
          if (r.status !== 200) failures.push(`${cluster}: ${r.status} ${r.body.slice(0, 200)}`);
        } catch (err) {
          failures.push(`${cluster}: ${(err as Error).message}`);
        }
        if (i % 5 === 0) {
          const c = await kubectl(
            ['--context', 'east', 'create', 'configmap', `cm-${++created}`, '-n', 'default'],
            user,
          );
          if (c.code !== 0) failures.push(`create cm-${created}: ${c.stderr}`);
        }
        await sleep(100);
      }
    })();
    // Whatever happens below, the loops end with the test (else a failure
    // would leave them spawning kubectl against a stopped stack for ever).
    t.after(() => {
      stopping = true;
      requestsDone = true;
      watcher?.kill('SIGKILL');
    });
    await sleep(1500);
    const execs = [stay, moving];
    const home = new Map([
      [stay, stayReplica],
      [moving, order[0]!],
    ]);
    for (const r of order) {
      log(`rolling restart: ${r.name}`);
      const sigterm = Date.now();
      const code = await r.proc.stop('SIGTERM');
      assert.equal(
        code,
        0,
        `${r.name} drained and exited cleanly:\n${r.proc.output().slice(-3000)}`,
      );
      for (const e of execs.filter((x) => home.get(x) === r)) {
        // Its own replica is gone: the session ended (drain deadline 4 s) and did not hang.
        const ended = await Promise.race([e.exited, sleep(15_000).then(() => undefined)]);
        assert.ok(ended, `exec "${e.label}" ended when ${r.name} drained`);
        assert.ok(ended.at >= sigterm, `exec "${e.label}" lived until its replica drained`);
        log(`exec "${e.label}" ended ${ended.at - sigterm} ms after SIGTERM (exit ${ended.code})`);
      }
      await start(r);
      await spread();
      // Every session whose replica was not restarted still echoes.
      for (const e of execs.filter((x) => !x.ended())) {
        e.send(`after-${r.name}`);
        await until(
          async () => e.out().includes(`${e.label}:after-${r.name}`),
          15_000,
          `exec "${e.label}" still works after ${r.name} restarted`,
        );
      }
    }
    assert.ok(
      stay.out().includes(`stay:after-${order[1]!.name}`),
      'the session on the replica restarted last kept working through both other restarts',
    );
    assert.ok(moving.ended() && stay.ended(), 'both sessions ended with their replicas');
    await sleep(1000);
    requestsDone = true;
    await requestLoop;
    // The watch still prints new events after all three restarts, and saw every one before.
    await kubectlOk(
      ['--context', 'east', 'create', 'configmap', 'final-one', '-n', 'default'],
      user,
    );
    await until(
      async () => watchOut.includes('configmap/final-one'),
      20_000,
      'the watch prints a new event',
    );
    stopping = true;
    watcher?.kill('SIGTERM');
    await watchLoop;

    log(`requests: ${auditIds.length}, configmaps created: ${created}, watch runs: ${watchRuns}`);
    assert.deepEqual(failures, [], 'no request failed during the rolling restart');
    assert.deepEqual(watchErrors, [], 'every watch ended cleanly');
    for (let i = 1; i <= created; i++)
      assert.ok(watchOut.includes(`configmap/cm-${i}\n`), `the watch saw cm-${i}`);
    assert.ok(auditIds.length > 20, `requests were made (${auditIds.length})`);
    // Every answered request is in the audit log (replicas flushed on drain).
    await until(
      async () => {
        const rows = await stack.sql<{ n: string }>(
          `SELECT count(DISTINCT audit_id) AS n FROM audit_events
            WHERE audit_id = ANY($1::uuid[]) AND stage = 'ResponseComplete'`,
          [auditIds],
        );
        return Number(rows[0]!.n) === auditIds.length;
      },
      20_000,
      'every request has its ResponseComplete audit event',
    );
  });

  test('kill -9 of a tunnel-holding replica: requests succeed again within seconds', async () => {
    const ids = await Promise.all(replicas.map(replicaId));
    const recover: number[] = [];
    const agentBack: number[] = [];
    for (let round = 0; round < 3; round++) {
      const held = await holders('west');
      const victimId = held[round % held.length]!;
      const victim = replicas[ids.indexOf(victimId)];
      assert.ok(victim, `${victimId} is one of ours (${ids.join(', ')})`);
      const others = replicas.filter((r) => r !== victim);
      const t0 = Date.now();
      await victim.proc.stop('SIGKILL');
      // Through each surviving replica directly, and through the balancer.
      const times = await Promise.all(
        [...others.map((r) => r.front), front.address].map((addr) =>
          until(async () => (await kget('west', addr)).status === 200, 20_000, `west via ${addr}`),
        ),
      );
      recover.push(...times);
      await until(
        async () => {
          const now = await holders('west');
          return !now.includes(victimId) && now.length >= 2;
        },
        30_000,
        'the agent is back on two live replicas',
      );
      agentBack.push(Date.now() - t0);
      await start(victim);
      ids[replicas.indexOf(victim)] = await replicaId(victim);
      await spread();
    }
    const p = (q: number, xs: number[]) => percentile(xs, q).toFixed(0);
    log(
      `kill -9 → request succeeds again: n=${recover.length} p50 ${p(50, recover)} ms, p99 ${p(99, recover)} ms, max ${Math.max(...recover)} ms; ` +
        `agent back on two replicas: p50 ${p(50, agentBack)} ms, max ${Math.max(...agentBack)} ms`,
    );
    assert.ok(Math.max(...recover) < 10_000, 'requests succeed again within seconds');
  });
});
