/**
 * The agent's identity: a short-lived client certificate naming its cluster.
 * First start: trade the one-time bootstrap token and a CSR for a
 * certificate, at the proxy's enrollment listener (which asks for no client
 * certificate). Kept in a Secret so restarts need no new token; renewed at
 * two thirds of its lifetime on the tunnel listener (ALPN `alpnRenew`),
 * presenting the current certificate, which that listener's handshake
 * requires.
 */
import { isIP } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import type * as tls from 'node:tls';
import type * as k8s from '@kubernetes/client-node';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { certInfo, createCsr, generateKeyPair } from '../../common/pki.js';
import { alpnEnroll, alpnRenew, enrollPath, renewPath } from '../../common/tunnel-protocol.js';
import { parseHostPort } from '../../common/config.js';
import { statusCode } from '../kube-client.js';

export interface AgentIdentity {
  certPem: string;
  keyPem: string;
  notAfter: Date;
}

export interface IdentityDeps {
  cluster: string;
  /** The proxy's enrollment listener (host:port) and the TLS name it must present. */
  enrollAddress: string;
  enrollServerName: string;
  /** The proxy's tunnel listener, where renewal is served, and its TLS name. */
  tunnelAddress: string;
  tunnelServerName: string;
  proxyCaPem: string;
  bootstrapTokenFile: string | undefined;
  namespace: string;
  secretName: string;
  core: k8s.CoreV1Api;
  log: Logger;
}

interface EnrollAnswer {
  certificate: string;
  notAfter: string;
}

/** Where a request goes: enrollment (no client certificate) or renewal (the current one). */
interface Target {
  what: string;
  address: string;
  serverName: string;
  alpn: string;
  path: string;
  /** 401 from this target: enrollment's token is spent, renewal's certificate is not accepted. */
  refusedCode: 'KG_ERR_TOKEN_SPENT' | 'KG_ERR_UNAUTHENTICATED';
  client?: AgentIdentity;
}

function enrollTarget(deps: IdentityDeps): Target {
  return {
    what: 'enrollment listener',
    address: deps.enrollAddress,
    serverName: deps.enrollServerName,
    alpn: alpnEnroll,
    path: enrollPath,
    refusedCode: 'KG_ERR_TOKEN_SPENT',
  };
}

function renewTarget(deps: IdentityDeps, client: AgentIdentity): Target {
  return {
    what: 'tunnel listener (renewal)',
    address: deps.tunnelAddress,
    serverName: deps.tunnelServerName,
    alpn: alpnRenew,
    path: renewPath,
    refusedCode: 'KG_ERR_UNAUTHENTICATED',
    client,
  };
}

/** POST JSON over TLS 1.3 to a proxy listener, pinned CA, HTTP/1.1 under the target's ALPN. */
function postJson(deps: IdentityDeps, target: Target, body: unknown): Promise<EnrollAnswer> {
  const { host, port } = parseHostPort(target.address);
  const { path, client } = target;
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const options: https.RequestOptions & tls.ConnectionOptions = {
      host,
      port,
      path,
      method: 'POST',
      servername: isIP(target.serverName) ? undefined : target.serverName,
      ca: deps.proxyCaPem,
      ALPNProtocols: [target.alpn],
      minVersion: 'TLSv1.3',
      cert: client?.certPem,
      key: client?.keyPem,
      agent: false,
      timeout: 15_000,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    };
    const req = https.request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: { message?: string } & Partial<EnrollAnswer> = {};
        try {
          parsed = JSON.parse(text) as typeof parsed;
        } catch {
          // keep the raw status below
        }
        if (res.statusCode === 200 && parsed.certificate && parsed.notAfter) {
          resolve({ certificate: parsed.certificate, notAfter: parsed.notAfter });
        } else {
          reject(
            new KgError(
              res.statusCode === 401 ? target.refusedCode : 'KG_ERR_UPSTREAM',
              `proxy refused ${path} (${res.statusCode}): ${parsed.message ?? text.slice(0, 200)}`,
            ),
          );
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) =>
      reject(
        new KgError(
          'KG_ERR_UPSTREAM',
          `cannot reach the proxy's ${target.what} at ${target.address}: ${err.message}`,
          { cause: err },
        ),
      ),
    );
    req.end(payload);
  });
}

export class IdentityManager {
  private identity: AgentIdentity | undefined;
  private timer: NodeJS.Timeout | undefined;
  private listeners: ((id: AgentIdentity) => void)[] = [];

  constructor(private readonly deps: IdentityDeps) {}

  current(): AgentIdentity {
    if (!this.identity) throw new Error('identity not loaded');
    return this.identity;
  }

  onChange(fn: (id: AgentIdentity) => void): void {
    this.listeners.push(fn);
  }

  /** Load the stored identity, or enroll with the bootstrap token. */
  async init(): Promise<AgentIdentity> {
    const stored = await this.load();
    if (stored && stored.notAfter.getTime() > Date.now() + 5_000) {
      this.deps.log.info({ notAfter: stored.notAfter }, 'using stored agent certificate');
      this.set(stored);
      return stored;
    }
    const token = this.readBootstrapToken();
    const pair = await generateKeyPair();
    const answer = await postJson(this.deps, enrollTarget(this.deps), {
      cluster: this.deps.cluster,
      token,
      csr: await createCsr(this.deps.cluster, pair),
    });
    const id = {
      certPem: answer.certificate,
      keyPem: pair.keyPem,
      notAfter: new Date(answer.notAfter),
    };
    await this.save(id);
    this.deps.log.info({ notAfter: id.notAfter }, 'enrolled with the proxy');
    this.set(id);
    return id;
  }

  private readBootstrapToken(): string {
    const file = this.deps.bootstrapTokenFile;
    const token = file ? readFileSync(file, 'utf8').trim() : '';
    if (!token) {
      throw new KgError(
        'KG_ERR_CONFIG',
        `no stored identity in Secret ${this.deps.namespace}/${this.deps.secretName} and no bootstrap token; re-apply fresh bootstrap YAML (kubegate admin cluster bootstrap ${this.deps.cluster})`,
      );
    }
    return token;
  }

  private set(id: AgentIdentity): void {
    this.identity = id;
    for (const fn of this.listeners) fn(id);
    this.scheduleRenewal();
  }

  private scheduleRenewal(): void {
    clearTimeout(this.timer);
    const id = this.current();
    // Certificates are backdated a minute for clock skew: their life starts at
    // notBefore + 60 s (or now, for an older stored one). Renew at two thirds.
    const start = Math.min(Date.now(), certNotBefore(id.certPem) + 60_000);
    const at = start + ((id.notAfter.getTime() - start) * 2) / 3;
    this.timer = setTimeout(
      () => void this.renew(1),
      Math.max(500, Math.min(at - Date.now(), 2 ** 31 - 1)),
    );
    this.timer.unref();
  }

  private async renew(attempt: number): Promise<void> {
    try {
      const pair = await generateKeyPair();
      const answer = await postJson(this.deps, renewTarget(this.deps, this.current()), {
        csr: await createCsr(this.deps.cluster, pair),
      });
      const id = {
        certPem: answer.certificate,
        keyPem: pair.keyPem,
        notAfter: new Date(answer.notAfter),
      };
      await this.save(id);
      this.deps.log.info({ notAfter: id.notAfter }, 'agent certificate renewed');
      this.set(id);
    } catch (err) {
      const delay = Math.min(60_000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
      this.deps.log.warn(
        { err: (err as Error).message, retryInMs: Math.round(delay) },
        'certificate renewal failed',
      );
      this.timer = setTimeout(() => void this.renew(attempt + 1), delay);
      this.timer.unref();
    }
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private async load(): Promise<AgentIdentity | undefined> {
    try {
      const s = await this.deps.core.readNamespacedSecret({
        name: this.deps.secretName,
        namespace: this.deps.namespace,
      });
      const crt = s.data?.['tls.crt'];
      const key = s.data?.['tls.key'];
      if (!crt || !key) return undefined;
      const certPem = Buffer.from(crt, 'base64').toString('utf8');
      return {
        certPem,
        keyPem: Buffer.from(key, 'base64').toString('utf8'),
        notAfter: certInfo(certPem).notAfter,
      };
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw new KgError(
        'KG_ERR_UPSTREAM',
        `cannot read Secret ${this.deps.namespace}/${this.deps.secretName} (status ${statusCode(err) ?? 'none'}); check the agent's RBAC`,
        { cause: err },
      );
    }
  }

  private async save(id: AgentIdentity): Promise<void> {
    const body = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: {
        name: this.deps.secretName,
        namespace: this.deps.namespace,
        labels: {
          'app.kubernetes.io/managed-by': 'kubegate',
          'kubegate.dev/part': 'agent-identity',
        },
      },
      data: {
        'tls.crt': Buffer.from(id.certPem).toString('base64'),
        'tls.key': Buffer.from(id.keyPem).toString('base64'),
      },
    };
    try {
      await this.deps.core.replaceNamespacedSecret({
        name: this.deps.secretName,
        namespace: this.deps.namespace,
        body,
      });
    } catch (err) {
      if (statusCode(err) !== 404)
        throw new KgError(
          'KG_ERR_UPSTREAM',
          `cannot store the agent certificate in Secret ${this.deps.namespace}/${this.deps.secretName} (status ${statusCode(err) ?? 'none'})`,
          { cause: err },
        );
      await this.deps.core.createNamespacedSecret({ namespace: this.deps.namespace, body });
    }
  }
}

function certNotBefore(certPem: string): number {
  return new Date(new X509Certificate(certPem).validFrom).getTime();
}
