import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import {
  CertificateAuthority,
  certInfo,
  createCa,
  createCsr,
  generateKeyPair,
} from '../../common/pki.js';
import { KgError } from '../../common/errors.js';

test('CSR signing: subject comes from the signer, chain verifies, usage is client-only', async () => {
  const caPem = await createCa('test agent CA', 3_600_000);
  const ca = await CertificateAuthority.load(caPem);
  const pair = await generateKeyPair();
  const csr = await createCsr('cluster-b', pair); // the agent asks for another name
  const issued = await ca.signCsr(csr, {
    commonName: 'cluster-a',
    usage: 'client',
    ttlMs: 60_000,
    uris: ['spiffe://kubegate/cluster/cluster-a'],
  });
  const cert = new X509Certificate(issued.certPem);
  assert.match(cert.subject, /CN=cluster-a/);
  assert.ok(cert.verify(new X509Certificate(caPem.certPem).publicKey), 'signed by the CA');
  assert.ok(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(pair.keyPem)));
  assert.equal(certInfo(issued.certPem).serial, issued.serial.replace(/^0+/, '') || issued.serial);
  assert.match(cert.keyUsage?.join(',') ?? '', /1\.3\.6\.1\.5\.5\.7\.3\.2/); // clientAuth
  assert.ok(!(cert.keyUsage ?? []).includes('1.3.6.1.5.5.7.3.1'), 'not a server cert');
  assert.ok(issued.notAfter.getTime() <= Date.now() + 60_000);
});

test('CSR signing refuses a tampered CSR and garbage', async () => {
  const ca = await CertificateAuthority.load(await createCa('ca', 3_600_000));
  const csr = await createCsr('x', await generateKeyPair());
  const body = csr
    .split('\n')
    .filter((l) => !l.startsWith('-----'))
    .join('');
  const der = Buffer.from(body, 'base64');
  der[der.length - 10] = der[der.length - 10]! ^ 0xff; // flip a signature byte
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  await assert.rejects(
    ca.signCsr(tampered, { commonName: 'x', usage: 'client', ttlMs: 1000 }),
    (e: unknown) => e instanceof KgError && e.code === 'KG_ERR_BAD_REQUEST',
  );
  await assert.rejects(
    ca.signCsr('not a csr', { commonName: 'x', usage: 'client', ttlMs: 1000 }),
    KgError,
  );
});

test('issued certificates never outlive their CA', async () => {
  const ca = await CertificateAuthority.load(await createCa('short', 120_000));
  const issued = await ca.issueKeyAndCert({
    commonName: 'srv',
    usage: 'server',
    ttlMs: 86_400_000,
    dnsNames: ['localhost'],
    ips: ['127.0.0.1'],
  });
  assert.ok(issued.notAfter.getTime() <= Date.now() + 120_000);
  const cert = new X509Certificate(issued.certPem);
  assert.equal(cert.checkHost('localhost'), 'localhost');
  assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
});
