/**
 * A small loopback TCP load balancer for tests (issue #9 acceptance): one
 * port in front of several backends, round robin per connection, and the
 * next backend when one refuses the connection (a replica that is down or
 * draining) — what a Kubernetes Service or nginx's stream module does at
 * layer 4. Bytes are piped untouched, so TLS and ALPN are end to end.
 */
import * as net from 'node:net';

export interface LoadBalancer {
  port: number;
  address: string;
  /** Replace the backend list (host:port each). */
  setBackends(backends: string[]): void;
  /** Connections accepted per backend, for tests that check the spread. */
  counts: Map<string, number>;
  close(): Promise<void>;
}

export async function startLoadBalancer(backends: string[]): Promise<LoadBalancer> {
  let list = [...backends];
  let next = 0;
  const counts = new Map<string, number>();
  const sockets = new Set<net.Socket>();

  const connect = (client: net.Socket, tries: number): void => {
    if (!list.length || tries >= list.length) {
      client.destroy();
      return;
    }
    const backend = list[next++ % list.length]!;
    const i = backend.lastIndexOf(':');
    const upstream = net.connect({ host: backend.slice(0, i), port: Number(backend.slice(i + 1)) });
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    const refused = () => {
      upstream.destroy();
      connect(client, tries + 1);
    };
    upstream.once('error', refused);
    upstream.once('connect', () => {
      upstream.off('error', refused);
      counts.set(backend, (counts.get(backend) ?? 0) + 1);
      upstream.setNoDelay(true);
      client.setNoDelay(true);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      upstream.on('error', end);
      upstream.once('close', end);
      client.once('close', end);
    });
  };

  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    connect(client, 0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    counts,
    setBackends: (b) => {
      list = [...b];
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
