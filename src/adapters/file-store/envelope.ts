/**
 * The file store's record envelopes and their migration rule: how a session and a client's context
 * are written to, and read back from, one file each.
 */
import { z } from "zod";
import { UNREVISIONED, type StoredSession } from "../../ports.js";
import { DecodeError, fail, ok, type Decoded } from "../../protocol/errors.js";
import { validateSessionRecord, type SessionStateData } from "../../protocol/index.js";
import { parseJson } from "../../protocol/json.js";
import { ImageId } from "../../protocol/primitives.js";
import { validate } from "../../protocol/validate.js";

/** The envelope version this code writes. */
export const CURRENT_SCHEMA_VERSION = 2;

const Revision = z.number().int().nonnegative();
const EnvelopeV2 = z.object({ schema_version: z.literal(2), revision: Revision, session: z.unknown() });
/** A context record; one without `revision` (before contexts had revisions) is at `UNREVISIONED`. */
const ContextEnvelope = z.object({
  schema_version: z.literal(2),
  client_id: z.string().min(1),
  image_id: ImageId,
  revision: Revision.default(UNREVISIONED),
});
export type ContextRecord = z.infer<typeof ContextEnvelope>;

export const encodeStoredSession = (revision: number, session: SessionStateData): string =>
  `${JSON.stringify({ schema_version: CURRENT_SCHEMA_VERSION, revision, session })}\n`;

/** How a legacy record is kept until it is rewritten: as a version-1 envelope, so it stays at `UNREVISIONED`. */
export const encodeLegacySession = (session: SessionStateData): string =>
  `${JSON.stringify({ schema_version: 1, session })}\n`;

export const encodeContextRecord = (clientId: string, imageId: string, revision: number): string =>
  `${JSON.stringify({ schema_version: CURRENT_SCHEMA_VERSION, client_id: clientId, image_id: imageId, revision })}\n`;

/**
 * Migration rule: version 2 is `{schema_version: 2, revision, session}`. Anything older — a
 * `{schema_version: 1, session}` envelope, or a bare `SessionStateData` object as an older STUI
 * wrote it (no `schema_version` key) — is decoded with `decodeSessionRecordValue`, which puts a
 * record without image fields on the default image, and gets revision `UNREVISIONED` until it is
 * rewritten (as version 2). A version above 2 was written by newer code and is refused, not guessed.
 */
export function decodeStoredSession(bytes: Uint8Array): Decoded<StoredSession> {
  const parsed = parseJson(bytes);
  return parsed.ok ? decodeStoredSessionValue(parsed.value) : parsed;
}

/** The same, for a value that came out of `parseJson`. */
export function decodeStoredSessionValue(value: unknown): Decoded<StoredSession> {
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
  const session = validateSessionRecord(envelope.value.session);
  if (!session.ok) return fail(prefixed("session", session.error));
  return ok({ revision: envelope.value.revision, schemaVersion: 2, session: session.value });
}

function legacy(value: unknown, at?: string): Decoded<StoredSession> {
  const session = validateSessionRecord(value);
  if (!session.ok) return fail(at === undefined ? session.error : prefixed(at, session.error));
  return ok({ revision: UNREVISIONED, schemaVersion: 1, session: session.value });
}

function prefixed(at: string, error: DecodeError): DecodeError {
  return new DecodeError(error.kind, error.path === "" ? at : `${at}.${error.path}`, error.reason, { cause: error });
}

export function decodeContextRecord(bytes: Uint8Array): Decoded<ContextRecord> {
  const parsed = parseJson(bytes);
  return parsed.ok ? decodeContextValue(parsed.value) : parsed;
}

export const decodeContextValue = (value: unknown): Decoded<ContextRecord> => validate(ContextEnvelope, value, "");
