import type { PeerCertificate } from 'node:tls';
import { clusterUri } from '../../common/tunnel-protocol.js';

/**
 * The cluster an agent certificate names: its CN and its URI SAN must agree.
 * Returns undefined for anything else (no cert, a mismatch, extra URIs).
 */
export function agentCertCluster(
  cert: PeerCertificate | undefined,
): { cluster: string; serial: string; notAfter: Date } | undefined {
  if (!cert || !cert.subject) return undefined;
  const cn = cert.subject.CN;
  if (typeof cn !== 'string') return undefined;
  const uris = (cert.subjectaltname ?? '')
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
  if (uris.length !== 1 || uris[0] !== clusterUri(cn)) return undefined;
  return {
    cluster: cn,
    serial: cert.serialNumber.toLowerCase(),
    notAfter: new Date(cert.valid_to),
  };
}
