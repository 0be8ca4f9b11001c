/**
 * The policy of an image connection, as pure functions of numbers: when the image is healthy,
 * how long to wait before the next attempt, when to give up. The machine only calls these.
 */
import type { ConnectionHealth } from "../protocol/index.js";

export interface ConnectionPolicy {
  /**
   * Interval between ZMTP heartbeats (libzmq PING frames). They prove the process and the link
   * are alive, even while the image is busy evaluating. A frozen image is noticed about
   * `heartbeatTimeoutMs + heartbeatIntervalMs` after it froze (1.3 s by default). Each link's
   * heartbeats cost libzmq's I/O thread CPU: at 1 000 images, 300 ms took about 11 % of a core
   * here and 200 ms about 16 % (bench/image).
   * @default 300
   */
  readonly heartbeatIntervalMs: number;
  /**
   * Silence after which libzmq declares the link dead (a frozen or unreachable image).
   * @default 1000
   */
  readonly heartbeatTimeoutMs: number;
  /**
   * How long one connection attempt may take to complete the ZMTP handshake.
   * @default 2000
   */
  readonly connectTimeoutMs: number;
  /**
   * Interval between application `ping`s, which prove the image answers.
   * @default 1000
   */
  readonly pingIntervalMs: number;
  /**
   * A ping not answered within this is a miss.
   * @default 1000
   */
  readonly pingTimeoutMs: number;
  /**
   * A round trip at or above this is `Warning`.
   * @default 250
   */
  readonly warnRttMs: number;
  /**
   * A round trip at or above this is `Critical`.
   * @default 750
   */
  readonly criticalRttMs: number;
  /**
   * Consecutive missed pings that make the health `Critical`; fewer are `Warning`. A miss never
   * changes the status: only the link (ZMTP) decides Connected versus Reconnecting.
   * @default 3
   */
  readonly criticalMisses: number;
  /**
   * First reconnection delay bound; each failed attempt doubles it (full jitter: the delay is
   * uniformly random between 0 and the bound).
   * @default 100
   */
  readonly backoffBaseMs: number;
  /**
   * Largest reconnection delay bound.
   * @default 5000
   */
  readonly backoffCapMs: number;
  /**
   * Reconnection attempts allowed within `restartWindowMs` before the connection is `Failed`
   * (OTP's restart intensity and period).
   * @default 10
   */
  readonly maxRestarts: number;
  /**
   * @default 60000
   */
  readonly restartWindowMs: number;
  /**
   * Deadline of a request when the caller names none.
   * @default 30000
   */
  readonly requestTimeoutMs: number;
  /**
   * Requests in flight to one image; more are refused with `Overloaded`.
   * @default 256
   */
  readonly maxInFlight: number;
  /**
   * Largest reply frame accepted; libzmq drops the link on a larger one.
   * @default 16777216 (16 MiB)
   */
  readonly maxMessageBytes: number;
}

export const DEFAULT_POLICY: ConnectionPolicy = {
  heartbeatIntervalMs: 300,
  heartbeatTimeoutMs: 1000,
  connectTimeoutMs: 2000,
  pingIntervalMs: 1000,
  pingTimeoutMs: 1000,
  warnRttMs: 250,
  criticalRttMs: 750,
  criticalMisses: 3,
  backoffBaseMs: 100,
  backoffCapMs: 5000,
  maxRestarts: 10,
  restartWindowMs: 60_000,
  requestTimeoutMs: 30_000,
  maxInFlight: 256,
  maxMessageBytes: 16 * 1024 * 1024,
};

/** Health from an answered ping's round trip. */
export function healthFromRtt(rttMs: number, policy: ConnectionPolicy): ConnectionHealth {
  if (rttMs >= policy.criticalRttMs) return "Critical";
  if (rttMs >= policy.warnRttMs) return "Warning";
  return "Healthy";
}

/** Health after `misses` consecutive unanswered pings (at least one). */
export function healthFromMisses(misses: number, policy: ConnectionPolicy): ConnectionHealth {
  return misses >= policy.criticalMisses ? "Critical" : "Warning";
}

/**
 * Delay before reconnection attempt number `attempt` (0 for the first): full jitter, as in
 * "Exponential Backoff and Jitter" (AWS architecture blog): uniform in [0, min(cap, base·2^n)].
 */
export function backoffDelay(attempt: number, random: number, policy: ConnectionPolicy): number {
  const bound = Math.min(policy.backoffCapMs, policy.backoffBaseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random * bound);
}

/** The restart times still inside the window at `now`. */
export function recentRestarts(restarts: readonly number[], now: number, policy: ConnectionPolicy): number[] {
  return restarts.filter((at) => now - at < policy.restartWindowMs);
}

/** Whether one more restart at `now` would exceed the intensity. */
export function restartLimitReached(restarts: readonly number[], now: number, policy: ConnectionPolicy): boolean {
  return recentRestarts(restarts, now, policy).length >= policy.maxRestarts;
}
