/**
 * The agent's identity: a short-lived client certificate naming its cluster.
 * First start: trade the one-time bootstrap token and a CSR for a
 * certificate, at the proxy's enrollment listener (which asks for no client
 * certificate). Kept in a Secret so restarts need no new token; renewed at
 * two thirds of its lifetime on the tunnel listener (ALPN `alpnRenew`),
 * presenting the current certificate, which that listener's handshake
 * requires.
 */
import { X509Certificate } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { createCsr, generateKeyPair } from '../../common/pki.js';
import { enrollTarget, postJson, renewTarget, type ProxyEndpoints } from './request.js';
import { CertificateStore, type AgentIdentity } from './store.js';
import { readConfigFile } from '../config.js';

export interface IdentityDeps extends ProxyEndpoints {
  cluster: string;
  bootstrapTokenFile: string | undefined;
  namespace: string;
  secretName: string;
  core: k8s.CoreV1Api;
  log: Logger;
}

export class IdentityManager {
  private identity: AgentIdentity | undefined;
  private timer: NodeJS.Timeout | undefined;
  private listeners: ((id: AgentIdentity) => void)[] = [];

  private readonly store: CertificateStore;

  constructor(private readonly deps: IdentityDeps) {
    this.store = new CertificateStore(deps.core, deps.namespace, deps.secretName);
  }

  current(): AgentIdentity {
    if (!this.identity) throw new Error('identity not loaded');
    return this.identity;
  }

  onChange(fn: (id: AgentIdentity) => void): void {
    this.listeners.push(fn);
  }

  /** Load the stored identity, or enroll with the bootstrap token. */
  async init(): Promise<AgentIdentity> {
    const stored = await this.store.load();
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
    return this.adopt(answer, pair.keyPem, 'enrolled with the proxy');
  }

  /** A certificate the proxy issued for our key: stored first, then used. */
  private async adopt(
    answer: { certificate: string; notAfter: string },
    keyPem: string,
    what: string,
  ): Promise<AgentIdentity> {
    const id = { certPem: answer.certificate, keyPem, notAfter: new Date(answer.notAfter) };
    await this.store.save(id);
    this.deps.log.info({ notAfter: id.notAfter }, what);
    this.set(id);
    return id;
  }

  private readBootstrapToken(): string {
    const file = this.deps.bootstrapTokenFile;
    const token = file ? readConfigFile('bootstrapTokenFile', file).trim() : '';
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
      await this.adopt(answer, pair.keyPem, 'agent certificate renewed');
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
}

function certNotBefore(certPem: string): number {
  return new Date(new X509Certificate(certPem).validFrom).getTime();
}
