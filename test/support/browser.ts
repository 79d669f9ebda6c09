/**
 * Just enough of a web browser for sign-in tests, with no browser: a cookie
 * jar that honours host, path, Max-Age and Secure; redirects followed one at
 * a time (so a test can stop at, inspect or tamper with any hop); HTML forms
 * read and posted; and a host map, like DNS, so `https://kg.example.test`
 * can reach a proxy listening on a loopback port.
 */
import * as http from 'node:http';
import * as https from 'node:https';

export interface Page {
  url: URL;
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface Cookie {
  host: string;
  name: string;
  value: string;
  path: string;
  secure: boolean;
  expires: number;
}

export interface BrowserOptions {
  /** CA certificates to trust for https. */
  ca?: string;
  /** `host:port` as in URLs → `host:port` to connect to. */
  resolve?: Record<string, string>;
}

function defaultPath(url: URL): string {
  const p = url.pathname;
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

function hostPort(url: URL): string {
  return `${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
}

export class Browser {
  private jar: Cookie[] = [];

  constructor(private readonly opts: BrowserOptions = {}) {}

  /** The value of a cookie the browser holds for `host`, if any. */
  cookie(host: string, name: string): string | undefined {
    return this.jar.find((c) => c.host === host && c.name === name && c.expires > Date.now())
      ?.value;
  }

  setCookie(host: string, name: string, value: string): void {
    this.jar = this.jar.filter((c) => !(c.host === host && c.name === name));
    this.jar.push({ host, name, value, path: '/', secure: true, expires: Infinity });
  }

  clearCookies(): void {
    this.jar = [];
  }

  private store(url: URL, header: string): void {
    const [pair, ...attrs] = header.split(';').map((s) => s.trim());
    const eq = pair!.indexOf('=');
    if (eq <= 0) return;
    const c: Cookie = {
      host: url.hostname,
      name: pair!.slice(0, eq),
      value: pair!.slice(eq + 1),
      path: defaultPath(url),
      secure: false,
      expires: Infinity,
    };
    for (const a of attrs) {
      const [k, v = ''] = a.split('=');
      const key = k!.toLowerCase();
      if (key === 'path' && v.startsWith('/')) c.path = v;
      else if (key === 'secure') c.secure = true;
      else if (key === 'max-age') c.expires = Date.now() + Number(v) * 1000;
      else if (key === 'expires' && c.expires === Infinity) c.expires = Date.parse(v);
    }
    if (c.secure && url.protocol !== 'https:') return;
    if (c.name.startsWith('__Host-') && (!c.secure || c.path !== '/')) return;
    this.jar = this.jar.filter(
      (x) => !(x.host === c.host && x.name === c.name && x.path === c.path),
    );
    if (c.expires > Date.now()) this.jar.push(c);
  }

  private cookieHeader(url: URL): string | undefined {
    const now = Date.now();
    const send = this.jar
      .filter(
        (c) =>
          c.host === url.hostname &&
          c.expires > now &&
          (!c.secure || url.protocol === 'https:') &&
          (url.pathname === c.path ||
            url.pathname.startsWith(c.path.endsWith('/') ? c.path : c.path + '/')),
      )
      .sort((a, b) => b.path.length - a.path.length);
    return send.length ? send.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }

  /** One request, no redirects followed; cookies stored. */
  request(
    target: string | URL,
    init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ): Promise<Page> {
    const url = new URL(target);
    const [host, port] = (this.opts.resolve?.[hostPort(url)] ?? hostPort(url)).split(':');
    const cookie = this.cookieHeader(url);
    const headers: Record<string, string> = {
      host: url.host,
      'user-agent': 'kubegate-test-browser',
      ...(cookie ? { cookie } : {}),
      ...(init.body !== undefined
        ? { 'content-length': String(Buffer.byteLength(init.body)) }
        : {}),
      ...init.headers,
    };
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(
        {
          host,
          port: Number(port),
          method: init.method ?? 'GET',
          path: url.pathname + url.search,
          headers,
          agent: false,
          timeout: 15_000,
          ...(url.protocol === 'https:' ? { ca: this.opts.ca, servername: url.hostname } : {}),
        },
        (res) => {
          const set = res.headers['set-cookie'] ?? [];
          for (const h of set) this.store(url, h);
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () =>
            resolve({ url, status: res.statusCode ?? 0, headers: res.headers, body }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`request to ${url.href} timed out`)));
      req.on('error', reject);
      req.end(init.body);
    });
  }

  /** POST an HTML form (application/x-www-form-urlencoded). */
  post(
    target: string | URL,
    fields: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<Page> {
    return this.request(target, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(fields).toString(),
    });
  }

  /**
   * Follow redirects from `page` (GETs, as browsers do after 302/303) until a
   * non-redirect, or until `stop(url)` says not to fetch the next hop — then
   * that URL is returned unfetched in `stoppedAt`.
   */
  async follow(
    page: Page,
    stop: (next: URL) => boolean = () => false,
    max = 20,
  ): Promise<{ page: Page; stoppedAt?: URL }> {
    let current = page;
    for (let i = 0; i < max; i++) {
      if (current.status < 300 || current.status >= 400 || !current.headers.location)
        return { page: current };
      const next = new URL(current.headers.location, current.url);
      if (stop(next)) return { page: current, stoppedAt: next };
      current = await this.request(next);
    }
    throw new Error(`more than ${max} redirects from ${page.url.href}`);
  }
}

/** The first form on an HTML page: its absolute action URL and its named fields. */
export function formOf(page: Page): { action: URL; fields: Record<string, string> } {
  const form = /<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i.exec(page.body);
  if (!form)
    throw new Error(
      `no form on ${page.url.href} (status ${page.status}):\n${page.body.slice(0, 500)}`,
    );
  const fields: Record<string, string> = {};
  for (const m of form[2]!.matchAll(/<input[^>]*>/gi)) {
    const name = /name="([^"]*)"/.exec(m[0])?.[1];
    if (name) fields[name] = /value="([^"]*)"/.exec(m[0])?.[1] ?? '';
  }
  const decode = (s: string) =>
    s.replace(/&amp;/g, '&').replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
  return { action: new URL(decode(form[1]!), page.url), fields };
}
