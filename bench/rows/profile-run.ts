/**
 * CPU profiles of a proxy replica and its agent under the P2 workload (small
 * GETs over h2), the P3 workload (200 MiB LISTs) and the P6 workload (exec
 * sessions streaming 128 MiB), taken on processes of their own so the
 * profiler never slows the measured rows.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { h2load } from '../h2load.js';
import { url, type BenchContext } from '../context.js';
import { renderSummary, summarize, type ProfileSummary } from '../profile.js';
import { openStream } from '../ws-client.js';

export interface Profiles {
  text: string;
  get: { proxy: ProfileSummary; agent: ProfileSummary };
  list: { proxy: ProfileSummary; agent: ProfileSummary };
  /** Left out when the run's time budget is short (P11 takes what is left). */
  exec?: { proxy: ProfileSummary; agent: ProfileSummary };
}

export async function profileRun(ctx: BenchContext): Promise<Profiles> {
  const dir = join(ctx.dir, 'profiles');
  mkdirSync(dir, { recursive: true });
  const prof = (name: string) => ({ KG_BENCH_CPU_PROF: join(dir, `${name}.cpuprofile`) });
  const one = async (workload: 'get' | 'list' | 'exec') => {
    // A short drain: the profile is written when the process exits, and a stop that
    // outlasts Proc.stop's 10 s ends in SIGKILL with no profile (seen: the drain of a
    // replica whose agent had just stopped ran to its 20 s deadline).
    const replica = await ctx.stack.startReplica(`proxy-prof-${workload}`, {
      ...prof(`proxy-${workload}`),
      KUBEGATE_DRAIN_TIMEOUT: '3s',
    });
    const agent = await ctx.stack.startAgent('bench', {
      ...ctx.agentEnv,
      ...prof(`agent-${workload}`),
      KUBEGATE_TUNNEL_ADDRESS: replica.tunnelAddress,
    });
    const t = { ...ctx.targets.kubegate, base: replica.publicUrl };
    // Warm up (JIT account, connections, code), then profile only the workload.
    await h2load({
      url: url(t, '/api/v1/namespaces/default/configmaps/bench-1k'),
      headers: t.headers,
      clients: 2,
      streams: 2,
      requests: 200,
    });
    for (const p of [replica.proxy, agent]) {
      p.child.kill('SIGWINCH');
      await p.waitFor(/kg-bench-profiling/, 10_000);
    }
    if (workload === 'get')
      await h2load({
        url: url(t, '/api/v1/namespaces/default/configmaps/bench-1k'),
        headers: t.headers,
        clients: 8,
        streams: 8,
        durationS: 4,
        warmUpS: 1,
      });
    else if (workload === 'exec') for (let i = 0; i < 2; i++) await openStream(t, 'exec', 128);
    else
      await h2load({
        url: url(t, '/api/v1/namespaces/list-200/configmaps'),
        headers: t.headers,
        clients: 1,
        streams: 1,
        requests: 3,
      });
    await agent.stop();
    await replica.stop();
    return {
      proxy: summarize(join(dir, `proxy-${workload}.cpuprofile`)),
      agent: summarize(join(dir, `agent-${workload}.cpuprofile`)),
    };
  };
  const get = await one('get');
  const list = await one('list');
  const exec = ctx.budget.allows(30_000) ? await one('exec') : undefined;
  const text = [
    '1 KiB GETs over h2 (h2load 8×8, 4 s):',
    renderSummary('proxy', get.proxy),
    renderSummary('agent', get.agent),
    '',
    '200 MiB LISTs (3 in a row):',
    renderSummary('proxy', list.proxy),
    renderSummary('agent', list.agent),
    ...(exec
      ? [
          '',
          'exec sessions, 128 MiB on stdout (2 in a row):',
          renderSummary('proxy', exec.proxy),
          renderSummary('agent', exec.agent),
        ]
      : []),
  ].join('\n');
  return { text, get, list, exec };
}
