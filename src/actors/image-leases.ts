/**
 * Shared ownership of images: one lease actor (src/machines/image-lease.ts, over a `LeaseStore`)
 * per configured image. The session manager connects an image only while its lease is held here:
 * `owned` adds the image's connection (`IMAGE.ADD`), `lost` stops it at once (`IMAGE.REMOVE`: no
 * more sends, no status published for it). Stopping releases every lease after the connections
 * have said goodbye, so another instance takes them over at once instead of after the TTL.
 *
 * The images are spread over the live instances (src/machines/balance.ts): a free lease is taken
 * at once only by the least loaded, and an instance owning two more than the least loaded hands
 * one over (a goodbye status, then the lease released), checked every `balanceEveryMs`. A change
 * the lease store sees (a release) has the image's lease actor read it at once, and every actor
 * deferring a free lease too.
 */
import { createActor, fromPromise, type ActorRefFrom, type InspectionEvent } from "xstate";
import { RequestError } from "../errors.js";
import type { Logger } from "../logger.js";
import { isLeastLoaded, loadsOf, shouldHandOver } from "../machines/balance.js";
import { imageLeaseMachine, leaseValid, type WriteInput } from "../machines/image-lease.js";
import type { ImageConfig, SessionManagerActor } from "../machines/session-manager.js";
import type { Lease, LeaseStore } from "../ports.js";

export interface LeaseOptions {
  readonly store: LeaseStore;
  /** This instance's `instance_id`. */
  readonly owner: string;
  /** @default 15000 */
  readonly ttlMs?: number;
  /** The live instances' ids (this one's included or not). @default just this one */
  readonly members?: () => ReadonlySet<string>;
  /** How often the spread of images is checked. @default a third of the TTL */
  readonly balanceEveryMs?: number;
  /** The instance's inspection observer, given to every lease actor. */
  readonly inspect?: (event: InspectionEvent) => void;
}

type LeaseActor = ActorRefFrom<typeof imageLeaseMachine>;

/** An image shared by the instances, and who owns it now as this instance knows. */
export interface SharedImage {
  readonly config: ImageConfig;
  /** `null`: nobody right now (a lease lapsed and not yet taken over, or not read yet). */
  readonly owner: string | null;
  /** When the owner's lease lapses unless renewed (wall-clock ms); `null` without an owner. */
  readonly expiresAt: number | null;
}

export class ImageLeases {
  private readonly actors = new Map<string, { readonly config: ImageConfig; readonly actor: LeaseActor }>();
  private readonly unwatch: () => void;
  private readonly balancer: NodeJS.Timeout;

  private constructor(
    private readonly options: LeaseOptions,
    private readonly manager: SessionManagerActor,
    private readonly logger: Logger,
  ) {
    this.unwatch = options.store.watch((imageId) => this.changed(imageId));
    this.balancer = setInterval(() => this.balance(), options.balanceEveryMs ?? (options.ttlMs ?? 15_000) / 3);
    this.balancer.unref();
  }

  /** Starts competing for every image's lease. */
  static start(
    images: readonly ImageConfig[],
    options: LeaseOptions,
    manager: SessionManagerActor,
    logger: Logger,
  ): ImageLeases {
    const leases = new ImageLeases(options, manager, logger);
    for (const config of images) leases.add(config);
    return leases;
  }

  /** Whether this instance holds the image's lease and may still trust it, now (the fence). */
  holds(imageId: string): boolean {
    const snapshot = this.actors.get(imageId)?.actor.getSnapshot();
    return (
      snapshot !== undefined &&
      snapshot.matches("Owning") &&
      leaseValid(snapshot.context, snapshot.context.env.monotonic())
    );
  }

  /**
   * The fencing token checked before a write for the image's sessions: resolves when the lease
   * store, read from the stream leader, still names this instance with the revision held (or a
   * renewal of it), or when the image is not shared (nothing to fence). Rejects with
   * `ImageUnavailable` when this instance no longer owns the image.
   */
  async verify(imageId: string): Promise<void> {
    const entry = this.actors.get(imageId);
    if (entry === undefined) return;
    const held = this.holds(imageId) ? entry.actor.getSnapshot().context.lease : null;
    const stored = held === null ? null : await this.options.store.get(imageId);
    if (held !== null && stored !== null && stored.owner === held.owner && stored.revision >= held.revision) return;
    throw new RequestError(
      "ImageUnavailable",
      `instance ${this.options.owner} no longer owns image ${imageId}${stored === null ? "" : ` (its lease is ${stored.owner}'s, revision ${stored.revision})`}: retry`,
      { image_id: imageId },
    );
  }

  /** Every shared image with its owner, as the lease actors last read or hold it. */
  images(): SharedImage[] {
    return [...this.actors.keys()].flatMap((id) => this.image(id) ?? []);
  }

  /** One shared image with its owner; `undefined` when the image is not shared. */
  image(imageId: string): SharedImage | undefined {
    const entry = this.actors.get(imageId);
    if (entry === undefined) return undefined;
    const { config, actor } = entry;
    const { lease } = actor.getSnapshot().context;
    if (this.holds(config.id)) return { config, owner: this.options.owner, expiresAt: lease?.expiresAt ?? null };
    const other = lease !== null && lease.owner !== this.options.owner && lease.expiresAt > Date.now();
    return other
      ? { config, owner: lease.owner, expiresAt: lease.expiresAt }
      : { config, owner: null, expiresAt: null };
  }

  add(config: ImageConfig): void {
    if (this.actors.has(config.id)) return;
    const { store } = this.options;
    const machine = imageLeaseMachine.provide({
      actors: {
        read: fromPromise(({ input }: { input: { imageId: string } }) => store.get(input.imageId)),
        write: fromPromise(({ input }: { input: WriteInput }) =>
          store.put(input.imageId, input.owner, input.ttlMs, input.expectedRevision),
        ),
        release: fromPromise(({ input }: { input: Lease }) => store.release(input)),
      },
    });
    const actor = createActor(machine, {
      ...(this.options.inspect === undefined ? {} : { inspect: this.options.inspect }),
      input: {
        imageId: config.id,
        owner: this.options.owner,
        ...(this.options.ttlMs === undefined ? {} : { ttlMs: this.options.ttlMs }),
        eager: () => isLeastLoaded(this.options.owner, this.loads()),
      },
    });
    actor.on("owned", ({ lease, takenOverFrom, handedOverBy }) => {
      const ownedBecause =
        takenOverFrom !== null
          ? `taken over from ${takenOverFrom}`
          : handedOverBy !== null
            ? `handed over by ${handedOverBy}`
            : null;
      this.logger.info(
        {
          image_id: config.id,
          lease_revision: lease.revision,
          taken_over_from: takenOverFrom,
          handed_over_by: handedOverBy,
        },
        `image ${config.id}: owned here${ownedBecause === null ? "" : ` (${ownedBecause})`}`,
      );
      this.manager.send({ type: "IMAGE.ADD", config, fence: () => this.holds(config.id), ownedBecause });
    });
    actor.on("lost", ({ reason }) => {
      this.logger.warn(
        { image_id: config.id, reason },
        `image ${config.id}: lease lost (${reason}); disconnected here`,
      );
      this.manager.send({ type: "IMAGE.REMOVE", imageId: config.id });
    });
    actor.subscribe({ error: (error) => this.logger.error({ err: error, image_id: config.id }, "lease actor failed") });
    this.actors.set(config.id, { config, actor });
    actor.start();
  }

  /** Stops competing for an image removed from the shared list (its goodbye first, if owned here). */
  remove(imageId: string): void {
    const entry = this.actors.get(imageId);
    if (entry === undefined) return;
    this.manager.send({ type: "IMAGE.REMOVE", imageId });
    this.actors.delete(imageId);
    entry.actor.send({ type: "RELEASE" });
  }

  /** Gives every lease up (for at most `timeoutMs`), stops competing and closes the lease store. */
  async release(timeoutMs = 2000): Promise<void> {
    clearInterval(this.balancer);
    this.unwatch();
    const done = [...this.actors.values()].map(
      ({ actor }) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, timeoutMs);
          actor.subscribe({
            complete: () => {
              clearTimeout(timer);
              resolve();
            },
          });
          actor.send({ type: "RELEASE" });
          if (actor.getSnapshot().status !== "active") resolve();
        }),
    );
    await Promise.all(done);
    for (const { actor } of this.actors.values()) actor.stop();
    this.actors.clear();
    await this.options.store.close();
  }

  /**
   * How many images each live instance owns: this one's held and being taken (a take in flight
   * counts, so that two free leases read at once are not both taken by one instance).
   */
  private loads(): Map<string, number> {
    const self = this.options.owner;
    const members = new Set(this.options.members?.() ?? []).add(self);
    const owners = [...this.actors.values()].map(({ config, actor }) => {
      const snapshot = actor.getSnapshot();
      if (snapshot.matches("Taking") || this.holds(config.id)) return self;
      const { lease } = snapshot.context;
      return lease !== null && lease.owner !== self && lease.expiresAt > Date.now() ? lease.owner : null;
    });
    return loadsOf(owners, members);
  }

  /**
   * A lease was written: its actor reads it now, and so do the ones deferring a free lease (the
   * loads they wait on have changed: a take elsewhere may make this instance the least loaded).
   */
  private changed(imageId: string): void {
    for (const [id, { actor }] of this.actors) {
      if (id === imageId || actor.getSnapshot().matches("Deferring")) actor.send({ type: "POKE" });
    }
  }

  /** Hands one image over when this instance owns two or more more than the least loaded. */
  private balance(): void {
    const loads = this.loads();
    if (!shouldHandOver(this.options.owner, loads)) return;
    // One image at a time; the next check hands over another if still needed.
    const held = [...this.actors.values()].filter(({ config }) => this.holds(config.id));
    const last = held.at(-1);
    if (last === undefined) return;
    const id = last.config.id;
    this.logger.info(
      { image_id: id, loads: Object.fromEntries(loads) },
      `image ${id}: handed over to spread the images over ${loads.size} instances`,
    );
    // The goodbye status first, while still the owner; then the lease goes.
    this.manager.send({ type: "IMAGE.REMOVE", imageId: id, reason: "handed over to another instance (balancing)" });
    last.actor.send({ type: "HAND_OVER" });
  }
}
