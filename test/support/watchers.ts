/**
 * Two ConfigMap watches held through kubegate side by side: kubectl's own
 * (`get -w`, HTTP/2 from client-go) and a plain HTTP/1.1 one. Each records when
 * it first saw every object whose name starts with a prefix, so a test can
 * require that every change reached both, promptly, and that neither ended.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import { kubectlPath } from './kubectl.js';

export interface Watchers {
  /** First time each watcher saw an object, by object name. */
  seen: { kubectl: Map<string, number>; http1: Map<string, number> };
  /** Why a watcher is no longer open, or undefined while both are. */
  ended(): string | undefined;
  stop(): void;
}

export function startWatchers(opts: {
  kubeconfig: string;
  publicUrl: string;
  cluster: string;
  namespace: string;
  prefix: string;
}): Watchers {
  const seen = { kubectl: new Map<string, number>(), http1: new Map<string, number>() };
  const note = (map: Map<string, number>, name: string) => {
    if (name.startsWith(opts.prefix) && !map.has(name)) map.set(name, Date.now());
  };

  const k: ChildProcess = spawn(
    kubectlPath(),
    [
      '--kubeconfig',
      opts.kubeconfig,
      '-n',
      opts.namespace,
      'get',
      'configmaps',
      '--watch',
      '-o',
      'name',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: '' } },
  );
  let kErr = '';
  let kBuf = '';
  k.stderr!.on('data', (b: Buffer) => (kErr += b.toString()));
  k.stdout!.on('data', (b: Buffer) => {
    kBuf += b.toString();
    const lines = kBuf.split('\n');
    kBuf = lines.pop()!;
    for (const l of lines) note(seen.kubectl, l.trim().replace(/^configmap\//, ''));
  });

  const cfg = readFileSync(opts.kubeconfig, 'utf8');
  const token = /token: (kg_\S+)/.exec(cfg)![1]!;
  const ca = Buffer.from(/certificate-authority-data: (\S+)/.exec(cfg)![1]!, 'base64');
  const u = new URL(opts.publicUrl);
  let h1Ended: string | undefined;
  const h1 = https.request(
    {
      host: u.hostname,
      port: u.port,
      path: `/k8s/${opts.cluster}/api/v1/namespaces/${opts.namespace}/configmaps?watch=1`,
      ca,
      agent: false,
      headers: { authorization: `Bearer ${token}` },
    },
    (res) => {
      if (res.statusCode !== 200) h1Ended = `HTTP/1.1 watch answered ${res.statusCode}`;
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString();
        const lines = buf.split('\n');
        buf = lines.pop()!;
        for (const l of lines) {
          const ev = JSON.parse(l) as { object: { metadata: { name: string } } };
          note(seen.http1, ev.object.metadata.name);
        }
      });
      res.on('close', () => (h1Ended ??= 'the HTTP/1.1 watch was closed'));
    },
  );
  h1.on('error', (err) => (h1Ended ??= `the HTTP/1.1 watch failed: ${err.message}`));
  h1.end();

  return {
    seen,
    ended: () =>
      k.exitCode !== null || k.signalCode !== null
        ? `kubectl's watch exited (${k.exitCode ?? k.signalCode}): ${kErr}`
        : h1Ended,
    stop: () => {
      k.kill('SIGTERM');
      h1.destroy();
    },
  };
}
