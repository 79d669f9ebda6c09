/**
 * The reference: nginx (Debian) as two TLS hops, the shape of proxy + agent
 * done by the fastest common proxy. Hop 1 is the front (TLS, HTTP/2 and
 * HTTP/1.1); it reaches hop 2 over mutual TLS (like the tunnel); hop 2
 * reaches the upstream over TLS and checks its certificate (like the agent).
 * One worker each, as kubegate runs one Node process per hop. Buffering is
 * off on both hops, because watches must stream; keep-alive pools on both.
 * Upgrades (exec, port-forward: P6) pass both hops: the usual map sends
 * `Connection: upgrade` only when the client asked for one, and an empty
 * Connection (keep-alive to the pool) otherwise.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitPort } from './context.js';

export interface NginxCerts {
  caFile: string;
  frontCert: string;
  frontKey: string;
  hop2Cert: string;
  hop2Key: string;
  clientCert: string;
  clientKey: string;
}

export interface Nginx {
  /** Port of hop 1, the front. */
  port: number;
  pids(): number[];
  stop(): Promise<void>;
}

function common(dir: string, name: string): string {
  const tmp = join(dir, `${name}-tmp`);
  mkdirSync(tmp, { recursive: true });
  return `daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}-error.log`)} warn;
events { worker_connections 16000; }
`;
}

function tempPaths(dir: string, name: string): string {
  const tmp = join(dir, `${name}-tmp`);
  return [
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
      (k) => `  ${k}_temp_path ${join(tmp, k)};`,
    ),
    `  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }`,
  ].join('\n');
}

const proxyCommon = `      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_buffer_size 64k;
      proxy_buffers 4 64k;
      proxy_busy_buffers_size 128k;
      proxy_read_timeout 1h;
      proxy_ssl_server_name on;
      proxy_ssl_name localhost;
      proxy_ssl_verify on;
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_session_reuse on;`;

export function renderHop1(dir: string, port: number, hop2Port: number, c: NginxCerts): string {
  return `${common(dir, 'hop1')}http {
  access_log off;
${tempPaths(dir, 'hop1')}
  upstream hop2 { server 127.0.0.1:${hop2Port}; keepalive 512; }
  server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${c.frontCert};
    ssl_certificate_key ${c.frontKey};
    ssl_protocols TLSv1.2 TLSv1.3;
    http2_max_concurrent_streams 1000;
    keepalive_requests 1000000;
    location / {
      proxy_pass https://hop2;
${proxyCommon}
      proxy_ssl_certificate ${c.clientCert};
      proxy_ssl_certificate_key ${c.clientKey};
      proxy_ssl_trusted_certificate ${c.caFile};
    }
  }
}
`;
}

export function renderHop2(dir: string, port: number, upstreamPort: number, c: NginxCerts): string {
  return `${common(dir, 'hop2')}http {
  access_log off;
${tempPaths(dir, 'hop2')}
  upstream api { server 127.0.0.1:${upstreamPort}; keepalive 512; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${c.hop2Cert};
    ssl_certificate_key ${c.hop2Key};
    ssl_protocols TLSv1.3;
    ssl_verify_client on;
    ssl_client_certificate ${c.caFile};
    keepalive_requests 1000000;
    location / {
      proxy_pass https://api;
${proxyCommon}
      proxy_ssl_trusted_certificate ${c.caFile};
    }
  }
}
`;
}

function startOne(dir: string, name: string, conf: string, port: number): Promise<ChildProcess> {
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, conf);
  const child = spawn('nginx', ['-c', file, '-p', dir, '-e', join(dir, `${name}-error.log`)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  return Promise.race([
    waitPort(port, 10_000).then(() => child),
    new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`nginx ${name} exited ${code}: ${err}`))),
    ),
  ]);
}

export async function startNginx(
  dir: string,
  ports: { hop1: number; hop2: number; upstream: number },
  certs: NginxCerts,
): Promise<Nginx> {
  mkdirSync(dir, { recursive: true });
  const hop2 = await startOne(
    dir,
    'hop2',
    renderHop2(dir, ports.hop2, ports.upstream, certs),
    ports.hop2,
  );
  const hop1 = await startOne(
    dir,
    'hop1',
    renderHop1(dir, ports.hop1, ports.hop2, certs),
    ports.hop1,
  );
  const workers = (name: string) => {
    try {
      const master = Number(readFileSync(join(dir, `${name}.pid`), 'utf8').trim());
      const kids = readFileSync(`/proc/${master}/task/${master}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
      return [master, ...kids];
    } catch {
      return [];
    }
  };
  return {
    port: ports.hop1,
    pids: () => [...workers('hop1'), ...workers('hop2')],
    async stop() {
      for (const c of [hop1, hop2]) {
        if (c.exitCode !== null) continue;
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        await exited;
      }
    },
  };
}
