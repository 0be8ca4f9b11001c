/**
 * Shared ownership of images: one lease actor (src/machines/image-lease.ts, over a `LeaseStore`)
 * per configured image. The session manager connects an image only while its lease is held here:
 * `owned` adds the image's connection (`IMAGE.ADD`), `lost` stops it at once (`IMAGE.REMOVE`: no
 * more sends, no status published for it). Stopping releases every lease after the connections
 * have said goodbye, so another instance takes them over at once instead of after the TTL.
 */
import { createActor, fromPromise, type ActorRefFrom } from "xstate";
import type { Logger } from "../logger.js";
import { imageLeaseMachine, type WriteInput } from "../machines/image-lease.js";
import type { ImageConfig, SessionManagerActor } from "../machines/session-manager.js";
import type { Lease, LeaseStore } from "../ports.js";

export interface LeaseOptions {
  readonly store: LeaseStore;
  /** This instance's `instance_id`. */
  readonly owner: string;
  /** @default 15000 */
  readonly ttlMs?: number;
}

type LeaseActor = ActorRefFrom<typeof imageLeaseMachine>;

export class ImageLeases {
  private readonly actors = new Map<string, LeaseActor>();
  private readonly held = new Map<string, Lease>();

  private constructor(
    private readonly options: LeaseOptions,
    private readonly manager: SessionManagerActor,
    private readonly logger: Logger,
  ) {}

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

  /** The leases held now, by image id. */
  get owned(): ReadonlyMap<string, Lease> {
    return this.held;
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
      input: {
        imageId: config.id,
        owner: this.options.owner,
        ...(this.options.ttlMs === undefined ? {} : { ttlMs: this.options.ttlMs }),
      },
    });
    actor.on("owned", ({ lease, takenOverFrom }) => {
      this.held.set(config.id, lease);
      this.logger.info(
        { image_id: config.id, lease_revision: lease.revision, taken_over_from: takenOverFrom },
        `image ${config.id}: owned here${takenOverFrom === null ? "" : ` (taken over from ${takenOverFrom})`}`,
      );
      this.manager.send({ type: "IMAGE.ADD", config });
    });
    actor.on("lost", ({ reason }) => {
      this.held.delete(config.id);
      this.logger.warn(
        { image_id: config.id, reason },
        `image ${config.id}: lease lost (${reason}); disconnected here`,
      );
      this.manager.send({ type: "IMAGE.REMOVE", imageId: config.id });
    });
    actor.subscribe({ error: (error) => this.logger.error({ err: error, image_id: config.id }, "lease actor failed") });
    this.actors.set(config.id, actor);
    actor.start();
  }

  /** Gives every lease up (for at most `timeoutMs`), stops competing and closes the lease store. */
  async release(timeoutMs = 2000): Promise<void> {
    const done = [...this.actors.values()].map(
      (actor) =>
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
    for (const actor of this.actors.values()) actor.stop();
    this.actors.clear();
    this.held.clear();
    await this.options.store.close();
  }
}
