/**
 * The one source of time: wall-clock milliseconds (what timestamps say), monotonic milliseconds
 * (what durations, deadlines and debounces measure: it never jumps with the wall clock), and the
 * wire form of a wall-clock time. Parts take a `Clock` so that tests can give them another; the
 * machines take theirs as input (`now`) and run their delays on the actor's clock.
 */
import { timestamp } from "./protocol/primitives.js";

export interface Clock {
  /** Wall-clock milliseconds since the epoch. */
  now(): number;
  /** Monotonic milliseconds from an arbitrary origin. */
  monotonic(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
};

let lastMs = Number.NaN;
let lastIso = "";

/**
 * A wall-clock time (milliseconds; default now) as a wire timestamp: ISO 8601 UTC. The last one
 * is kept: every reply of an image stamps its `last_seen`, many within the same millisecond.
 */
export function isoTime(ms: number = Date.now()): string {
  if (ms !== lastMs) {
    lastIso = timestamp(new Date(ms));
    lastMs = ms;
  }
  return lastIso;
}
