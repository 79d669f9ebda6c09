/**
 * The HTML pages kubegate serves: the sign-in page and error pages (no script
 * at all) and, once signed in, the web console's shell — the same document
 * for `/` and every `/console/…` view. The shell carries a script-free
 * summary (who you are, your clusters, the kubeconfig button, sign out), so
 * the essentials work without JavaScript; the console's modules then take
 * over the page (proxy/console/ui/).
 *
 * Every value is HTML-escaped, and every page carries a strict
 * Content-Security-Policy: scripts, styles and requests only from this
 * origin (no inline code of any kind), DOM sinks such as innerHTML refused
 * by Trusted Types, forms may only post here, and no site may frame a page.
 */
import type { AnyResponse } from '../http/response.js';
import { consoleAssets } from '../console/assets.js';

/** The policy every HTML response carries. */
export const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

function layout(title: string, body: string, withScript = false): string {
  const a = consoleAssets();
  const script =
    withScript && !a.missing
      ? a.modules.map((m) => `<link rel="modulepreload" href="${m}">`).join('') +
        `<script type="module" src="${a.script}"></script>`
      : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)} · kubegate</title><link rel="stylesheet" href="${a.style}">${script}</head>
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
    'cross-origin-opener-policy': 'same-origin',
    'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
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

/** The console shell with its script-free summary (the console replaces it once loaded). */
export function signedInPage(v: SignedInView): string {
  const clusters = v.clusters.length
    ? `<ul>${v.clusters.map((c) => `<li><code>${escapeHtml(c)}</code></li>`).join('')}</ul>
<p><a class="button" href="/api/v1/kubeconfig" download>Download kubeconfig</a></p>
<p>One context per cluster; the token inside is valid for ${escapeHtml(v.tokenTtl)}. Use it with
<code>kubectl --kubeconfig FILE get ns</code> — no plugin needed.</p>`
    : '<p>You have no access to any cluster yet. Ask a kubegate admin for a binding.</p>';
  return layout(
    'Console',
    `<a class="skip" href="#main">Skip to content</a>
<div id="console"><main id="main" class="center" tabindex="-1">
<h1>kubegate</h1>
<p>Signed in as <strong>${escapeHtml(v.name || v.username)}</strong> (<code>${escapeHtml(v.username)}</code>).</p>
<p>Groups: ${v.groups.length ? v.groups.map((g) => `<code>${escapeHtml(g)}</code>`).join(' ') : 'none'}</p>
<h2>Clusters</h2>
${clusters}
<p>This session ends ${escapeHtml(v.sessionEnds.toISOString())}.</p>
<form method="post" action="/auth/logout"><input type="hidden" name="csrf" value="${escapeHtml(v.csrfToken)}"><button class="button quiet" type="submit">Sign out</button></form>
<noscript><p class="notice">The full console (tokens, audit, administration) needs JavaScript.</p></noscript>
</main></div>`,
    true,
  );
}

export function signedOutPage(ssoConfigured: boolean, note = ''): string {
  return layout(
    'Sign in',
    `<main id="main" class="center">
<h1>kubegate</h1>
<p class="lead">Zero-trust access to your Kubernetes clusters.</p>
${note ? `<p class="notice" role="status">${escapeHtml(note)}</p>` : ''}
${
  ssoConfigured
    ? '<p><a class="button" href="/auth/login">Sign in with single sign-on</a></p>'
    : '<p>Single sign-on is not configured on this kubegate. Ask an admin for a kubeconfig.</p>'
}</main>`,
  );
}

export function errorPage(status: number, message: string, ssoConfigured: boolean): string {
  return layout(
    'Error',
    `<main id="main" class="center">
<h1>kubegate</h1>
<p class="notice error" role="alert">${escapeHtml(message)}</p>
<p>${ssoConfigured ? '<a href="/auth/login">Sign in again</a> · ' : ''}<a href="/">Home</a> (HTTP ${status})</p></main>`,
  );
}
