/**
 * Replica peer certificates: each replica issues its own from the internal
 * server CA (sealed by the master key in PostgreSQL), so replicas prove who
 * they are with certificates and never a shared static key (docs/security.md,
 * "Tunnel identity"). A peer is accepted only if its certificate chains to
 * that CA *and* carries exactly one replica URI SAN: the front's serving
 * certificate comes from the same CA but names no replica, and agent
 * certificates come from another CA altogether.
 */
import { isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import type { CertAndKey, CertificateAuthority } from '../../common/pki.js';
import { replicaUri } from '../../common/tunnel-protocol.js';

const prefix = replicaUri('');

export async function issueReplicaCert(
  ca: CertificateAuthority,
  replicaId: string,
  peerHost: string,
): Promise<CertAndKey> {
  return ca.issueKeyAndCert({
    commonName: `kubegate replica ${replicaId}`.slice(0, 64),
    usage: 'peer',
    ttlMs: 30 * 86_400_000,
    uris: [replicaUri(replicaId)],
    ips: isIP(peerHost) ? [peerHost] : [],
    dnsNames: isIP(peerHost) ? [] : [peerHost],
  });
}

/**
 * The replica a verified peer certificate names, or undefined when it names
 * none, several, or something else (a serving or agent certificate).
 */
export function replicaOfCert(cert: PeerCertificate | undefined): string | undefined {
  if (!cert?.subjectaltname) return undefined;
  const uris = cert.subjectaltname
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
  if (uris.length !== 1 || !uris[0]!.startsWith(prefix)) return undefined;
  const id = decodeURIComponent(uris[0]!.slice(prefix.length));
  return id && replicaUri(id) === uris[0] ? id : undefined;
}
