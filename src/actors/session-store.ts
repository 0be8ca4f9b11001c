/**
 * The durable session store: the contract the session manager writes through, the on-disk record
 * envelope and its migration rule (the store's errors are in `src/errors.ts`). `FileSessionStore` is the embedded
 * implementation; the contract is shaped so that a JetStream KV bucket (compare-and-set on the
 * key's revision) can implement it without any caller changing.
 */
import { z } from "zod";
import { decodeSessionRecordValue, type SessionStateData, type StoreStatus } from "../protocol/index.js";
import { DecodeError, fail, ok, type Decoded } from "../protocol/errors.js";
import type { CorruptRecordError, StoreIoError } from "../errors.js";
import { ImageId } from "../protocol/primitives.js";
import { parseJson } from "../protocol/json.js";
import { validate } from "../protocol/validate.js";
import type { Logger } from "../logger.js";

/** The envelope version this code writes. */
export const CURRENT_SCHEMA_VERSION = 2;

/** What a legacy record's revision is taken to be until it is rewritten (the "absent" revision too). */
export const UNREVISIONED = 0;

/** A stored session as loaded, with the revision a compare-and-set must name to replace it. */
export interface StoredSession {
  readonly revision: number;
  /** The envelope version it was read from: 1 for a legacy record, migrated in memory only. */
  readonly schemaVersion: 1 | 2;
  readonly session: SessionStateData;
}

/** A file that could not be loaded. It is never deleted: moved aside when possible, else left. */
export type StoreProblem =
  | {
      readonly kind: "CorruptRecord";
      readonly file: string;
      /** Where it now lies; `null` when moving it aside failed too (it stays in place, unread). */
      readonly movedTo: string | null;
      readonly error: CorruptRecordError;
    }
  | { readonly kind: "Unreadable"; readonly file: string; readonly error: StoreIoError };

export interface LoadResult {
  readonly records: readonly StoredSession[];
  /** Each client's current image context (client id → image id). */
  readonly contexts: ReadonlyMap<string, string>;
  readonly problems: readonly StoreProblem[];
}

export interface SessionStore {
  /** Every stored record and context; bad files are reported in `problems`, never thrown. */
  load(): Promise<LoadResult>;
  /**
   * Writes `session` durably and resolves with its new revision (greater than the old one, not
   * necessarily by one). With `expectedRevision` set, the write happens only if the stored
   * revision equals it (`UNREVISIONED` = absent, or a legacy record); otherwise it rejects with
   * `RevisionConflictError`. `null` writes unconditionally.
   */
  put(session: SessionStateData, expectedRevision: number | null): Promise<number>;
  /** Removes a session durably; deleting an absent one with `expectedRevision` null is a no-op. */
  delete(sessionId: string, expectedRevision: number | null): Promise<void>;
  /** Sets (`null`: clears) a client's current image context, durably. */
  putContext(clientId: string, imageId: string | null): Promise<void>;
  /**
   * Whether writes are taken. A write that fails leaves the store as it was before it (rolled
   * back) and degraded: later writes reject with `StoreUnavailableError` until a probe write
   * succeeds, so an answer, the manager's registry and the disk never disagree.
   */
  status(): StoreStatus;
  /**
   * Resolves when writes are taken (probing the disk first while degraded); rejects with
   * `StoreUnavailableError` otherwise. For callers that must not start what a refused write would
   * leave half done.
   */
  ensureWritable(): Promise<void>;
  /** Waits for the writes in flight; every later call rejects with `StoreClosedError`. */
  close(): Promise<void>;
}

/** What the store reports to: corrupt records and failed writes (error), tightened modes (warn), recovery (info). */
export type StoreLogger = Pick<Logger, "error" | "warn" | "info">;

// Envelopes ----------------------------------------------------------------------------------

const Revision = z.number().int().nonnegative();
const EnvelopeV2 = z.object({ schema_version: z.literal(2), revision: Revision, session: z.unknown() });
const ContextEnvelope = z.object({ schema_version: z.literal(2), client_id: z.string().min(1), image_id: ImageId });
export type ContextRecord = z.infer<typeof ContextEnvelope>;

export const encodeStoredSession = (revision: number, session: SessionStateData): string =>
  `${JSON.stringify({ schema_version: CURRENT_SCHEMA_VERSION, revision, session })}\n`;

export const encodeContextRecord = (clientId: string, imageId: string): string =>
  `${JSON.stringify({ schema_version: CURRENT_SCHEMA_VERSION, client_id: clientId, image_id: imageId })}\n`;

/**
 * Migration rule: version 2 is `{schema_version: 2, revision, session}`. Anything older — a
 * `{schema_version: 1, session}` envelope, or a bare `SessionStateData` object as an older STUI
 * wrote it (no `schema_version` key) — is decoded with `decodeSessionRecordValue`, which puts a
 * record without image fields on the default image, and gets revision `UNREVISIONED` until it is
 * rewritten (as version 2). A version above 2 was written by newer code and is refused, not guessed.
 */
export function decodeStoredSession(bytes: Uint8Array): Decoded<StoredSession> {
  const parsed = parseJson(bytes);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail(new DecodeError("Invalid", "", "expected an object"));
  }
  const version: unknown = (value as Record<string, unknown>)["schema_version"];
  if (version === undefined) return legacy(value);
  if (version === 1) return legacy((value as Record<string, unknown>)["session"], "session");
  if (version !== CURRENT_SCHEMA_VERSION) {
    return fail(
      new DecodeError("UnknownVariant", "schema_version", `unknown schema version ${JSON.stringify(version)}`),
    );
  }
  const envelope = validate(EnvelopeV2, value, "");
  if (!envelope.ok) return envelope;
  const session = decodeSessionRecordValue(envelope.value.session);
  if (!session.ok) return fail(prefixed("session", session.error));
  return ok({ revision: envelope.value.revision, schemaVersion: 2, session: session.value });
}

function legacy(value: unknown, at?: string): Decoded<StoredSession> {
  const session = decodeSessionRecordValue(value);
  if (!session.ok) return fail(at === undefined ? session.error : prefixed(at, session.error));
  return ok({ revision: UNREVISIONED, schemaVersion: 1, session: session.value });
}

function prefixed(at: string, error: DecodeError): DecodeError {
  return new DecodeError(error.kind, error.path === "" ? at : `${at}.${error.path}`, error.reason, { cause: error });
}

export function decodeContextRecord(bytes: Uint8Array): Decoded<ContextRecord> {
  const parsed = parseJson(bytes);
  return parsed.ok ? validate(ContextEnvelope, parsed.value, "") : parsed;
}
