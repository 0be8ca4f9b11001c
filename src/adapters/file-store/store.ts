/**
 * The embedded session store: one JSON file per record under a private directory.
 *
 *   <dir>/                              mode 0700
 *     sessions/<key>.json               {schema_version: 2, revision, session}, mode 0600
 *     contexts/<key>.json               {schema_version: 2, client_id, image_id}, mode 0600
 *
 * `<key>` is the id's UTF-8 bytes in base64url; an id whose key would exceed file-name limits is
 * named `~<sha256 of the id, base64url>` instead (`~` is outside the base64url alphabet). A
 * client without a context has no file. Every write goes to a unique temp file (`.<key>.<pid>.
 * <n>.tmp`) in the same directory, is fsync-ed, renamed over the target, and the directory is
 * fsync-ed before the promise resolves, so an acknowledged write survives a crash and an
 * unacknowledged one leaves either the old record or a stray temp file (removed on open).
 *
 * One process owns a directory: revisions are checked against the file under a per-key queue,
 * which is atomic within this process only.
 */
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import {
  DecodeError,
  decodeSessionRecordValue,
  fail,
  ImageId,
  type Decoded,
  type SessionStateData,
  type StoreStatus,
} from "../../protocol/index.js";
import { eachInParallel, KeyedQueue } from "../../actors/concurrency.js";
import { DIR_MODE, FILE_MODE, io, readIfExists, removeFile, syncDir, TEMP_FILE, writeAtomic } from "./io.js";
import { PROBE_FILE, WriteGuard, type Prior, type WriteGuardOptions } from "./guard.js";
import { lockDirectory } from "./lock.js";
import { stderrLogger } from "../../logger.js";
import {
  UNREVISIONED,
  type LoadResult,
  type SessionStore,
  type StoreChange,
  type StoreLogger,
  type StoreProblem,
} from "../../ports.js";
import { decodeContextRecord, decodeStoredSession, encodeContextRecord, encodeStoredSession } from "./envelope.js";
import {
  CorruptRecordError,
  InvalidRecordError,
  RevisionConflictError,
  StoreClosedError,
  StoreIoError,
} from "../../errors.js";
import { isoTime } from "../../clock.js";

export interface FileSessionStoreOptions extends WriteGuardOptions {
  readonly dir: string;
  readonly logger?: StoreLogger;
}

/** Files read at once while loading: overlapping reads loaded 100 000 records about 3x faster. */
const LOAD_PARALLEL = 64;
const MAX_KEY_LENGTH = 200;

/** The file-name key of an id (see the module comment). */
export function fileKey(id: string): string {
  const encoded = Buffer.from(id, "utf8").toString("base64url");
  if (encoded.length <= MAX_KEY_LENGTH) return encoded;
  return `~${createHash("sha256").update(id, "utf8").digest("base64url")}`;
}

export class FileSessionStore implements SessionStore {
  private readonly sessionsDir: string;
  private readonly contextsDir: string;
  private readonly queue = new KeyedQueue();
  private readonly guard: WriteGuard;
  private readonly watchers = new Set<(change: StoreChange) => void>();
  private closed = false;
  private unlock: () => Promise<void> = () => Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly logger: StoreLogger,
    options: WriteGuardOptions,
  ) {
    this.sessionsDir = path.join(dir, "sessions");
    this.contextsDir = path.join(dir, "contexts");
    this.guard = new WriteGuard([this.sessionsDir, this.contextsDir], logger, options);
  }

  /**
   * Creates or tightens the directories, takes the directory's lock (`StoreLockedError` when
   * another live process holds it) and removes temp files of writes never acknowledged.
   */
  static async open(options: FileSessionStoreOptions): Promise<FileSessionStore> {
    const store = new FileSessionStore(path.resolve(options.dir), options.logger ?? stderrLogger, options);
    for (const dir of [store.dir, store.sessionsDir, store.contextsDir]) {
      await io("mkdir", dir, () => fs.mkdir(dir, { recursive: true, mode: DIR_MODE }));
      // mkdir leaves an existing directory's mode alone (and applies the umask to a new one).
      await io("chmod", dir, () => fs.chmod(dir, DIR_MODE));
    }
    // Before the temp files are cleaned: they may be another live process's writes in flight.
    store.unlock = await lockDirectory(store.dir, store.logger);
    try {
      await store.removeStaleFiles();
    } catch (error) {
      await store.unlock();
      throw error;
    }
    return store;
  }

  /** Temp files of writes never acknowledged, and a probe left behind by a crash. */
  private async removeStaleFiles(): Promise<void> {
    for (const dir of [this.sessionsDir, this.contextsDir]) {
      const names = await io("readdir", dir, () => fs.readdir(dir));
      const stale = names.filter((name) => TEMP_FILE.test(name) || name === PROBE_FILE);
      for (const name of stale) {
        const file = path.join(dir, name);
        this.logger.warn({ file }, "session store: removing the temp file of an unacknowledged write");
        await io("unlink", file, () => fs.unlink(file));
      }
      if (stale.length > 0) await syncDir(dir);
    }
  }

  async load(): Promise<LoadResult> {
    this.checkOpen();
    const problems: StoreProblem[] = [];
    const records = await this.loadDir(this.sessionsDir, decodeStoredSession, (r) => r.session.session_id, problems);
    const contexts = await this.loadDir(this.contextsDir, decodeContextRecord, (r) => r.client_id, problems);
    const byClient = new Map(contexts.map((c) => [c.client_id, { imageId: c.image_id, revision: c.revision }]));
    return { records, contexts: byClient, problems };
  }

  put(session: SessionStateData, expectedRevision: number | null): Promise<number> {
    // Validated before writing, so that nothing is stored that load() would then refuse.
    const valid = decodeSessionRecordValue(session);
    if (!valid.ok) {
      return Promise.reject(new InvalidRecordError(`session: ${valid.error.message}`, { cause: valid.error }));
    }
    const target = this.sessionFile(valid.value.session_id);
    return this.serialized(target, async (prior) => {
      const current = await this.currentRevision(target, prior);
      checkRevision(valid.value.session_id, expectedRevision, current);
      const revision = current + 1;
      await writeAtomic(target, encodeStoredSession(revision, valid.value));
      this.changed({ kind: "session", sessionId: valid.value.session_id, stored: { session: valid.value, revision } });
      return revision;
    });
  }

  delete(sessionId: string, expectedRevision: number | null): Promise<void> {
    const target = this.sessionFile(sessionId);
    return this.serialized(target, async (prior) => {
      const current = await this.currentRevision(target, prior);
      checkRevision(sessionId, expectedRevision, current);
      await removeFile(target);
      this.changed({ kind: "session", sessionId, stored: null });
    });
  }

  putContext(clientId: string, imageId: string | null, expectedRevision: number | null): Promise<number> {
    if (clientId === "") return Promise.reject(new InvalidRecordError("client_id: expected a non-empty string"));
    if (imageId !== null && !ImageId.safeParse(imageId).success) {
      return Promise.reject(new InvalidRecordError(`image_id: not an image id: ${JSON.stringify(imageId)}`));
    }
    const target = path.join(this.contextsDir, `${fileKey(clientId)}.json`);
    return this.serialized(target, async (prior) => {
      const current = prior.bytes === null ? UNREVISIONED : contextRevision(prior.bytes);
      checkRevision(`context of ${clientId}`, expectedRevision, current);
      if (imageId === null) {
        await removeFile(target);
        this.changed({ kind: "context", clientId, context: null });
        return UNREVISIONED;
      }
      const revision = current + 1;
      await writeAtomic(target, encodeContextRecord(clientId, imageId, revision));
      this.changed({ kind: "context", clientId, context: { imageId, revision } });
      return revision;
    });
  }

  watch(listener: (change: StoreChange) => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  status(): StoreStatus {
    return this.guard.status();
  }

  ensureWritable(): Promise<void> {
    return this.guard.ensureWritable();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.idle();
    this.guard.close();
    await this.unlock();
  }

  // Internals --------------------------------------------------------------------------------

  private sessionFile(sessionId: string): string {
    return path.join(this.sessionsDir, `${fileKey(sessionId)}.json`);
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  /**
   * Runs the write `task` after every earlier task on the same file, so a compare-and-set is not
   * interleaved, through the guard that rolls a failed write back (see `guard.ts`).
   */
  private serialized<T>(file: string, task: (prior: Prior) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    return this.queue.run(file, () => this.guard.run(file, task));
  }

  /** Tells the watchers of a change now durable; a watcher that throws does not undo it. */
  private changed(change: StoreChange): void {
    for (const watcher of this.watchers) {
      try {
        watcher(change);
      } catch (error) {
        this.logger.error({ err: error, change: change.kind }, "session store: a watcher failed");
      }
    }
  }

  /** The stored revision; a record that no longer decodes is moved aside and counts as absent. */
  private async currentRevision(file: string, prior: Prior): Promise<number> {
    if (prior.bytes === null) return UNREVISIONED;
    const decoded = decodeStoredSession(prior.bytes);
    if (decoded.ok) return decoded.value.revision;
    await this.moveAside(file, new CorruptRecordError(file, decoded.error));
    prior.bytes = null;
    return UNREVISIONED;
  }

  /**
   * Decodes every record of `dir`, `LOAD_PARALLEL` files at a time, moving aside the ones that
   * fail, including one under another id's name. Records and problems come back in file-name order.
   */
  private async loadDir<T>(
    dir: string,
    decode: (bytes: Uint8Array) => Decoded<T>,
    idOf: (record: T) => string,
    problems: StoreProblem[],
  ): Promise<T[]> {
    const names = (await io("readdir", dir, () => fs.readdir(dir)))
      .filter((name) => name.endsWith(".json") && !name.startsWith("."))
      .sort();
    const loaded: Array<T | undefined> = new Array<T | undefined>(names.length);
    const found: Array<StoreProblem | undefined> = new Array<StoreProblem | undefined>(names.length);
    await eachInParallel(names, LOAD_PARALLEL, async (name, index) => {
      const file = path.join(dir, name);
      const bytes = await this.readRecord(file);
      if (!(bytes instanceof Uint8Array)) {
        found[index] = bytes;
        return;
      }
      let decoded = decode(bytes);
      if (decoded.ok && name !== `${fileKey(idOf(decoded.value))}.json`) {
        // Later writes of that id would go to another file: two records for one key.
        const id = JSON.stringify(idOf(decoded.value));
        decoded = fail(new DecodeError("Invalid", "", `the id ${id} does not match the file name`));
      }
      if (decoded.ok) loaded[index] = decoded.value;
      else found[index] = await this.moveAside(file, new CorruptRecordError(file, decoded.error));
    });
    for (const problem of found) if (problem !== undefined) problems.push(problem);
    return loaded.filter((record): record is T => record !== undefined);
  }

  /** One record's bytes, its mode made private if it was not; an unreadable file is a problem, left in place. */
  private async readRecord(file: string): Promise<Uint8Array | StoreProblem> {
    let handle: FileHandle | undefined;
    try {
      handle = await fs.open(file, "r");
      const mode = (await handle.stat()).mode & 0o777;
      const bytes = await handle.readFile();
      if (mode !== FILE_MODE) await this.tighten(handle, file, mode);
      return bytes;
    } catch (cause) {
      const error = new StoreIoError("read", file, cause);
      this.logger.error({ file, err: error }, "session store: cannot read a record; it is left in place");
      return { kind: "Unreadable", file, error };
    } finally {
      await handle?.close();
    }
  }

  /** A record left readable by others (an older STUI, a copy) is made private again. */
  private async tighten(handle: FileHandle, file: string, mode: number): Promise<void> {
    try {
      await handle.chmod(FILE_MODE);
      this.logger.warn({ file, mode: mode.toString(8) }, "session store: tightened a record's mode to 0600");
    } catch (cause) {
      this.logger.warn({ file, err: cause }, "session store: cannot tighten a record's mode");
    }
  }

  /** Never deletes: the file is renamed to `<name>.corrupt-<timestamp>` for someone to look at. */
  private async moveAside(file: string, error: CorruptRecordError): Promise<StoreProblem> {
    const stamp = isoTime().replace(/[:.]/g, "-");
    let movedTo: string | null = null;
    let where: string;
    try {
      let aside = `${file}.corrupt-${stamp}`;
      for (let n = 1; (await readIfExists(aside)) !== null; n += 1) aside = `${file}.corrupt-${stamp}-${n}`;
      await fs.rename(file, aside);
      movedTo = aside;
      await syncDir(path.dirname(file));
      where = `moved aside to ${aside}`;
    } catch (cause) {
      where = `${movedTo === null ? "left in place" : `moved aside to ${movedTo}`} (${String(cause)})`;
    }
    this.logger.error(
      { file, movedTo, err: error.decodeError },
      `session store: corrupt record ${file}: ${error.decodeError.message}; ${where}`,
    );
    return { kind: "CorruptRecord", file, movedTo, error };
  }
}

/** A context file's revision; one that does not decode counts as absent (it is rewritten whole). */
function contextRevision(bytes: Uint8Array): number {
  const decoded = decodeContextRecord(bytes);
  return decoded.ok ? decoded.value.revision : UNREVISIONED;
}

function checkRevision(key: string, expected: number | null, actual: number): void {
  if (expected !== null && expected !== actual) throw new RevisionConflictError(key, expected, actual);
}
