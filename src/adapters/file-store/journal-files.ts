/**
 * The store's two files on disk, and where each live record's line lies in them.
 *
 * A change is appended to the log at its acknowledged length and fsync-ed; a failed append is cut
 * back off (a rollback). Once the log has grown enough, compaction writes a new snapshot of
 * the live records' lines (copied as bytes, not parsed again) under the next generation, renames
 * it over the old one and starts a fresh log of that generation. A crash at any step leaves a
 * snapshot and a log that read back to the acknowledged records: before the snapshot's rename,
 * the old pair; after it, the new snapshot and a log of the older generation, which is ignored.
 */
import { promises as fs } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import { StoreIoError } from "../../errors.js";
import { io, writeAtomic } from "./io.js";
import { encodeHeader, LOG_FILE, SNAPSHOT_FILE, type JournalFile, type Span } from "./journal.js";

/** Where a live record's line is, and its revision. */
export interface Held extends Span {
  readonly revision: number;
  readonly file: JournalFile;
}

/**
 * The log is compacted once it holds more than this, and more than a quarter of the snapshot: so a
 * start replays at most 1.25 snapshots' worth of lines, and each byte appended is rewritten about
 * four times.
 */
const COMPACT_MIN_BYTES = 1024 * 1024;
const COMPACT_LOG_SHARE = 4;

export interface JournalState {
  readonly generation: number;
  readonly snapshotSize: number;
  readonly logSize: number;
  readonly sessions: Map<string, Held>;
  readonly contexts: Map<string, Held>;
}

export class JournalFiles {
  readonly snapshotPath: string;
  readonly logPath: string;
  private generation: number;
  private snapshotSize: number;
  private logSize: number;
  /** The live records: the store's compare-and-set reads their revisions here. */
  sessions: Map<string, Held>;
  contexts: Map<string, Held>;
  /** A failed append not yet known to be cut off durably. */
  private rollbackPending = false;
  /** The bytes an unfinished compaction copies from; kept until it completes. */
  private compacting: Record<JournalFile, Buffer> | null = null;

  private constructor(
    readonly dir: string,
    private log: FileHandle | null,
    state: JournalState,
  ) {
    this.snapshotPath = path.join(dir, SNAPSHOT_FILE);
    this.logPath = path.join(dir, LOG_FILE);
    this.generation = state.generation;
    this.snapshotSize = state.snapshotSize;
    this.logSize = state.logSize;
    this.sessions = state.sessions;
    this.contexts = state.contexts;
  }

  /** Takes over the files as `state` describes them (the log at `state.logSize`). */
  static async open(dir: string, state: JournalState): Promise<JournalFiles> {
    const logPath = path.join(dir, LOG_FILE);
    const log = await io("open", logPath, () => fs.open(logPath, "r+"));
    return new JournalFiles(dir, log, state);
  }

  /** Writes `text` (whole lines) at the end of the log, durably; resolves with where it starts. */
  async append(text: string): Promise<number> {
    const log = this.log;
    if (log === null || this.rollbackPending || this.compacting !== null) {
      throw new StoreIoError("write", this.logPath, new Error("the log is being repaired"));
    }
    const bytes = Buffer.from(text, "utf8");
    const start = this.logSize;
    try {
      let written = 0;
      while (written < bytes.length) {
        const { bytesWritten } = await io("write", this.logPath, () =>
          log.write(bytes, written, bytes.length - written, start + written),
        );
        written += bytesWritten;
      }
      await io("fsync", this.logPath, () => log.sync());
    } catch (error) {
      // At once, so the file holds only acknowledged lines even while the disk fails (a truncate
      // usually works when fsync does not); made durable by `repair`.
      this.rollbackPending = true;
      await this.rollBack().catch(() => undefined);
      throw error;
    }
    this.logSize += bytes.length;
    return start;
  }

  /** Whether the log has grown enough to be folded into the snapshot. */
  wantsCompaction(): boolean {
    return this.logSize > Math.max(COMPACT_MIN_BYTES, this.snapshotSize / COMPACT_LOG_SHARE);
  }

  /** Folds the log into a new snapshot (see the module comment); resumes an unfinished one. */
  async compact(): Promise<void> {
    this.compacting ??= {
      snapshot: await io("read", this.snapshotPath, () => fs.readFile(this.snapshotPath)),
      log: await io("read", this.logPath, () => fs.readFile(this.logPath)),
    };
    const source = this.compacting;
    const generation = this.generation + 1;
    const header = Buffer.from(encodeHeader(generation), "utf8");
    const parts: Buffer[] = [header];
    let offset = header.length;
    const relocate = (held: Map<string, Held>): Map<string, Held> => {
      const moved = new Map<string, Held>();
      for (const [id, h] of held) {
        parts.push(source[h.file].subarray(h.start, h.start + h.length));
        moved.set(id, { revision: h.revision, file: "snapshot", start: offset, length: h.length });
        offset += h.length;
      }
      return moved;
    };
    const sessions = relocate(this.sessions);
    const contexts = relocate(this.contexts);
    const snapshot = Buffer.concat(parts, offset);
    await writeAtomic(this.snapshotPath, snapshot);
    await this.log?.close().catch(() => undefined);
    this.log = null;
    const fresh = encodeHeader(generation);
    await writeAtomic(this.logPath, fresh);
    this.log = await io("open", this.logPath, () => fs.open(this.logPath, "r+"));
    this.generation = generation;
    this.snapshotSize = snapshot.length;
    this.logSize = Buffer.byteLength(fresh);
    this.sessions = sessions;
    this.contexts = contexts;
    this.compacting = null;
    this.rollbackPending = false;
  }

  /** Makes the files whole after a failure: a pending rollback made durable, a compaction finished. */
  async repair(): Promise<void> {
    if (this.compacting !== null || this.log === null) await this.compact();
    else if (this.rollbackPending) await this.rollBack();
  }

  async close(): Promise<void> {
    await this.log?.close();
    this.log = null;
  }

  private async rollBack(): Promise<void> {
    const log = this.log;
    if (log === null) return;
    await io("truncate", this.logPath, () => log.truncate(this.logSize));
    await io("fsync", this.logPath, () => log.sync());
    this.rollbackPending = false;
  }
}
