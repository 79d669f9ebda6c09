/**
 * The proxy's side of the namespaces control message: send the managed
 * namespaces of a cluster to its agent over one tunnel and read back one
 * result per entry. The reply is checked before anyone acts on it, as an
 * agent of another release (or a broken one) may answer anything.
 */
import {
  hdrControl,
  hdrControlValue,
  namespacesPath,
  type NamespaceResult,
  type NamespacesReply,
  type NamespacesRequest,
} from '../../common/tunnel-protocol.js';
import { isObject } from '../../common/json-object.js';
import type { Tunnel } from '../tunnel/registry.js';
import { requestWhole } from '../tunnel/control-request.js';

/** The most of a reply read: 500 results, each with a few changes and a sentence. */
const maxReplyBytes = 4 * 1024 * 1024;

const states = new Set(['ready', 'retiring', 'gone', 'error']);
const nsChanges = new Set(['created', 'updated', 'unchanged']);
const objChanges = new Set(['created', 'updated', 'deleted']);

function result(v: unknown): NamespaceResult | undefined {
  if (!isObject(v) || typeof v.name !== 'string' || !states.has(v.state as string)) return;
  if (!nsChanges.has(v.namespaceChange as string) || !Array.isArray(v.changes)) return;
  if (v.error !== undefined && typeof v.error !== 'string') return;
  const changes: NamespaceResult['changes'] = [];
  for (const c of v.changes as unknown[]) {
    if (!isObject(c) || typeof c.kind !== 'string' || typeof c.name !== 'string') return;
    if (!objChanges.has(c.change as string)) return;
    changes.push({
      kind: c.kind,
      name: c.name,
      change: c.change as NamespaceResult['changes'][number]['change'],
    });
  }
  return {
    name: v.name,
    state: v.state as NamespaceResult['state'],
    namespaceChange: v.namespaceChange as NamespaceResult['namespaceChange'],
    changes,
    ...(typeof v.error === 'string' ? { error: v.error } : {}),
  };
}

/**
 * Send `req` to the agent behind `tunnel` and wait at most `timeoutMs` (the
 * agent answers within 25 s whatever it has not finished; 30 s suits). Throws
 * when the agent refuses the message, does not answer in time, or answers
 * with something other than one well-formed result per entry, same names in
 * the same order.
 */
export async function sendNamespaces(
  tunnel: Pick<Tunnel, 'session'>,
  req: NamespacesRequest,
  timeoutMs: number,
): Promise<NamespacesReply> {
  const answer = await requestWhole(
    tunnel.session,
    {
      ':method': 'POST',
      ':path': namespacesPath,
      'content-type': 'application/json',
      [hdrControl]: hdrControlValue,
    },
    {
      body: JSON.stringify(req),
      timeoutMs,
      what: `POST ${namespacesPath}`,
      maxBytes: maxReplyBytes,
    },
  );
  const text = answer.body.toString('utf8');
  if (answer.status !== 200)
    throw new Error(`agent answered ${answer.status} to ${namespacesPath}: ${text.slice(0, 300)}`);
  if (answer.truncated) throw new Error(`agent's answer to ${namespacesPath} is too large`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`agent's answer to ${namespacesPath} is not JSON`);
  }
  const list = isObject(body) && Array.isArray(body.results) ? (body.results as unknown[]) : [];
  const results = list.map(result);
  if (
    results.length !== req.namespaces.length ||
    results.some((r, i) => r === undefined || r.name !== req.namespaces[i]!.name)
  )
    throw new Error(
      `agent's answer to ${namespacesPath} does not hold one result per namespace sent, in order`,
    );
  return { results: results as NamespaceResult[] };
}
