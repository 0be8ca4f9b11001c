/**
 * The session manager: the supervisor of every image connection and the owner of the session
 * registry (sessions per image, each client's current image context).
 *
 * - One image connection actor per image, spawned with system id = image id, added and removed at
 *   run time. A child that crashes (`xstate.error.actor.<id>`) marks its image Failed with the
 *   error as the reason; the manager itself never stops for a child.
 * - Each child's status and health changes are forwarded (by a small `watch` actor per child, as
 *   a child's `emit`s reach only its own listeners) and re-emitted as the manager's own.
 * - Timers: an image Failed for longer than `failedGraceMs` and the periodic orphan sweep. Their
 *   I/O (store writes, image requests) is not done here: the manager emits `work`, and the actor
 *   that runs it (src/actors/session-manager.ts) writes the store and `ANNOUNCE`s what it did.
 *
 * The registry changes only on `STORE.CHANGED`, from the store's change feed of durable changes
 * (whoever wrote them), so the machine's registry is always what the store holds.
 */
import {
  assign,
  enqueueActions,
  fromCallback,
  setup,
  type ActorRefFrom,
  type ErrorActorEvent,
  type EventObject,
} from "xstate";
import type {
  ContextSwitched,
  ImageConnectionStatus,
  ImageHealthChanged,
  ImageStatusChanged,
  SessionLifecycle,
} from "../protocol/index.js";
import type { ConnectionPolicy } from "./connection-policy.js";
import { imageConnectionMachine, type ImageConnectionActor } from "./image-connection.js";
import { NOT_RECONNECTING } from "./image-connection-logic.js";
import { SessionRegistry, type RevisedSession } from "./session-registry.js";
import { isoTime } from "../clock.js";
import type { CurveClient } from "../curve.js";
import type { StoreChange, StoredContext } from "../ports.js";

export type { RevisedSession } from "./session-registry.js";

export interface ImageConfig {
  /** Also the child's system id and the subject token of its events. */
  readonly id: string;
  /** ZeroMQ endpoint of the image's REP socket, e.g. `tcp://127.0.0.1:5555`. */
  readonly address: string;
  /** Display name. @default null */
  readonly name?: string | null;
  /** CURVE keys of the link, from this instance's configuration (never shared). @default null: plain TCP */
  readonly curve?: CurveClient | null;
}

export interface ManagerPolicy {
  /** How long an image may stay Failed before its sessions are orphaned. @default 300000 (5 min) */
  readonly failedGraceMs: number;
  /** Orphaned sessions are removed once orphaned this long; `null`: never. @default 86400000 (24 h) */
  readonly orphanMaxAgeMs: number | null;
  /** How often orphaned sessions are checked against `orphanMaxAgeMs`. @default 60000 */
  readonly sweepIntervalMs: number;
  /** For every image connection. @default DEFAULT_POLICY */
  readonly connection: Partial<ConnectionPolicy>;
}

export const DEFAULT_MANAGER_POLICY: ManagerPolicy = {
  failedGraceMs: 300_000,
  orphanMaxAgeMs: 86_400_000,
  sweepIntervalMs: 60_000,
  connection: {},
};

export interface SessionManagerInput {
  readonly images: readonly ImageConfig[];
  readonly sessions?: Iterable<RevisedSession>;
  /** Each client's current image context, by client id. */
  readonly contexts?: ReadonlyMap<string, StoredContext>;
  readonly policy?: Partial<ManagerPolicy>;
  /** Wall-clock milliseconds. @default Date.now */
  readonly now?: () => number;
}

interface ImageEntry {
  readonly config: ImageConfig;
  readonly ref: ImageConnectionActor;
  /** Why the connection actor crashed; `null` while it runs. */
  readonly crash: string | null;
  /** Whether this instance may still speak for the image (its lease); nothing is emitted otherwise. */
  readonly fence: () => boolean;
  /** How this instance came to own the image, until its first Connected status says so. */
  readonly ownedBecause: string | null;
}

export interface SessionManagerContext {
  readonly images: ReadonlyMap<string, ImageEntry>;
  /** Changed in place, by `storeChanged` only (see session-registry.ts). */
  readonly registry: SessionRegistry;
  readonly policy: ManagerPolicy;
  /** In an object: `assign` would call a top-level function as a property assigner. */
  readonly env: { readonly now: () => number };
}

export type SessionNotice =
  | { readonly kind: "created" | "closed" | "orphaned" | "cleaned"; readonly data: SessionLifecycle }
  | { readonly kind: "context"; readonly data: ContextSwitched };

/** Work the manager's timers and status changes ask for; it involves I/O, so it runs outside. */
export type ManagerWork =
  /** The image is Connected (again): restore its stored sessions on it. */
  | { readonly kind: "restore"; readonly imageId: string }
  /** Orphan the image's sessions. */
  | { readonly kind: "orphan"; readonly imageId: string; readonly reason: string }
  /** Remove sessions orphaned for longer than `orphanMaxAgeMs`. */
  | { readonly kind: "sweep" };

export type SessionManagerEvent =
  | {
      readonly type: "IMAGE.ADD";
      readonly config: ImageConfig;
      /**
       * Shared images: whether this instance's lease is still valid, asked before every send to
       * the image and every status or health emitted for it. @default always
       */
      readonly fence?: () => boolean;
      /**
       * How this instance came to own the image ("taken over from a", "handed over by b"), said in
       * the reason of its first Connected status. @default null
       */
      readonly ownedBecause?: string | null;
    }
  /** Stops the image's connection; its last status says `reason`. @default "image removed" */
  | { readonly type: "IMAGE.REMOVE"; readonly imageId: string; readonly reason?: string }
  /** Respawns a crashed connection, or has a Failed one start over. */
  | { readonly type: "IMAGE.RETRY"; readonly imageId: string }
  /**
   * The network changed (or the host woke up, or someone asked): every connection, or only
   * `imageId`'s, gets `NETWORK_CHANGED` (a Connected one probes at once, the others try now).
   */
  | { readonly type: "IMAGES.NETWORK_CHANGED"; readonly imageId: string | null }
  | { readonly type: "IMAGE.STATUS"; readonly data: ImageStatusChanged }
  | { readonly type: "IMAGE.HEALTH"; readonly data: ImageHealthChanged }
  | { readonly type: "IMAGE.GRACE_EXPIRED"; readonly imageId: string }
  /** A change the store made durable (the store's change feed). */
  | { readonly type: "STORE.CHANGED"; readonly change: StoreChange }
  /** What durable changes to announce, once written. */
  | { readonly type: "ANNOUNCE"; readonly notices: readonly SessionNotice[] }
  | ErrorActorEvent;

export type SessionManagerEmitted =
  | { readonly type: "status"; readonly data: ImageStatusChanged }
  | { readonly type: "health"; readonly data: ImageHealthChanged }
  | { readonly type: "session"; readonly notice: SessionNotice }
  | { readonly type: "work"; readonly work: ManagerWork };

type WatchEvent = Extract<SessionManagerEvent, { type: "IMAGE.STATUS" | "IMAGE.HEALTH" }>;

/** Forwards one child's status and health changes to the manager. */
const watch = fromCallback<EventObject, { readonly ref: ImageConnectionActor }, WatchEvent>(({ input, sendBack }) => {
  const status = input.ref.on("status", ({ data }) => sendBack({ type: "IMAGE.STATUS", data }));
  const health = input.ref.on("health", ({ data }) => sendBack({ type: "IMAGE.HEALTH", data }));
  return () => {
    status.unsubscribe();
    health.unsubscribe();
  };
});

const graceTimer = (imageId: string): string => `grace:${imageId}`;
const watcherId = (imageId: string): string => `watch:${imageId}`;

/** The status of an image as clients see it (a crashed connection reads as Failed). */
export function imageStatusOf(entry: ImageEntry): ImageConnectionStatus {
  const image = entry.ref.getSnapshot().context.image;
  if (entry.crash === null) return image;
  return {
    ...image,
    status: "Failed",
    connection_health: "Unknown",
    rtt_ms: null,
    ...NOT_RECONNECTING,
    failure: "Crashed",
  };
}

const ALWAYS = (): boolean => true;

type Spawn = Pick<ImageEntry, "config" | "fence" | "ownedBecause">;

/** The image to spawn a connection for: a new one, or a crashed one retried; `null`: none. */
function imageToSpawn(context: SessionManagerContext, event: SessionManagerEvent): Spawn | null {
  switch (event.type) {
    case "IMAGE.ADD":
      if (context.images.has(event.config.id)) return null;
      return { config: event.config, fence: event.fence ?? ALWAYS, ownedBecause: event.ownedBecause ?? null };
    case "IMAGE.RETRY": {
      const entry = context.images.get(event.imageId);
      return entry !== undefined && entry.crash !== null ? entry : null;
    }
    default:
      return null;
  }
}

/** The image's entry while this instance may speak for it (see `ImageEntry.fence`). */
function speaking(context: SessionManagerContext, imageId: string): ImageEntry | null {
  const entry = context.images.get(imageId);
  return entry !== undefined && entry.fence() ? entry : null;
}

export const sessionManagerMachine = setup({
  types: {
    context: {} as SessionManagerContext,
    events: {} as SessionManagerEvent,
    input: {} as SessionManagerInput,
    emitted: {} as SessionManagerEmitted,
  },
  actors: { connection: imageConnectionMachine, watch },
  delays: {
    sweepInterval: ({ context }) => context.policy.sweepIntervalMs,
  },
  actions: {
    /** Spawns the connection of an added image, or a fresh one for a crashed image on retry. */
    spawnImage: assign(({ context, event, spawn }) => {
      const spawned = imageToSpawn(context, event);
      if (spawned === null) return {};
      const { config, fence, ownedBecause } = spawned;
      const ref = spawn("connection", {
        id: config.id,
        systemId: config.id,
        input: {
          imageId: config.id,
          address: config.address,
          name: config.name ?? null,
          policy: context.policy.connection,
          now: context.env.now,
          fence,
          curve: config.curve ?? null,
        },
      });
      spawn("watch", { id: watcherId(config.id), input: { ref } });
      const entry: ImageEntry = { config, ref, crash: null, fence, ownedBecause };
      return { images: new Map(context.images).set(config.id, entry) };
    }),
    removeImage: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "IMAGE.REMOVE") return;
      const entry = context.images.get(event.imageId);
      if (entry === undefined) return;
      enqueue.cancel(graceTimer(event.imageId));
      enqueue.stopChild(watcherId(event.imageId));
      enqueue.stopChild(entry.ref);
      const images = new Map(context.images);
      images.delete(event.imageId);
      enqueue.assign({ images });
      const previous = imageStatusOf(entry).status;
      // An image whose lease was lost is another instance's to speak for.
      if (previous !== "Disconnected" && entry.fence()) {
        enqueue.emit({
          type: "status",
          data: {
            image_id: event.imageId,
            status: "Disconnected",
            previous_status: previous,
            reason: event.reason ?? "image removed",
            at: isoTime(context.env.now()),
            ...NOT_RECONNECTING,
            failure: null,
          },
        });
      }
    }),
    networkChanged: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "IMAGES.NETWORK_CHANGED") return;
      for (const entry of context.images.values()) {
        if (entry.crash !== null || (event.imageId !== null && entry.config.id !== event.imageId)) continue;
        enqueue.sendTo(entry.ref, { type: "NETWORK_CHANGED" });
      }
    }),
    retryImage: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "IMAGE.RETRY") return;
      const entry = context.images.get(event.imageId);
      if (entry?.crash === null) enqueue.sendTo(entry.ref, { type: "RETRY" });
    }),
    childCrashed: enqueueActions(({ context, event, enqueue }) => {
      if (!event.type.startsWith("xstate.error.actor.")) return;
      const { actorId, error } = event as ErrorActorEvent;
      const entry = actorId === undefined ? undefined : context.images.get(actorId);
      if (entry === undefined || entry.crash !== null) return;
      const reason = `connection actor crashed: ${error instanceof Error ? error.message : String(error)}`;
      const previous = entry.ref.getSnapshot().context.image.status;
      enqueue.assign({ images: new Map(context.images).set(entry.config.id, { ...entry, crash: reason }) });
      enqueue.stopChild(watcherId(entry.config.id));
      const data: ImageStatusChanged = {
        image_id: entry.config.id,
        status: "Failed",
        previous_status: previous,
        reason,
        at: isoTime(context.env.now()),
        ...NOT_RECONNECTING,
        failure: "Crashed",
      };
      enqueue.raise({ type: "IMAGE.STATUS", data });
    }),
    forwardStatus: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "IMAGE.STATUS") return;
      const entry = speaking(context, event.data.image_id);
      if (entry === null) return;
      let { data } = event;
      if (entry.ownedBecause !== null && data.status === "Connected") {
        // Consumers tell a takeover or a handover from an outage by this reason.
        const because = entry.ownedBecause;
        data = { ...data, reason: data.reason === null ? because : `${because}; ${data.reason}` };
        enqueue.assign({
          images: new Map(context.images).set(data.image_id, { ...entry, ownedBecause: null }),
        });
      }
      enqueue.emit({ type: "status", data });
      if (data.status === "Failed") {
        enqueue.raise(
          { type: "IMAGE.GRACE_EXPIRED", imageId: data.image_id },
          { id: graceTimer(data.image_id), delay: context.policy.failedGraceMs },
        );
      } else {
        enqueue.cancel(graceTimer(data.image_id));
      }
      if (data.status === "Connected")
        enqueue.emit({ type: "work", work: { kind: "restore", imageId: data.image_id } });
    }),
    forwardHealth: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "IMAGE.HEALTH" || speaking(context, event.data.image_id) === null) return;
      enqueue.emit({ type: "health", data: event.data });
    }),
    orphanFailed: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== "IMAGE.GRACE_EXPIRED" || speaking(context, event.imageId) === null) return;
      const reason = `image failed for longer than ${context.policy.failedGraceMs} ms`;
      enqueue.emit({ type: "work", work: { kind: "orphan", imageId: event.imageId, reason } });
    }),
    sweep: enqueueActions(({ context, enqueue }) => {
      if (context.policy.orphanMaxAgeMs !== null) enqueue.emit({ type: "work", work: { kind: "sweep" } });
    }),
    storeChanged: ({ context, event }) => {
      if (event.type === "STORE.CHANGED") context.registry.apply(event.change);
    },
    announce: enqueueActions(({ event, enqueue }) => {
      if (event.type !== "ANNOUNCE") return;
      for (const notice of event.notices) enqueue.emit({ type: "session", notice });
    }),
  },
}).createMachine({
  id: "sessionManager",
  context: ({ input }) => ({
    images: new Map(),
    registry: SessionRegistry.from(input.sessions, input.contexts),
    policy: { ...DEFAULT_MANAGER_POLICY, ...input.policy },
    env: { now: input.now ?? Date.now },
  }),
  // Configured images are added as at run time, before any other event is taken.
  entry: enqueueActions(({ enqueue, event }) => {
    // The init event carries the input; xstate's types do not list it among the machine's events.
    const { input } = event as unknown as { readonly input: SessionManagerInput };
    for (const config of input.images) enqueue.raise({ type: "IMAGE.ADD", config });
  }),
  initial: "running",
  states: {
    running: {
      after: { sweepInterval: { target: "running", reenter: true, actions: "sweep" } },
      on: {
        "IMAGE.ADD": { actions: "spawnImage" },
        "IMAGE.REMOVE": { actions: "removeImage" },
        // A crashed connection is gone for good: a fresh one is spawned under the same id.
        "IMAGE.RETRY": { actions: ["retryImage", "spawnImage"] },
        "IMAGES.NETWORK_CHANGED": { actions: "networkChanged" },
        "IMAGE.STATUS": { actions: "forwardStatus" },
        "IMAGE.HEALTH": { actions: "forwardHealth" },
        "IMAGE.GRACE_EXPIRED": { actions: "orphanFailed" },
        "STORE.CHANGED": { actions: "storeChanged" },
        ANNOUNCE: { actions: "announce" },
        "xstate.error.actor.*": { actions: "childCrashed" },
      },
    },
  },
});

export type SessionManagerActor = ActorRefFrom<typeof sessionManagerMachine>;
