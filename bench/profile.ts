/**
 * Reading V8 CPU profiles (`node --cpu-prof`): self time by function and by
 * where the code lives (kubegate, node:http2, TLS and streams, undici, pino,
 * GC), so a goal not met can name what its cycles are spent on.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  /** Wall time the profile covers, ms. */
  wallMs: number;
  /** Share of samples not idle. */
  busy: number;
  /** Share of busy samples, by area, largest first. */
  areas: [string, number][];
  /** Share of busy samples, by function, largest first. */
  functions: [string, number][];
}

export function areaOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'native (TLS, syscalls, V8)';
  if (url.includes('/node_modules/undici/')) return 'undici';
  if (url.includes('/node_modules/pino') || url.includes('sonic-boom')) return 'pino';
  if (url.includes('/node_modules/')) return 'other npm';
  if (url.includes('/dist/')) return 'kubegate';
  if (url.startsWith('node:internal/http2')) return 'node:http2';
  if (/^node:internal\/(streams|stream_base)/.test(url) || url === 'node:stream')
    return 'node:streams';
  if (/^node:(internal\/)?(tls|net|_tls|crypto)/.test(url) || url.includes('tls_wrap'))
    return 'node:tls/net';
  if (url.startsWith('node:internal/http') || url.startsWith('node:_http')) return 'node:http';
  if (url.startsWith('node:')) return 'node:other';
  return fn ? 'native (TLS, syscalls, V8)' : 'other';
}

export function summarize(file: string, top = 8): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  let total = 0;
  let idle = 0;
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    if (!hits) continue;
    total += hits;
    const { functionName: fn, url, lineNumber } = n.callFrame;
    if (fn === '(idle)') {
      idle += hits;
      continue;
    }
    const area = areaOf(url, fn);
    areas.set(area, (areas.get(area) ?? 0) + hits);
    const short = url
      ? url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^file:\/\//, '')
      : '';
    const key = `${fn || '(anonymous)'}${short ? ` ${short}:${lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + hits);
  }
  const busy = total - idle;
  const share = (m: Map<string, number>) =>
    [...m.entries()]
      .map(([k, v]) => [k, busy ? v / busy : 0] as [string, number])
      .sort((a, b) => b[1] - a[1]);
  return {
    wallMs: (p.endTime - p.startTime) / 1000,
    busy: total ? busy / total : 0,
    areas: share(areas),
    functions: share(fns).slice(0, top),
  };
}

export function renderSummary(name: string, s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return [
    `${name}: busy ${pct(s.busy)} of ${(s.wallMs / 1000).toFixed(1)} s`,
    `  by area: ${s.areas.map(([k, v]) => `${k} ${pct(v)}`).join(', ')}`,
    '  top functions (self time):',
    ...s.functions.map(([k, v]) => `    ${pct(v).padStart(6)}  ${k}`),
  ].join('\n');
}
