/**
 * Just enough of the Kubernetes object API for the agent's own calls on the
 * bench upstream: its identity Secret, and the ServiceAccounts, RBAC objects
 * and TokenRequests of just-in-time accounts. Objects live in memory, keyed
 * by their path; answers and errors are shaped like the apiserver's, so
 * @kubernetes/client-node parses them as it would the real thing.
 */
import { randomBytes, randomUUID } from 'node:crypto';

export interface ApiAnswer {
  status: number;
  body: unknown;
}

type Obj = Record<string, unknown> & { metadata?: Record<string, unknown> };

function status(code: number, reason: string, message: string): ApiAnswer {
  return {
    status: code,
    body: {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: code < 400 ? 'Success' : 'Failure',
      message,
      reason,
      code,
    },
  };
}

/** `a=b,c=d` (equality only, which is all kubegate uses). */
function matches(labels: Record<string, string> | undefined, selector: string | null): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const [k, v] = term.split('=');
    return k !== undefined && (v === undefined ? k in (labels ?? {}) : labels?.[k] === v);
  });
}

function merge(into: Obj, patch: Obj): Obj {
  for (const [k, v] of Object.entries(patch)) {
    const cur = into[k];
    if (v === null) delete into[k];
    else if (typeof v === 'object' && !Array.isArray(v) && typeof cur === 'object' && cur)
      merge(cur as Obj, v as Obj);
    else into[k] = v;
  }
  return into;
}

export class FakeApi {
  private readonly objects = new Map<string, Obj>();
  private rv = 100;

  private stamp(o: Obj, path: string): Obj {
    const meta = (o.metadata ??= {});
    meta.resourceVersion = String(++this.rv);
    meta.uid ??= randomUUID();
    meta.creationTimestamp ??= new Date().toISOString();
    const ns = /\/namespaces\/([^/]+)\//.exec(path)?.[1];
    if (ns) meta.namespace ??= ns;
    return o;
  }

  handle(method: string, url: URL, body: Buffer): ApiAnswer {
    const path = url.pathname.replace(/\/+$/, '');
    const parsed = body.length ? (JSON.parse(body.toString('utf8')) as Obj) : {};
    switch (method) {
      case 'GET': {
        const o = this.objects.get(path);
        if (o) return { status: 200, body: o };
        const ns = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(path);
        // Every namespace exists on the bench upstream.
        if (ns)
          return {
            status: 200,
            body: { kind: 'Namespace', apiVersion: 'v1', metadata: { name: ns[1] } },
          };
        const items = [...this.objects.entries()]
          .filter(([k]) => k.startsWith(path + '/') && !k.slice(path.length + 1).includes('/'))
          .map(([, v]) => v)
          .filter((v) =>
            matches(
              v.metadata?.labels as Record<string, string> | undefined,
              url.searchParams.get('labelSelector'),
            ),
          );
        if (
          items.length ||
          /\/(secrets|serviceaccounts|clusterroles|rolebindings|clusterrolebindings|roles)$/.test(
            path,
          )
        )
          return {
            status: 200,
            body: {
              kind: 'List',
              apiVersion: 'v1',
              metadata: { resourceVersion: String(this.rv) },
              items,
            },
          };
        return status(404, 'NotFound', `${path} not found`);
      }
      case 'POST': {
        if (path.endsWith('/token')) {
          const seconds = Number(
            (parsed.spec as Record<string, unknown> | undefined)?.expirationSeconds ?? 3600,
          );
          return {
            status: 201,
            body: {
              kind: 'TokenRequest',
              apiVersion: 'authentication.k8s.io/v1',
              spec: parsed.spec ?? {},
              status: {
                token: `bench-${randomBytes(16).toString('hex')}`,
                expirationTimestamp: new Date(Date.now() + seconds * 1000).toISOString(),
              },
            },
          };
        }
        const name = String(parsed.metadata?.name ?? '');
        if (!name) return status(422, 'Invalid', 'metadata.name is required');
        const key = `${path}/${name}`;
        if (this.objects.has(key)) return status(409, 'AlreadyExists', `${name} already exists`);
        this.objects.set(key, this.stamp(parsed, key));
        return { status: 201, body: this.objects.get(key) };
      }
      case 'PUT': {
        if (!this.objects.has(path)) return status(404, 'NotFound', `${path} not found`);
        this.objects.set(path, this.stamp(parsed, path));
        return { status: 200, body: this.objects.get(path) };
      }
      case 'PATCH': {
        const o = this.objects.get(path);
        if (!o) return status(404, 'NotFound', `${path} not found`);
        return { status: 200, body: this.stamp(merge(o, parsed), path) };
      }
      case 'DELETE': {
        if (this.objects.delete(path)) return status(200, 'Deleted', `${path} deleted`);
        let n = 0;
        for (const k of [...this.objects.keys()])
          if (k.startsWith(path + '/')) n += Number(this.objects.delete(k));
        return n
          ? status(200, 'Deleted', `${n} deleted`)
          : status(404, 'NotFound', `${path} not found`);
      }
      default:
        return status(405, 'MethodNotAllowed', `${method} is not supported here`);
    }
  }
}
