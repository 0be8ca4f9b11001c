/**
 * Opening a store directory: the old one-file-per-record layout migrated, the snapshot and the
 * log read and replayed, and what a crash or damage left made whole before the first write:
 *
 * - a log cut off mid-line (a crash during an append that was never acknowledged): cut back to
 *   its last whole line, with a warning;
 * - a log of an older generation than the snapshot (a crash during compaction): ignored, replaced;
 * - a line that does not decode: copied to `corrupt-<time>.jsonl` for someone to look at, reported
 *   (`file:line`), and compacted out; the other records load;
 * - a header of another format, or a log newer than its snapshot: refused with `StoreFormatError`,
 *   nothing touched, since guessing could lose records.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { isoTime } from "../../clock.js";
import { CorruptRecordError, StoreFormatError, StoreIoError } from "../../errors.js";
import type { LoadResult, StoredContext, StoreLogger, StoreProblem } from "../../ports.js";
import { DecodeError } from "../../protocol/index.js";
import { encodeContextRecord, encodeLegacySession, encodeStoredSession } from "./envelope.js";
import { DIR_MODE, FILE_MODE, io, isNotFound, readIfExists, syncDir, writeAtomic } from "./io.js";
import { JournalFiles, type Held, type JournalState } from "./journal-files.js";
import {
  encodeHeader,
  LOG_FILE,
  readJournal,
  replay,
  SNAPSHOT_FILE,
  type JournalContents,
  type JournalFile,
  type Located,
  type Replayed,
} from "./journal.js";
import { hasLegacyLayout, LEGACY_DIRS, readLegacy } from "./legacy.js";

const FIRST_GENERATION = 1;

export interface Opened {
  readonly files: JournalFiles;
  readonly loaded: LoadResult;
}

/** A file-name-safe timestamp. */
const stamp = (): string => isoTime().replace(/[:.]/g, "-");

export async function openJournal(dir: string, logger: StoreLogger): Promise<Opened> {
  const migrationProblems = await migrateLegacy(dir, logger);
  const snapshotPath = path.join(dir, SNAPSHOT_FILE);
  const logPath = path.join(dir, LOG_FILE);
  let snapshotBytes = await readPrivate(snapshotPath, logger);
  let logBytes = await readPrivate(logPath, logger);
  if (snapshotBytes === null) {
    if (logBytes !== null) {
      throw new StoreFormatError(logPath, `there is no ${SNAPSHOT_FILE} beside it, which it is a log of`);
    }
    snapshotBytes = Buffer.from(encodeHeader(FIRST_GENERATION), "utf8");
    await writeAtomic(logPath, snapshotBytes);
    await writeAtomic(snapshotPath, snapshotBytes);
    logBytes = snapshotBytes;
  }
  const snapshot = readOrRefuse(snapshotPath, snapshotBytes);
  let log = logBytes === null ? null : readOrRefuse(logPath, logBytes);
  let logSize = logBytes?.length ?? 0;
  if (log !== null && log.generation > snapshot.generation) {
    throw new StoreFormatError(
      logPath,
      `its generation ${log.generation} is newer than ${SNAPSHOT_FILE}'s ${snapshot.generation}: that is not the snapshot it follows`,
    );
  }
  if (log === null || log.generation < snapshot.generation) {
    // A compaction was cut short after its snapshot was in place: every line of the log is in it.
    if (log !== null) logger.info({ file: logPath }, "session store: replacing the log of a finished compaction");
    const fresh = encodeHeader(snapshot.generation);
    await writeAtomic(logPath, fresh);
    log = null;
    logSize = Buffer.byteLength(fresh);
  } else if (log.tornAt !== null) {
    logger.warn(
      { file: logPath, at: log.tornAt, cut: logSize - log.tornAt },
      "session store: the log ends in a line cut short (a write that was never acknowledged); cutting it off",
    );
    await cutLog(logPath, log.tornAt);
    logSize = log.tornAt;
  }
  const replayed = replay(snapshot, log);
  const corrupt = corruptLines(replayed, snapshot, snapshotBytes);

  const state: JournalState = {
    generation: snapshot.generation,
    snapshotSize: snapshotBytes.length,
    logSize,
    sessions: held(replayed.sessions),
    contexts: held(replayed.contexts),
  };
  const files = await JournalFiles.open(dir, state);
  const problems = [...migrationProblems];
  if (corrupt.length > 0) {
    const sources = { snapshot: snapshotBytes, log: logBytes ?? Buffer.alloc(0) };
    problems.push(...(await setAside(dir, files, corrupt, sources, logger)));
  }
  return { files, loaded: loadResult(replayed, problems) };
}

/** The records as the files hold them now, for a later `load()`: read only, nothing repaired. */
export async function readRecords(files: JournalFiles): Promise<LoadResult> {
  const snapshot = readOrRefuse(
    files.snapshotPath,
    await io("read", files.snapshotPath, () => fs.readFile(files.snapshotPath)),
  );
  const log = readOrRefuse(files.logPath, await io("read", files.logPath, () => fs.readFile(files.logPath)));
  const replayed = replay(snapshot, log.generation === snapshot.generation ? log : null);
  const problems = replayed.corrupt.map((line): StoreProblem => {
    const file = lineName(files, line);
    return { kind: "CorruptRecord", file, movedTo: null, error: new CorruptRecordError(file, line.error) };
  });
  return loadResult(replayed, problems);
}

function loadResult(replayed: Replayed, problems: StoreProblem[]): LoadResult {
  const contexts = new Map<string, StoredContext>();
  for (const { value } of replayed.contexts.values()) {
    contexts.set(value.client_id, { imageId: value.image_id, revision: value.revision });
  }
  return { records: Array.from(replayed.sessions.values(), (l) => l.value), contexts, problems };
}

/** How a problem names a line: `<dir>/log.jsonl:17`. */
const lineName = (files: JournalFiles, line: { readonly file: JournalFile; readonly number: number }): string =>
  `${line.file === "log" ? files.logPath : files.snapshotPath}:${line.number}`;

function readOrRefuse(file: string, bytes: Buffer): JournalContents {
  const contents = readJournal(bytes);
  if (typeof contents === "string") throw new StoreFormatError(file, contents);
  return contents;
}

const held = <T extends { readonly revision: number }>(records: Map<string, Located<T>>): Map<string, Held> => {
  const out = new Map<string, Held>();
  for (const [id, l] of records)
    out.set(id, { revision: l.value.revision, file: l.file, start: l.start, length: l.length });
  return out;
};

interface CorruptLine {
  readonly file: JournalFile;
  readonly number: number;
  readonly start: number;
  readonly length: number;
  readonly error: DecodeError;
}

/** The lines that did not decode, with a snapshot's unfinished last line (it was renamed whole). */
function corruptLines(replayed: Replayed, snapshot: JournalContents, bytes: Buffer): CorruptLine[] {
  const lines: CorruptLine[] = [...replayed.corrupt];
  if (snapshot.tornAt !== null) {
    const number = snapshot.entries.length + snapshot.corrupt.length + 2;
    const error = new DecodeError("NotJson", "", "the file ends in a line without its newline");
    lines.push({ file: "snapshot", number, start: snapshot.tornAt, length: bytes.length - snapshot.tornAt, error });
  }
  return lines;
}

/**
 * Copies the corrupt lines to `corrupt-<time>.jsonl` and compacts them out of the store. When
 * that cannot be written they stay where they are (skipped at every load) and `movedTo` is null.
 */
async function setAside(
  dir: string,
  files: JournalFiles,
  lines: readonly CorruptLine[],
  sources: Record<JournalFile, Buffer>,
  logger: StoreLogger,
): Promise<StoreProblem[]> {
  const aside = path.join(dir, `corrupt-${stamp()}.jsonl`);
  let movedTo: string | null = null;
  let where: string;
  try {
    const bytes = lines.map((l) => {
      const line = sources[l.file].subarray(l.start, l.start + l.length);
      return line.at(-1) === 0x0a ? line : Buffer.concat([line, Buffer.from("\n")]);
    });
    await writeAtomic(aside, Buffer.concat(bytes));
    await files.compact();
    movedTo = aside;
    where = `copied to ${aside} and removed from the store`;
  } catch (cause) {
    where = `left in place (${String(cause)})`;
  }
  return lines.map((l) => {
    const file = lineName(files, l);
    const error = new CorruptRecordError(file, l.error);
    logger.error(
      { file, movedTo, err: l.error },
      `session store: corrupt record ${file}: ${l.error.message}; ${where}`,
    );
    return { kind: "CorruptRecord", file, movedTo, error };
  });
}

/** Cuts the log back to `length` bytes, durably. */
async function cutLog(file: string, length: number): Promise<void> {
  const handle = await io("open", file, () => fs.open(file, "r+"));
  try {
    await io("truncate", file, () => handle.truncate(length));
    await io("fsync", file, () => handle.sync());
  } finally {
    await handle.close();
  }
}

/** A store file's bytes (null when absent), its mode made private if it was not. */
async function readPrivate(file: string, logger: StoreLogger): Promise<Buffer | null> {
  const bytes = await readIfExists(file);
  if (bytes === null) return null;
  const mode = (await io("stat", file, () => fs.stat(file))).mode & 0o777;
  if (mode !== FILE_MODE) {
    await io("chmod", file, () => fs.chmod(file, FILE_MODE));
    logger.warn({ file, mode: mode.toString(8) }, "session store: tightened a store file's mode to 0600");
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The one-file-per-record layout (`legacy.ts`), if present, written as generation 1 and moved
 * aside whole to `migrated-v2-<time>/`. The snapshot is written last: once it exists, a crash
 * before the move only leaves the move to do.
 */
async function migrateLegacy(dir: string, logger: StoreLogger): Promise<StoreProblem[]> {
  if (!(await hasLegacyLayout(dir))) return [];
  const aside = path.join(dir, `migrated-v2-${stamp()}`);
  const snapshotPath = path.join(dir, SNAPSHOT_FILE);
  const problems: StoreProblem[] = [];
  if ((await readIfExists(snapshotPath)) === null) {
    const legacy = await readLegacy(dir);
    const lines = [encodeHeader(FIRST_GENERATION)];
    for (const r of legacy.sessions) {
      lines.push(r.schemaVersion === 1 ? encodeLegacySession(r.session) : encodeStoredSession(r.revision, r.session));
    }
    for (const c of legacy.contexts) lines.push(encodeContextRecord(c.client_id, c.image_id, c.revision));
    await writeAtomic(path.join(dir, LOG_FILE), encodeHeader(FIRST_GENERATION));
    await writeAtomic(snapshotPath, lines.join(""));
    for (const { file, error } of legacy.problems) {
      const movedTo = path.join(aside, path.relative(dir, file));
      if (error instanceof StoreIoError) {
        logger.error({ file, err: error }, `session store: cannot read ${file}; it is moved aside with the old layout`);
        problems.push({ kind: "Unreadable", file, error });
      } else {
        logger.error(
          { file, movedTo, err: error.decodeError },
          `session store: corrupt record ${file}: ${error.decodeError.message}; moved aside to ${movedTo}`,
        );
        problems.push({ kind: "CorruptRecord", file, movedTo, error });
      }
    }
    logger.info(
      { sessions: legacy.sessions.length, contexts: legacy.contexts.length, problems: problems.length },
      "session store: migrated the one-file-per-record layout to a snapshot and a log",
    );
  }
  await io("mkdir", aside, () => fs.mkdir(aside, { mode: DIR_MODE }));
  for (const name of LEGACY_DIRS) {
    const from = path.join(dir, name);
    await io("rename", from, () => fs.rename(from, path.join(aside, name))).catch((error: unknown) => {
      if (!(error instanceof StoreIoError && isNotFound(error.cause))) throw error;
    });
  }
  await syncDir(dir);
  logger.info(
    { movedTo: aside },
    `session store: the old layout is kept in ${aside}; remove it once you no longer need it`,
  );
  return problems;
}
