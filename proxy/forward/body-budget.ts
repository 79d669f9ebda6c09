/**
 * How many request-body bytes this replica holds in memory, per identity and
 * in total (issue #17, item 7). A body is held only where it must be read
 * whole before it is forwarded: a body of unknown length (chunked, or HTTP/2
 * without content-length), held so that one over the size limit never
 * crosses the tunnel, and a request the approval gate must fingerprint.
 * Every held byte is charged here while it is held; a charge beyond either
 * bound is refused. A body of unknown length is then streamed to the tunnel
 * instead, and a streamed body is charged for the bytes read from the client
 * that the tunnel has not taken yet (it is read as it arrives, so nothing
 * waits unaccounted in HTTP/2 flow-control windows); past the bound it is
 * refused with a 429, as is a gated body the approval gate cannot hold.
 *
 * Measured before (issue #17): one user's 200 HTTP/2 streams, each sending
 * 2 MiB with no content-length and never finishing, took a replica from
 * 100 MiB to 555 MiB RSS, and 630 MiB stayed after the streams closed.
 */

export class BodyBudget {
  private readonly byIdentity = new Map<string, number>();
  private total = 0;

  constructor(
    readonly perIdentity: number,
    readonly perReplica: number,
  ) {}

  /** Bytes held now, in total or for one identity. */
  held(identity?: string): number {
    return identity === undefined ? this.total : (this.byIdentity.get(identity) ?? 0);
  }

  /** A running charge for one request's body, released in one go. */
  lease(identity: string): BodyLease {
    return new BodyLease(this, identity);
  }

  /** @internal */
  take(identity: string, n: number): boolean {
    const mine = this.byIdentity.get(identity) ?? 0;
    if (mine + n > this.perIdentity || this.total + n > this.perReplica) return false;
    this.byIdentity.set(identity, mine + n);
    this.total += n;
    return true;
  }

  /** @internal */
  give(identity: string, n: number): void {
    if (n <= 0) return;
    const left = (this.byIdentity.get(identity) ?? 0) - n;
    if (left > 0) this.byIdentity.set(identity, left);
    else this.byIdentity.delete(identity);
    this.total = Math.max(0, this.total - n);
  }
}

export class BodyLease {
  private bytes = 0;
  constructor(
    private readonly budget: BodyBudget,
    readonly identity: string,
  ) {}

  get held(): number {
    return this.bytes;
  }

  get budgetPerIdentity(): number {
    return this.budget.perIdentity;
  }

  /** Charge `n` more bytes; false (nothing charged) when a bound would be passed. */
  add(n: number): boolean {
    if (!this.budget.take(this.identity, n)) return false;
    this.bytes += n;
    return true;
  }

  /** Make the charge exactly `n` bytes; false (unchanged) when a bound would be passed. */
  setTo(n: number): boolean {
    if (n > this.bytes) return this.add(n - this.bytes);
    this.budget.give(this.identity, this.bytes - n);
    this.bytes = n;
    return true;
  }

  /** Give back everything this lease holds (idempotent). */
  release(): void {
    this.budget.give(this.identity, this.bytes);
    this.bytes = 0;
  }
}

/** The budget key of an identity: robots and users are distinct subjects. */
export function budgetKey(identity: { user: string; kind?: string } | undefined): string {
  return identity ? `${identity.kind ?? 'user'}:${identity.user}` : 'anonymous:';
}
