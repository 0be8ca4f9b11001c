/**
 * The bookkeeping of an image connection as pure functions of its context: pending requests,
 * reply correlation, outcome typing. The machine's actions call these and apply the results.
 */
import {
  decodeImageResult,
  type ConnectionHealth,
  type ErrorCode,
  type ImageCommand,
  type ImageConnectionStatus,
  type ImageFailure,
  type ImageReply,
} from "../protocol/index.js";
import type { CurveClient } from "../curve.js";
import { healthFromMisses, healthFromRtt, type ConnectionPolicy } from "./connection-policy.js";
import { isoTime } from "../clock.js";

/** Who asked: a client's request is settled to it; the machine's own question is not. */
export type RequestOrigin = "client" | "system_info";

export interface PendingRequest {
  readonly command: ImageCommand;
  readonly origin: RequestOrigin;
  /** `now()` past which it has timed out. */
  readonly deadline: number;
}

export type RequestOutcome =
  | { readonly ok: true; readonly command: ImageCommand; readonly result: unknown }
  | {
      readonly ok: false;
      readonly code: ErrorCode;
      readonly message: string;
      /** The image's `error_type`, when the image answered with an error. */
      readonly errorType: string | null;
    };

export interface LinkStats {
  /** Requests written to the link. */
  readonly sent: number;
  /** Replies matched to a pending request. */
  readonly replies: number;
  /** Replies to a request that had already timed out: dropped. */
  readonly late_replies: number;
  /** Replies whose id was never sent (or not readable): dropped. */
  readonly unknown_replies: number;
  readonly timeouts: number;
  /** Requests refused at once because the image was not Connected. */
  readonly failed_fast: number;
  /** Requests refused because `maxInFlight` were already pending. */
  readonly overloaded: number;
  /** Link resets because the image sent something that is no reply. */
  readonly faults: number;
}

export interface ImageConnectionContext {
  readonly policy: ConnectionPolicy;
  /**
   * Injected time and randomness. Kept in an object: xstate's `assign` would call a function
   * found at the top level of an assigned object as a property assigner.
   */
  readonly env: {
    readonly now: () => number;
    readonly random: () => number;
    readonly fence: () => boolean;
    /** The link's CURVE keys; `null`: plain TCP. Never copied into `image`: it is not to be shown. */
    readonly curve: CurveClient | null;
  };
  readonly image: ImageConnectionStatus;
  /** Generation of the current link; events of older links are ignored. */
  readonly generation: number;
  /** Failed attempts since the last time Connected: the backoff exponent. */
  readonly attempt: number;
  /** The delay of the current backoff, drawn on entering it. */
  readonly backoffMs: number;
  /** When each reconnection attempt started, for the restart intensity. */
  readonly restarts: readonly number[];
  /** Why the status is about to change; reported in the status event. */
  readonly reason: string | null;
  /** Why the status is about to become `Failed` (`image.failure` once it is). */
  readonly failure: ImageFailure | null;
  /** A Map, not an object: request ids are all different, and objects keyed by ever-new names are slow. */
  readonly pending: ReadonlyMap<string, PendingRequest>;
  /**
   * When the one deadline timer fires: at the earliest pending deadline, or before it (a reply
   * cancels it only when nothing is left pending; else it fires, expires what is due and is set
   * again). `null`: not set.
   */
  readonly deadlineAt: number | null;
  /** Consecutive unanswered pings. */
  readonly misses: number;
  /** Ids that timed out recently, to tell a late reply from an unknown one. */
  readonly timedOut: readonly string[];
  readonly stats: LinkStats;
}

/** Timed-out ids remembered, to tell a late reply from an unknown one. */
export const TIMED_OUT_MEMORY = 256;

/**
 * Id of the one delayed event that times requests out. One timer per connection rather than one
 * per request: setting and cancelling a delayed event for every request was a measurable part of
 * a request's cost (bench/image).
 */
export const DEADLINE_TIMER = "deadline";

/** The earliest deadline of `pending`, or `null` when nothing is pending. */
export function earliestDeadline(pending: ReadonlyMap<string, PendingRequest>): number | null {
  let earliest: number | null = null;
  for (const p of pending.values()) if (earliest === null || p.deadline < earliest) earliest = p.deadline;
  return earliest;
}

export const ZERO_STATS: LinkStats = {
  sent: 0,
  replies: 0,
  late_replies: 0,
  unknown_replies: 0,
  timeouts: 0,
  failed_fast: 0,
  overloaded: 0,
  faults: 0,
};

export const failed = (code: ErrorCode, message: string, errorType: string | null = null): RequestOutcome => ({
  ok: false,
  code,
  message,
  errorType,
});

/** The outcomes a request fails with, whether the machine or the link's request lane settles it. */
export const refusals = {
  duplicate: (id: string): RequestOutcome => failed("InvalidRequest", `request id ${id} is already in flight`),
  overloaded: (imageId: string, maxInFlight: number): RequestOutcome =>
    failed("Overloaded", `image ${imageId} has ${maxInFlight} requests in flight; try again later`),
  timeout: (imageId: string, command: ImageCommand): RequestOutcome =>
    failed("Timeout", `image ${imageId} did not answer ${command} in time`),
  linkLost: (imageId: string, reason: string | null): RequestOutcome =>
    failed("ImageUnavailable", `link to image ${imageId} lost${reason === null ? "" : `: ${reason}`}`),
};

/** How an image's error types map onto the client protocol's codes. */
function codeOfImageError(errorType: string): ErrorCode {
  switch (errorType) {
    case "EvaluationError":
      return "EvaluationError";
    case "SessionNotFound":
      return "SessionNotFound";
    default:
      return "ImageError";
  }
}

/** A reply as the outcome of the request of `command` it answers, its result typed by the command. */
export function outcomeOf(command: ImageCommand, reply: ImageReply, imageId: string): RequestOutcome {
  if (reply.status === "error") return failed(codeOfImageError(reply.error_type), reply.error, reply.error_type);
  const result = decodeImageResult(command, reply.result);
  if (result.ok) return { ok: true, command, result: result.value };
  return failed("ImageError", `image ${imageId} sent a malformed ${command} result: ${result.error.message}`);
}

export interface Settlement {
  readonly id: string;
  readonly pending: PendingRequest;
  readonly outcome: RequestOutcome;
}

/**
 * Correlates a reply: the settled request (if any) and the context fields that change. Only the
 * changed fields are returned, so the caller assigns them once: this is the hot path.
 */
export function correlate(
  context: ImageConnectionContext,
  reply: ImageReply,
): { readonly changes: Partial<ImageConnectionContext>; readonly settlement: Settlement | null } {
  const now = context.env.now();
  const image = { ...context.image, last_seen: isoTime(now) };
  const id = reply.id;
  const pending = id === null ? undefined : context.pending.get(id);
  if (id === null || pending === undefined) {
    const late = id !== null && context.timedOut.includes(id);
    const stats = late
      ? { ...context.stats, late_replies: context.stats.late_replies + 1 }
      : { ...context.stats, unknown_replies: context.stats.unknown_replies + 1 };
    return { changes: { image, stats }, settlement: null };
  }
  const rest = without(context.pending, id);
  const changes = { image, pending: rest, stats: { ...context.stats, replies: context.stats.replies + 1 } };
  const outcome = outcomeOf(pending.command, reply, context.image.image_id);
  return { changes, settlement: { id, pending, outcome } };
}

/** A copy of `map` without `key`. */
export function without<K, V>(map: ReadonlyMap<K, V>, key: K): ReadonlyMap<K, V> {
  const copy = new Map(map);
  copy.delete(key);
  return copy;
}

/** Drops a timed-out request, remembering its id. */
export function expire(context: ImageConnectionContext, id: string): ImageConnectionContext {
  const rest = without(context.pending, id);
  const timedOut = [...context.timedOut.slice(-(TIMED_OUT_MEMORY - 1)), id];
  return { ...context, pending: rest, timedOut, stats: { ...context.stats, timeouts: context.stats.timeouts + 1 } };
}

/** The reconnection figures of a status: set while Reconnecting, `null` in any other status. */
export type RetryFields = Pick<ImageConnectionStatus, "reconnect_attempt" | "next_attempt_at">;

export const NOT_RECONNECTING: RetryFields = { reconnect_attempt: null, next_attempt_at: null };

/** The health after a ping was answered, or missed. */
export function healthAfterPing(context: ImageConnectionContext, rttMs: number | null): ConnectionHealth {
  return rttMs === null ? healthFromMisses(context.misses + 1, context.policy) : healthFromRtt(rttMs, context.policy);
}
