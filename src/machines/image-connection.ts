/**
 * One Smalltalk image connection as a state machine. Its top-level states are exactly the
 * `ConnectionStatus` values:
 *
 * - `Unknown`: the first connection attempt, before any ZMTP handshake;
 * - `Connected`: handshake done; the link's application pings measure the health;
 * - `Reconnecting`: the link was lost (or never came up); attempts with exponential backoff;
 * - `Failed`: too many attempts within the restart window; waits for `RETRY` or `NETWORK_CHANGED`;
 * - `Disconnected`: closed on request; stays there.
 *
 * It holds no socket: the socket lives in the `link` actor, spawned per connection attempt and
 * stopped when the attempt or the link ends. Time comes from the actor's clock (delays) and the
 * injected `now`; randomness from the injected `random`. The machine does no I/O of its own.
 */
import { assign, enqueueActions, sendTo, setup, stopChild, type ActorRefFrom, type CallbackActorLogic } from "xstate";
import {
  imageRequest,
  type ConnectionStatus,
  type ImageHealthChanged,
  type ImageRequest,
  type ImageFailure,
  type ImageStatusChanged,
} from "../protocol/index.js";
import { backoffDelay, restartLimitReached, type ConnectionPolicy } from "./connection-policy.js";
import {
  correlate,
  expire,
  failed,
  healthAfterPing,
  NOT_RECONNECTING,
  refusals,
  earliestDeadline,
  type ImageConnectionContext,
  type RequestOutcome,
} from "./image-connection-logic.js";
import type { LinkCommand, LinkEvent, LinkInput } from "./image-link-events.js";
import { armDeadline, initialContext, iso, send, setHealth } from "./image-connection-effects.js";
import { isoTime } from "../clock.js";
import type { CurveClient } from "../curve.js";

export type { ImageConnectionContext, RequestOutcome } from "./image-connection-logic.js";

export interface ImageConnectionInput {
  readonly imageId: string;
  readonly address: string;
  readonly name?: string | null;
  readonly policy?: Partial<ConnectionPolicy>;
  /** Wall-clock milliseconds; tests pass their simulated clock's. @default Date.now */
  readonly now?: () => number;
  /** Uniform in [0, 1); tests pass a fixed one. @default Math.random */
  readonly random?: () => number;
  /**
   * Asked by the link right before each send: `false` and nothing more is sent (the link closes).
   * With shared images, whether this instance's lease on the image is still valid. @default always
   */
  readonly fence?: () => boolean;
  /** CURVE keys for the link (the image's public key and this service's pair). @default null: plain TCP */
  readonly curve?: CurveClient | null;
}

export type ImageConnectionEvent =
  | { readonly type: "REQUEST"; readonly request: ImageRequest; readonly timeoutMs?: number }
  /** Close the link and stay Disconnected. @default reason "disconnect requested" */
  | { readonly type: "DISCONNECT"; readonly reason?: string }
  /** From Failed: start over. */
  | { readonly type: "RETRY" }
  /** The host's network changed: probe at once when Connected, else retry at once. */
  | { readonly type: "NETWORK_CHANGED" }
  /** The deadline timer: every pending request past its deadline times out. */
  | { readonly type: "REQUEST.DEADLINE" }
  | LinkEvent;

/** What the machine emits (`actor.on(type, ...)`). */
export type ImageConnectionEmitted =
  | { readonly type: "status"; readonly data: ImageStatusChanged }
  | { readonly type: "health"; readonly data: ImageHealthChanged }
  | { readonly type: "settled"; readonly id: string; readonly outcome: RequestOutcome };

/** The link actor's logic as the machine expects it, provided under the name `link`. */
export type LinkLogic = CallbackActorLogic<LinkCommand, LinkInput, LinkEvent>;

export const imageConnectionMachine = setup({
  types: {
    context: {} as ImageConnectionContext,
    events: {} as ImageConnectionEvent,
    input: {} as ImageConnectionInput,
    emitted: {} as ImageConnectionEmitted,
  },
  actors: {
    // The real ZeroMQ link (src/actors/image-link.ts) is provided by whoever starts the machine.
    link: {} as LinkLogic,
  },
  delays: {
    connectTimeout: ({ context }) => context.policy.connectTimeoutMs,
    backoff: ({ context }) => context.backoffMs,
  },
  guards: {
    fromCurrentLink: ({ context, event }) => "generation" in event && event.generation === context.generation,
    hasCapacity: ({ context }) => context.pending.size < context.policy.maxInFlight,
    restartLimitReached: ({ context }) => restartLimitReached(context.restarts, context.env.now(), context.policy),
  },
  actions: {
    /** Records the new status and emits the change, with the reason set by the transition. */
    enterStatus: enqueueActions(({ context, enqueue }, params: { status: ConnectionStatus }) => {
      const previous = context.image.status;
      if (previous === params.status) return;
      // Reconnecting keeps the attempt and next time the substate's entry just set; others clear them.
      const image = {
        ...context.image,
        status: params.status,
        ...(params.status === "Reconnecting" ? {} : NOT_RECONNECTING),
        failure: params.status === "Failed" ? context.failure : null,
      };
      enqueue.assign({ image });
      enqueue.emit({
        type: "status",
        data: {
          image_id: context.image.image_id,
          status: params.status,
          previous_status: previous,
          reason: context.reason,
          at: iso(context),
          reconnect_attempt: image.reconnect_attempt,
          next_attempt_at: image.next_attempt_at,
          failure: image.failure,
        },
      });
    }),
    setReason: assign((_, params: { reason: string }) => ({ reason: params.reason })),
    setLinkReason: assign(({ event }) => ({
      reason:
        event.type === "LINK.DOWN" || event.type === "LINK.FAULT" || event.type === "LINK.AUTH_FAILED"
          ? event.reason
          : null,
    })),
    setFailure: assign((_, params: { failure: ImageFailure }) => ({ failure: params.failure })),
    countFault: assign(({ context, event }) => ({
      stats: event.type === "LINK.FAULT" ? { ...context.stats, faults: context.stats.faults + 1 } : context.stats,
    })),
    openLink: enqueueActions(({ context, enqueue }) => {
      const generation = context.generation + 1;
      enqueue.assign({ generation });
      enqueue.spawnChild("link", {
        id: "link",
        input: {
          imageId: context.image.image_id,
          address: context.image.address,
          generation,
          heartbeatIntervalMs: context.policy.heartbeatIntervalMs,
          heartbeatTimeoutMs: context.policy.heartbeatTimeoutMs,
          pingIntervalMs: context.policy.pingIntervalMs,
          pingTimeoutMs: context.policy.pingTimeoutMs,
          maxMessageBytes: context.policy.maxMessageBytes,
          maxInFlight: context.policy.maxInFlight,
          fence: context.env.fence,
          curve: context.env.curve,
        },
      });
    }),
    closeLink: stopChild("link"),
    resetAttempts: assign({ attempt: 0 }),
    countFailedAttempt: assign(({ context }) => ({ attempt: context.attempt + 1 })),
    drawBackoff: assign(({ context }) => {
      const backoffMs = backoffDelay(context.attempt, context.env.random(), context.policy);
      const nextAt = isoTime(context.env.now() + backoffMs);
      return { backoffMs, image: { ...context.image, reconnect_attempt: context.attempt, next_attempt_at: nextAt } };
    }),
    startAttempt: assign(({ context }) => ({
      image: { ...context.image, reconnect_attempt: context.attempt, next_attempt_at: null },
    })),
    recordRestart: assign(({ context }) => ({
      restarts: [...context.restarts, context.env.now()].slice(-context.policy.maxRestarts),
    })),
    forgetRestarts: assign({ restarts: [], attempt: 0 }),

    sendClientRequest: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "REQUEST") return;
      if (context.pending.has(event.request.id)) {
        enqueue.emit({
          type: "settled",
          id: event.request.id,
          outcome: refusals.duplicate(event.request.id),
        });
        return;
      }
      send(context, enqueue, event.request, "client", event.timeoutMs ?? context.policy.requestTimeoutMs);
    }),
    /** The link pings by itself (src/actors/pinger.ts); this asks it for one now. */
    probe: sendTo("link", { type: "PROBE" }),
    recordPing: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "LINK.PINGED") return;
      const { rttMs } = event;
      if (rttMs === null) {
        setHealth(context, enqueue, healthAfterPing(context, null), null);
        enqueue.assign({ misses: context.misses + 1 });
        return;
      }
      const seen = { ...context, image: { ...context.image, last_seen: iso(context) } };
      setHealth(seen, enqueue, healthAfterPing(seen, rttMs), rttMs);
      if (context.misses !== 0) enqueue.assign({ misses: 0 });
    }),
    sendSystemInfo: enqueueActions(({ context, enqueue }) => {
      const request = imageRequest(`info-${context.image.image_id}-${context.generation}`, "system_info", {});
      send(context, enqueue, request, "system_info", context.policy.requestTimeoutMs);
    }),
    refuseOverloaded: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "REQUEST") return;
      enqueue.assign({ stats: { ...context.stats, overloaded: context.stats.overloaded + 1 } });
      const outcome = refusals.overloaded(context.image.image_id, context.policy.maxInFlight);
      enqueue.emit({ type: "settled", id: event.request.id, outcome });
    }),
    failFast: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "REQUEST") return;
      enqueue.assign({ stats: { ...context.stats, failed_fast: context.stats.failed_fast + 1 } });
      const message = `image ${context.image.image_id} is ${context.image.status}, not Connected`;
      enqueue.emit({ type: "settled", id: event.request.id, outcome: failed("ImageUnavailable", message) });
    }),

    settleReply: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "LINK.REPLY") return;
      const settled = correlate(context, event.reply);
      const { settlement } = settled;
      let { changes } = settled;
      if (settlement === null) {
        enqueue.assign(changes);
        return;
      }
      if (changes.pending?.size === 0 && context.deadlineAt !== null) {
        // Nothing left to time out: cheaper to cancel now than to let the timer fire for nothing.
        armDeadline(context, enqueue, null);
        changes = { ...changes, deadlineAt: null };
      }
      const next = { ...context, ...changes };
      switch (settlement.pending.origin) {
        case "client":
          enqueue.assign(changes);
          enqueue.emit({ type: "settled", id: settlement.id, outcome: settlement.outcome });
          return;
        case "system_info": {
          const outcome = settlement.outcome;
          if (!outcome.ok || outcome.command !== "system_info") return enqueue.assign(changes);
          const info = outcome.result as { image_name: string; image_version: string };
          enqueue.assign({
            ...changes,
            image: { ...next.image, image_name: info.image_name, image_version: info.image_version },
          });
          return;
        }
      }
    }),
    expireRequests: enqueueActions(({ context, enqueue }) => {
      // The timer fires at `deadlineAt` by its clock, which may run a little ahead of `now()`.
      const at = Math.max(context.env.now(), context.deadlineAt ?? 0);
      let next = context;
      for (const [id, pending] of context.pending) {
        if (pending.deadline > at) continue;
        next = expire(next, id);
        if (pending.origin === "client") {
          enqueue.emit({ type: "settled", id, outcome: refusals.timeout(context.image.image_id, pending.command) });
        }
      }
      const deadlineAt = earliestDeadline(next.pending);
      armDeadline({ ...next, deadlineAt: null }, enqueue, deadlineAt);
      enqueue.assign({ pending: next.pending, timedOut: next.timedOut, stats: next.stats, deadlineAt });
    }),
    /** On link loss: every pending request fails at once, and the health is unknown again. */
    failAllPending: enqueueActions(({ context, enqueue }) => {
      const outcome = refusals.linkLost(context.image.image_id, context.reason);
      for (const [id, pending] of context.pending) {
        if (pending.origin === "client") enqueue.emit({ type: "settled", id, outcome });
      }
      armDeadline(context, enqueue, null);
      setHealth(context, enqueue, "Unknown", null);
      enqueue.assign({ pending: new Map(), misses: 0, deadlineAt: null });
    }),
  },
}).createMachine({
  id: "image",
  context: ({ input }) => initialContext(input),
  initial: "Unknown",
  on: {
    DISCONNECT: {
      target: ".Disconnected",
      actions: { type: "setReason", params: ({ event }) => ({ reason: event.reason ?? "disconnect requested" }) },
    },
  },
  states: {
    Unknown: {
      entry: "openLink",
      after: {
        connectTimeout: {
          target: "Reconnecting",
          actions: [
            "closeLink",
            "countFailedAttempt",
            {
              type: "setReason",
              params: ({ context }) => ({ reason: `no ZMTP handshake within ${context.policy.connectTimeoutMs} ms` }),
            },
          ],
        },
      },
      on: {
        "LINK.UP": { guard: "fromCurrentLink", target: "Connected" },
        "LINK.DOWN": {
          guard: "fromCurrentLink",
          target: "Reconnecting",
          actions: ["closeLink", "countFailedAttempt", "setLinkReason"],
        },
        "LINK.FAULT": {
          guard: "fromCurrentLink",
          target: "Reconnecting",
          actions: ["closeLink", "countFault", "countFailedAttempt", "setLinkReason"],
        },
        // Trying again would be refused the same way: Failed until RETRY or NETWORK_CHANGED.
        "LINK.AUTH_FAILED": {
          guard: "fromCurrentLink",
          target: "#image.Failed",
          actions: ["closeLink", "setLinkReason", { type: "setFailure", params: { failure: "AuthFailed" } }],
        },
        REQUEST: { actions: "failFast" },
        NETWORK_CHANGED: { target: "Unknown", reenter: true, actions: "closeLink" },
      },
    },
    Connected: {
      entry: [
        { type: "setReason", params: { reason: "ZMTP handshake completed" } },
        { type: "enterStatus", params: { status: "Connected" } },
        "resetAttempts",
        "sendSystemInfo",
      ],
      on: {
        REQUEST: [{ guard: "hasCapacity", actions: "sendClientRequest" }, { actions: "refuseOverloaded" }],
        "REQUEST.DEADLINE": { actions: "expireRequests" },
        "LINK.REPLY": { guard: "fromCurrentLink", actions: "settleReply" },
        "LINK.PINGED": { guard: "fromCurrentLink", actions: "recordPing" },
        "LINK.SEND_FAILED": {
          guard: "fromCurrentLink",
          target: "Reconnecting",
          actions: [
            { type: "setReason", params: ({ event }) => ({ reason: `send failed: ${event.reason}` }) },
            "closeLink",
          ],
        },
        "LINK.DOWN": { guard: "fromCurrentLink", target: "Reconnecting", actions: ["setLinkReason", "closeLink"] },
        "LINK.FAULT": {
          guard: "fromCurrentLink",
          target: "Reconnecting",
          actions: ["countFault", "setLinkReason", "closeLink"],
        },
        NETWORK_CHANGED: { actions: "probe" },
      },
    },
    Reconnecting: {
      // The status changes on entering the first substate, once that has set the attempt and the
      // next attempt's time, so that the status event carries them. Pending requests fail after
      // it rather than on leaving Connected, so that they carry the reason; later entries of a
      // substate find none pending and the status already Reconnecting.
      initial: "backoff",
      on: {
        REQUEST: { actions: "failFast" },
      },
      states: {
        backoff: {
          entry: ["drawBackoff", { type: "enterStatus", params: { status: "Reconnecting" } }, "failAllPending"],
          after: {
            backoff: [
              {
                guard: "restartLimitReached",
                target: "#image.Failed",
                actions: [
                  {
                    type: "setReason",
                    params: ({ context }) => ({
                      reason: `${context.policy.maxRestarts} reconnection attempts within ${context.policy.restartWindowMs} ms`,
                    }),
                  },
                  { type: "setFailure", params: { failure: "RestartLimit" } },
                ],
              },
              { target: "connecting", actions: "recordRestart" },
            ],
          },
          on: {
            // The network is another now: what failed before says nothing of it. Try at once,
            // the backoff and the restart intensity started afresh.
            NETWORK_CHANGED: { target: "connecting", actions: ["forgetRestarts", "recordRestart"] },
          },
        },
        connecting: {
          entry: [
            "startAttempt",
            { type: "enterStatus", params: { status: "Reconnecting" } },
            "failAllPending",
            "openLink",
          ],
          after: { connectTimeout: { target: "backoff", actions: ["closeLink", "countFailedAttempt"] } },
          on: {
            "LINK.UP": { guard: "fromCurrentLink", target: "#image.Connected" },
            "LINK.DOWN": { guard: "fromCurrentLink", target: "backoff", actions: ["closeLink", "countFailedAttempt"] },
            "LINK.FAULT": {
              guard: "fromCurrentLink",
              target: "backoff",
              actions: ["closeLink", "countFault", "countFailedAttempt"],
            },
            "LINK.AUTH_FAILED": {
              guard: "fromCurrentLink",
              target: "#image.Failed",
              actions: ["closeLink", "setLinkReason", { type: "setFailure", params: { failure: "AuthFailed" } }],
            },
            NETWORK_CHANGED: { target: "connecting", reenter: true, actions: ["closeLink", "resetAttempts"] },
          },
        },
      },
    },
    Failed: {
      entry: { type: "enterStatus", params: { status: "Failed" } },
      on: {
        REQUEST: { actions: "failFast" },
        RETRY: {
          target: "#image.Reconnecting.connecting",
          actions: ["forgetRestarts", { type: "setReason", params: { reason: "retry requested" } }],
        },
        NETWORK_CHANGED: {
          target: "#image.Reconnecting.connecting",
          actions: ["forgetRestarts", { type: "setReason", params: { reason: "network changed" } }],
        },
      },
    },
    Disconnected: {
      entry: ["closeLink", { type: "enterStatus", params: { status: "Disconnected" } }, "failAllPending"],
      on: {
        REQUEST: { actions: "failFast" },
        // Nothing leads out: a disconnected image stays disconnected until it is removed.
        DISCONNECT: {},
      },
    },
  },
});

export type ImageConnectionActor = ActorRefFrom<typeof imageConnectionMachine>;
