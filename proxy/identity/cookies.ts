/**
 * The two browser cookies, both `__Host-` prefixed: the browser then only
 * accepts them over HTTPS, for this exact host, on path `/`, without a
 * Domain — no sibling subdomain can set or read them (RFC 6265bis §4.1.3.2).
 * Both are `Secure; HttpOnly; SameSite=Lax`: Lax lets the provider's
 * top-level redirect back to /auth/callback carry the sign-in cookie, and
 * keeps the session cookie off cross-site subrequests and form posts.
 */

export const sessionCookie = '__Host-kg_session';
export const loginCookie = '__Host-kg_login';

/** Cookie values by name; the first of a repeated name wins (as browsers send most specific first). */
export function readCookies(header: string | string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  const text = Array.isArray(header) ? header.join('; ') : (header ?? '');
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

/** A Set-Cookie value; `maxAgeSeconds` 0 deletes the cookie. */
export function setCookie(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${value}; Path=/; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}; Secure; HttpOnly; SameSite=Lax`;
}

export function clearCookie(name: string): string {
  return setCookie(name, '', 0);
}
