/**
 * The bench upstream's exec and port-forward (P6): WebSocket upgrades
 * answered the way kube-apiserver answers them, streaming N MiB to the
 * client as fast as back-pressure allows, then closing cleanly.
 *
 * - `GET /api/v1/namespaces/<ns>/pods/stream-<N>/exec?…` with subprotocol
 *   `v5.channel.k8s.io` (or v4): binary messages of a channel byte + data;
 *   N MiB on stdout (channel 1) in 32 KiB messages (the buffer of Go's
 *   io.Copy behind the kubelet's stream), then the v1 Status
 *   `{"status":"Success"}` on channel 3, then a close frame (1000).
 * - `GET /api/v1/namespaces/<ns>/pods/stream-<N>/portforward?ports=P` with
 *   `v4.channel.k8s.io` (or `portforward.k8s.io`): per port a data channel
 *   (2i) and an error channel (2i+1), each opened by a message carrying the
 *   port as uint16 little-endian; then N MiB on the data channel.
 *
 * kubectl ≥ 1.31 tunnels SPDY inside WebSocket for port-forward; the bytes
 * kubegate carries are the same kind (opaque after the 101), so the simpler
 * channel protocol measures the same path.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { acceptKey, channelFrame, closeFrame } from './ws.js';

const execProtocols = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
const forwardProtocols = ['v4.channel.k8s.io', 'portforward.k8s.io'];
const chunk = Buffer.alloc(32 * 1024, 0x61);

function refuse(socket: Duplex, code: number, message: string): void {
  const body = JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    code,
  });
  socket.end(
    `HTTP/1.1 ${code} Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Handle an upgrade; false when the path is not one of ours. */
export function streamUpgrade(req: IncomingMessage, socket: Duplex): boolean {
  const url = new URL(req.url ?? '/', 'https://upstream');
  const m = /^\/api\/v1\/namespaces\/[^/]+\/pods\/stream-(\d+)\/(exec|portforward)$/.exec(
    url.pathname,
  );
  if (!m) return false;
  socket.on('error', () => socket.destroy());
  const exec = m[2] === 'exec';
  const offered = String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((s) => s.trim());
  const protocol = (exec ? execProtocols : forwardProtocols).find((p) => offered.includes(p));
  const key = req.headers['sec-websocket-key'];
  if (String(req.headers.upgrade).toLowerCase() !== 'websocket' || !key || !protocol) {
    refuse(socket, 400, 'a WebSocket upgrade with a Kubernetes channel subprotocol is required');
    return true;
  }
  const port = Number(url.searchParams.get('ports') ?? '0');
  if (!exec && !(port > 0 && port < 65536)) {
    refuse(socket, 400, 'ports: one port is required');
    return true;
  }
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${acceptKey(String(key))}\r\nsec-websocket-protocol: ${protocol}\r\n\r\n`,
  );
  // What the client sends (stdin, its close frame) is read and dropped.
  socket.on('data', () => undefined);
  const dataChannel = exec ? 1 : 0;
  const frame = channelFrame(dataChannel, chunk);
  const head: Buffer[] = [];
  if (!exec) {
    const p = Buffer.allocUnsafe(2);
    p.writeUInt16LE(port, 0);
    head.push(channelFrame(0, p), channelFrame(1, p));
  }
  const total = Number(m[1]) * 1024 * 1024;
  let sent = 0;
  const pump = () => {
    while (sent < total && !socket.destroyed) {
      sent += chunk.length;
      if (!socket.write(frame)) {
        socket.once('drain', pump);
        return;
      }
    }
    if (socket.destroyed) return;
    const tail: Buffer[] = [];
    if (exec) tail.push(channelFrame(3, Buffer.from('{"metadata":{},"status":"Success"}')));
    tail.push(closeFrame(1000));
    socket.end(Buffer.concat(tail));
  };
  for (const h of head) socket.write(h);
  pump();
  return true;
}
