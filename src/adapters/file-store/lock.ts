/**
 * One process per store directory. A file store checks revisions under per-key queues of its own
 * process, so a second process writing the same directory would break every compare-and-set: the
 * directory is locked by `<dir>/.lock`, created exclusively, holding the owner's pid and host.
 *
 * A lock whose process is gone (same host, pid not running) is stale: it is taken over, and
 * logged. A lock held by a live process, or by another host (which this one cannot check), is
 * refused with `StoreLockedError` naming the holder.
 */
import { promises as fs } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import { isoTime } from "../../clock.js";
import { StoreIoError, StoreLockedError } from "../../errors.js";
import type { StoreLogger } from "../../ports.js";
import { isNotFound } from "./io.js";

export const LOCK_FILE = ".lock";

interface Holder {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
}

/** Takes the directory's lock; resolves with the function that releases it. */
export async function lockDirectory(dir: string, logger: StoreLogger): Promise<() => Promise<void>> {
  const file = path.join(dir, LOCK_FILE);
  const me: Holder = { pid: process.pid, host: hostname(), since: isoTime() };
  const release = async (): Promise<void> => {
    await fs.unlink(file).catch((error: unknown) => {
      if (!isNotFound(error)) logger.warn({ file, err: error }, "session store: cannot remove the lock file");
    });
  };
  // Twice at most: once more after removing a stale lock (another process may win that race).
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      await fs.writeFile(file, `${JSON.stringify(me)}\n`, { flag: "wx", mode: 0o600 });
      return release;
    } catch (error) {
      if (!(error instanceof Error && "code" in error && error.code === "EEXIST")) {
        throw new StoreIoError("lock", file, error);
      }
    }
    const holder = await holderOf(file);
    if (holder !== null && (holder.host !== me.host || alive(holder.pid))) throw new StoreLockedError(dir, holder);
    logger.warn({ file, holder }, "session store: taking over the lock of a stui that is no longer running");
    await fs.unlink(file).catch(() => undefined);
  }
  throw new StoreLockedError(dir, await holderOf(file));
}

async function holderOf(file: string): Promise<Holder | null> {
  try {
    const value: unknown = JSON.parse(await fs.readFile(file, "utf8"));
    if (typeof value !== "object" || value === null) return null;
    const { pid, host, since } = value as Record<string, unknown>;
    return typeof pid === "number" && typeof host === "string"
      ? { pid, host, since: typeof since === "string" ? since : "unknown" }
      : null;
  } catch {
    return null; // unreadable or half written: treated as stale
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return error instanceof Error && "code" in error && error.code === "EPERM";
  }
}
