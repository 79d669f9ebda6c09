/**
 * JSON requests to the apiserver as the agent, with the agent's kubeconfig
 * (agent/kube-client.ts: its CA and its ServiceAccount token file). The
 * managed-namespace objects are sent exactly as the proxy gave them: the
 * typed clients of @kubernetes/client-node serialise through their models,
 * which silently drop a spec field they do not know, where we want the
 * apiserver to refuse it (`fieldValidation=Strict`). Keep-alive connections
 * are shared, as a reconcile pass makes a few calls per namespace.
 */
import * as https from 'node:https';
import type * as k8s from '@kubernetes/client-node';

export interface KubeAnswer {
  status: number;
  /** The parsed JSON answer (a Kubernetes object, list or Status); undefined when it was not JSON. */
  body: unknown;
}

export interface KubeRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path and query, e.g. `/api/v1/namespaces/x`. */
  path: string;
  body?: unknown;
  /** Default application/json. */
  contentType?: string;
}

export type KubeCall = (req: KubeRequest) => Promise<KubeAnswer>;

/** The most of one answer read (a namespace's quotas, limits and policies are small). */
const maxAnswerBytes = 8 * 1024 * 1024;

/** A `KubeCall` for `kc`'s current cluster; each call fails after `timeoutMs`. */
export function kubeJson(kc: k8s.KubeConfig, timeoutMs = 10_000): KubeCall {
  const server = new URL(kc.getCurrentCluster()?.server ?? 'https://invalid.');
  let agent: https.Agent | undefined;
  return async (req) => {
    const opts: https.RequestOptions = { headers: {} };
    await kc.applyToHTTPSOptions(opts);
    agent ??= new https.Agent({ keepAlive: true, maxSockets: 8, ca: opts.ca });
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: String((opts.headers as Record<string, unknown>)['Authorization'] ?? ''),
    };
    const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
    if (payload !== undefined) {
      headers['content-type'] = req.contentType ?? 'application/json';
      // Always said: Node sends a DELETE body neither chunked nor measured, and
      // the apiserver would read it as the next request on the connection.
      headers['content-length'] = String(payload.length);
    }
    return new Promise<KubeAnswer>((resolve, reject) => {
      const r = https.request(
        {
          protocol: server.protocol,
          hostname: server.hostname,
          port: server.port,
          path: server.pathname.replace(/\/$/, '') + req.path,
          method: req.method,
          headers,
          agent,
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > maxAnswerBytes) res.destroy(new Error('apiserver answer too large'));
            else chunks.push(c);
          });
          res.on('error', reject);
          res.on('end', () => {
            let body: unknown;
            try {
              body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              body = undefined;
            }
            resolve({ status: res.statusCode ?? 0, body });
          });
        },
      );
      r.on('timeout', () =>
        r.destroy(new Error(`apiserver did not answer within ${timeoutMs / 1000} s`)),
      );
      r.on('error', reject);
      r.end(payload);
    });
  };
}

/** The message of a Kubernetes Status answer, shortened; else the HTTP status. */
export function statusMessage(a: KubeAnswer): string {
  const m = (a.body as { message?: unknown } | undefined)?.message;
  return typeof m === 'string' && m !== '' ? m.slice(0, 300) : `HTTP ${a.status}`;
}
