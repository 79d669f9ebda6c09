/**
 * Request and response bodies of the REST API: JSON in (content type checked,
 * size bounded while streaming, parsed once), JSON out (no-store, ETag for
 * single objects), and the If-Match precondition that every change needs.
 */
import { KgError } from '../../common/errors.js';
import type { ApiCall } from './types.js';

export const defaultMaxBodyBytes = 1024 * 1024;

const jsonTypes = ['application/json'];

/**
 * The media type of the request (lowercase, without parameters), or a 415
 * when it is not one of `accepted`. A charset other than UTF-8 is refused
 * too: JSON is UTF-8 (RFC 8259 §8.1).
 */
function checkContentType(call: ApiCall, accepted: readonly string[]): void {
  const header = call.req.headers['content-type'];
  const [type = '', ...params] = (header ?? '').split(';').map((s) => s.trim().toLowerCase());
  const charset = params.find((p) => p.startsWith('charset='))?.slice('charset='.length);
  const charsetOk = charset === undefined || charset === 'utf-8' || charset === '"utf-8"';
  if (!accepted.includes(type) || !charsetOk) {
    throw new KgError(
      'KG_ERR_UNSUPPORTED_MEDIA_TYPE',
      `the request body must be ${accepted.join(' or ')} (UTF-8); got ${header ? JSON.stringify(header) : 'no Content-Type'}`,
    );
  }
}

function tooLarge(call: ApiCall, max: number): KgError {
  // The rest of the body is drained and dropped, never buffered. On HTTP/1.1
  // the connection is closed after the 413 too, so a client cannot keep us
  // draining; an HTTP/2 stream ends on its own without touching the session.
  if (call.req.httpVersionMajor === 1) call.res.setHeader('connection', 'close');
  call.req.resume();
  return new KgError('KG_ERR_BODY_TOO_LARGE', `the request body is larger than ${max} bytes`);
}

/**
 * Collect the body up to `max` bytes. Past it, stop keeping data but let the
 * stream flow (discarded) rather than destroying it: destroying an HTTP/2
 * request would take the stream, and our 413 response, with it.
 */
function readBody(call: ApiCall, max: number): Promise<Buffer> {
  const req = call.req;
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= max) {
        chunks.push(chunk);
        return;
      }
      cleanup();
      reject(tooLarge(call, max));
    };
    const onEnd = () => {
      ended = true;
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(
        new KgError('KG_ERR_BAD_REQUEST', 'the request body could not be read', { cause: err }),
      );
    };
    const onClose = () => {
      if (ended) return;
      cleanup();
      reject(
        new KgError('KG_ERR_BAD_REQUEST', 'the client closed the request before its body ended'),
      );
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/**
 * Read and parse the JSON body. 415 for another media type, 413 past the
 * limit (checked on Content-Length and again while streaming, so a lying or
 * chunked client is cut off at the limit), 400 for malformed JSON.
 */
export async function readJson(
  call: ApiCall,
  accepted: readonly string[] = jsonTypes,
): Promise<unknown> {
  checkContentType(call, accepted);
  const max = call.deps.maxBodyBytes ?? defaultMaxBodyBytes;
  const declared = Number(call.req.headers['content-length'] ?? 0);
  if (declared > max) throw tooLarge(call, max);
  const text = (await readBody(call, max)).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `the request body is not valid JSON: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

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

function send(call: ApiCall, status: number, body: unknown, headers: Record<string, string>) {
  const text = JSON.stringify(body);
  call.res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  call.res.end(text);
}

/** 200 with a JSON body; `version` adds its ETag. */
export function sendJson(call: ApiCall, body: unknown, version?: number): void {
  send(call, 200, body, version === undefined ? {} : { etag: etag(version) });
}

/** 201 Created with the new object, its ETag and Location. */
export function sendCreated(call: ApiCall, body: unknown, version: number, location: string): void {
  send(call, 201, body, { etag: etag(version), location });
}

/** 204 No Content (a successful DELETE). */
export function sendNoContent(call: ApiCall): void {
  call.res.writeHead(204, { 'cache-control': 'no-store' });
  call.res.end();
}
