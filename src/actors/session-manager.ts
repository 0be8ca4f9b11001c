/**
 * Running the session manager: loads the store, starts the supervisor machine with the real image
 * connections, runs the work its timers ask for, and serves every client request through one
 * typed entry point, `handle(request)`.
 */
import { createActor, type ActorOptions } from "xstate";
import { liveImageConnectionMachine } from "./image-connection.js";
import { KeyedQueue } from "./concurrency.js";
import { ImageLeases, type LeaseOptions } from "./image-leases.js";
import { imageStatuses, orphanSessions, restoreSessions, stateOf, sweepOrphans } from "./session-ops.js";
import { handlers, type HandlerContext } from "./session-requests.js";
import { forwardTarget, type ClusterView } from "./routing.js";
import type { HandleOptions, ImageCatalog, Peers, RequestHandler, SessionStore, StoreProblem } from "../ports.js";
import { errorAnswer, isStoreWriteError } from "../errors.js";
import { isoTime } from "../clock.js";
import { stderrLogger, type Logger } from "../logger.js";
import {
  sessionManagerMachine,
  type ImageConfig,
  type ManagerPolicy,
  type ManagerWork,
  type SessionManagerActor,
} from "../machines/session-manager.js";
import {
  errorResponse,
  type ErrorResponse,
  type ImageConnectionStatus,
  type NatsLinkStatus,
  type RequestOf,
  type RequestType,
  type ResponseTo,
  type StoreStatus,
} from "../protocol/index.js";

/** The machine with real ZeroMQ image connections. */
export const liveSessionManagerMachine = sessionManagerMachine.provide({
  actors: { connection: liveImageConnectionMachine },
});

export interface SessionManagerOptions {
  readonly store: SessionStore;
  /** The configured images, connected at start. */
  readonly images: readonly ImageConfig[];
  readonly policy?: Partial<ManagerPolicy>;
  /** @default JSON lines on stderr */
  readonly logger?: Logger;
  /** Reports the NATS link in `GetConnectionHealthSummary`. @default () => null (no NATS) */
  readonly natsStatus?: () => NatsLinkStatus | null;
  /** Wall-clock milliseconds. @default Date.now */
  readonly now?: () => number;
  /** This instance's `instance_id`: the `owner` its images are listed with. @default null (no NATS) */
  readonly instanceId?: string;
  /**
   * Shared ownership: connect only the images whose lease this instance holds (see
   * image-leases.ts), and forward what needs another owner's connection to it through `peers`.
   * Absent: every configured image is connected here.
   */
  readonly leases?: LeaseOptions & { readonly peers: Peers; readonly catalog: ImageCatalog };
  /** Passed to the actor: a simulated clock, or the inspector's observer. */
  readonly actorOptions?: Pick<ActorOptions<typeof liveSessionManagerMachine>, "clock" | "inspect">;
}

/** How long background work waits before it tries the store again. */
const STORE_RETRY_MS = 1000;

export class SessionManager implements RequestHandler {
  private ctx: HandlerContext;
  /** The same, for requests another instance forwarded here. */
  private forwardedCtx: HandlerContext;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly retries = new Set<NodeJS.Timeout>();
  private unwatch: () => void = () => undefined;
  private leases: ImageLeases | null = null;
  private stopping = false;

  private constructor(
    readonly actor: SessionManagerActor,
    private readonly store: SessionStore,
    logger: Logger,
    now: () => number,
    natsStatus: () => NatsLinkStatus | null,
    /** Files the store could not load (already logged and moved aside). */
    readonly problems: readonly StoreProblem[],
    private readonly instanceId: string | null,
  ) {
    this.ctx = {
      actor,
      store,
      queue: new KeyedQueue(),
      logger,
      now,
      natsStatus,
      runLater: (work) => this.run(work),
      instanceId,
      leaseExpiry: () => null,
      fence: () => Promise.resolve(),
      cluster: null,
      forwarded: false,
    };
    this.forwardedCtx = { ...this.ctx, forwarded: true };
  }

  private share(cluster: ClusterView): void {
    const leaseExpiry = (imageId: string): string | null => {
      const expiresAt = cluster.leases.image(imageId)?.expiresAt ?? null;
      return expiresAt === null ? null : isoTime(expiresAt);
    };
    this.ctx = { ...this.ctx, cluster, leaseExpiry, fence: (imageId) => cluster.leases.verify(imageId) };
    this.forwardedCtx = { ...this.ctx, forwarded: true };
  }

  /**
   * Loads every stored session and context, connects the configured images, and orphans the
   * stored sessions of images that are no longer configured (in the background, durably).
   */
  static async start(options: SessionManagerOptions): Promise<SessionManager> {
    const logger = options.logger ?? stderrLogger;
    const now = options.now ?? Date.now;
    const loaded = await options.store.load();
    const actor = createActor(liveSessionManagerMachine, {
      ...options.actorOptions,
      input: {
        // With leases, an image is added once its lease is held.
        images: options.leases === undefined ? options.images : [],
        sessions: loaded.records,
        contexts: loaded.contexts,
        policy: options.policy ?? {},
        now,
      },
    });
    const manager = new SessionManager(
      actor,
      options.store,
      logger,
      now,
      options.natsStatus ?? (() => null),
      loaded.problems,
      options.instanceId ?? null,
    );
    actor.on("work", ({ work }) => manager.run(work));
    logImageChanges(actor, logger);
    actor.subscribe({ error: (error) => logger.error({ err: error }, "session manager stopped on an error") });
    actor.start();
    // The registry is a view of the store: every durable change reaches it through the feed.
    const unwatchStore = options.store.watch((change) => actor.send({ type: "STORE.CHANGED", change }));
    manager.unwatch = unwatchStore;
    let images = options.images;
    if (options.leases !== undefined) {
      const { catalog } = options.leases;
      // The shared list holds no keys: an image's CURVE keys are each instance's own configuration.
      const keys = new Map(options.images.map((i) => [i.id, i.curve ?? null]));
      const secured = (config: ImageConfig): ImageConfig => ({ ...config, curve: keys.get(config.id) ?? null });
      images = (await shareImages(catalog, options.images, logger)).map(secured);
      const inspect = options.actorOptions?.inspect;
      const leaseOptions = typeof inspect === "function" ? { ...options.leases, inspect } : options.leases;
      const leases = ImageLeases.start(images, leaseOptions, actor, logger);
      const unwatchCatalog = catalog.watch((change) => {
        if (change.kind === "added") leases.add(secured(change.config));
        else leases.remove(change.imageId);
      });
      manager.unwatch = () => {
        unwatchStore();
        unwatchCatalog();
      };
      manager.leases = leases;
      manager.share({ self: options.leases.owner, leases, peers: options.leases.peers, catalog });
    }
    const configured = new Set(images.map((i) => i.id));
    const unknown = new Set(loaded.records.map((r) => r.session.image_id).filter((id) => !configured.has(id)));
    // In the background: a large store must not hold up the start. Shared: the sweep does it, once.
    if (options.leases === undefined) {
      for (const imageId of unknown)
        manager.run({ kind: "orphan", imageId, reason: `image ${imageId} is not configured` });
    }
    logger.info(
      { images: configured.size, sessions: loaded.records.length, contexts: loaded.contexts.size },
      "session manager started",
    );
    return manager;
  }

  /**
   * Serves one request, here or (shared images) at the owner of the image it needs. Never
   * rejects: every failure is the protocol's `Error` response.
   */
  async handle<K extends RequestType>(request: RequestOf<K>, options: HandleOptions = {}): Promise<ResponseTo<K>> {
    if (this.stopping) return errorResponse("Internal", "the session manager is stopping");
    const ctx = options.forwarded === true ? this.forwardedCtx : this.ctx;
    const handler = handlers[request.type] as (ctx: HandlerContext, request: RequestOf<K>) => Promise<ResponseTo<K>>;
    try {
      const owner = forwardTarget(ctx, request);
      if (owner !== null && ctx.cluster !== null) return await this.track(ctx.cluster.peers.ask(owner, request));
      return await this.track(handler(ctx, request));
    } catch (error) {
      return this.failure(request.type, error);
    }
  }

  /**
   * Tells every image connection here that the network changed (each probes or retries at once);
   * answers how many were told.
   */
  networkChanged(): number {
    const told = [...stateOf(this.ctx).images.values()].filter((e) => e.crash === null).length;
    this.ctx.actor.send({ type: "IMAGES.NETWORK_CHANGED", imageId: null });
    return told;
  }

  /** Resolves once the requests and work started so far have finished. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Stops taking requests, finishes those in flight, closes every image connection and the store. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const timer of this.retries) clearTimeout(timer);
    this.retries.clear();
    await this.idle();
    // Each image says goodbye (a final Disconnected status) before the connections are stopped.
    const reason =
      this.leases === null
        ? "the service is stopping"
        : `instance ${this.instanceId} is stopping: handing the image over`;
    for (const entry of stateOf(this.ctx).images.values()) {
      if (entry.crash === null) entry.ref.send({ type: "DISCONNECT", reason });
    }
    // Only then handed over: another instance connects at once, and never while this one does.
    await this.leases?.release();
    await this.ctx.cluster?.catalog.close();
    this.unwatch();
    this.actor.stop();
    await this.store.close();
  }

  /** Every image's status, as `ListImages` answers it. */
  imageStatuses(): ImageConnectionStatus[] {
    return imageStatuses(this.ctx);
  }

  /** Whether the store takes writes (the health summary and `/readyz` report it). */
  storeStatus(): StoreStatus {
    return this.store.status();
  }

  get sessionCount(): number {
    return stateOf(this.ctx).registry.size;
  }

  /**
   * Runs the machine's background work. Work the store could not write is tried again every
   * `STORE_RETRY_MS` until the store takes writes, so a disk fault delays it but does not lose it.
   */
  private run(work: ManagerWork): void {
    if (this.stopping) return;
    // Checked again at each run (a retry too): a lease lost meanwhile leaves the work to the new owner.
    if (work.kind !== "sweep" && !this.mine(work.imageId)) return;
    const task: Promise<unknown> = (() => {
      switch (work.kind) {
        case "restore":
          return restoreSessions(this.ctx, work.imageId);
        case "orphan":
          return orphanSessions(this.ctx, work.imageId, work.reason);
        case "sweep":
          return this.sweep();
      }
    })();
    this.track(task).catch((error: unknown) => {
      if (!isStoreWriteError(error)) {
        this.ctx.logger.error({ err: error, work }, "session work failed");
        return;
      }
      this.ctx.logger.warn({ work }, `session work (${work.kind}) postponed: the store cannot write; retrying`);
      const timer = setTimeout(() => {
        this.retries.delete(timer);
        this.run(work);
      }, STORE_RETRY_MS);
      this.retries.add(timer);
    });
  }

  /**
   * Whether background work on the image's sessions is this instance's: always with one
   * instance; shared, the owner's, and for an image no longer shared, the coordinator's (the
   * owner of the first shared image), so that it is done once.
   */
  private mine(imageId: string): boolean {
    const leases = this.leases;
    if (leases === null) return true;
    if (leases.image(imageId) !== undefined) return leases.holds(imageId);
    const [first] = leases
      .images()
      .map((i) => i.config.id)
      .sort();
    return first === undefined || leases.holds(first);
  }

  /** Orphans the sessions of images no longer shared (the coordinator's), then sweeps old orphans. */
  private async sweep(): Promise<number> {
    const leases = this.leases;
    if (leases !== null) {
      const { registry } = stateOf(this.ctx);
      const stale = new Set(
        registry
          .sessionsOf(null)
          .filter((s) => s.orphaned_at === null && leases.image(s.image_id) === undefined)
          .map((s) => s.image_id),
      );
      for (const imageId of stale) {
        if (this.mine(imageId))
          await orphanSessions(this.ctx, imageId, `image ${imageId} is not in the shared image list`);
      }
    }
    return sweepOrphans(this.ctx, (imageId) => this.mine(imageId));
  }

  private track<T>(task: Promise<T>): Promise<T> {
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task)).catch(() => undefined);
    return task;
  }

  private failure(type: RequestType, error: unknown): ErrorResponse {
    return errorAnswer(error, type, this.ctx.logger);
  }
}

/**
 * The configured images added to the shared list (where one is listed with another address, the
 * list wins: it may have been changed at run time), then the whole list, which every instance
 * competes for.
 */
async function shareImages(
  catalog: ImageCatalog,
  configured: readonly ImageConfig[],
  logger: Logger,
): Promise<ImageConfig[]> {
  for (const config of configured) {
    const listed = await catalog.add({ id: config.id, address: config.address, name: config.name ?? null });
    if (listed.address !== config.address) {
      logger.warn(
        { image_id: config.id, configured: config.address, listed: listed.address },
        `image ${config.id}: the shared list has ${listed.address}, not the configured ${config.address}; using the list's`,
      );
    }
  }
  return catalog.list();
}

/**
 * What an operator reads in the log: every image status change at info, going down (Reconnecting,
 * Failed) at warn with the reason; health changes at debug.
 */
function logImageChanges(actor: SessionManagerActor, logger: Logger): void {
  actor.on("status", ({ data }) => {
    const entry = { image_id: data.image_id, status: data.status, previous_status: data.previous_status };
    const message = `image ${data.image_id}: ${data.previous_status} → ${data.status}`;
    if (data.status === "Reconnecting" || data.status === "Failed") {
      logger.warn({ ...entry, reason: data.reason }, `${message}${data.reason === null ? "" : ` (${data.reason})`}`);
    } else {
      logger.info(entry, message);
    }
  });
  actor.on("health", ({ data }) => {
    logger.debug(
      { image_id: data.image_id, health: data.health, previous_health: data.previous_health, rtt_ms: data.rtt_ms },
      `image ${data.image_id}: health ${data.previous_health} → ${data.health}`,
    );
  });
}
