/**
 * JSON in and out for every REST endpoint: the one body reader (media type
 * checked, size bounded while streaming, nesting depth bounded, parsed once)
 * and the one writer (no-store, optional extra headers). Errors are KgErrors;
 * the route dispatcher (routes.ts) turns them into problem JSON.
 */
import { KgError } from '../../common/errors.js';
import { deeperThan } from '../../common/json-depth.js';
import type { AnyRequest } from '../forward/forward.js';
import type { AnyResponse } from './response.js';

/** The body limit when a route names none. */
export const defaultMaxBodyBytes = 1024 * 1024;

/** Deepest nesting accepted in a request body; our documents are a handful of levels. */
export const maxJsonDepth = 64;

export interface JsonBodyOptions {
  /** Largest accepted body in bytes. */
  maxBytes: number;
  /** Accepted media types (lowercase); default application/json. */
  types?: readonly string[];
  /** An empty body (no bytes) reads as `{}` whatever its Content-Type; default: it is malformed JSON. */
  emptyIsObject?: boolean;
  /** Refuse anything but a JSON object (400); default: any JSON value. */
  object?: boolean;
}

const jsonTypes = ['application/json'];

/**
 * The media type of the request, or a 415 when it is not one of `accepted`.
 * A charset other than UTF-8 is refused too: JSON is UTF-8 (RFC 8259 §8.1).
 */
function checkContentType(req: AnyRequest, accepted: readonly string[]): void {
  const header = req.headers['content-type'];
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

function tooLarge(req: AnyRequest, res: AnyResponse, max: number): KgError {
  // The rest of the body is drained and dropped, never buffered. On HTTP/1.1
  // the connection is closed after the 413 too, so a client cannot keep us
  // draining; an HTTP/2 stream ends on its own without touching the session.
  if (req.httpVersionMajor === 1 && !res.headersSent) res.setHeader('connection', 'close');
  req.resume();
  return new KgError('KG_ERR_BODY_TOO_LARGE', `the request body is larger than ${max} bytes`);
}

/**
 * Collect the body up to `max` bytes. Past it, stop keeping data but let the
 * stream flow (discarded) rather than destroying it: destroying an HTTP/2
 * request would take the stream, and our 413 response, with it.
 */
function collect(req: AnyRequest, res: AnyResponse, max: number): Promise<Buffer> {
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
      reject(tooLarge(req, res, max));
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
 * Read and parse a JSON body. 413 past the limit (checked on Content-Length
 * and again while streaming, so a lying or chunked client is cut off at the
 * limit), 415 for another media type, 400 for malformed or too deeply
 * nested JSON (and, with `object`, for anything but an object).
 */
export async function readJsonBody(
  req: AnyRequest,
  res: AnyResponse,
  opts: JsonBodyOptions,
): Promise<unknown> {
  const max = opts.maxBytes;
  const declared = Number(req.headers['content-length'] ?? 0);
  // With `emptyIsObject` an empty body needs no Content-Type, so the type is
  // checked once the body is known to be non-empty.
  if (!opts.emptyIsObject) checkContentType(req, opts.types ?? jsonTypes);
  if (declared > max) throw tooLarge(req, res, max);
  const raw = await collect(req, res, max);
  if (raw.length === 0 && opts.emptyIsObject) return {};
  if (opts.emptyIsObject) checkContentType(req, opts.types ?? jsonTypes);
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8')) as unknown;
  } catch (err) {
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `the request body is not valid JSON: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (deeperThan(value, maxJsonDepth))
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `the request body is nested more than ${maxJsonDepth} levels deep`,
    );
  if (opts.object && (typeof value !== 'object' || value === null || Array.isArray(value)))
    throw new KgError('KG_ERR_BAD_REQUEST', 'the request body must be a JSON object');
  return value;
}

/** A JSON response: `status`, the body, no-store, and any extra headers (ETag, Location). */
export function writeJson(
  res: AnyResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** 204 No Content. */
export function writeNoContent(res: AnyResponse): void {
  res.writeHead(204, { 'cache-control': 'no-store' });
  res.end();
}
