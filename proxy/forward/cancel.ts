/**
 * Cancelling tunnel streams without tripping the agent's reset limit.
 *
 * The agent (or a peer replica, for relayed streams) is the HTTP/2 *server*
 * of the tunnel, and nghttp2 in Node 20 ends a server session with GOAWAY
 * once it has received 1,000 RST_STREAM frames in a burst, then 33/s (the
 * CVE-2023-44487 "rapid reset" defence; Node 24 can tune it, Node 20 cannot,
 * and an agent of an older release may still run Node 20).
 * A client that drops 10,000 watches at once (a controller restarting) made
 * the proxy reset 10,000 tunnel streams: both tunnels were torn down, every
 * other request on them failed, and the agent's session, ended by nghttp2
 * itself, stopped reading its socket and never noticed (bench P4-teardown).
 *
 * So resets are spent from a budget well below nghttp2's. Beyond it, an
 * agent tunnel is asked to reset the streams itself (`cancelPath`, batched
 * per event-loop turn; resets a server sends are not counted), and a peer
 * link, or an agent that does not know that request, gets the remaining
 * resets at the budget's rate. Until then what still arrives on a
 * cancelled stream is read and dropped.
 */
import * as http2 from 'node:http2';
import { cancelPath, hdrCancel } from '../../common/tunnel-protocol.js';
import type { Tunnel } from '../tunnel/registry.js';

/** Resets sent at once, and per second after that: well under nghttp2's 1,000 and 33/s. */
export const resetBurst = 400;
export const resetsPerSecond = 20;
/** Stream ids per cancel request (~7 bytes each). */
const batchMax = 2000;
const noop = () => undefined;

class Canceller {
  private tokens = resetBurst;
  private refilledAt = performance.now();
  /** Streams the agent is about to be asked to reset. */
  private toAsk: http2.ClientHttp2Stream[] = [];
  /** Streams waiting for budget to be reset from here. */
  private deferred: http2.ClientHttp2Stream[] = [];
  private asking = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly session: http2.ClientHttp2Session,
    private readonly agentTunnel: boolean,
  ) {}

  cancel(stream: http2.ClientHttp2Stream): void {
    if (stream.closed || stream.destroyed) return;
    if (this.take()) {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      return;
    }
    // Drop what still arrives: the stream's window keeps the session flowing.
    stream.removeAllListeners('data');
    stream.on('data', noop);
    stream.resume();
    if (this.agentTunnel && stream.id !== undefined) {
      this.toAsk.push(stream);
      if (!this.asking) {
        this.asking = true;
        setImmediate(() => this.ask());
      }
    } else this.defer(stream);
  }

  /** Spend one reset from the budget, if there is one. */
  private take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(
      resetBurst,
      this.tokens + ((now - this.refilledAt) / 1000) * resetsPerSecond,
    );
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private ask(): void {
    this.asking = false;
    while (this.toAsk.length) {
      const batch = this.toAsk.splice(0, batchMax).filter((s) => !s.closed);
      if (!batch.length) continue;
      // A closed session closed its streams with it.
      if (this.session.closed || this.session.destroyed) return;
      let req: http2.ClientHttp2Stream;
      try {
        req = this.session.request(
          { ':method': 'POST', ':path': cancelPath, [hdrCancel]: '1' },
          { endStream: false },
        );
      } catch {
        return;
      }
      req.on('error', noop);
      req.on('response', (h) => {
        // An agent from before this request answers it as an ordinary one.
        if (h[':status'] !== 200) for (const s of batch) this.defer(s);
      });
      req.resume();
      req.end(batch.map((s) => s.id).join(','));
    }
  }

  private defer(stream: http2.ClientHttp2Stream): void {
    if (stream.closed) return;
    this.deferred.push(stream);
    if (!this.timer) {
      this.timer = setInterval(() => this.resetDeferred(), 250);
      this.timer.unref();
    }
  }

  private resetDeferred(): void {
    while (this.deferred.length && !this.session.destroyed) {
      const s = this.deferred[0]!;
      if (!s.closed) {
        if (!this.take()) return;
        s.close(http2.constants.NGHTTP2_CANCEL);
      }
      this.deferred.shift();
    }
    this.deferred.length = 0;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

const cancellers = new WeakMap<http2.ClientHttp2Session, Canceller>();

/** Cancel a stream the client no longer wants, within the tunnel's reset budget. */
export function cancelTunnelStream(tunnel: Tunnel, stream: http2.ClientHttp2Stream): void {
  let c = cancellers.get(tunnel.session);
  if (!c) {
    c = new Canceller(tunnel.session, tunnel.replica === undefined);
    cancellers.set(tunnel.session, c);
  }
  c.cancel(stream);
}
