/**
 * Stage 2: `Authorization: Bearer kg_…` → identity. Unknown, expired or
 * revoked → 401. Any other kind of credential (basic auth, a client
 * certificate, a bare Impersonate-User) gets nothing.
 */
import { isKgError, KgError } from '../../common/errors.js';
import type { TokenIdentity } from './identity.js';
import type { TokenStore } from './token-store.js';
import { bearerToken } from './token.js';

const unauthorized =
  'Unauthorized: a valid kubegate token is required; download a fresh kubeconfig from kubegate';

export async function authenticate(
  tokens: TokenStore,
  authorization: string | undefined,
  source?: string,
): Promise<TokenIdentity> {
  const token = bearerToken(authorization);
  if (!token) throw new KgError('KG_ERR_UNAUTHENTICATED', unauthorized);
  let id: TokenIdentity | undefined;
  try {
    id = await tokens.authenticate(token, source);
  } catch (err) {
    if (isKgError(err)) throw err; // 429 for a source past its budget
    // The database cannot answer: fail closed, and say so.
    throw new KgError(
      'KG_ERR_UNAVAILABLE',
      'kubegate cannot verify credentials right now (database unavailable); retry shortly',
      { cause: err, retryAfter: 2 },
    );
  }
  if (!id) throw new KgError('KG_ERR_UNAUTHENTICATED', unauthorized);
  return id;
}
