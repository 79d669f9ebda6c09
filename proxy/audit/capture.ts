/**
 * Bounded capture of a request or response body for the Request and
 * RequestResponse levels. The body is teed, never held up: chunks are
 * copied as they pass, up to a limit; past it, the copy is dropped and the
 * event says how large the body was. Only JSON is kept (protobuf and other
 * encodings are described, not stored), after redaction.
 */
import { gunzipSync, inflateSync } from 'node:zlib';
import { omitted, redactBody, type BodyTarget } from './redact.js';

/** Largest body kept in an event; the apiserver's own limit on request bodies is 3 MiB. */
export const maxCapturedBody = 256 * 1024;

export class BodyCapture {
  private chunks: Buffer[] = [];
  private size = 0;
  private overflow = false;

  constructor(private readonly limit = maxCapturedBody) {}

  /** Copy a chunk that is passing through (a no-op past the limit). */
  push(chunk: Buffer): void {
    this.size += chunk.length;
    if (this.overflow) return;
    if (this.size > this.limit) {
      this.overflow = true;
      this.chunks = [];
      return;
    }
    this.chunks.push(chunk);
  }

  get bytes(): number {
    return this.size;
  }

  /**
   * The body as it goes into the event: redacted JSON, or a note saying why
   * it is not there.
   */
  result(
    target: BodyTarget,
    contentType: string | undefined,
    contentEncoding: string | undefined,
  ): { body?: unknown; note?: string } {
    if (this.size === 0) return {};
    if (this.overflow)
      return { note: `not kept: ${this.size} bytes is more than ${this.limit} bytes` };
    const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
    if (type.includes('protobuf') || type.startsWith('application/vnd.kubernetes.protobuf')) {
      return { note: `not kept: ${type} (only JSON bodies are recorded)` };
    }
    let raw = Buffer.concat(this.chunks);
    try {
      const enc = (contentEncoding ?? '').trim().toLowerCase();
      if (enc === 'gzip') raw = gunzipSync(raw, { maxOutputLength: this.limit * 8 });
      else if (enc === 'deflate') raw = inflateSync(raw, { maxOutputLength: this.limit * 8 });
      else if (enc && enc !== 'identity') return { note: `not kept: content-encoding ${enc}` };
    } catch {
      return { note: 'not kept: the compressed body could not be decoded within the limit' };
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      return { note: `not kept: ${type || 'the body'} is not JSON` };
    }
    try {
      return { body: redactBody(parsed, target) };
    } catch (err) {
      // Never the body, and never a throw: the event is kept with a marker.
      return { body: omitted(`the body could not be redacted (${(err as Error).name})`) };
    }
  }
}
