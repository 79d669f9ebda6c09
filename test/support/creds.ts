/**
 * What a test needs from a fleet kubeconfig to speak to kubegate without
 * kubectl (raw attacks): the bearer token, the CA, and one HTTPS request with
 * full control over method, path, headers and body.
 */
import { readFileSync } from 'node:fs';
import * as https from 'node:https';

export interface Creds {
  token: string;
  ca: Buffer;
}

export function credsOf(kubeconfig: string): Creds {
  const text = readFileSync(kubeconfig, 'utf8');
  return {
    token: /token: (kg_\S+)/.exec(text)![1]!,
    ca: Buffer.from(/certificate-authority-data: (\S+)/.exec(text)![1]!, 'base64'),
  };
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS/1.1 request on a fresh connection; the path is sent exactly as given. */
export function rawRequest(
  origin: string,
  ca: Buffer,
  opts: {
    method?: string;
    path: string;
    token?: string;
    headers?: Record<string, string>;
    body?: Buffer | string;
    timeoutMs?: number;
    /** Source address (any 127.x.y.z works on Linux loopback): another client's address. */
    localAddress?: string;
  },
): Promise<RawAnswer> {
  const u = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: u.hostname,
        port: u.port,
        path: opts.path,
        method: opts.method ?? 'GET',
        ca,
        agent: false,
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.body !== undefined
            ? { 'content-length': String(Buffer.byteLength(opts.body)) }
            : {}),
          ...opts.headers,
        },
        timeout: opts.timeoutMs ?? 30_000,
      },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        const done = () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          });
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', done);
        // A server may answer before the body is sent and close the connection:
        // the answer counts (as in Go's client); the write error does not.
        res.on('close', done);
        res.on('error', () => undefined);
      },
    );
    let answered = false;
    req.on('timeout', () =>
      req.destroy(new Error(`no answer within ${opts.timeoutMs ?? 30_000} ms`)),
    );
    req.on('error', (e) => {
      if (!answered) reject(e);
    });
    req.end(opts.body);
  });
}
