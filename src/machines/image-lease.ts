/**
 * One image's lease, as the instance that wants to own the image sees it: a pure state machine;
 * the lease store comes in as the named actors `read`, `write` and `release` (I/O), time as the
 * actor's clock (delays) plus the injected `now` (wall clock, to judge another's `expiresAt`) and
 * `monotonic` (to judge its own lease).
 *
 * - `Reading`: the stored lease. None, lapsed, or its own: `Taking`, if this instance is `eager`
 *   (among the least loaded: that spreads the images), else `Deferring` and taken anyway once it
 *   has been free for `patienceMs` (so an image is never left unowned). Another's that still runs:
 *   `Standby` until it lapses (read again every `standbyPollMs`, or at once on `POKE`: the lease
 *   store saw it change, e.g. released).
 * - `Taking`: a compare-and-set on the revision read. Won: `Owning`; lost the race: `Reading`.
 * - `Owning`: renewed every third of the TTL (each a compare-and-set on the held revision). The
 *   owner trusts only its own monotonic clock: the lease is valid until `ttl - margin` after the
 *   renewal that last succeeded was *sent*. Past that deadline, whatever the store says or
 *   whether the renewal is still in flight (a process paused past its TTL wakes up here), the
 *   lease is `Lost`; a renewal refused because the revision moved (taken over) loses it at once.
 *   `owned` and `lost` are emitted: the manager connects the image, and stops sending to it.
 * - `HAND_OVER` while owning: the lease is given up for another instance to take (balancing);
 *   then back to `Reading`, where it waits like any other free lease.
 * - `Released` (final) on `RELEASE`: the lease is given up, so another instance takes it at once.
 *
 * The revision of the held lease is the fencing token every owner-side write carries.
 */
import { assign, emit, fromPromise, setup } from "xstate";
import type { Lease } from "../ports.js";

export interface LeaseInput {
  readonly imageId: string;
  /** This instance's `instance_id`. */
  readonly owner: string;
  /** @default 15000 (longer than the 5–7 s a JetStream stream leader failover takes) */
  readonly ttlMs?: number;
  /** How long before the TTL the owner stops trusting its lease. @default a tenth of the TTL */
  readonly marginMs?: number;
  /** Wait after a store error or a lost lease before trying again. @default 1000 */
  readonly retryMs?: number;
  /**
   * How often another's lease is read again while waiting for it (a released one is taken this
   * soon). @default the smaller of a third of the TTL and 1000
   */
  readonly standbyPollMs?: number;
  /**
   * Whether to take a free lease at once: this instance is among the least loaded. Asked when the
   * lease is read free. @default always
   */
  readonly eager?: () => boolean;
  /** How long a free lease waits for an eager instance before this one takes it. @default min(ttl/2, 3000) */
  readonly patienceMs?: number;
  /** Wall-clock milliseconds. @default Date.now */
  readonly now?: () => number;
  /** Monotonic milliseconds: the actor clock's, in tests. @default performance.now */
  readonly monotonic?: () => number;
}

export interface LeaseContext {
  readonly imageId: string;
  readonly owner: string;
  readonly ttlMs: number;
  readonly marginMs: number;
  readonly retryMs: number;
  readonly standbyPollMs: number;
  readonly patienceMs: number;
  /** Since when (monotonic ms) the lease has been read free without being taken; `null`: it was not. */
  readonly freeSince: number | null;
  /** The other instance whose lease was read last: who handed it over, once it reads as released. */
  readonly lastOwner: string | null;
  /** A `POKE` came while reading. */
  readonly poked: boolean;
  /** The lease held, or the one last read. */
  readonly lease: Lease | null;
  /** When the write that produced the held lease was sent (monotonic ms); `null`: none held. */
  readonly validFrom: number | null;
  /** When the write in flight was sent. */
  readonly sentAt: number;
  /** Why the lease was last lost. */
  readonly lostReason: string;
  readonly env: { readonly now: () => number; readonly monotonic: () => number; readonly eager: () => boolean };
}

export type LeaseEvent =
  | { readonly type: "RELEASE" }
  /** Give the held lease up for another instance to take, and keep competing. */
  | { readonly type: "HAND_OVER" }
  /** The stored lease changed: read it now rather than at the next poll. */
  | { readonly type: "POKE" };

export type LeaseEmitted =
  | {
      readonly type: "owned";
      readonly lease: Lease;
      /** The owner whose lapsed lease this one took over. */
      readonly takenOverFrom: string | null;
      /** The owner that released the lease just before (stopping, or balancing), when it was seen. */
      readonly handedOverBy: string | null;
    }
  | { readonly type: "lost"; readonly imageId: string; readonly reason: string }
  | { readonly type: "released"; readonly imageId: string };

export interface WriteInput {
  readonly imageId: string;
  readonly owner: string;
  readonly ttlMs: number;
  readonly expectedRevision: number;
}

/** Whether the held lease may still be trusted at monotonic time `at` (for a synchronous fence check). */
export function leaseValid(context: LeaseContext, at: number): boolean {
  return context.validFrom !== null && at < context.validFrom + context.ttlMs - context.marginMs;
}

/** A take-over or renewal: for this owner, over the revision of the lease read or held. */
const writeInput = ({ context }: { context: LeaseContext }): WriteInput => ({
  imageId: context.imageId,
  owner: context.owner,
  ttlMs: context.ttlMs,
  expectedRevision: context.lease?.revision ?? 0,
});

/** How often a deferred free lease is read again (see the `deferral` delay). */
const DEFER_POLL_MS = 250;

/** None, lapsed, or this instance's own. */
const isFree = (context: LeaseContext, lease: Lease | null): boolean =>
  lease === null || lease.owner === context.owner || lease.expiresAt <= context.env.now();

/** A write refused because the stored revision moved: another instance holds or took the lease. */
const isConflict = (error: unknown): boolean => error instanceof Error && error.name === "RevisionConflictError";

export const imageLeaseMachine = setup({
  types: {
    input: {} as LeaseInput,
    context: {} as LeaseContext,
    events: {} as LeaseEvent,
    emitted: {} as LeaseEmitted,
  },
  actors: {
    read: fromPromise<Lease | null, { imageId: string }>(() => Promise.reject(new Error("no lease store"))),
    write: fromPromise<Lease, WriteInput>(() => Promise.reject(new Error("no lease store"))),
    release: fromPromise<void, Lease>(() => Promise.reject(new Error("no lease store"))),
  },
  delays: {
    retry: ({ context }) => context.retryMs,
    renewal: ({ context }) => context.ttlMs / 3,
    /** Until the held lease can no longer be trusted. */
    validity: ({ context }) =>
      Math.max(0, (context.validFrom ?? 0) + context.ttlMs - context.marginMs - context.env.monotonic()),
    /**
     * Until the patience with a free lease runs out, at most a quarter of a second: the loads it
     * waits on change as the others take leases, and not every change pokes this actor.
     */
    deferral: ({ context }) =>
      Math.min(
        context.standbyPollMs,
        DEFER_POLL_MS,
        Math.max(0, (context.freeSince ?? 0) + context.patienceMs - context.env.monotonic()),
      ),
    /** Until another's lease lapses, at most `standbyPollMs` (it may be released early). */
    standby: ({ context }) =>
      Math.min(context.standbyPollMs, Math.max(0, (context.lease?.expiresAt ?? 0) - context.env.now())),
  },
  guards: {
    free: ({ context }, lease: Lease | null) => isFree(context, lease),
    /** Free and taken now: its own lease, an eager instance, or free for long enough. */
    takeNow: ({ context }, lease: Lease | null) =>
      isFree(context, lease) &&
      (lease?.owner === context.owner ||
        context.env.eager() ||
        (context.freeSince !== null && context.env.monotonic() - context.freeSince >= context.patienceMs)),
  },
}).createMachine({
  id: "lease",
  context: ({ input }) => {
    const ttlMs = input.ttlMs ?? 15_000;
    return {
      imageId: input.imageId,
      owner: input.owner,
      ttlMs,
      marginMs: input.marginMs ?? ttlMs / 10,
      retryMs: input.retryMs ?? 1000,
      standbyPollMs: input.standbyPollMs ?? Math.min(ttlMs / 3, 1000),
      patienceMs: input.patienceMs ?? Math.min(ttlMs / 2, 3000),
      freeSince: null,
      lastOwner: null,
      poked: false,
      lease: null,
      validFrom: null,
      sentAt: 0,
      lostReason: "",
      env: {
        now: input.now ?? Date.now,
        monotonic: input.monotonic ?? (() => performance.now()),
        eager: input.eager ?? (() => true),
      },
    };
  },
  initial: "Reading",
  on: { RELEASE: ".Released" },
  states: {
    Reading: {
      // A change heard while the read is in flight may not be in what it returns: read again after.
      entry: assign({ poked: false }),
      on: { POKE: { actions: assign({ poked: true }) } },
      invoke: {
        src: "read",
        input: ({ context }) => ({ imageId: context.imageId }),
        onDone: [
          {
            guard: { type: "takeNow", params: ({ event }) => event.output },
            target: "Taking",
            actions: assign({ lease: ({ event }) => event.output, freeSince: null }),
          },
          {
            guard: { type: "free", params: ({ event }) => event.output },
            target: "Deferring",
            actions: assign({
              lease: ({ event }) => event.output,
              freeSince: ({ context }) => context.freeSince ?? context.env.monotonic(),
            }),
          },
          {
            target: "Standby",
            actions: assign({
              lease: ({ event }) => event.output,
              freeSince: null,
              lastOwner: ({ context, event }) => event.output?.owner ?? context.lastOwner,
            }),
          },
        ],
        onError: "Waiting",
      },
    },
    Waiting: { after: { retry: "Reading" } },
    Standby: {
      always: { guard: ({ context }) => context.poked, target: "Reading" },
      after: { standby: "Reading" },
      on: { POKE: "Reading" },
    },
    /** Free, left a moment for a less loaded instance. */
    Deferring: {
      always: { guard: ({ context }) => context.poked, target: "Reading" },
      after: { deferral: "Reading" },
      on: { POKE: "Reading" },
    },
    Taking: {
      entry: assign({ sentAt: ({ context }) => context.env.monotonic() }),
      invoke: {
        src: "write",
        input: writeInput,
        onDone: {
          target: "Owning",
          actions: [
            emit(({ context, event }) => ({
              type: "owned" as const,
              lease: event.output,
              takenOverFrom:
                context.lease !== null && context.lease.owner !== context.owner ? context.lease.owner : null,
              handedOverBy: context.lease === null ? context.lastOwner : null,
            })),
            assign({
              lease: ({ event }) => event.output,
              validFrom: ({ context }) => context.sentAt,
              lastOwner: null,
            }),
          ],
        },
        onError: [{ guard: ({ event }) => isConflict(event.error), target: "Reading" }, { target: "Waiting" }],
      },
    },
    Owning: {
      initial: "Held",
      // Not reset by a failed renewal: only a renewal that succeeds re-enters `Owning`.
      after: {
        validity: {
          target: "Lost",
          actions: assign({
            validFrom: null,
            lostReason: ({ context }) => `not renewed within ${context.ttlMs - context.marginMs} ms`,
          }),
        },
      },
      states: {
        Held: { after: { renewal: "Renewing" } },
        Retrying: { after: { retry: "Renewing" } },
        Renewing: {
          entry: assign({ sentAt: ({ context }) => context.env.monotonic() }),
          invoke: {
            src: "write",
            input: writeInput,
            onDone: {
              target: "#lease.Owning",
              reenter: true,
              actions: assign({ lease: ({ event }) => event.output, validFrom: ({ context }) => context.sentAt }),
            },
            onError: [
              {
                guard: ({ event }) => isConflict(event.error),
                target: "#lease.Lost",
                actions: assign({ validFrom: null, lostReason: "taken over by another instance" }),
              },
              { target: "Retrying" },
            ],
          },
        },
      },
      on: { RELEASE: "Releasing", HAND_OVER: "HandingOver" },
    },
    HandingOver: {
      entry: assign({ validFrom: null }),
      invoke: {
        src: "release",
        input: ({ context }) => {
          if (context.lease === null) throw new Error("no lease to hand over");
          return context.lease;
        },
        onDone: {
          target: "Deferring",
          actions: assign({ lease: null, freeSince: ({ context }) => context.env.monotonic() }),
        },
        onError: { target: "Deferring", actions: assign({ freeSince: ({ context }) => context.env.monotonic() }) },
      },
    },
    Lost: {
      entry: emit(({ context }) => ({
        type: "lost" as const,
        imageId: context.imageId,
        reason: context.lostReason,
      })),
      after: { retry: "Reading" },
    },
    Releasing: {
      entry: assign({ validFrom: null }),
      invoke: {
        src: "release",
        input: ({ context }) => {
          if (context.lease === null) throw new Error("no lease to release");
          return context.lease;
        },
        onDone: "Released",
        onError: "Released",
      },
    },
    Released: {
      type: "final",
      entry: emit(({ context }) => ({ type: "released" as const, imageId: context.imageId })),
    },
  },
});
