/**
 * The contracts between what decides and what touches the world: the session store the manager
 * writes through and the request handler the API serves from. Each is a small interface; the
 * adapters (`src/adapters/`: the embedded file store) implement them, and how they keep their
 * records (envelopes, migrations) stays inside each adapter. The store contract is shaped so that
 * a JetStream KV bucket (compare-and-set on the key's revision) can implement it without any
 * caller changing. The errors they reject with are in `src/errors.ts`.
 */
import type { CorruptRecordError, StoreIoError } from "./errors.js";
import type { Logger } from "./logger.js";
import type { RequestOf, RequestType, ResponseTo, SessionStateData, StoreStatus } from "./protocol/index.js";

/** What a legacy record's revision is taken to be until it is rewritten (the "absent" revision too). */
export const UNREVISIONED = 0;

/** A stored session as loaded, with the revision a compare-and-set must name to replace it. */
export interface StoredSession {
  readonly revision: number;
  /** The envelope version it was read from: 1 for a legacy record, migrated in memory only. */
  readonly schemaVersion: 1 | 2;
  readonly session: SessionStateData;
}

/** A file that could not be loaded. It is never deleted: moved aside when possible, else left. */
export type StoreProblem =
  | {
      readonly kind: "CorruptRecord";
      readonly file: string;
      /** Where it now lies; `null` when moving it aside failed too (it stays in place, unread). */
      readonly movedTo: string | null;
      readonly error: CorruptRecordError;
    }
  | { readonly kind: "Unreadable"; readonly file: string; readonly error: StoreIoError };

/** A client's current image context as stored, with the revision a compare-and-set must name. */
export interface StoredContext {
  readonly imageId: string;
  readonly revision: number;
}

export interface LoadResult {
  readonly records: readonly StoredSession[];
  /** Each client's current image context, by client id. */
  readonly contexts: ReadonlyMap<string, StoredContext>;
  readonly problems: readonly StoreProblem[];
}

/**
 * One change the store has made durable, as its watchers hear it: the record as it now is
 * (`null`: removed or cleared). Heard for every writer's changes, before the write resolves.
 */
export type StoreChange =
  | {
      readonly kind: "session";
      readonly sessionId: string;
      readonly stored: { readonly session: SessionStateData; readonly revision: number } | null;
    }
  | { readonly kind: "context"; readonly clientId: string; readonly context: StoredContext | null };

export interface SessionStore {
  /** Every stored record and context; bad files are reported in `problems`, never thrown. */
  load(): Promise<LoadResult>;
  /**
   * Writes `session` durably and resolves with its new revision (greater than the old one, not
   * necessarily by one). With `expectedRevision` set, the write happens only if the stored
   * revision equals it (`UNREVISIONED` = absent, or a legacy record); otherwise it rejects with
   * `RevisionConflictError`. `null` writes unconditionally.
   */
  put(session: SessionStateData, expectedRevision: number | null): Promise<number>;
  /** Removes a session durably; deleting an absent one with `expectedRevision` null is a no-op. */
  delete(sessionId: string, expectedRevision: number | null): Promise<void>;
  /**
   * Sets (`null`: clears) a client's current image context durably, and resolves with its new
   * revision (`UNREVISIONED` once cleared). `expectedRevision` as for `put`: so the `from_image_id`
   * check of a switch is one compare-and-set.
   */
  putContext(clientId: string, imageId: string | null, expectedRevision: number | null): Promise<number>;
  /**
   * Tells `listener` of every change made from now on, whoever made it (the registry is a view of
   * the store, not a cache of one writer's own writes). Returns the unsubscribe function.
   */
  watch(listener: (change: StoreChange) => void): () => void;
  /**
   * Whether writes are taken. A write that fails leaves the store as it was before it (rolled
   * back) and degraded: later writes reject with `StoreUnavailableError` until a probe write
   * succeeds, so an answer, the manager's registry and the disk never disagree.
   */
  status(): StoreStatus;
  /**
   * Resolves when writes are taken (probing the disk first while degraded); rejects with
   * `StoreUnavailableError` otherwise. For callers that must not start what a refused write would
   * leave half done.
   */
  ensureWritable(): Promise<void>;
  /** Waits for the writes in flight; every later call rejects with `StoreClosedError`. */
  close(): Promise<void>;
}

/** What the store reports to: corrupt records and failed writes (error), tightened modes (warn), recovery (info). */
export type StoreLogger = Pick<Logger, "error" | "warn" | "info">;

/** An image in the list the instances share: what it takes to connect it. */
export interface SharedImageConfig {
  readonly id: string;
  readonly address: string;
  readonly name: string | null;
}

export type CatalogChange =
  | { readonly kind: "added"; readonly config: SharedImageConfig }
  | { readonly kind: "removed"; readonly imageId: string };

/**
 * The image list the instances share (with `cluster.lease_ttl_ms`): what `ConnectImage` adds and
 * `DisconnectImage` removes, for every instance.
 */
export interface ImageCatalog {
  list(): Promise<SharedImageConfig[]>;
  /** Adds the image unless its id is listed; resolves with what is listed under the id now. */
  add(config: SharedImageConfig): Promise<SharedImageConfig>;
  /** Removes the image; `false` when it was not listed. */
  remove(imageId: string): Promise<boolean>;
  /** Told of every change, whoever made it, in order. Returns the unsubscribe. */
  watch(onChange: (change: CatalogChange) => void): () => void;
  close(): Promise<void>;
}

/** How a request reached the handler. */
export interface HandleOptions {
  /**
   * Forwarded by another instance (to the owner of an image): answered here, from what this
   * instance has, never forwarded again. @default false
   */
  readonly forwarded?: boolean;
}

/** Serves every request of the client protocol; never rejects: a failure is the protocol's `Error`. */
export interface RequestHandler {
  handle<K extends RequestType>(request: RequestOf<K>, options?: HandleOptions): Promise<ResponseTo<K>>;
}

/** The other instances of the service, as one instance reaches them (over NATS). */
export interface Peers {
  /**
   * Has instance `instanceId` answer `request` itself (forwarded: it does not forward it again).
   * Resolves with its answer, `Error` included; rejects with a `RequestError` when it does not
   * answer (`ImageUnavailable`: gone or stopping; `Timeout`).
   */
  ask<K extends RequestType>(instanceId: string, request: RequestOf<K>): Promise<ResponseTo<K>>;
}

/**
 * An image's lease: which instance owns (connects) the image, until when. Its revision is the
 * fencing token: every write the owner makes for the image names it, and a newer revision means
 * someone else has taken over.
 */
export interface Lease {
  readonly imageId: string;
  /** The owning instance's `instance_id`. */
  readonly owner: string;
  /** Wall-clock milliseconds at which it lapses unless renewed: what others go by. */
  readonly expiresAt: number;
  readonly ttlMs: number;
  readonly revision: number;
}

/**
 * Where leases live (a JetStream KV bucket, read from the stream leader). Per-key TTL is never
 * relied on (nats-server 2.9.10 ignores it): expiry is `expiresAt`, judged by whoever reads it.
 */
export interface LeaseStore {
  /** The image's lease as stored; `null`: none (never taken, or released). */
  get(imageId: string): Promise<Lease | null>;
  /**
   * Takes, takes over or renews the image's lease for `owner` for `ttlMs`, by compare-and-set on
   * `expectedRevision` (`UNREVISIONED`: none stored). Rejects with `RevisionConflictError` when the
   * stored lease changed meanwhile, and `StoreUnavailableError` when the store does not answer.
   */
  put(imageId: string, owner: string, ttlMs: number, expectedRevision: number): Promise<Lease>;
  /** Gives the lease up (compare-and-set on its revision), so that another instance takes it at once. */
  release(lease: Lease): Promise<void>;
  /** Every stored lease, by image id. */
  list(): Promise<Lease[]>;
  /**
   * Told the image id of every lease write seen (a hint to read it now, e.g. a release: ownership
   * moves at once rather than at the next poll). Best effort: a missed one costs a poll. Returns
   * the unsubscribe.
   */
  watch(onChange: (imageId: string) => void): () => void;
  close(): Promise<void>;
}
