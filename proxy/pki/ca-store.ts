/**
 * The internal CAs, kept in PostgreSQL with their keys sealed by the master
 * key. `agent` signs agent client certificates; `server` signs the proxy's
 * serving and replica peer certificates. Replicas starting together race to
 * create them; the database decides (ON CONFLICT DO NOTHING, then re-read).
 */
import type { Pool } from '../db/pool.js';
import { CertificateAuthority, createCa } from '../../common/pki.js';
import { open, seal } from './master-key.js';

export type CaName = 'agent' | 'server';

const caTtlMs = 10 * 365 * 86_400_000;

export async function loadOrCreateCa(
  pool: Pool,
  masterKey: Buffer,
  name: CaName,
): Promise<CertificateAuthority> {
  const read = async () =>
    (
      await pool.query<{ cert_pem: string; key_enc: string }>(
        'SELECT cert_pem, key_enc FROM ca_keys WHERE name = $1',
        [name],
      )
    ).rows[0];
  let row = await read();
  if (!row) {
    const fresh = await createCa(`kubegate ${name} CA`, caTtlMs);
    await pool.query(
      'INSERT INTO ca_keys (name, cert_pem, key_enc) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING',
      [name, fresh.certPem, seal(masterKey, `ca:${name}`, fresh.keyPem)],
    );
    row = await read();
  }
  if (!row) throw new Error(`CA ${name} vanished after insert`);
  return CertificateAuthority.load({
    certPem: row.cert_pem,
    keyPem: open(masterKey, `ca:${name}`, row.key_enc),
  });
}

export interface Cas {
  agent: CertificateAuthority;
  server: CertificateAuthority;
}

export async function loadCas(pool: Pool, masterKey: Buffer): Promise<Cas> {
  return {
    agent: await loadOrCreateCa(pool, masterKey, 'agent'),
    server: await loadOrCreateCa(pool, masterKey, 'server'),
  };
}
