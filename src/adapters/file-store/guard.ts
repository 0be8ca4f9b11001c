/**
 * What keeps the embedded store's answers true when the disk fails (an fsync's EIO, a full disk).
 *
 * A write that fails with an I/O error has been rolled back by the store (the log cut back to
 * its last acknowledged length) and the store becomes degraded: later writes are refused with
 * `StoreUnavailableError` (no half-done change can follow a failed one) until a probe succeeds:
 * the store's `repair` (the rollback made durable, an unfinished compaction finished) and a real
 * write of a probe file. Probes run on a timer while degraded and before a write, so a request
 * retried once the disk works again succeeds.
 *
 * Nothing acknowledged is lost: an acknowledged write was fsync-ed, and a rollback only removes a
 * write that was never acknowledged.
 */
import path from "node:path";
import { removeFile, writeAtomic } from "./io.js";
import { type StoreLogger } from "../../ports.js";
import { StoreIoError, StoreUnavailableError } from "../../errors.js";
import type { StoreStatus } from "../../protocol/index.js";
import { isoTime } from "../../clock.js";

export interface WriteGuardOptions {
  /** How often a degraded store probes the disk. @default 1000 */
  readonly probeIntervalMs?: number;
}

/** The probe's file: removed by `open` if a crash left it. */
export const PROBE_FILE = ".probe";

export class WriteGuard {
  private degraded: { readonly since: string; readonly reason: string } | null = null;
  private probing: Promise<boolean> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly probeIntervalMs: number;

  constructor(
    /** The store's directory, where the probe file is written. */
    private readonly dir: string,
    /** Makes the store's files whole again after a failure; rejects while the disk still fails. */
    private readonly repair: () => Promise<void>,
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

  /** Runs a write: refused while degraded, degrading when it fails with an I/O error. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.ensureWritable();
    try {
      return await task();
    } catch (error) {
      if (error instanceof StoreIoError) this.degrade(error);
      throw error;
    }
  }

  /** Resolves once writes are taken (a degraded store probes first); else `StoreUnavailableError`. */
  async ensureWritable(): Promise<void> {
    if (this.degraded !== null && !(await this.probe())) throw new StoreUnavailableError(this.status());
  }

  degrade(error: StoreIoError): void {
    if (this.degraded !== null) return;
    this.degraded = { since: isoTime(), reason: error.failure };
    this.logger.error(
      { err: error, reason: this.degraded.reason },
      `session store: a write failed (${this.degraded.reason}); it was rolled back and writes are refused until a probe write succeeds`,
    );
    this.timer = setInterval(() => void this.probe(), this.probeIntervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
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
    try {
      await this.repair();
      const probe = path.join(this.dir, PROBE_FILE);
      await writeAtomic(probe, `${process.pid} ${isoTime()}\n`);
      await removeFile(probe);
    } catch {
      return false;
    }
    const since = this.degraded?.since;
    this.degraded = null;
    this.close();
    this.logger.info({ degraded_since: since }, "session store: writable again (a probe write succeeded)");
    return true;
  }
}
