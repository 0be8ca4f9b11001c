/**
 * The scalar vocabulary shared by both protocols: timestamps, identifiers and the unit enums.
 * Each is a zod schema (the runtime check) and a type inferred from it (the compile-time check).
 */
import { z } from "zod";

/**
 * An ISO 8601 timestamp. Any offset is accepted (Pharo prints `+00:00`); everything this service
 * writes is UTC with `Z`, as Rust's chrono does. Kept as the string, so no precision is lost.
 */
export const Timestamp = z.iso.datetime({ offset: true });
export type Timestamp = z.infer<typeof Timestamp>;

/** The current time, or `date`, as a wire timestamp. */
export const timestamp = (date: Date = new Date()): Timestamp => date.toISOString();

/**
 * An image id: also a NATS subject token (`stui.events.image.<image_id>.status`), hence the
 * restricted alphabet.
 */
export const ImageId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, "expected an id of letters, digits, '_' or '-'");
export type ImageId = z.infer<typeof ImageId>;

/** A client, session or message id: any non-empty string of bounded length. */
export const Id = z.string().min(1).max(256);

export const Count = z.number().int().nonnegative();
/** Milliseconds, possibly fractional (round-trip times). */
export const Millis = z.number().nonnegative();

export const CONNECTION_STATUSES = ["Connected", "Disconnected", "Reconnecting", "Failed", "Unknown"] as const;
export const ConnectionStatus = z.enum(CONNECTION_STATUSES);
export type ConnectionStatus = z.infer<typeof ConnectionStatus>;

/**
 * Why an image is `Failed`: `AuthFailed`, its link's handshake was refused (a CURVE key, or CURVE
 * on one side only: the `reason` says which); `RestartLimit`, too many reconnection attempts
 * within the restart window; `Crashed`, its connection actor failed.
 */
export const ImageFailure = z.enum(["AuthFailed", "RestartLimit", "Crashed"]);
export type ImageFailure = z.infer<typeof ImageFailure>;

export const CONNECTION_HEALTHS = ["Healthy", "Warning", "Critical", "Unknown"] as const;
export const ConnectionHealth = z.enum(CONNECTION_HEALTHS);
export type ConnectionHealth = z.infer<typeof ConnectionHealth>;

export const ERROR_CODES = [
  "InvalidRequest",
  "ImageNotFound",
  "SessionNotFound",
  "ImageUnavailable",
  "Timeout",
  "EvaluationError",
  "Conflict",
  "Overloaded",
  "ImageError",
  "StoreUnavailable",
  "Internal",
] as const;
export const ErrorCode = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCode>;

/** A string-to-string map (serde's `HashMap<String, String>`). */
export const StringMap = z.record(z.string(), z.string());
export type StringMap = z.infer<typeof StringMap>;

/** Free-form structured details (serde's `serde_json::Map`): an object of any JSON values. */
export const Details = z.record(z.string(), z.unknown());
export type Details = z.infer<typeof Details>;
