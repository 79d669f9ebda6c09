import type { ListenOptions, Server } from 'node:net';

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
