/**
 * Preloaded into the proxy and agent processes under benchmark
 * (`NODE_OPTIONS=--import=…/gc-hook.js`), so the programs need no change:
 *
 * - on SIGUSR2 it collects garbage twice and prints one line to stderr,
 *   `kg-bench-gc n=<count> rss=<bytes>`, so memory is read after a forced GC;
 * - with KG_BENCH_CPU_PROF=<file>, SIGWINCH starts the V8 CPU profiler (so
 *   start-up stays out of the profile) and the profile is written there at
 *   exit (`--cpu-prof` itself is not allowed in NODE_OPTIONS);
 * - with KG_BENCH_EXPERIMENT=front-nodelay, every TLS server made with
 *   http2.createSecureServer disables Nagle on its connections: a proposed
 *   change measured before it is made in proxy/front/server.ts.
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import type * as Http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
let n = 0;
process.on('SIGUSR2', () => {
  gc();
  gc();
  const m = process.memoryUsage();
  process.stderr.write(
    `kg-bench-gc n=${++n} rss=${m.rss} heap=${m.heapUsed} external=${m.external}\n`,
  );
});

const profFile = process.env.KG_BENCH_CPU_PROF;
if (profFile) {
  const session = new Session();
  session.connect();
  let started = false;
  process.on('SIGWINCH', () => {
    if (started) return;
    started = true;
    session.post('Profiler.enable');
    session.post('Profiler.setSamplingInterval', { interval: 200 });
    session.post('Profiler.start');
    process.stderr.write('kg-bench-profiling\n');
  });
  // The in-thread session answers synchronously, so this works in an exit handler.
  process.on('exit', () => {
    if (!started) return;
    session.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(profFile, JSON.stringify(res.profile));
    });
  });
}

if ((process.env.KG_BENCH_EXPERIMENT ?? '').split(',').includes('front-nodelay')) {
  const http2 = createRequire(import.meta.url)('node:http2') as typeof Http2;
  const original = http2.createSecureServer;
  const patched = ((...args: Parameters<typeof original>) => {
    const server = original(...args);
    server.on('secureConnection', (socket: TLSSocket) => socket.setNoDelay(true));
    return server;
  }) as typeof original;
  http2.createSecureServer = patched;
  syncBuiltinESMExports();
}

// How a process under benchmark ended: a drained event loop (beforeExit), a
// signal, or an explicit exit, whatever its own logger managed to flush.
process.on('beforeExit', (code) => process.stderr.write(`kg-bench-before-exit code=${code}\n`));
process.on('exit', (code) => process.stderr.write(`kg-bench-exit code=${code}\n`));
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const)
  process.on(sig, () => process.stderr.write(`kg-bench-signal ${sig}\n`));
