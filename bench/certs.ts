/**
 * Certificates for the bench upstream and the nginx hops: one throw-away
 * CA, ECDSA P-256 like kubegate's own, all for `localhost` / 127.0.0.1.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority, createCa, type Usage } from '../common/pki.js';
import type { NginxCerts } from './nginx.js';

export interface BenchCerts extends NginxCerts {
  upstreamCert: string;
  upstreamKey: string;
}

export async function makeBenchCerts(dir: string): Promise<BenchCerts> {
  const caPair = await createCa('kubegate bench CA', 86_400_000);
  const ca = await CertificateAuthority.load(caPair);
  const write = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text, { mode: 0o600 });
    return file;
  };
  const issue = async (name: string, usage: Usage) => {
    const c = await ca.issueKeyAndCert({
      commonName: name,
      usage,
      ttlMs: 86_400_000,
      dnsNames: ['localhost'],
      ips: ['127.0.0.1'],
    });
    return [write(`${name}.crt`, c.certPem), write(`${name}.key`, c.keyPem)] as const;
  };
  const [upstreamCert, upstreamKey] = await issue('upstream', 'server');
  const [frontCert, frontKey] = await issue('nginx-front', 'server');
  const [hop2Cert, hop2Key] = await issue('nginx-hop2', 'server');
  const [clientCert, clientKey] = await issue('nginx-hop1-client', 'client');
  return {
    caFile: write('bench-ca.crt', caPair.certPem),
    upstreamCert,
    upstreamKey,
    frontCert,
    frontKey,
    hop2Cert,
    hop2Key,
    clientCert,
    clientKey,
  };
}
