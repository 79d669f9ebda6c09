/**
 * Talking to kubegate's JSON APIs from the console: same-origin fetches with
 * the session cookie, the CSRF token on every change (the server refuses a
 * change without it), `If-Match` from the ETag the object was read with, and
 * problem JSON (RFC 9457) turned into an ApiError whose message and list of
 * problems the views show as they are.
 */
let csrfToken = '';

export function setCsrfToken(t: string): void {
  csrfToken = t;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problems: string[] = [],
  ) {
    super(message);
  }
}

export interface Reply<T> {
  body: T;
  etag: string | null;
  headers: Headers;
}

interface Problem {
  title?: string;
  detail?: string;
  problems?: unknown;
}

async function fail(res: Response): Promise<never> {
  let p: Problem = {};
  try {
    p = (await res.json()) as Problem;
  } catch {
    /* not JSON: keep the status line */
  }
  if (res.status === 401) {
    // The session ended (expired, signed out elsewhere, deactivated): back to sign-in.
    location.assign('/');
  }
  const problems = Array.isArray(p.problems) ? p.problems.map(String) : [];
  throw new ApiError(
    res.status,
    p.detail || p.title || `${res.status} ${res.statusText}`,
    problems,
  );
}

export async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  etag?: string | null,
  extra: Record<string, string> = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...extra, accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['x-csrf-token'] = csrfToken;
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (etag) headers['if-match'] = etag;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch {
    throw new ApiError(0, 'kubegate could not be reached; check your connection and retry');
  }
  if (!res.ok) return fail(res);
  const text = res.status === 204 ? '' : await res.text();
  return {
    body: (text ? JSON.parse(text) : undefined) as T,
    etag: res.headers.get('etag'),
    headers: res.headers,
  };
}

export const get = async <T>(path: string): Promise<T> => (await request<T>('GET', path)).body;

/** A file from a GET (kubeconfig, export): the bytes and the server's file name. */
export async function download(
  path: string,
): Promise<{ blob: Blob; filename: string; headers: Headers }> {
  const res = await fetch(path, { credentials: 'same-origin' });
  if (!res.ok) return fail(res);
  const cd = res.headers.get('content-disposition') ?? '';
  const filename = /filename="([^"]+)"/.exec(cd)?.[1] ?? 'download';
  return { blob: await res.blob(), filename, headers: res.headers };
}

/** A GET whose body the caller reads as a stream (a recording); problem JSON → ApiError. */
export async function fetchOk(path: string, signal?: AbortSignal): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, { credentials: 'same-origin', ...(signal ? { signal } : {}) });
  } catch {
    throw new ApiError(0, 'kubegate could not be reached; check your connection and retry');
  }
  if (!res.ok) return fail(res);
  return res;
}

export function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
