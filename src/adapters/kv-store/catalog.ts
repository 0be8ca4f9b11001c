/**
 * The shared image list in a KV-shaped JetStream bucket:
 *
 *   KV_<prefix>_images   $KV.<prefix>_images.<image id>   {address, name}
 *
 * The key is the image id (already a subject token). Adding is a compare-and-set naming "no
 * revision" (of two instances adding one id, one wins and the other reads what won); removing is a
 * delete marker by compare-and-set on the revision read. Every instance follows the bucket with a
 * change feed (an ordered consumer), so an image added or removed anywhere reaches all of them.
 */
import { jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { RevisionConflictError, StoreClosedError, StoreUnavailableError } from "../../errors.js";
import { isoTime } from "../../clock.js";
import { stderrLogger } from "../../logger.js";
import { ImageId } from "../../protocol/index.js";
import {
  UNREVISIONED,
  type CatalogChange,
  type ImageCatalog,
  type SharedImageConfig,
  type StoreLogger,
} from "../../ports.js";
import { Bucket, bucketOptions, isRemoval, isUnavailable, JetStreamUnavailable } from "./bucket.js";
import { BucketFeed } from "./feed.js";
import { readLastPerKey } from "./records.js";

export interface KvImageCatalogOptions {
  /** The connection to use; the catalog never closes it. */
  readonly nc: NatsConnection;
  /** The bucket is `<prefix>_images`. @default "stui" */
  readonly bucketPrefix?: string;
  /** Replicas of the bucket's stream when created. @default 1 */
  readonly replicas?: number;
  readonly logger?: StoreLogger;
}

export class KvImageCatalog implements ImageCatalog {
  private readonly watchers = new Set<(change: CatalogChange) => void>();
  private feed: BucketFeed | null = null;
  private closed = false;

  private constructor(
    private readonly bucket: Bucket,
    private readonly logger: StoreLogger,
  ) {}

  static async open(options: KvImageCatalogOptions): Promise<KvImageCatalog> {
    const { prefix, replicas, timing } = bucketOptions(options);
    const jsm = await jetstreamManager(options.nc, { timeout: timing.requestTimeoutMs, checkAPI: false });
    const bucket = new Bucket(`${prefix}_images`, jsm, jsm.jetstream(), timing);
    const catalog = new KvImageCatalog(bucket, options.logger ?? stderrLogger);
    try {
      await bucket.ensure(replicas);
      const startAfter = await bucket.untilAnswered("opening", () => bucket.lastSequence());
      catalog.feed = await BucketFeed.start(
        bucket,
        startAfter,
        (message) => catalog.delivered(message),
        catalog.logger,
      );
    } catch (error) {
      throw unavailable(error);
    }
    return catalog;
  }

  async list(): Promise<SharedImageConfig[]> {
    this.checkOpen();
    try {
      return (await readLastPerKey(this.bucket)).flatMap((m) => {
        const change = this.decode(m);
        return change?.kind === "added" ? [change.config] : [];
      });
    } catch (error) {
      throw unavailable(error);
    }
  }

  async add(config: SharedImageConfig): Promise<SharedImageConfig> {
    this.checkOpen();
    const value = JSON.stringify({ address: config.address, name: config.name, added_at: isoTime() });
    try {
      await this.bucket.compareAndSet(config.id, this.what(config.id), UNREVISIONED, {
        kind: "value",
        encode: () => value,
      });
      return config;
    } catch (error) {
      if (!(error instanceof RevisionConflictError)) throw unavailable(error);
      const listed = (await this.list()).find((c) => c.id === config.id);
      if (listed === undefined) throw error;
      return listed;
    }
  }

  async remove(imageId: string): Promise<boolean> {
    this.checkOpen();
    try {
      const { revision } = await this.bucket.keyState(imageId);
      if (revision === UNREVISIONED) return false;
      await this.bucket.compareAndSet(imageId, this.what(imageId), revision, { kind: "delete" });
      return true;
    } catch (error) {
      // Removed (or replaced) meanwhile by another instance: it is not ours to remove any more.
      if (error instanceof RevisionConflictError) return false;
      throw unavailable(error);
    }
  }

  watch(onChange: (change: CatalogChange) => void): () => void {
    this.watchers.add(onChange);
    return () => this.watchers.delete(onChange);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watchers.clear();
    await this.feed?.stop();
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  private what(imageId: string): string {
    return `image ${imageId} in the shared list`;
  }

  private delivered(message: JsMsg): void {
    const change = this.decode(message);
    if (change === null) return;
    for (const watcher of this.watchers) watcher(change);
  }

  /** A message as a change; one that does not decode is logged and left out. */
  private decode(message: JsMsg): CatalogChange | null {
    const imageId = message.subject.slice(this.bucket.prefix.length);
    if (!ImageId.safeParse(imageId).success) {
      this.logger.error(
        { subject: message.subject },
        `image list: ${message.subject} is not an image id's key; left out`,
      );
      return null;
    }
    if (isRemoval(message.headers?.get("KV-Operation") || undefined)) return { kind: "removed", imageId };
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(message.data));
    } catch {
      value = null;
    }
    const record = typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
    const { address, name } = record;
    if (typeof address !== "string" || address === "" || (name !== null && typeof name !== "string")) {
      this.logger.error(
        { subject: message.subject, seq: message.seq },
        `image list: the entry of ${imageId} is not an image; left out`,
      );
      return null;
    }
    return { kind: "added", config: { id: imageId, address, name } };
  }
}

function unavailable(error: unknown): unknown {
  if (error instanceof JetStreamUnavailable || isUnavailable(error)) {
    return new StoreUnavailableError({
      writable: false,
      degraded_since: isoTime(),
      reason: "no JetStream leader answers for the image list bucket",
    });
  }
  return error;
}
