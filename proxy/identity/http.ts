/**
 * Small request/response helpers for the identity endpoints: JSON and form
 * bodies in (type checked, size bounded), JSON and redirects out (no-store),
 * and errors turned into responses by the shared responder — problem JSON
 * on `/api/`, a plain HTML page on the browser routes.
 */
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { AnyRequest } from '../forward/forward.js';
import { readBody } from '../http/read-body.js';
import { respondError, toKgError, type AnyResponse } from '../http/respond-error.js';
import { errorPage, sendHtml } from './page.js';

const maxJson = 64 * 1024;
const maxForm = 8 * 1024;

function mediaType(req: AnyRequest): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/** A JSON object body; an empty body counts as `{}`. 415 / 413 / 400 otherwise. */
export async function readJsonObject(req: AnyRequest): Promise<Record<string, unknown>> {
  const body = await readBody(req, maxJson);
  if (body.length === 0) return {};
  if (mediaType(req) !== 'application/json')
    throw new KgError('KG_ERR_UNSUPPORTED_MEDIA_TYPE', 'the request body must be application/json');
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new KgError('KG_ERR_BAD_REQUEST', 'the request body is not valid JSON', { cause: err });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new KgError('KG_ERR_BAD_REQUEST', 'the request body must be a JSON object');
  return v as Record<string, unknown>;
}

/** An HTML form body (application/x-www-form-urlencoded). */
export async function readForm(req: AnyRequest): Promise<URLSearchParams> {
  const body = await readBody(req, maxForm);
  if (body.length && mediaType(req) !== 'application/x-www-form-urlencoded')
    throw new KgError('KG_ERR_UNSUPPORTED_MEDIA_TYPE', 'expected a form post');
  return new URLSearchParams(body.toString('utf8'));
}

export function sendJson(res: AnyResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
  });
  res.end(text);
}

export function sendNoContent(res: AnyResponse): void {
  res.writeHead(204, { 'cache-control': 'no-store' });
  res.end();
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

/** An error on an `/api/` route: problem JSON, with the scheme a 401 wants. */
export function respondApiError(res: AnyResponse, err: unknown, path: string, log: Logger): void {
  const e = toKgError(err);
  if (e.status === 401 && !res.headersSent)
    res.setHeader('www-authenticate', 'Bearer realm="kubegate"');
  respondError(res, err, path, log);
}
