/**
 * Envelope encryption of CA private keys with the master key (AES-256-GCM).
 * The CA name is bound as associated data, so a ciphertext cannot be swapped
 * between CAs.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { KgError } from '../../common/errors.js';

export function parseMasterKey(b64: string): Buffer {
  const key = Buffer.from(b64, 'base64');
  if (key.length !== 32) {
    throw new KgError(
      'KG_ERR_CONFIG',
      'KUBEGATE_MASTER_KEY must be 32 random bytes, base64-encoded (try: openssl rand -base64 32)',
    );
  }
  return key;
}

export function seal(key: Buffer, aad: string, plaintext: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
  return 'v1:' + Buffer.concat([iv, ct, c.getAuthTag()]).toString('base64');
}

export function open(key: Buffer, aad: string, sealed: string): string {
  if (!sealed.startsWith('v1:'))
    throw new KgError('KG_ERR_CONFIG', `unknown key envelope for ${aad}`);
  const raw = Buffer.from(sealed.slice(3), 'base64');
  try {
    const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]).toString('utf8');
  } catch (err) {
    throw new KgError(
      'KG_ERR_CONFIG',
      `cannot decrypt the ${aad} key: the master key does not match the one it was created with`,
      { cause: err },
    );
  }
}
