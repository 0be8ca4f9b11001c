/**
 * The effects shared by the image connection machine's actions, and its initial context. Kept
 * apart from the machine definition so that each file reads as one concept.
 */
import { encodeImageRequest, type ConnectionHealth, type ImageRequest } from "../protocol/index.js";
import { DEFAULT_POLICY } from "./connection-policy.js";
import type { ImageConnectionEmitted, ImageConnectionEvent, ImageConnectionInput } from "./image-connection.js";
import {
  DEADLINE_TIMER,
  ZERO_STATS,
  type ImageConnectionContext,
  type RequestOrigin,
} from "./image-connection-logic.js";
import type { LinkCommand } from "./image-link-events.js";
import { isoTime } from "../clock.js";

export const iso = (context: ImageConnectionContext): string => isoTime(context.env.now());

/**
 * The few effects the helpers below need; xstate's `enqueue` object provides them. Named actions
 * cannot be enqueued by name from inside `setup`, hence these shared helpers.
 */
export interface Effects {
  assign(values: Partial<ImageConnectionContext>): void;
  emit(event: ImageConnectionEmitted): void;
  sendTo(to: "link", event: LinkCommand): void;
  raise(event: ImageConnectionEvent, options: { delay: number; id: string }): void;
  cancel(id: string): void;
}

/** Writes a request to the link, with its deadline (the deadline timer set earlier if it must be). */
export function send(
  context: ImageConnectionContext,
  effects: Effects,
  request: ImageRequest,
  origin: RequestOrigin,
  timeoutMs: number,
): void {
  const now = context.env.now();
  const deadline = now + timeoutMs;
  const pending = new Map(context.pending).set(request.id, { command: request.command, origin, deadline });
  const stats = { ...context.stats, sent: context.stats.sent + 1 };
  effects.sendTo("link", { type: "SEND", id: request.id, frame: encodeImageRequest(request) });
  if (context.deadlineAt !== null && context.deadlineAt <= deadline) {
    effects.assign({ pending, stats });
    return;
  }
  armDeadline(context, effects, deadline);
  effects.assign({ pending, stats, deadlineAt: deadline });
}

/** Sets the deadline timer for `at` (`null`: clears it), replacing the one set. */
export function armDeadline(context: ImageConnectionContext, effects: Effects, at: number | null): void {
  if (context.deadlineAt !== null) effects.cancel(DEADLINE_TIMER);
  if (at !== null) {
    effects.raise({ type: "REQUEST.DEADLINE" }, { delay: Math.max(0, at - context.env.now()), id: DEADLINE_TIMER });
  }
}

/** Records the health (and round trip) and emits the change, if any. */
export function setHealth(
  context: ImageConnectionContext,
  effects: Effects,
  health: ConnectionHealth,
  rttMs: number | null,
): void {
  const previous = context.image.connection_health;
  effects.assign({ image: { ...context.image, connection_health: health, rtt_ms: rttMs ?? context.image.rtt_ms } });
  if (previous === health) return;
  effects.emit({
    type: "health",
    data: { image_id: context.image.image_id, health, previous_health: previous, rtt_ms: rttMs, at: iso(context) },
  });
}

export function initialContext(input: ImageConnectionInput): ImageConnectionContext {
  const policy = { ...DEFAULT_POLICY, ...input.policy };
  return {
    policy,
    env: {
      now: input.now ?? Date.now,
      random: input.random ?? Math.random,
      fence: input.fence ?? (() => true),
      curve: input.curve ?? null,
    },
    image: {
      image_id: input.imageId,
      name: input.name ?? null,
      address: input.address,
      status: "Unknown",
      connection_health: "Unknown",
      last_seen: null,
      last_activity: null,
      session_count: 0,
      active_sessions: 0,
      orphaned_sessions: 0,
      rtt_ms: null,
      image_name: null,
      image_version: null,
      owner: null,
      lease_expires_at: null,
      reconnect_attempt: null,
      next_attempt_at: null,
      failure: null,
    },
    generation: 0,
    attempt: 0,
    backoffMs: 0,
    restarts: [],
    reason: null,
    failure: null,
    pending: new Map(),
    deadlineAt: null,
    misses: 0,
    timedOut: [],
    stats: ZERO_STATS,
  };
}
