/**
 * What keeps the embedded store's answers true when the disk fails (an fsync's EIO, a full disk).
 *
 * Every write runs through `WriteGuard.run` with the file's content from before it. If the write
 * fails, that content is put back (a rollback: a failure after the rename has already replaced
 * the file) and the store becomes degraded: later writes are refused with `StoreUnavailableError`
 * (no half-done change can follow a failed one) until a probe succeeds, a real write of a probe
 * file in each directory, made once the rollbacks themselves are durable. Probes run on a timer
 * while degraded and before a write, so a request retried once the disk works again succeeds.
 *
 * Nothing acknowledged is lost: an acknowledged write was fsync-ed, and a rollback only restores
 * what was there before a write that was never acknowledged.
 */
import path from "node:path";
import { readIfExists, removeFile, sameBytes, syncDir, writeAtomic } from "./io.js";
import { type StoreLogger } from "../../ports.js";
import { StoreIoError, StoreUnavailableError } from "../../errors.js";
import type { StoreStatus } from "../../protocol/index.js";
import { isoTime } from "../../clock.js";

/** A file's content before a write; a task that moves a corrupt file aside sets `bytes` to null. */
export interface Prior {
  bytes: Uint8Array | null;
}

export interface WriteGuardOptions {
  /** How often a degraded store probes the disk. @default 1000 */
  readonly probeIntervalMs?: number;
}

/** The probe's file in each directory: ignored by the loader (a dot file), removed by `open` if left. */
export const PROBE_FILE = ".probe";

export class WriteGuard {
  private degraded: { readonly since: string; readonly reason: string } | null = null;
  /** Files whose rollback is not yet known to be durable, with the content they must have. */
  private readonly rollbacks = new Map<string, Uint8Array | null>();
  private probing: Promise<boolean> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly probeIntervalMs: number;

  constructor(
    /** The directories written to: each is probed. */
    private readonly dirs: readonly string[],
    private readonly logger: StoreLogger,
    options: WriteGuardOptions = {},
  ) {
    this.probeIntervalMs = options.probeIntervalMs ?? 1000;
  }

  status(): StoreStatus {
    const d = this.degraded;
    return d === null
      ? { writable: true, degraded_since: null, reason: null }
      : { writable: false, degraded_since: d.since, reason: d.reason };
  }

  /**
   * Runs a write of `file` (already serialized with the file's other writes): refused while
   * degraded, rolled back and degrading when it fails with an I/O error.
   */
  async run<T>(file: string, task: (prior: Prior) => Promise<T>): Promise<T> {
    await this.ensureWritable();
    const prior: Prior = { bytes: null };
    try {
      prior.bytes = await readIfExists(file);
      return await task(prior);
    } catch (error) {
      if (!(error instanceof StoreIoError)) throw error;
      this.rollbacks.set(file, prior.bytes);
      // At once, so the file holds its old content even while the disk is failing (the rename
      // of the rollback usually works when only fsync fails); made durable by a later probe.
      await this.rollBack(file);
      this.degrade(error);
      throw error;
    }
  }

  /** Resolves once writes are taken (a degraded store probes first); else `StoreUnavailableError`. */
  async ensureWritable(): Promise<void> {
    if (this.degraded !== null && !(await this.probe())) throw new StoreUnavailableError(this.status());
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private degrade(error: StoreIoError): void {
    if (this.degraded !== null) return;
    this.degraded = { since: isoTime(), reason: error.failure };
    this.logger.error(
      { err: error, reason: this.degraded.reason, pending_rollbacks: [...this.rollbacks.keys()] },
      `session store: a write failed (${this.degraded.reason}); it was rolled back and writes are refused until a probe write succeeds`,
    );
    this.timer = setInterval(() => void this.probe(), this.probeIntervalMs);
    this.timer.unref();
  }

  /**
   * One probe at a time (writes arriving meanwhile share it); `true` once the store is writable
   * again. A write waits for a probe of its own, so the first retry after the disk recovers works.
   */
  private probe(): Promise<boolean> {
    if (this.degraded === null) return Promise.resolve(true);
    this.probing ??= this.tryProbe().finally(() => {
      this.probing = null;
    });
    return this.probing;
  }

  private async tryProbe(): Promise<boolean> {
    for (const file of [...this.rollbacks.keys()]) if (!(await this.rollBack(file))) return false;
    try {
      for (const dir of this.dirs) {
        const probe = path.join(dir, PROBE_FILE);
        await writeAtomic(probe, `${process.pid} ${isoTime()}\n`);
        await removeFile(probe);
      }
    } catch {
      return false;
    }
    const since = this.degraded?.since;
    this.degraded = null;
    this.close();
    this.logger.info({ degraded_since: since }, "session store: writable again (a probe write succeeded)");
    return true;
  }

  /** Puts back the content `file` had before a failed write, durably; `true` when done. */
  private async rollBack(file: string): Promise<boolean> {
    const wanted = this.rollbacks.get(file);
    if (wanted === undefined) return true;
    try {
      const now = await readIfExists(file);
      if (sameBytes(now, wanted)) await syncDir(path.dirname(file));
      else if (wanted === null) await removeFile(file);
      else await writeAtomic(file, wanted);
      this.rollbacks.delete(file);
      return true;
    } catch {
      return false;
    }
  }
}
