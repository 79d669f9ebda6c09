/**
 * A real OpenID Provider for tests and `make dev`: oidc-provider (a
 * certified implementation) on a free loopback port over plain HTTP, with
 * demo users and groups. Its login and consent pages are plain HTML forms,
 * so a test follows the whole sign-in with an HTTP client, no browser.
 *
 * Demo users (password `demo` for all):
 *   admin@example.com      groups ["kubegate-admins"]
 *   dev@example.com        groups ["developers"]
 *   csv@example.com        groups "developers, sre" (a comma-separated string)
 *   nogroups@example.com   no groups claim at all
 *   overage@example.com    groups overage: _claim_names / _claim_sources
 *   hasgroups@example.com  groups overage: hasgroups = true
 * Tests may add more with `addUser`.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { freePort } from './ports.js';

export interface DemoUser {
  email: string;
  name: string;
  password?: string;
  /** The groups claim exactly as sent: an array, a string, or undefined (claim absent). */
  groups?: unknown;
  emailVerified?: boolean;
  /** More claims (overage markers and the like). */
  extra?: Record<string, unknown>;
}

export interface IdpClient {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
}

export interface Idp {
  issuer: string;
  users: Map<string, DemoUser>;
  addUser(u: DemoUser): void;
  /** Remove a user: the provider then refuses their refresh tokens (invalid_grant). */
  removeUser(email: string): void;
  /** Interactions served (login form posts), for tests that check a fresh login happened. */
  logins: string[];
  close(): Promise<void>;
}

export const demoPassword = 'demo';

export const demoUsers: DemoUser[] = [
  { email: 'admin@example.com', name: 'Ada Admin', groups: ['kubegate-admins'] },
  { email: 'dev@example.com', name: 'Dev Eloper', groups: ['developers'] },
  { email: 'csv@example.com', name: 'Cee Esvee', groups: 'developers, sre' },
  { email: 'nogroups@example.com', name: 'No Groups' },
  {
    email: 'overage@example.com',
    name: 'Over Age',
    extra: {
      _claim_names: { groups: 'src1' },
      _claim_sources: {
        src1: { endpoint: 'https://graph.example.test/v1.0/users/overage/getMemberObjects' },
      },
    },
  },
  { email: 'hasgroups@example.com', name: 'Has Groups', extra: { hasgroups: true } },
];

/** An opaque, stable subject per user (the user name comes from the email claim, not sub). */
export function subjectOf(email: string): string {
  return 'sub-' + createHash('sha256').update(email).digest('hex').slice(0, 16);
}

// oidc-provider ships no types; this is the part of its API we use.
interface Interaction {
  uid: string;
  prompt: { name: string; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId?: string };
  grantId?: string;
}
interface Grant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(indicator: string, scope: string): void;
  save(): Promise<string>;
}
interface Provider {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: object,
    opts?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Grant: {
    new (o: { accountId: string; clientId: string }): Grant;
    find(id: string): Promise<Grant>;
  };
  on(event: string, fn: (...args: unknown[]) => void): void;
}
type ProviderClass = new (issuer: string, config: Record<string, unknown>) => Provider;

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res: ServerResponse, status: number, title: string, body: string): void {
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1>${body}</body></html>`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(html);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req as AsyncIterable<Buffer>) {
    body += chunk.toString('utf8');
    if (body.length > 16_384) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

function loginForm(uid: string, error = ''): string {
  return `${error ? `<p class="error">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login">
<label>Email <input name="login" type="email" autofocus></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button>
</form>`;
}

/** Start the provider. `clients` are registered statically (redirect URIs must be known). */
export async function startIdp(opts: {
  clients: IdpClient[];
  users?: DemoUser[];
  /**
   * Issue refresh tokens at sign-in (as providers such as Keycloak do for
   * every code grant; others only with the offline_access scope).
   */
  refreshTokens?: boolean;
}): Promise<Idp> {
  const users = new Map<string, DemoUser>();
  const bySubject = new Map<string, DemoUser>();
  const addUser = (u: DemoUser) => {
    users.set(u.email, u);
    bySubject.set(subjectOf(u.email), u);
  };
  for (const u of opts.users ?? demoUsers) addUser(u);
  const logins: string[] = [];

  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, r) => r.end();
  const server: Server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const issuer = `http://127.0.0.1:${port}`;

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = {
    ...privateKey.export({ format: 'jwk' }),
    kid: randomBytes(6).toString('hex'),
    alg: 'RS256',
    use: 'sig',
  };
  const moduleName = 'oidc-provider';
  const Provider = ((await import(moduleName)) as { default: ProviderClass }).default;
  const provider = new Provider(issuer, {
    clients: opts.clients.map((c) => ({
      client_id: c.clientId,
      client_secret: c.clientSecret,
      redirect_uris: c.redirectUris,
      grant_types: opts.refreshTokens
        ? ['authorization_code', 'refresh_token']
        : ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    // Enterprise providers put groups in the ID token; userinfo carries them too.
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups', 'hasgroups'],
    },
    ttl: {
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 86_400,
      Grant: 86_400,
      AccessToken: 600,
      IdToken: 600,
    },
    ...(opts.refreshTokens
      ? {
          issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(g: string): boolean }) =>
            Promise.resolve(client.grantTypeAllowed('refresh_token')),
        }
      : {}),
    // Every client must use PKCE (S256), confidential ones too.
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, i: { uid: string }) => `/interaction/${i.uid}` },
    async findAccount(_ctx: unknown, sub: string) {
      const u = bySubject.get(sub);
      if (!u) return undefined;
      return {
        accountId: sub,
        claims: async () => ({
          sub,
          email: u.email,
          email_verified: u.emailVerified ?? true,
          name: u.name,
          ...(u.groups !== undefined ? { groups: u.groups } : {}),
          ...(u.extra ?? {}),
        }),
      };
    },
    renderError(ctx: { type: string; body: string }, out: Record<string, string>) {
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = `${out.error ?? 'error'}: ${out.error_description ?? ''}\n`;
    },
  });
  provider.on('server_error', (_ctx, err) =>
    process.stderr.write(`idp server_error: ${String(err)}\n`),
  );
  const oidc = provider.callback();

  const interaction = async (req: IncomingMessage, res: ServerResponse, path: string) => {
    const m = /^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/.exec(path);
    if (!m) return page(res, 404, 'Not found', '');
    const [, uid, action] = m;
    const details = await provider.interactionDetails(req, res);
    if (!action && req.method === 'GET') {
      if (details.prompt.name === 'login') return page(res, 200, 'Sign in', loginForm(uid!));
      if (details.prompt.name === 'consent')
        return page(
          res,
          200,
          'Authorize kubegate',
          `<p>kubegate asks for: ${esc(String(details.params.scope ?? ''))}</p>
<form method="post" action="/interaction/${esc(uid!)}/confirm"><button type="submit">Continue</button></form>
<p><a href="/interaction/${esc(uid!)}/abort">Cancel</a></p>`,
        );
      return page(res, 400, 'Unexpected prompt', esc(details.prompt.name));
    }
    if (action === 'login' && req.method === 'POST') {
      const form = await readForm(req);
      const u = users.get(form.get('login') ?? '');
      if (!u || form.get('password') !== (u.password ?? demoPassword))
        return page(res, 200, 'Sign in', loginForm(uid!, 'Wrong email or password.'));
      logins.push(u.email);
      return provider.interactionFinished(
        req,
        res,
        { login: { accountId: subjectOf(u.email) } },
        { mergeWithLastSubmission: false },
      );
    }
    if (action === 'confirm' && req.method === 'POST') {
      await readForm(req);
      const d = details.prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({
            accountId: details.session!.accountId!,
            clientId: String(details.params.client_id),
          });
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {}))
        grant.addResourceScope(indicator, scopes.join(' '));
      const grantId = await grant.save();
      return provider.interactionFinished(
        req,
        res,
        { consent: details.grantId ? {} : { grantId } },
        { mergeWithLastSubmission: true },
      );
    }
    if (action === 'abort' && req.method === 'GET')
      return provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'the user cancelled the sign-in' },
        { mergeWithLastSubmission: false },
      );
    return page(res, 405, 'Method not allowed', '');
  };

  handler = (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path.startsWith('/interaction/')) {
      interaction(req, res, path).catch((err: unknown) => {
        if (!res.headersSent) page(res, 400, 'Sign-in error', esc(String(err)));
        else res.destroy();
      });
      return;
    }
    oidc(req, res);
  };

  return {
    issuer,
    users,
    addUser,
    removeUser: (email) => {
      users.delete(email);
      bySubject.delete(subjectOf(email));
    },
    logins,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The proxy environment that points kubegate at this provider. */
export function idpProxyEnv(idp: Idp, client: IdpClient): NodeJS.ProcessEnv {
  return {
    KUBEGATE_OIDC_ISSUER_URL: idp.issuer,
    KUBEGATE_OIDC_CLIENT_ID: client.clientId,
    KUBEGATE_OIDC_CLIENT_SECRET: client.clientSecret,
    KUBEGATE_OIDC_SCOPES: 'openid,email,profile,groups',
    KUBEGATE_OIDC_ALLOW_INSECURE_ISSUER: 'true',
  };
}

/**
 * A provider for a whole stack (e2e tests, `make dev`): the proxy's public
 * URL is fixed first — a free loopback port — so the redirect URI can be
 * registered at the provider before the proxy starts, as in a real
 * deployment. Pass `proxyEnv` to startStack; the proxy is at `publicUrl`.
 */
export async function startStackIdp(opts: { refreshTokens?: boolean } = {}): Promise<{
  idp: Idp;
  client: IdpClient;
  publicUrl: string;
  proxyEnv: NodeJS.ProcessEnv;
}> {
  const port = await freePort();
  const publicUrl = `https://127.0.0.1:${port}`;
  const client: IdpClient = {
    clientId: 'kubegate',
    clientSecret: randomBytes(16).toString('hex'),
    redirectUris: [`${publicUrl}/auth/callback`],
  };
  const idp = await startIdp({ clients: [client], refreshTokens: opts.refreshTokens });
  return {
    idp,
    client,
    publicUrl,
    proxyEnv: {
      KUBEGATE_LISTEN: `127.0.0.1:${port}`,
      KUBEGATE_PUBLIC_URL: publicUrl,
      ...idpProxyEnv(idp, client),
    },
  };
}
