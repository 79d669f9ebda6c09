/**
 * The enrollment listener: TLS 1.3, ALPN `http/1.1` only, serving first
 * enrollment (enroll-server.ts). A first enrollment has no client certificate
 * yet (it authenticates with its one-time bootstrap token), so this listener
 * asks for none and trusts none; everything that authenticates with an agent
 * certificate — tunnels and renewal — is on the tunnel listener, whose
 * handshake requires one. Nothing on this port can open a tunnel or renew.
 */
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { Server as HttpServer } from 'node:http';
import type { Logger } from '../../common/log.js';
import { alpnEnroll } from '../../common/tunnel-protocol.js';
import { SocketHandover } from './cert-http.js';
import { listen, logFailedHandshakes } from '../../common/listen.js';

export interface EnrollListenerDeps {
  host: string;
  port: number;
  certPem: string;
  keyPem: string;
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
    minVersion: 'TLSv1.3',
    // No client certificate is asked for: an optional one would make this a
    // second, weaker door for agent-certificate authentication.
    requestCert: false,
    ALPNProtocols: [alpnEnroll],
    handshakeTimeout: 10_000,
  });
  const handover = new SocketHandover(deps.enrollServer);
  server.on('secureConnection', (socket: TLSSocket) => {
    if (socket.alpnProtocol !== alpnEnroll) {
      socket.destroy();
      return;
    }
    handover.accept(socket);
  });
  logFailedHandshakes(server, deps.log, 'enrollment');
  const port = await listen(server, { port: deps.port, host: deps.host });
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        handover.closeAll();
      }),
  };
}
