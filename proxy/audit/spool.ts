/**
 * A durable local spool: append-only JSONL segment files in one directory,
 * each write fsync'd before it is acknowledged. Writers that arrive while a
 * write is in flight share the next write and fsync (group commit), so many
 * events cost one disk flush. Segments are read back oldest first and
 * removed once their content is safe elsewhere.
 *
 * Crash safety: a line is acknowledged only after fdatasync; a crash during
 * a write leaves at most one unterminated line at the end of the segment,
 * which `read` ignores (it was never acknowledged). After a failed write the
 * segment is closed, so later lines never follow a torn one.
 */
import { mkdir, open, readdir, readFile, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

export interface Segment {
  seq: number;
  path: string;
  bytes: number;
}

export interface SegmentContent {
  records: unknown[];
  /** Lines that are not JSON (damaged): the caller keeps them aside. */
  bad: string[];
}

const segmentName = /^(\d{12})\.jsonl$/;

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

interface Pending {
  text: string;
  resolve: (seq: number) => void;
  reject: (err: Error) => void;
}

export class Spool {
  private readonly segments: Segment[] = [];
  private active: { seg: Segment; fh: FileHandle } | undefined;
  private nextSeq = 1;
  private pending: Pending[] = [];
  private flushQueued = false;
  private chain: Promise<unknown> = Promise.resolve();
  private inflight = 0;
  private total = 0;

  private constructor(
    readonly dir: string,
    private readonly segmentBytes: number,
  ) {}

  /** Open (creating) a spool directory. Segments already there are sealed: never appended to. */
  static async open(dir: string, segmentBytes = 8 * 1024 * 1024): Promise<Spool> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const s = new Spool(dir, segmentBytes);
    const names = (await readdir(dir)).filter((n) => segmentName.test(n)).sort();
    for (const name of names) {
      const path = join(dir, name);
      const bytes = (await stat(path)).size;
      const seq = Number(segmentName.exec(name)![1]);
      s.segments.push({ seq, path, bytes });
      s.total += bytes;
      s.nextSeq = seq + 1;
    }
    return s;
  }

  /** Bytes on disk in all segments. */
  get bytes(): number {
    return this.total;
  }

  /** Nothing on disk and nothing on its way there. */
  get isEmpty(): boolean {
    return this.total === 0 && this.inflight === 0;
  }

  /** The segment currently appended to, if any. */
  get activeSeq(): number | undefined {
    return this.active?.seg.seq;
  }

  /** Every segment, oldest first (the active one last). */
  list(): readonly Segment[] {
    return this.segments;
  }

  /**
   * Append text (whole lines, each ending in "\n"). Resolves, with the
   * segment it landed in, once it is fsync'd; rejects if the disk refused it.
   */
  append(text: string): Promise<number> {
    this.inflight++;
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ text, resolve, reject });
      if (!this.flushQueued) {
        this.flushQueued = true;
        void this.serial(() => this.flushPending());
      }
    });
  }

  /** Close the active segment so it can be read and removed; the next append starts a new one. */
  seal(): Promise<void> {
    return this.serial(() => this.closeActive());
  }

  /** Read a sealed segment. An unterminated last line (a write cut by a crash) is skipped. */
  async read(seg: Segment): Promise<SegmentContent> {
    const text = await readFile(seg.path, 'utf8');
    const lines = text.split('\n');
    lines.pop(); // '' after the last newline, or an unacknowledged torn line
    const records: unknown[] = [];
    const bad: string[] = [];
    for (const line of lines) {
      if (line === '') continue;
      try {
        records.push(JSON.parse(line));
      } catch {
        bad.push(line);
      }
    }
    return { records, bad };
  }

  /** Delete a sealed segment once its content is safe elsewhere. */
  remove(seq: number): Promise<void> {
    return this.serial(async () => {
      const i = this.segments.findIndex((s) => s.seq === seq);
      if (i < 0 || this.active?.seg.seq === seq) return;
      const seg = this.segments[i]!;
      await unlink(seg.path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      await syncDir(this.dir);
      this.segments.splice(i, 1);
      this.total -= seg.bytes;
    });
  }

  /** Wait for pending writes, then close the active segment. */
  close(): Promise<void> {
    return this.seal();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async openNew(): Promise<void> {
    const seq = this.nextSeq++;
    const path = join(this.dir, `${String(seq).padStart(12, '0')}.jsonl`);
    const fh = await open(path, 'a', 0o600);
    await syncDir(this.dir); // the new file's directory entry must survive a crash too
    const seg = { seq, path, bytes: 0 };
    this.segments.push(seg);
    this.active = { seg, fh };
  }

  private async closeActive(): Promise<void> {
    const a = this.active;
    if (!a) return;
    this.active = undefined;
    await a.fh.close().catch(() => undefined);
    // Count what a failed write may have left behind, so the size stays true.
    const size = await stat(a.seg.path).then(
      (s) => s.size,
      () => 0,
    );
    this.total += size - a.seg.bytes;
    a.seg.bytes = size;
    if (size === 0) {
      await unlink(a.seg.path).catch(() => undefined);
      this.segments.splice(this.segments.indexOf(a.seg), 1);
    }
  }

  private async flushPending(): Promise<void> {
    this.flushQueued = false;
    const group = this.pending;
    this.pending = [];
    if (group.length === 0) return;
    const buf = Buffer.from(group.map((g) => g.text).join(''), 'utf8');
    try {
      if (this.active && this.active.seg.bytes >= this.segmentBytes) await this.closeActive();
      if (!this.active) await this.openNew();
      const a = this.active!;
      await writeAll(a.fh, buf);
      await a.fh.datasync();
      a.seg.bytes += buf.length;
      this.total += buf.length;
      for (const g of group) g.resolve(a.seg.seq);
    } catch (err) {
      await this.closeActive().catch(() => undefined);
      for (const g of group) g.reject(err as Error);
    } finally {
      this.inflight -= group.length;
    }
  }
}
