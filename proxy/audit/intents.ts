/**
 * Strict mode's write-ahead record. Before a request is forwarded, its event
 * (stage RequestReceived) is fsync'd here; once its ResponseComplete event is
 * durable (in the database or the event spool) the record is no longer
 * needed, and a segment whose records are all done is deleted.
 *
 * Segments left by a previous process are *orphans*: that process died with
 * those requests in flight. They are inserted, after the event spool has
 * been replayed, only for requests with no stage in the log at all — so a
 * forwarded request always has an event, even after `kill -9`.
 */
import { Spool, type Segment, type SegmentContent } from './spool.js';
import type { AuditEvent } from './event.js';

export class IntentJournal {
  private readonly pending = new Map<string, number>();
  private readonly counts = new Map<number, number>();
  /** IDs whose completion arrived while their intent was still being written. */
  private readonly writing = new Set<string>();
  private readonly doneEarly = new Set<string>();
  private orphanSegments: Segment[];

  private constructor(private readonly spool: Spool) {
    this.orphanSegments = [...spool.list()];
  }

  static async open(dir: string, segmentBytes = 1024 * 1024): Promise<IntentJournal> {
    return new IntentJournal(await Spool.open(dir, segmentBytes));
  }

  get bytes(): number {
    return this.spool.bytes;
  }

  /** Requests forwarded whose completion is not yet durable. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Persist the intent; resolves after fsync. */
  async write(e: AuditEvent): Promise<void> {
    this.writing.add(e.auditID);
    let seq: number;
    try {
      seq = await this.spool.append(JSON.stringify(e) + '\n');
    } finally {
      this.writing.delete(e.auditID);
    }
    if (this.doneEarly.delete(e.auditID)) {
      this.release(seq);
      return;
    }
    this.pending.set(e.auditID, seq);
    this.counts.set(seq, (this.counts.get(seq) ?? 0) + 1);
  }

  /** The request's ResponseComplete is durable: its intent may go. */
  done(auditId: string): void {
    const seq = this.pending.get(auditId);
    if (seq === undefined) {
      if (this.writing.has(auditId)) this.doneEarly.add(auditId);
      return;
    }
    this.pending.delete(auditId);
    this.release(seq, -1);
  }

  private release(seq: number, delta = 0): void {
    const n = (this.counts.get(seq) ?? 0) + delta;
    if (n > 0) this.counts.set(seq, n);
    else this.counts.delete(seq);
    // Sealed segments (of this process) with nothing pending are deleted.
    for (const s of this.spool.list()) {
      if (s.seq === this.spool.activeSeq || this.counts.has(s.seq)) continue;
      if (this.orphanSegments.includes(s)) continue;
      void this.spool.remove(s.seq).catch(() => undefined);
    }
  }

  orphans(): readonly Segment[] {
    return this.orphanSegments;
  }

  readOrphan(seg: Segment): Promise<SegmentContent> {
    return this.spool.read(seg);
  }

  async removeOrphan(seg: Segment): Promise<void> {
    await this.spool.remove(seg.seq);
    this.orphanSegments = this.orphanSegments.filter((s) => s !== seg);
  }

  /**
   * Clean shutdown: with nothing in flight, no segment is needed any more.
   * Otherwise they stay, and the next start treats them as orphans.
   */
  async close(): Promise<void> {
    await this.spool.close();
    if (this.pending.size > 0) return;
    for (const s of [...this.spool.list()]) {
      if (!this.orphanSegments.includes(s)) await this.spool.remove(s.seq);
    }
  }
}
