/**
 * The requests in flight on this replica, so a policy change or a token
 * revocation can end the ones it no longer allows — open watches and exec
 * sessions included (docs/security.md, "Stale grants").
 */
import type { RequestInfo } from './authz/request-info.js';
import type { TokenIdentity } from './authn/token-store.js';

export interface OpenRequest {
  cluster: string;
  identity: TokenIdentity;
  info: RequestInfo;
  /** End it now: the client sees its stream end, and re-authenticates on retry. */
  end(reason: string): void;
}

export class OpenRequests {
  private readonly open = new Set<OpenRequest>();

  add(r: OpenRequest): () => void {
    this.open.add(r);
    return () => this.open.delete(r);
  }

  get size(): number {
    return this.open.size;
  }

  /** End every open request for which `stillAllowed` is false; returns how many ended. */
  sweep(stillAllowed: (r: OpenRequest) => boolean, reason: string): number {
    let n = 0;
    for (const r of [...this.open]) {
      if (!stillAllowed(r)) {
        this.open.delete(r);
        r.end(reason);
        n++;
      }
    }
    return n;
  }
}
