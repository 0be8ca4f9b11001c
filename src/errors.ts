/**
 * Every failure of the service, one class each, in one place: each knows the protocol `ErrorCode`
 * it answers with, whether its message may be shown to a client as it is, and its `cause`. So
 * "what does this failure answer" is one lookup (`errorAnswer`), not an `instanceof` chain.
 *
 * A client-facing message never holds a server path, a stack or a system error's text: errors
 * whose message may (I/O, unexpected faults) are *hidden*: the client gets `publicMessage` and an
 * error id, the log gets the whole error under the same id.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "./logger.js";
import type { StoreStatus } from "./protocol/model.js";
import type { Details, ErrorCode } from "./protocol/primitives.js";
import { errorResponse, type ErrorResponse } from "./protocol/responses.js";

export abstract class StuiError extends Error {
  /** The code a request that fails with this error is answered with. */
  abstract readonly code: ErrorCode;
  /** Structured details sent with the answer. */
  readonly details: Details | null = null;
  /** What a client is told of a hidden error; `null`: the message itself may be shown. */
  readonly publicMessage: string | null = null;
  /** How a hidden error is logged when it is answered. */
  readonly logLevel: "warn" | "error" = "error";
}

// Requests -------------------------------------------------------------------------------------

/** A request that cannot be served as asked: unknown ids, conflicts, bad combinations. */
export class RequestError extends StuiError {
  override readonly name = "RequestError";
  override readonly details: Details | null;
  constructor(
    readonly code: ErrorCode,
    message: string,
    details: Details | null = null,
  ) {
    super(message);
    this.details = details;
  }
}

/** A request the image connection could not carry out; `code` is the client protocol's. */
export class ImageRequestError extends StuiError {
  override readonly name = "ImageRequestError";
  override readonly details: Details | null;
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The image's own `error_type`, when the image answered with an error. */
    readonly errorType: string | null = null,
  ) {
    super(message);
    this.details = errorType === null ? null : { error_type: errorType };
  }
}

// The session store ------------------------------------------------------------------------------

export class RevisionConflictError extends StuiError {
  override readonly name = "RevisionConflictError";
  readonly code = "Conflict";
  constructor(
    readonly key: string,
    readonly expectedRevision: number,
    /** The stored revision; 0 (`UNREVISIONED`) when there was no record. */
    readonly actualRevision: number,
  ) {
    super(
      `changed concurrently: ${key}: expected revision ${expectedRevision}, stored revision is ${actualRevision}; retry`,
    );
  }
}

/** A file that does not decode; `cause` is the `DecodeError`. Reported at load, never answered. */
export class CorruptRecordError extends StuiError {
  override readonly name = "CorruptRecordError";
  readonly code = "Internal";
  override readonly publicMessage = "a stored record is corrupt";
  constructor(
    readonly file: string,
    readonly decodeError: Error,
  ) {
    super(`${file}: ${decodeError.message}`, { cause: decodeError });
  }
}

/** A value refused before writing, so that nothing is stored that could not be read back. */
export class InvalidRecordError extends StuiError {
  override readonly name = "InvalidRecordError";
  readonly code = "InvalidRequest";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A filesystem operation failed; `cause` is the system error. The write was rolled back. */
export class StoreIoError extends StuiError {
  override readonly name = "StoreIoError";
  readonly code = "StoreUnavailable";
  override readonly logLevel = "warn";
  override readonly publicMessage: string;
  constructor(
    readonly operation: string,
    readonly path: string,
    cause: unknown,
  ) {
    super(`${operation} ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.publicMessage = storeRefusal(describeIoFailure(operation, cause));
  }

  /** The operation and a category of the system error, never a path or the system's own text. */
  get failure(): string {
    return describeIoFailure(this.operation, this.cause);
  }
}

/** The store is degraded (an earlier write failed and no probe write has succeeded since). */
export class StoreUnavailableError extends StuiError {
  override readonly name = "StoreUnavailableError";
  readonly code = "StoreUnavailable";
  override readonly logLevel = "warn";
  override readonly publicMessage: string;
  constructor(readonly status: StoreStatus) {
    super(`the session store cannot write since ${status.degraded_since ?? "now"}: ${status.reason ?? "unknown"}`);
    this.publicMessage = storeRefusal(status.reason ?? "unknown");
  }
}

/** Another process holds the store directory's lock (one `stui serve` per directory). */
export class StoreLockedError extends StuiError {
  override readonly name = "StoreLockedError";
  readonly code = "Internal";
  constructor(
    readonly dir: string,
    readonly holder: { readonly pid: number; readonly host: string; readonly since: string } | null,
  ) {
    super(
      holder === null
        ? `the store directory ${dir} is locked (${dir}/.lock) by a process that could not be identified; if no stui uses it, remove the lock file`
        : `the store directory ${dir} is in use by another stui (pid ${holder.pid} on ${holder.host}, since ${holder.since}): one stui serve per directory; if that process is gone, remove ${dir}/.lock`,
    );
  }
}

/** The store's files cannot be used as they are (written by a newer STUI, or their order broken). */
export class StoreFormatError extends StuiError {
  override readonly name = "StoreFormatError";
  readonly code = "Internal";
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`the session store file ${file} cannot be used: ${reason}`);
  }
}

export class StoreClosedError extends StuiError {
  override readonly name = "StoreClosedError";
  readonly code = "Internal";
  constructor() {
    super("the session manager is stopping");
  }
}

/** A write the store did not make: failed (and rolled back), or refused while degraded. */
export const isStoreWriteError = (error: unknown): error is StoreIoError | StoreUnavailableError =>
  error instanceof StoreIoError || error instanceof StoreUnavailableError;

const storeRefusal = (reason: string): string =>
  `the session store cannot write (${reason}), so nothing was changed; retry later`;

const IO_CATEGORIES: Readonly<Record<string, string>> = {
  ENOSPC: "the disk is full",
  EDQUOT: "the disk quota is exceeded",
  EIO: "an I/O error",
  EROFS: "the file system is read-only",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EMFILE: "too many open files",
  ENFILE: "too many open files",
};

function describeIoFailure(operation: string, cause: unknown): string {
  const code = cause instanceof Error && "code" in cause && typeof cause.code === "string" ? cause.code : "";
  return `${operation}: ${IO_CATEGORIES[code] ?? "it failed"}`;
}

// NATS and start-up ------------------------------------------------------------------------------

/** Connection options that cannot be used; the message names the option. */
export class NatsOptionsError extends StuiError {
  override readonly name = "NatsOptionsError";
  readonly code = "InvalidRequest";
}

/** The first connection failed; `cause` is nats.js's error. The message names the servers, never a secret. */
export class NatsConnectError extends StuiError {
  override readonly name = "NatsConnectError";
  readonly code = "Internal";
  constructor(servers: readonly string[], cause: unknown) {
    super(
      `cannot connect to NATS at ${servers.join(", ")}: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
      },
    );
  }
}

/** The server has no JetStream, which the event stream needs. The message says how to enable it. */
export class JetStreamMissingError extends StuiError {
  override readonly name = "JetStreamMissingError";
  readonly code = "Internal";
  constructor(server: string, cause: unknown) {
    super(
      `NATS at ${server} has no JetStream, which stui needs for its event stream: add \`jetstream {}\` to the server's configuration (or start nats-server with -js) and restart it`,
      { cause },
    );
  }
}

/**
 * The API could not start listening: the server refused one of its subscriptions (`subject`, and
 * `queue` for an endpoint), or the micro service stopped before it was up. The message names the
 * subject and the permissions the service user needs.
 */
export class ApiStartError extends StuiError {
  override readonly name = "ApiStartError";
  readonly code = "Internal";
  constructor(
    readonly subject: string | null,
    readonly queue: string | null,
    cause: Error | null,
  ) {
    super(
      subject !== null
        ? `NATS refused the service's subscription to ${subject}${queue === null ? "" : ` (queue group ${queue})`}: the service user needs subscribe permission on "stui.api.* stui", $SRV.PING, $SRV.INFO, $SRV.STATS, $SRV.*.stui and $SRV.*.stui.*, and with shared images "stui.instance.*.request stui" (see docs/security.md)`
        : `the API stopped while starting: ${cause?.message ?? "the NATS connection closed"} (see docs/security.md)`,
      { cause },
    );
  }
}

/** NATS refused a publish the service needs; the message names the subject and what it is for. */
export class NatsPermissionError extends StuiError {
  override readonly name = "NatsPermissionError";
  readonly code = "Internal";
  constructor(
    readonly subject: string,
    purpose: string,
    cause: unknown,
  ) {
    super(
      `NATS refused the service's publish on ${subject} (${purpose}): the service user needs publish permission on it (see docs/security.md)`,
      { cause },
    );
  }
}

/** Another live instance on this NATS has the same `instance_id`: events would share a source. */
export class DuplicateInstanceError extends StuiError {
  override readonly name = "DuplicateInstanceError";
  readonly code = "Conflict";
  constructor(
    readonly instanceId: string,
    readonly serviceId: string,
  ) {
    super(
      `instance_id ${instanceId} is already used by a running stui on this NATS (service ${serviceId}): give each instance its own instance_id`,
    );
  }
}

/** A configuration that cannot be used: one line per problem, each naming its key and its source. */
export class ConfigError extends StuiError {
  override readonly name = "ConfigError";
  readonly code = "InvalidRequest";
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(problems.join("\n"));
    this.problems = problems;
  }
}

// Answers ---------------------------------------------------------------------------------------

/**
 * The protocol `Error` a failed request is answered with. A `StuiError` whose message may be shown
 * answers its code, message and details. Any other failure is hidden: the answer carries a short
 * message (the error's `publicMessage`, else "<what> failed in the service") and an error id; the
 * log carries the error itself under the same id.
 */
export function errorAnswer(error: unknown, what: string, logger: Pick<Logger, "warn" | "error">): ErrorResponse {
  if (error instanceof StuiError && error.publicMessage === null) {
    return errorResponse(error.code, error.message, error.details);
  }
  const errorId = randomUUID();
  const hidden = error instanceof StuiError ? error : null;
  const level = hidden?.logLevel ?? "error";
  logger[level](
    { err: error, request: what, error_id: errorId },
    `${what} failed: ${hidden?.publicMessage ?? "unexpected"}`,
  );
  const message = hidden?.publicMessage ?? `${what} failed in the service`;
  return errorResponse(hidden?.code ?? "Internal", `${message} (error id ${errorId})`, {
    ...hidden?.details,
    error_id: errorId,
  });
}
