/**
 * X.509 helpers shared by proxy and agent: ECDSA P-256 keys, CSRs, a CA that
 * signs them. Node's crypto parses certificates but cannot build them, so we
 * use @peculiar/x509 over WebCrypto. The subject of an issued certificate is
 * always chosen by the signer, never copied from the CSR.
 */
import 'reflect-metadata';
import { X509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
type CryptoKey = webcrypto.CryptoKey;
import * as x509 from '@peculiar/x509';
import { KgError } from './errors.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface KeyPairPem {
  keyPem: string;
  keys: CryptoKeyPair;
}

export async function generateKeyPair(): Promise<KeyPairPem> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { keys, keyPem: toPem(Buffer.from(pkcs8), 'PRIVATE KEY') };
}

function toPem(der: Buffer, label: string): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

async function importKeyPair(keyPem: string): Promise<CryptoKeyPair> {
  const key = createPrivateKey(keyPem);
  const pkcs8 = key.export({ format: 'der', type: 'pkcs8' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, alg, true, ['sign']);
  const jwk = key.export({ format: 'jwk' });
  delete jwk.d;
  const publicKey = await webcrypto.subtle.importKey('jwk', jwk, alg, true, ['verify']);
  return { privateKey, publicKey } as CryptoKeyPair;
}

function serialHex(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x6f) | 0x10; // positive, and no leading zero byte to strip
  return b.toString('hex');
}

export interface CertAndKey {
  certPem: string;
  keyPem: string;
}

/** A fresh self-signed CA. */
export async function createCa(commonName: string, ttlMs: number): Promise<CertAndKey> {
  const { keys, keyPem } = await generateKeyPair();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialHex(),
    name: `CN=${commonName}, O=kubegate`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + ttlMs),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem };
}

/** A CSR for `commonName`, signed by the key pair. */
export async function createCsr(commonName: string, pair: KeyPairPem): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${commonName}`,
    keys: pair.keys,
    signingAlgorithm: alg,
  });
  return csr.toString('pem') + '\n';
}

export type Usage = 'client' | 'server' | 'peer';

export interface IssueOptions {
  commonName: string;
  usage: Usage;
  ttlMs: number;
  dnsNames?: string[];
  ips?: string[];
  uris?: string[];
}

export interface Issued {
  certPem: string;
  serial: string;
  notAfter: Date;
}

/** A CA that can sign: loaded once from PEM. */
export class CertificateAuthority {
  readonly certPem: string;
  private readonly cert: x509.X509Certificate;

  private constructor(
    certPem: string,
    private readonly keys: CryptoKeyPair,
  ) {
    this.certPem = certPem;
    this.cert = new x509.X509Certificate(certPem);
  }

  static async load(ca: CertAndKey): Promise<CertificateAuthority> {
    return new CertificateAuthority(ca.certPem, await importKeyPair(ca.keyPem));
  }

  /**
   * Sign a PEM CSR after verifying its self-signature. The subject and names
   * come from `opts`, never from the CSR.
   */
  async signCsr(csrPem: string, opts: IssueOptions): Promise<Issued> {
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch (err) {
      throw new KgError(
        'KG_ERR_BAD_REQUEST',
        'the certificate signing request is not a valid PEM CSR',
        { cause: err },
      );
    }
    if (!(await csr.verify())) {
      throw new KgError(
        'KG_ERR_BAD_REQUEST',
        'the certificate signing request signature does not verify',
      );
    }
    const publicKey = await csr.publicKey.export(alg, ['verify']);
    return this.issue(publicKey, opts);
  }

  /** Create a key and a certificate for it in one go (serving and peer certs). */
  async issueKeyAndCert(opts: IssueOptions): Promise<CertAndKey & Issued> {
    const pair = await generateKeyPair();
    const issued = await this.issue(pair.keys.publicKey, opts);
    return { ...issued, keyPem: pair.keyPem };
  }

  private async issue(publicKey: CryptoKey, opts: IssueOptions): Promise<Issued> {
    const serial = serialHex();
    const now = Date.now();
    const notAfter = new Date(Math.min(now + opts.ttlMs, this.cert.notAfter.getTime()));
    const names: x509.JsonGeneralName[] = [
      ...(opts.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
      ...(opts.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
      ...(opts.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ];
    const eku =
      opts.usage === 'client'
        ? [x509.ExtendedKeyUsage.clientAuth]
        : opts.usage === 'server'
          ? [x509.ExtendedKeyUsage.serverAuth]
          : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(eku, false),
      await x509.AuthorityKeyIdentifierExtension.create(this.cert, false),
    ];
    if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: `CN=${opts.commonName}`,
      issuer: this.cert.subject,
      notBefore: new Date(now - 60_000),
      notAfter,
      publicKey,
      signingKey: this.keys.privateKey,
      signingAlgorithm: alg,
      extensions,
    });
    return { certPem: cert.toString('pem') + '\n', serial, notAfter };
  }
}

/** Serial (lowercase hex, no leading zeros stripped) and expiry of a PEM cert. */
export function certInfo(certPem: string): { serial: string; notAfter: Date; commonName: string } {
  const c = new X509Certificate(certPem);
  const cn = /CN=([^\n,]+)/.exec(c.subject)?.[1] ?? '';
  return { serial: c.serialNumber.toLowerCase(), notAfter: new Date(c.validTo), commonName: cn };
}
