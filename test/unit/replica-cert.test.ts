/**
 * Replica peer certificates: only a certificate naming exactly one replica
 * is a peer; the front's serving certificate from the same CA is not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { CertificateAuthority, createCa } from '../../common/pki.js';
import { issueReplicaCert, replicaOfCert } from '../../proxy/ha/replica-cert.js';
import { isLongRunning } from '../../proxy/ha/peer-listener.js';

/** The two fields replicaOfCert reads, as node:tls reports them. */
const asPeer = (pem: string) =>
  ({ subjectaltname: new X509Certificate(pem).subjectAltName }) as PeerCertificate;

test('a replica certificate names its replica; a serving certificate names none', async () => {
  const ca = await CertificateAuthority.load(await createCa('test server CA', 86_400_000));
  const peer = await issueReplicaCert(ca, 'proxy-a/1', '127.0.0.1');
  assert.equal(replicaOfCert(asPeer(peer.certPem)), 'proxy-a/1');
  const serving = await ca.issueKeyAndCert({
    commonName: 'localhost',
    usage: 'server',
    ttlMs: 86_400_000,
    dnsNames: ['localhost'],
  });
  assert.equal(replicaOfCert(asPeer(serving.certPem)), undefined);
  const twoUris = await ca.issueKeyAndCert({
    commonName: 'x',
    usage: 'peer',
    ttlMs: 86_400_000,
    uris: ['spiffe://kubegate/replica/a', 'spiffe://kubegate/replica/b'],
  });
  assert.equal(replicaOfCert(asPeer(twoUris.certPem)), undefined);
  assert.equal(replicaOfCert(undefined), undefined);
});

test('long-running requests are watches, follows and upgrades', () => {
  const table: [string, boolean, boolean][] = [
    ['/api/v1/pods?watch=true', false, true],
    ['/api/v1/pods?limit=1&watch=1', false, true],
    ['/api/v1/namespaces/a/pods/p/log?follow=true', false, true],
    ['/api/v1/namespaces/a/pods/p/exec?command=sh', true, true],
    ['/api/v1/pods?watch=false', false, false],
    ['/api/v1/pods?xwatch=true', false, false],
    ['/api/v1/pods', false, false],
  ];
  for (const [path, upgrade, want] of table) assert.equal(isLongRunning(path, upgrade), want, path);
});
