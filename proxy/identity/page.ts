/**
 * The minimal signed-in page at `/` (the full console is a separate piece of
 * work): server-rendered, no script at all, every value HTML-escaped, and a
 * strict Content-Security-Policy — nothing may load but the one stylesheet
 * allowed by its hash, forms may only post here, and no site may frame it.
 */
import { createHash } from 'node:crypto';
import type { AnyResponse } from '../http/respond-error.js';

const style = `body{font:15px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}
h1{font-size:1.4rem}code{background:#f2f4f7;padding:.1rem .3rem;border-radius:3px}
.button{display:inline-block;padding:.5rem 1rem;border-radius:6px;background:#1f6feb;color:#fff;text-decoration:none;border:0;font:inherit;cursor:pointer}
.quiet{background:#eef1f4;color:#1b1f24}.error{color:#b42318}ul{padding-left:1.2rem}form{display:inline}`;

const styleHash = createHash('sha256').update(style).digest('base64');

/** The policy every HTML response carries. */
export const contentSecurityPolicy = [
  "default-src 'none'",
  `style-src 'sha256-${styleHash}'`,
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)} · kubegate</title><style>${style}</style></head>
<body>${body}</body></html>
`;
}

export function sendHtml(
  res: AnyResponse,
  status: number,
  html: string,
  headers: Record<string, string | string[]> = {},
): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': String(Buffer.byteLength(html)),
    'cache-control': 'no-store',
    'content-security-policy': contentSecurityPolicy,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    ...headers,
  });
  res.end(html);
}

export interface SignedInView {
  name: string;
  username: string;
  groups: string[];
  clusters: string[];
  csrfToken: string;
  sessionEnds: Date;
  tokenTtl: string;
}

export function signedInPage(v: SignedInView): string {
  const clusters = v.clusters.length
    ? `<ul>${v.clusters.map((c) => `<li><code>${escapeHtml(c)}</code></li>`).join('')}</ul>
<p><a class="button" href="/api/v1/kubeconfig" download>Download kubeconfig</a></p>
<p>One context per cluster; the token inside is valid for ${escapeHtml(v.tokenTtl)}. Use it with
<code>kubectl --kubeconfig FILE get ns</code> — no plugin needed.</p>`
    : '<p>You have no access to any cluster yet. Ask a kubegate admin for a binding.</p>';
  return layout(
    'Signed in',
    `<h1>kubegate</h1>
<p>Signed in as <strong>${escapeHtml(v.name || v.username)}</strong> (<code>${escapeHtml(v.username)}</code>).</p>
<p>Groups: ${v.groups.length ? v.groups.map((g) => `<code>${escapeHtml(g)}</code>`).join(' ') : 'none'}</p>
<h2>Clusters</h2>
${clusters}
<p>This session ends ${escapeHtml(v.sessionEnds.toISOString())}.</p>
<form method="post" action="/auth/logout"><input type="hidden" name="csrf" value="${escapeHtml(v.csrfToken)}"><button class="button quiet" type="submit">Sign out</button></form>`,
  );
}

export function signedOutPage(ssoConfigured: boolean, note = ''): string {
  return layout(
    'Sign in',
    `<h1>kubegate</h1>
${note ? `<p>${escapeHtml(note)}</p>` : ''}
${
  ssoConfigured
    ? '<p><a class="button" href="/auth/login">Sign in with single sign-on</a></p>'
    : '<p>Single sign-on is not configured on this kubegate. Ask an admin for a kubeconfig.</p>'
}`,
  );
}

export function errorPage(status: number, message: string, ssoConfigured: boolean): string {
  return layout(
    'Error',
    `<h1>kubegate</h1>
<p class="error">${escapeHtml(message)}</p>
<p>${ssoConfigured ? '<a href="/auth/login">Sign in again</a> · ' : ''}<a href="/">Home</a> (HTTP ${status})</p>`,
  );
}
