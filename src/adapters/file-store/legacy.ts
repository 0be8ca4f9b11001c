/**
 * The layout before store format 3, read once to migrate it: one JSON file per record,
 *
 *   <dir>/sessions/<key>.json    {schema_version: 2, revision, session} (or a version-1 / bare record)
 *   <dir>/contexts/<key>.json    {schema_version: 2, client_id, image_id, revision}
 *
 * where `<key>` is the id's UTF-8 bytes in base64url, or `~<sha256 of the id>` when that is too
 * long. Nothing here writes: the migration moves both directories aside whole, with any file that
 * did not decode still in them.
 */
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { eachInParallel } from "../../actors/concurrency.js";
import { CorruptRecordError, StoreIoError } from "../../errors.js";
import type { StoredSession } from "../../ports.js";
import { DecodeError, fail, type Decoded } from "../../protocol/index.js";
import { decodeContextRecord, decodeStoredSession, type ContextRecord } from "./envelope.js";
import { isNotFound } from "./io.js";

export const LEGACY_DIRS = ["sessions", "contexts"] as const;

/** Files read at once: overlapping reads loaded 100 000 records about 3x faster. */
const LOAD_PARALLEL = 64;
const MAX_KEY_LENGTH = 200;

/** The file-name key of an id in the old layout (see the module comment). */
export function fileKey(id: string): string {
  const encoded = Buffer.from(id, "utf8").toString("base64url");
  if (encoded.length <= MAX_KEY_LENGTH) return encoded;
  return `~${createHash("sha256").update(id, "utf8").digest("base64url")}`;
}

/** A file of the old layout that could not be taken over, by its path under `dir`. */
export interface LegacyProblem {
  readonly file: string;
  readonly error: CorruptRecordError | StoreIoError;
}

export interface LegacyRecords {
  readonly sessions: StoredSession[];
  readonly contexts: ContextRecord[];
  readonly problems: LegacyProblem[];
}

/** Whether `dir` holds the old layout (either of its directories). */
export async function hasLegacyLayout(dir: string): Promise<boolean> {
  for (const name of LEGACY_DIRS) {
    try {
      if ((await fs.stat(path.join(dir, name))).isDirectory()) return true;
    } catch (cause) {
      if (!isNotFound(cause)) throw new StoreIoError("stat", path.join(dir, name), cause);
    }
  }
  return false;
}

/** Every record of the old layout, in file-name order; what does not decode is a problem. */
export async function readLegacy(dir: string): Promise<LegacyRecords> {
  const problems: LegacyProblem[] = [];
  const sessions = await readDir(
    path.join(dir, "sessions"),
    decodeStoredSession,
    (r) => r.session.session_id,
    problems,
  );
  const contexts = await readDir(path.join(dir, "contexts"), decodeContextRecord, (r) => r.client_id, problems);
  return { sessions, contexts, problems };
}

async function readDir<T>(
  dir: string,
  decode: (bytes: Uint8Array) => Decoded<T>,
  idOf: (record: T) => string,
  problems: LegacyProblem[],
): Promise<T[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (cause) {
    if (isNotFound(cause)) return [];
    throw new StoreIoError("readdir", dir, cause);
  }
  names = names.filter((name) => name.endsWith(".json") && !name.startsWith(".")).sort();
  const loaded = new Array<{ readonly record: T } | { readonly problem: LegacyProblem } | undefined>(names.length);
  await eachInParallel(names, LOAD_PARALLEL, async (name, index) => {
    const file = path.join(dir, name);
    let bytes: Uint8Array;
    try {
      bytes = await fs.readFile(file);
    } catch (cause) {
      loaded[index] = { problem: { file, error: new StoreIoError("read", file, cause) } };
      return;
    }
    let decoded = decode(bytes);
    if (decoded.ok && name !== `${fileKey(idOf(decoded.value))}.json`) {
      // Two files could hold one id: the one under another id's name is not taken.
      const id = JSON.stringify(idOf(decoded.value));
      decoded = fail(new DecodeError("Invalid", "", `the id ${id} does not match the file name`));
    }
    loaded[index] = decoded.ok
      ? { record: decoded.value }
      : { problem: { file, error: new CorruptRecordError(file, decoded.error) } };
  });
  const records: T[] = [];
  for (const item of loaded) {
    if (item === undefined) continue;
    if ("problem" in item) problems.push(item.problem);
    else records.push(item.record);
  }
  return records;
}
