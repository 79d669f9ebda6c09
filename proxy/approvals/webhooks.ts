/**
 * Notification targets in `approval_webhooks`. The HMAC secret is needed to
 * sign, so it is kept — sealed with the master key (AES-256-GCM, the URL-less
 * webhook id bound as associated data), never logged and returned only once,
 * when the webhook is created.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { KgError, invalid } from '../../common/errors.js';
import { recordAdminEvent } from '../audit/admin-events.js';
import type { Pool } from '../db/pool.js';
import { open, seal } from '../pki/master-key.js';
import { inTransaction, query, type Queryable } from '../db/query.js';

export interface Webhook {
  id: string;
  url: string;
  format: 'json' | 'slack';
  description: string;
  createdBy: string;
  createdAt: Date;
}

interface Row {
  id: string;
  url: string;
  format: 'json' | 'slack';
  secret_sealed: string;
  description: string;
  created_by: string;
  created_at: Date;
}

const view = (r: Row): Webhook => ({
  id: r.id,
  url: r.url,
  format: r.format,
  description: r.description,
  createdBy: r.created_by,
  createdAt: r.created_at,
});

const aad = (id: string) => `approval-webhook:${id}`;

export async function listWebhooks(db: Queryable): Promise<Webhook[]> {
  return (await query<Row>(db, 'SELECT * FROM approval_webhooks ORDER BY created_at, id')).map(
    view,
  );
}

/** `raw`: `{url, format?, secret?, description?}`. Returns the webhook and its secret (shown once). */
export async function createWebhook(
  pool: Pool,
  masterKey: Buffer,
  raw: unknown,
  actor: string,
): Promise<{ webhook: Webhook; secret: string }> {
  const r = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const problems: string[] = [];
  for (const k of Object.keys(r))
    if (!['url', 'format', 'secret', 'description'].includes(k))
      problems.push(`${k}: unknown field (allowed: url, format, secret, description)`);
  let url: URL | undefined;
  try {
    url = new URL(String(r.url));
  } catch {
    problems.push('url: must be an absolute http(s) URL');
  }
  if (url && url.protocol !== 'https:' && url.protocol !== 'http:')
    problems.push('url: must be an http(s) URL');
  if (url && (url.username || url.password))
    problems.push('url: must not carry credentials (the HMAC signature authenticates us)');
  const format = r.format ?? 'json';
  if (format !== 'json' && format !== 'slack') problems.push('format: must be "json" or "slack"');
  const secret = r.secret ?? randomBytes(32).toString('base64url');
  if (typeof secret !== 'string' || secret.length < 16 || secret.length > 256)
    problems.push('secret: must be a string of 16 to 256 characters (omit it to get a random one)');
  const description = r.description ?? '';
  if (typeof description !== 'string' || description.length > 500)
    problems.push('description: must be a string of at most 500 characters');
  if (problems.length) throw invalid('webhook', problems);
  const id = randomUUID();
  return inTransaction(pool, async (c) => {
    const { rows } = await c.query<Row>(
      `INSERT INTO approval_webhooks (id, url, format, secret_sealed, description, created_by)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
      [id, url!.toString(), format, seal(masterKey, aad(id), secret as string), description, actor],
    );
    await recordAdminEvent(c, {
      actor,
      verb: 'create',
      resource: 'approval-webhooks',
      name: id,
      detail: { url: url!.origin + url!.pathname, format, description },
    });
    return { webhook: view(rows[0]!), secret: secret as string };
  });
}

export async function deleteWebhook(pool: Pool, id: string, actor: string): Promise<void> {
  await inTransaction(pool, async (c) => {
    const { rowCount } = await c.query('DELETE FROM approval_webhooks WHERE id::text = lower($1)', [
      id,
    ]);
    if (!rowCount) throw new KgError('KG_ERR_NOT_FOUND', `webhook "${id}" does not exist`);
    await recordAdminEvent(c, { actor, verb: 'delete', resource: 'approval-webhooks', name: id });
  });
}

/** The secret of a stored webhook row, for signing. */
export function webhookSecret(masterKey: Buffer, id: string, sealed: string): string {
  return open(masterKey, aad(id), sealed);
}
