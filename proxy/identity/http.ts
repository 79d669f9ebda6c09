/**
 * Small request/response helpers for identity's browser routes: form
 * bodies in (type checked, size bounded), redirects out (no-store), and
 * errors as a plain HTML page with the shared status mapping. The JSON
 * endpoints go through the route table (proxy/http/routes.ts).
 */
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { AnyRequest } from '../forward/forward.js';
import { readBody } from '../http/read-body.js';
import { toKgError } from '../http/respond-error.js';
import type { AnyResponse } from '../http/response.js';
import { errorPage, sendHtml } from './page.js';

const maxForm = 8 * 1024;

function mediaType(req: AnyRequest): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/** An HTML form body (application/x-www-form-urlencoded). */
export async function readForm(req: AnyRequest): Promise<URLSearchParams> {
  const body = await readBody(req, maxForm);
  if (body.length && mediaType(req) !== 'application/x-www-form-urlencoded')
    throw new KgError('KG_ERR_UNSUPPORTED_MEDIA_TYPE', 'expected a form post');
  return new URLSearchParams(body.toString('utf8'));
}

/** 303 See Other to `location`, optionally setting cookies. */
export function redirect(res: AnyResponse, location: string, cookies: string[] = []): void {
  res.writeHead(303, {
    location,
    'cache-control': 'no-store',
    'content-length': '0',
    ...(cookies.length ? { 'set-cookie': cookies } : {}),
  });
  res.end();
}

/** An error on a browser route: the same status mapping, as an HTML page. */
export function respondPageError(
  res: AnyResponse,
  err: unknown,
  path: string,
  log: Logger,
  ssoConfigured: boolean,
  cookies: string[] = [],
): void {
  const e = toKgError(err);
  if (e.code === 'KG_ERR_INTERNAL') log.error({ err, path }, 'unexpected error (bug)');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string | string[]> = {};
  if (cookies.length) headers['set-cookie'] = cookies;
  if (e.retryAfter) headers['retry-after'] = String(e.retryAfter);
  sendHtml(res, e.status, errorPage(e.status, e.message, ssoConfigured), headers);
}
