/**
 * Admission to the tunnel listener (issue #9, reconnect discipline). When a
 * replica dies, every agent it held dials a surviving one within a second.
 * The TLS handshake with client-certificate verification is the CPU cost of
 * a tunnel, so at most `maxActive` connections are between TCP accept and
 * tunnel up at once. The others wait, first come first served, as plain TCP
 * connections nobody reads (no TLS work, one descriptor each): the agent's
 * ClientHello sits in the socket buffer until a slot frees. Closing them at
 * once instead (as this listener did first) made every refused agent back
 * off and dial again: measured in bench P11, 15,487 dials for 2,250 dropped
 * tunnels, and the long back-offs left the replica idle while agents slept.
 * Waiting is bounded in count and time; past either, the connection is
 * closed and the agent backs off with jitter as before.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { listen } from '../../common/listen.js';

export interface AdmissionOptions {
  host: string;
  port: number;
  /** Connections handed to TLS and not yet released. */
  maxActive: number;
  /** Connections held unread waiting for a slot; more are closed at once. */
  maxWaiting: number;
  /** A connection that waited this long is closed rather than admitted. */
  maxWaitMs: number;
  /** Hand an admitted connection to TLS; it holds its slot until `release`. */
  admit: (raw: Socket, waitedMs: number) => void;
}

export interface Admission {
  server: Server;
  port: number;
  /** Free the slot of an admitted connection (idempotent per connection). */
  release(raw: { remoteAddress?: string; remotePort?: number }): void;
  /** Connections admitted and not released, and connections waiting. */
  counts(): { active: number; waiting: number };
  /** Stop listening and close the connections still waiting. */
  close(): Promise<void>;
}

interface Waiting {
  raw: Socket;
  at: number;
}

const keyOf = (s: { remoteAddress?: string; remotePort?: number }) =>
  `${s.remoteAddress ?? ''}:${s.remotePort ?? ''}`;

export async function startAdmission(o: AdmissionOptions): Promise<Admission> {
  const active = new Set<string>();
  const waiting: Waiting[] = [];

  const admit = (raw: Socket, at: number) => {
    const key = keyOf(raw);
    active.add(key);
    // Freed when the connection ends, whatever the cause (handshake refused,
    // agent gone, tunnel down before `release`).
    raw.once('close', () => release(key));
    // TLS takes over the socket's handle and starts reading it itself (no resume() here).
    o.admit(raw, performance.now() - at);
  };
  const release = (key: string) => {
    if (active.delete(key)) pump();
  };
  const pump = () => {
    while (active.size < o.maxActive && waiting.length) {
      const w = waiting.shift()!;
      if (w.raw.destroyed) continue;
      if (performance.now() - w.at > o.maxWaitMs) {
        w.raw.destroy();
        continue;
      }
      admit(w.raw, w.at);
    }
  };

  const server = createServer({ pauseOnConnect: true }, (raw) => {
    // Not read until admitted, but a reset must not become an unhandled 'error'.
    raw.on('error', () => undefined);
    const at = performance.now();
    if (active.size < o.maxActive && !waiting.length) return admit(raw, at);
    if (waiting.length >= o.maxWaiting) return void raw.destroy();
    waiting.push({ raw, at });
  });
  // Waiting connections are only looked at when a slot frees; one sweep a
  // second closes those past their time even if every slot is stuck.
  const sweep = setInterval(() => {
    const now = performance.now();
    while (waiting.length && (waiting[0]!.raw.destroyed || now - waiting[0]!.at > o.maxWaitMs))
      waiting.shift()!.raw.destroy();
  }, 1000);
  sweep.unref();

  // The backlog holds a reconnect burst (thousands of SYNs in a second) until accepted.
  const port = await listen(server, { port: o.port, host: o.host, backlog: 4096 });
  let closed = false;
  return {
    server,
    port,
    release: (raw) => release(keyOf(raw)),
    counts: () => ({ active: active.size, waiting: waiting.length }),
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(sweep);
        for (const w of waiting.splice(0)) w.raw.destroy();
        if (closed) return resolve();
        closed = true;
        server.close(() => resolve());
      }),
  };
}
