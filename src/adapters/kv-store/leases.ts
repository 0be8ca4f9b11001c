/**
 * Image leases in a KV-shaped JetStream bucket: which instance owns (connects) an image, until when.
 *
 *   KV_<prefix>_leases   $KV.<prefix>_leases.<image id>   {owner, expires_at, ttl_ms, acquired_at}
 *
 * The key is the image id itself (an image id is already a subject token). A lease's revision is
 * the stream sequence of its message: the fencing token. Every write is `Bucket.compareAndSet`
 * (a compare-and-set on the bucket's last sequence, which nats-server 2.9.10 serializes on a
 * replicated stream; see `bucket.ts`), so of two instances naming the same revision exactly one
 * wins. The stream has `allow_direct: false` and every read is a `STREAM.MSG.GET` or
 * `STREAM.INFO`, answered by the stream leader: an ownership decision never reads a follower.
 *
 * A released lease is a `KV-Operation: DEL` marker, and a released key counts as `UNREVISIONED`
 * (as a key never written): anyone takes it by naming `UNREVISIONED`; naming the revision of the
 * lease that was released conflicts (the stored revision is `UNREVISIONED`).
 *
 * A value that does not decode is logged and treated as absent: `get` returns `null`, `list`
 * leaves it out, and a `put` naming `UNREVISIONED` (or the bad value's revision) replaces it, still
 * by compare-and-set on the bad value's revision, so two instances cannot both take it.
 *
 * Per-key TTL is never used: a lease lapses at `expires_at`, as judged by whoever reads it.
 */
import { jetstreamManager, type JetStreamManager, type StoredMsg } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { KeyedQueue } from "../../actors/concurrency.js";
import { isoTime } from "../../clock.js";
import { InvalidRecordError, RevisionConflictError, StoreClosedError, StoreUnavailableError } from "../../errors.js";
import { stderrLogger } from "../../logger.js";
import { ImageId } from "../../protocol/index.js";
import { UNREVISIONED, type Lease, type LeaseStore, type StoreLogger } from "../../ports.js";
import { Bucket, BucketContended, bucketOptions, isRemoval, isUnavailable, JetStreamUnavailable } from "./bucket.js";

export interface KvLeaseStoreOptions {
  /** The connection to use; the store never closes it. */
  readonly nc: NatsConnection;
  /** The bucket is `<prefix>_leases`: letters, digits, `_` and `-`. @default "stui" */
  readonly bucketPrefix?: string;
  /** Replicas of the bucket's stream when the store creates it (an existing one is kept). @default 1 */
  readonly replicas?: number;
  /** Wall-clock milliseconds, what `expires_at` is computed from. @default Date.now */
  readonly now?: () => number;
  /** Where values that do not decode are reported. @default stderr */
  readonly logger?: StoreLogger;
  /** How long a write keeps trying while JetStream does not answer (a leader election). @default 10000 */
  readonly unavailableAfterMs?: number;
  /** The wait for each JetStream answer. @default 2000 */
  readonly requestTimeoutMs?: number;
}

/** A lease's value as stored. */
interface LeaseValue {
  readonly owner: string;
  readonly expires_at: string;
  readonly ttl_ms: number;
  readonly acquired_at: string;
}

/** A key's last message as read from the stream leader. */
type Read =
  | { readonly kind: "absent" }
  | { readonly kind: "lease"; readonly lease: Lease; readonly acquiredAt: string }
  | { readonly kind: "corrupt"; readonly revision: number };

const OPERATION = "KV-Operation";

/** The value, or `null` when it is not a lease value (never throws). */
function decodeValue(data: Uint8Array): LeaseValue | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch {
    return null;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return null;
  const record = parsed as Record<string, unknown>;
  const { owner, expires_at, ttl_ms, acquired_at } = record;
  if (typeof owner !== "string" || owner === "") return null;
  if (typeof expires_at !== "string" || !Number.isFinite(Date.parse(expires_at))) return null;
  if (typeof acquired_at !== "string" || !Number.isFinite(Date.parse(acquired_at))) return null;
  if (typeof ttl_ms !== "number" || !Number.isFinite(ttl_ms) || ttl_ms <= 0) return null;
  return { owner, expires_at, ttl_ms, acquired_at };
}

export class KvLeaseStore implements LeaseStore {
  private readonly queue = new KeyedQueue();
  private readonly watches = new Set<Subscription>();
  private closed = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: Bucket,
    private readonly jsm: JetStreamManager,
    private readonly now: () => number,
    private readonly logger: StoreLogger,
  ) {}

  /** Creates the bucket if it does not exist (with `replicas`, no direct gets). */
  static async open(options: KvLeaseStoreOptions): Promise<KvLeaseStore> {
    const { prefix, replicas, timing } = bucketOptions(options);
    const jsm = await jetstreamManager(options.nc, { timeout: timing.requestTimeoutMs, checkAPI: false });
    const bucket = new Bucket(`${prefix}_leases`, jsm, jsm.jetstream(), timing);
    try {
      await bucket.ensure(replicas);
    } catch (error) {
      throw unavailable(error);
    }
    return new KvLeaseStore(options.nc, bucket, jsm, options.now ?? Date.now, options.logger ?? stderrLogger);
  }

  async get(imageId: string): Promise<Lease | null> {
    this.checkOpen();
    checkImageId(imageId);
    const read = await this.read(imageId, { last_by_subj: this.subject(imageId) });
    return read.kind === "lease" ? read.lease : null;
  }

  put(imageId: string, owner: string, ttlMs: number, expectedRevision: number): Promise<Lease> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    const invalid = invalidPut(imageId, owner, ttlMs, expectedRevision);
    if (invalid !== null) return Promise.reject(invalid);
    // One write at a time per bucket within this instance: they would only race each other.
    return this.queue.run(this.bucket.name, () => this.write(imageId, owner, ttlMs, expectedRevision));
  }

  release(lease: Lease): Promise<void> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    return this.queue.run(this.bucket.name, async () => {
      try {
        await this.bucket.compareAndSet(lease.imageId, this.what(lease.imageId), lease.revision, { kind: "delete" });
      } catch (error) {
        // Taken over (or released) meanwhile: there is nothing of ours left to give up.
        if (error instanceof RevisionConflictError) return;
        throw unavailable(error);
      }
    });
  }

  async list(): Promise<Lease[]> {
    this.checkOpen();
    let subjects: Record<string, number>;
    try {
      const info = await this.jsm.streams.info(this.bucket.stream, { subjects_filter: `${this.bucket.prefix}>` });
      subjects = info.state.subjects ?? {};
    } catch (error) {
      throw unavailable(error);
    }
    const leases: Lease[] = [];
    for (const subject of Object.keys(subjects).sort()) {
      const imageId = subject.slice(this.bucket.prefix.length);
      if (!ImageId.safeParse(imageId).success) {
        this.logger.error({ subject }, `lease store: ${subject} is not an image id's key; left out`);
        continue;
      }
      const read = await this.read(imageId, { last_by_subj: subject });
      if (read.kind === "lease") leases.push(read.lease);
    }
    return leases;
  }

  /** A plain subscription to the bucket's subjects: every write is a publish on `$KV.<bucket>.<image id>`. */
  watch(onChange: (imageId: string) => void): () => void {
    this.checkOpen();
    const subscription = this.nc.subscribe(`${this.bucket.prefix}>`, {
      callback: (error, msg) => {
        if (error !== null) return;
        const imageId = msg.subject.slice(this.bucket.prefix.length);
        if (ImageId.safeParse(imageId).success) onChange(imageId);
      },
    });
    this.watches.add(subscription);
    return () => {
      this.watches.delete(subscription);
      subscription.unsubscribe();
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const subscription of this.watches) subscription.unsubscribe();
    this.watches.clear();
    await this.queue.idle();
  }

  // Internals --------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  private subject(imageId: string): string {
    return `${this.bucket.prefix}${imageId}`;
  }

  private what(imageId: string): string {
    return `lease of ${imageId}`;
  }

  private async write(imageId: string, owner: string, ttlMs: number, expectedRevision: number): Promise<Lease> {
    const now = this.now();
    // A renewal keeps when the owner acquired it; a take or takeover starts now.
    let acquiredAt = isoTime(now);
    if (expectedRevision !== UNREVISIONED) {
      const previous = await this.read(imageId, { seq: expectedRevision });
      if (previous.kind === "lease" && previous.lease.imageId === imageId && previous.lease.owner === owner) {
        acquiredAt = previous.acquiredAt;
      }
    }
    const value: LeaseValue = { owner, expires_at: isoTime(now + ttlMs), ttl_ms: ttlMs, acquired_at: acquiredAt };
    const encoded = JSON.stringify(value);
    const cas = (expected: number): Promise<number | null> =>
      this.bucket.compareAndSet(imageId, this.what(imageId), expected, { kind: "value", encode: () => encoded });
    let revision: number | null;
    try {
      revision = await cas(expectedRevision);
    } catch (error) {
      if (!(error instanceof RevisionConflictError) || expectedRevision !== UNREVISIONED) throw unavailable(error);
      // A value that does not decode counts as none: replace it, by compare-and-set on its revision.
      const stored = await this.read(imageId, { last_by_subj: this.subject(imageId) });
      if (stored.kind !== "corrupt" || stored.revision !== error.actualRevision) throw error;
      try {
        revision = await cas(stored.revision);
      } catch (again) {
        if (again instanceof RevisionConflictError) {
          throw new RevisionConflictError(this.what(imageId), expectedRevision, again.actualRevision);
        }
        throw unavailable(again);
      }
    }
    if (revision === null) throw new Error(`${this.what(imageId)}: a value write resolved without a revision`);
    return { imageId, owner, expiresAt: now + ttlMs, ttlMs, revision };
  }

  /** One message from the stream leader (`STREAM.MSG.GET`), decoded; a bad value is logged. */
  private async read(imageId: string, query: { last_by_subj: string } | { seq: number }): Promise<Read> {
    let message: StoredMsg | null;
    try {
      message = await this.jsm.streams.getMessage(this.bucket.stream, query);
    } catch (error) {
      throw unavailable(error);
    }
    if (message === null || message.subject !== this.subject(imageId)) return { kind: "absent" };
    if (isRemoval(message.header.get(OPERATION) || undefined)) return { kind: "absent" };
    const value = decodeValue(message.data);
    if (value === null) {
      this.logger.error(
        { subject: message.subject, seq: message.seq },
        `lease store: the value of ${message.subject} (revision ${message.seq}) is not a lease; treated as none`,
      );
      return { kind: "corrupt", revision: message.seq };
    }
    const lease: Lease = {
      imageId,
      owner: value.owner,
      expiresAt: Date.parse(value.expires_at),
      ttlMs: value.ttl_ms,
      revision: message.seq,
    };
    return { kind: "lease", lease, acquiredAt: value.acquired_at };
  }
}

function invalidPut(imageId: string, owner: string, ttlMs: number, expectedRevision: number): Error | null {
  if (!ImageId.safeParse(imageId).success)
    return new InvalidRecordError(`image_id: not an image id: ${JSON.stringify(imageId)}`);
  if (owner === "") return new InvalidRecordError("owner: expected a non-empty string");
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) return new InvalidRecordError(`ttlMs: a positive integer: ${ttlMs}`);
  if (!Number.isSafeInteger(expectedRevision) || expectedRevision < 0) {
    return new InvalidRecordError(`expectedRevision: a non-negative integer: ${expectedRevision}`);
  }
  return null;
}

function checkImageId(imageId: string): void {
  if (!ImageId.safeParse(imageId).success) {
    throw new InvalidRecordError(`image_id: not an image id: ${JSON.stringify(imageId)}`);
  }
}

/** JetStream not answering (or a bucket too busy) as `StoreUnavailableError`; anything else as it is. */
function unavailable(error: unknown): unknown {
  if (error instanceof BucketContended) {
    return new StoreUnavailableError({ writable: true, degraded_since: null, reason: "the lease bucket is too busy" });
  }
  if (error instanceof JetStreamUnavailable || isUnavailable(error)) {
    return new StoreUnavailableError({
      writable: false,
      degraded_since: isoTime(),
      reason: "no JetStream leader answers for the lease bucket",
    });
  }
  return error;
}
