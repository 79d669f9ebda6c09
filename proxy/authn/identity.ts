/** Who a valid kubegate token stands for, as a request carries it after authentication. */
export interface TokenIdentity {
  tokenId: string;
  /** SHA-256 of the token: the key revocation notices use. */
  tokenHash: string;
  user: string;
  kind: 'user' | 'robot';
  groups: string[];
  expiresAt: Date;
}
