/**
 * The file operations the embedded store is built from, each failing with a `StoreIoError` that
 * names the operation: read a file if it exists, write one atomically (temp file, fsync, rename,
 * fsync of the directory), remove one durably.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { StoreIoError } from "../../errors.js";

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;
/** The temp files of writes: `.<name>.<pid>.<n>.<random>.tmp`. */
export const TEMP_FILE = /^\..*\.tmp$/;

let tempCounter = 0;

export async function readIfExists(file: string): Promise<Uint8Array | null> {
  try {
    return await fs.readFile(file);
  } catch (cause) {
    if (isNotFound(cause)) return null;
    throw new StoreIoError("read", file, cause);
  }
}

/**
 * Writes `data` to a unique temp file in the target's directory, fsyncs it, renames it over the
 * target and fsyncs the directory. A failure before the rename leaves the target as it was; one
 * after it (the directory's fsync) leaves the new content in place but not known to be durable.
 */
export async function writeAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(target);
  tempCounter += 1;
  const name = `.${path.basename(target, ".json")}.${process.pid}.${tempCounter}.${randomBytes(4).toString("hex")}.tmp`;
  const temp = path.join(dir, name);
  try {
    const handle = await fs.open(temp, "wx", FILE_MODE);
    try {
      await handle.chmod(FILE_MODE); // exact, whatever the umask made of the create mode
      await handle.writeFile(data);
      await io("fsync", temp, () => handle.sync());
    } finally {
      await handle.close();
    }
    await fs.rename(temp, target);
  } catch (cause) {
    await fs.rm(temp, { force: true }).catch(() => undefined);
    throw cause instanceof StoreIoError ? cause : new StoreIoError("write", target, cause);
  }
  await syncDir(dir);
}

/** Removes `target` (absent is fine) and fsyncs its directory. */
export async function removeFile(target: string): Promise<void> {
  try {
    await fs.unlink(target);
  } catch (cause) {
    if (isNotFound(cause)) return;
    throw new StoreIoError("unlink", target, cause);
  }
  await syncDir(path.dirname(target));
}

/** Makes a rename or unlink in `dir` durable. */
export async function syncDir(dir: string): Promise<void> {
  await io("fsync", dir, async () => {
    const handle = await fs.open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  });
}

export async function io<T>(operation: string, file: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (cause) {
    throw cause instanceof StoreIoError ? cause : new StoreIoError(operation, file, cause);
  }
}

export function isNotFound(error: unknown): boolean {
  return error instanceof Error && "code" in error && error.code === "ENOENT";
}

export function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}
