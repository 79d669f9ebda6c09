/**
 * The enrollment listener: TLS 1.3, ALPN `http/1.1` only, serving the
 * enrollment server (enroll-server.ts). It is separate from the tunnel
 * listener because a first enrollment has no client certificate yet: here a
 * certificate is asked for but optional (renewal presents one and the
 * enrollment server checks it), while the tunnel port refuses any handshake
 * without one. Nothing on this port can open a tunnel.
 */
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { Server as HttpServer } from 'node:http';
import type { Logger } from '../../common/log.js';
import { alpnEnroll } from '../../common/tunnel-protocol.js';

export interface EnrollListenerDeps {
  host: string;
  port: number;
  certPem: string;
  keyPem: string;
  agentCaPem: string;
  enrollServer: HttpServer;
  log: Logger;
}

export interface EnrollListener {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export async function startEnrollListener(deps: EnrollListenerDeps): Promise<EnrollListener> {
  const server = createServer({
    cert: deps.certPem,
    key: deps.keyPem,
    ca: deps.agentCaPem,
    minVersion: 'TLSv1.3',
    // Renewal authenticates with the current agent certificate; enrollment
    // has none and authenticates with its one-time token instead. The
    // enrollment server decides per path from `socket.authorized`.
    requestCert: true,
    rejectUnauthorized: false,
    ALPNProtocols: [alpnEnroll],
    handshakeTimeout: 10_000,
  });
  const open = new Set<TLSSocket>();
  server.on('secureConnection', (socket: TLSSocket) => {
    if (socket.alpnProtocol !== alpnEnroll) {
      socket.destroy();
      return;
    }
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    deps.enrollServer.emit('connection', socket);
  });
  server.on('tlsClientError', (err) =>
    deps.log.debug({ err: err.message }, 'enrollment TLS handshake failed'),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port, deps.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : deps.port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Idle keep-alive enrollment connections must not hold the close open.
        for (const s of open) s.destroy();
      }),
  };
}
