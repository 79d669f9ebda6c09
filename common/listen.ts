import type { ListenOptions, Server } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import type { Logger } from './log.js';

/**
 * Start `server` listening and answer the port it got (the one asked for,
 * or the one the system chose for port 0). A failure to bind (the port is
 * taken, the address is not ours) rejects.
 */
export async function listen(server: Server, options: ListenOptions): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => resolve());
  });
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : (options.port ?? 0);
}

/** Failed TLS handshakes (scanners, a wrong CA) at debug level: "<what> TLS handshake failed". */
export function logFailedHandshakes(server: TlsServer, log: Logger, what: string): void {
  server.on('tlsClientError', (err) =>
    log.debug({ err: err.message }, `${what} TLS handshake failed`),
  );
}
