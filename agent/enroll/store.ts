/**
 * Where the agent keeps its certificate and key between restarts: a
 * `kubernetes.io/tls` Secret in its namespace, so a restart needs no new
 * bootstrap token.
 */
import type * as k8s from '@kubernetes/client-node';
import { KgError } from '../../common/errors.js';
import { certInfo } from '../../common/pki.js';
import { statusCode } from '../kube-client.js';

export interface AgentIdentity {
  certPem: string;
  keyPem: string;
  notAfter: Date;
}

export class CertificateStore {
  constructor(
    private readonly core: k8s.CoreV1Api,
    private readonly namespace: string,
    private readonly secretName: string,
  ) {}

  /** The stored identity; undefined when the Secret does not exist or lacks a key pair. */
  async load(): Promise<AgentIdentity | undefined> {
    try {
      const s = await this.core.readNamespacedSecret({
        name: this.secretName,
        namespace: this.namespace,
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
        `cannot read Secret ${this.namespace}/${this.secretName} (status ${statusCode(err) ?? 'none'}); check the agent's RBAC`,
        { cause: err },
      );
    }
  }

  /** Store `id`, replacing the Secret or creating it. */
  async save(id: AgentIdentity): Promise<void> {
    const body = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: {
        name: this.secretName,
        namespace: this.namespace,
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
      await this.core.replaceNamespacedSecret({
        name: this.secretName,
        namespace: this.namespace,
        body,
      });
    } catch (err) {
      if (statusCode(err) !== 404)
        throw new KgError(
          'KG_ERR_UPSTREAM',
          `cannot store the agent certificate in Secret ${this.namespace}/${this.secretName} (status ${statusCode(err) ?? 'none'})`,
          { cause: err },
        );
      await this.core.createNamespacedSecret({ namespace: this.namespace, body });
    }
  }
}
