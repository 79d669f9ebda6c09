import { createServer } from 'node:net';
import { randomInt } from 'node:crypto';

/**
 * Test servers take ports from below Linux's ephemeral range (32768–60999 by
 * default). A port the kernel hands out for `listen(0)` comes from that range,
 * and once released it can be taken by any outgoing connection before our
 * server binds it (an EADDRINUSE seen when the long tests ran beside the main
 * suite). Below the range only another listener can take it.
 */
const low = 20_000;
const high = 32_000;

function tryListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A free loopback TCP port (bound, checked, released). */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = randomInt(low, high);
    if (await tryListen(port)) return port;
  }
  throw new Error(`no free loopback port found in ${low}–${high} after 50 tries`);
}
