/**
 * The file store's format: two files of JSON lines, a compacted snapshot and the log of changes
 * made since. Both start with a header line naming the format and the generation they belong to:
 *
 *   {"stui_store":3,"generation":7}
 *   {"schema_version":2,"revision":4,"session":{…}}                   a session (v1: a legacy one)
 *   {"schema_version":2,"client_id":"alice","image_id":"dev","revision":2}   a client's context
 *   {"schema_version":2,"removed":"session","id":"…"}                 only in the log
 *   {"schema_version":2,"removed":"context","id":"alice"}             only in the log
 *
 * The record lines are the envelopes of `envelope.ts`. Reading is pure (bytes in, entries with
 * their byte ranges out), so that compaction can copy a live record's bytes without parsing it.
 */
import { z } from "zod";
import type { StoredSession } from "../../ports.js";
import { DecodeError, fail, ok, type Decoded } from "../../protocol/errors.js";
import { parseJson } from "../../protocol/json.js";
import { validate } from "../../protocol/validate.js";
import { decodeContextValue, decodeStoredSessionValue, type ContextRecord } from "./envelope.js";

/** The layout this code reads and writes (1 and 2 were one file per record: `legacy.ts`). */
export const STORE_FORMAT = 3;
export const SNAPSHOT_FILE = "snapshot.jsonl";
export const LOG_FILE = "log.jsonl";

const NEWLINE = 0x0a;

const Header = z.object({ stui_store: z.number().int(), generation: z.number().int().positive() });
type Header = z.infer<typeof Header>;

const Removal = z.object({
  schema_version: z.literal(2),
  removed: z.enum(["session", "context"]),
  id: z.string().min(1),
});

export const encodeHeader = (generation: number): string =>
  `${JSON.stringify({ stui_store: STORE_FORMAT, generation })}\n`;

export const encodeRemoval = (of: "session" | "context", id: string): string =>
  `${JSON.stringify({ schema_version: 2, removed: of, id })}\n`;

export type Entry =
  | { readonly kind: "session"; readonly stored: StoredSession }
  | { readonly kind: "context"; readonly context: ContextRecord }
  | { readonly kind: "removed"; readonly of: "session" | "context"; readonly id: string };

/** One line's entry by its keys: `session`, `client_id` or `removed`. */
export function decodeEntry(line: Uint8Array): Decoded<Entry> {
  const parsed = parseJson(line);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail(new DecodeError("Invalid", "", "expected an object"));
  }
  if ("removed" in value) {
    const removal = validate(Removal, value, "");
    return removal.ok ? ok({ kind: "removed", of: removal.value.removed, id: removal.value.id }) : removal;
  }
  if ("client_id" in value) {
    const context = decodeContextValue(value);
    return context.ok ? ok({ kind: "context", context: context.value }) : context;
  }
  const stored = decodeStoredSessionValue(value);
  return stored.ok ? ok({ kind: "session", stored: stored.value }) : stored;
}

/** Where a line lies in its file: bytes `[start, start + length)`, its newline included. */
export interface Span {
  readonly start: number;
  readonly length: number;
}

export interface ReadLine extends Span {
  /** 1-based, the header being line 1. */
  readonly number: number;
}

export interface JournalContents {
  readonly generation: number;
  readonly entries: ReadonlyArray<ReadLine & { readonly entry: Entry }>;
  readonly corrupt: ReadonlyArray<ReadLine & { readonly error: DecodeError }>;
  /** Where an unfinished last line (no newline: a write cut short) starts, if there is one. */
  readonly tornAt: number | null;
}

/**
 * Reads one file's lines. A header that is missing, unreadable or of another format makes the
 * whole file unusable (a `StoreFormatError`'s reason); a bad line after it is reported by number.
 */
export function readJournal(bytes: Buffer): JournalContents | string {
  const headerEnd = bytes.indexOf(NEWLINE);
  if (headerEnd < 0) return "no header line (an empty or cut-off file)";
  const header = decodeHeader(bytes.subarray(0, headerEnd));
  if (typeof header === "string") return header;
  const entries: Array<ReadLine & { entry: Entry }> = [];
  const corrupt: Array<ReadLine & { error: DecodeError }> = [];
  let start = headerEnd + 1;
  let number = 1;
  let tornAt: number | null = null;
  while (start < bytes.length) {
    number += 1;
    const end = bytes.indexOf(NEWLINE, start);
    if (end < 0) {
      tornAt = start;
      break;
    }
    const length = end + 1 - start;
    const decoded = decodeEntry(bytes.subarray(start, end));
    if (decoded.ok) entries.push({ start, length, number, entry: decoded.value });
    else corrupt.push({ start, length, number, error: decoded.error });
    start = end + 1;
  }
  return { generation: header.generation, entries, corrupt, tornAt };
}

/** The header, or why the file cannot be used. */
function decodeHeader(line: Uint8Array): Header | string {
  const parsed = parseJson(line);
  const header = parsed.ok ? validate(Header, parsed.value, "") : parsed;
  if (!header.ok) return `its first line is not a store header (${header.error.message})`;
  const format = header.value.stui_store;
  if (format !== STORE_FORMAT) {
    return `it is in store format ${format}${format > STORE_FORMAT ? ", written by a newer stui" : ""}; this stui reads format ${STORE_FORMAT}`;
  }
  return header.value;
}

export type JournalFile = "snapshot" | "log";

/** A record and where its line lies. */
export interface Located<T> extends Span {
  readonly value: T;
  readonly file: JournalFile;
}

export interface Replayed {
  readonly sessions: Map<string, Located<StoredSession>>;
  readonly contexts: Map<string, Located<ContextRecord>>;
  readonly corrupt: ReadonlyArray<ReadLine & { readonly file: JournalFile; readonly error: DecodeError }>;
}

/** The records as they stand after the snapshot's lines and then the log's (`null`: a stale log, ignored). */
export function replay(snapshot: JournalContents, log: JournalContents | null): Replayed {
  const sessions = new Map<string, Located<StoredSession>>();
  const contexts = new Map<string, Located<ContextRecord>>();
  const corrupt: Array<ReadLine & { file: JournalFile; error: DecodeError }> = [];
  const apply = (contents: JournalContents, file: JournalFile): void => {
    for (const line of contents.entries) {
      const { entry, start, length } = line;
      if (entry.kind === "session")
        sessions.set(entry.stored.session.session_id, { value: entry.stored, file, start, length });
      else if (entry.kind === "context")
        contexts.set(entry.context.client_id, { value: entry.context, file, start, length });
      else if (entry.of === "session") sessions.delete(entry.id);
      else contexts.delete(entry.id);
    }
    for (const line of contents.corrupt) corrupt.push({ ...line, file });
  };
  apply(snapshot, "snapshot");
  if (log !== null) apply(log, "log");
  return { sessions, contexts, corrupt };
}
