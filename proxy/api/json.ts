/**
 * The admin API's responses — JSON with the ETag of a stored version, 201
 * with its Location — and the If-Match precondition every change needs.
 * Bodies are read by the route dispatcher (proxy/http/json-body.ts).
 */
import { KgError } from '../../common/errors.js';
import { writeJson, writeNoContent } from '../http/json-body.js';
import type { ApiCall } from './types.js';

/** Strong entity tag of a stored version (RFC 9110 §8.8.3). */
export function etag(version: number): string {
  return `"${version}"`;
}

/**
 * The version named by `If-Match`, required on PUT, PATCH and DELETE so no
 * admin overwrites a change they have not seen (lost-update prevention,
 * RFC 6585 §3). `*` is refused because it would skip exactly that check.
 */
export function ifMatchVersion(call: ApiCall): number {
  const raw = call.req.headers['if-match'];
  const header = (Array.isArray(raw) ? raw.join(',') : (raw ?? '')).trim();
  const how =
    'send If-Match with the ETag of the version you read (GET it first), e.g. If-Match: "3"';
  if (header === '') {
    throw new KgError('KG_ERR_PRECONDITION_REQUIRED', `this request changes an object: ${how}`);
  }
  if (header === '*') {
    throw new KgError('KG_ERR_PRECONDITION_REQUIRED', `If-Match: * is not accepted here; ${how}`);
  }
  const m = /^"(\d{1,9})"$/.exec(header);
  if (!m) {
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `If-Match must be one strong entity tag such as "3" (weak W/ tags and lists are not accepted); got ${JSON.stringify(header)}`,
    );
  }
  return Number(m[1]);
}

/** 200 with a JSON body; `version` adds its ETag. */
export function sendJson(call: ApiCall, body: unknown, version?: number): void {
  writeJson(call.res, 200, body, version === undefined ? {} : { etag: etag(version) });
}

/** 201 Created with the new object, its ETag and Location. */
export function sendCreated(call: ApiCall, body: unknown, version: number, location: string): void {
  writeJson(call.res, 201, body, { etag: etag(version), location });
}

/** 204 No Content (a successful DELETE). */
export function sendNoContent(call: ApiCall): void {
  writeNoContent(call.res);
}
