/**
 * The shared session store: sessions and client contexts as keys of two KV-shaped JetStream
 * buckets, so that several `stui serve` instances on one NATS cluster share them.
 *
 *   KV_<prefix>_sessions   $KV.<prefix>_sessions.<key>   {schema_version: 2, revision, session}
 *   KV_<prefix>_contexts   $KV.<prefix>_contexts.<key>   {schema_version: 2, client_id, image_id, revision}
 *
 * `<key>` is the id's UTF-8 bytes in base64url; the records are the file store's envelopes. A
 * record's revision is the stream sequence of its message (the envelope's `revision` holds the
 * same number: a compare-and-set write knows the sequence it will get). A removed session or a
 * cleared context is a `KV-Operation: DEL` marker. Every write is a compare-and-set on the
 * bucket's last sequence (see `bucket.ts` for why and how), made one at a time per bucket within
 * this instance, and resolves only once this store's change feed has delivered it, so watchers
 * (the manager's registry) have every change, this instance's or another's, before its answer.
 *
 * Writes are taken while JetStream acknowledges them. One that gets no answer for
 * `unavailableAfterMs` (no stream leader) rejects with `StoreUnavailableError`, and the store is
 * degraded until a probe (the buckets' stream info, from their leaders) is answered. A write
 * whose answer was lost may still have been made: the change feed then reports it.
 */
import { jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { decodeSessionRecordValue, ImageId, type SessionStateData, type StoreStatus } from "../../protocol/index.js";
import { StoreWatchers } from "../watchers.js";
import { KeyedQueue } from "../../actors/concurrency.js";
import { stderrLogger } from "../../logger.js";
import { isoTime } from "../../clock.js";
import {
  UNREVISIONED,
  type LoadResult,
  type SessionStore,
  type StoreChange,
  type StoreLogger,
  type StoreProblem,
  type StoredContext,
  type StoredSession,
} from "../../ports.js";
import { InvalidRecordError, StoreClosedError, StoreUnavailableError } from "../../errors.js";
import { encodeContextRecord, encodeStoredSession } from "../file-store/envelope.js";
import {
  Bucket,
  BucketContended,
  bucketOptions,
  encodeKey,
  isUnavailable,
  JetStreamUnavailable,
  type Write,
} from "./bucket.js";
import { BucketFeed } from "./feed.js";
import { decodeContextMessage, decodeSessionMessage, readLastPerKey } from "./records.js";

export interface KvSessionStoreOptions {
  /** The connection to use; the store never closes it. */
  readonly nc: NatsConnection;
  /** Buckets are `<prefix>_sessions` and `<prefix>_contexts`: letters, digits, `_` and `-`. @default "stui" */
  readonly bucketPrefix?: string;
  /** Replicas of each bucket's stream when the store creates it (an existing one is kept). @default 1 */
  readonly replicas?: number;
  readonly logger?: StoreLogger;
  /** How long a write keeps trying while JetStream does not answer (a leader election). @default 10000 */
  readonly unavailableAfterMs?: number;
  /** The wait for each JetStream answer. @default 2000 */
  readonly requestTimeoutMs?: number;
  /** How long a write waits for the change feed to deliver it before resolving anyway (logged). @default 10000 */
  readonly feedTimeoutMs?: number;
}

export class KvSessionStore implements SessionStore {
  private readonly queue = new KeyedQueue();
  private readonly watchers: StoreWatchers;
  private readonly feeds: BucketFeed[] = [];
  private degraded: { readonly since: string; readonly reason: string } | null = null;
  private probing: Promise<boolean> | null = null;
  private closed = false;

  private constructor(
    private readonly sessions: Bucket,
    private readonly contexts: Bucket,
    private readonly logger: StoreLogger,
    private readonly feedTimeoutMs: number,
  ) {
    this.watchers = new StoreWatchers(logger);
  }

  /** Creates the buckets if they do not exist and starts the change feeds. */
  static async open(options: KvSessionStoreOptions): Promise<KvSessionStore> {
    const { prefix, replicas, timing } = bucketOptions(options);
    // JetStream itself was checked on connecting (checkServer); each request here is retried.
    const jsm = await jetstreamManager(options.nc, { timeout: timing.requestTimeoutMs, checkAPI: false });
    const js = jsm.jetstream();
    const sessions = new Bucket(`${prefix}_sessions`, jsm, js, timing);
    const contexts = new Bucket(`${prefix}_contexts`, jsm, js, timing);
    const logger = options.logger ?? stderrLogger;
    const store = new KvSessionStore(sessions, contexts, logger, options.feedTimeoutMs ?? 10_000);
    try {
      for (const bucket of [sessions, contexts]) {
        await bucket.ensure(replicas);
        const startAfter = await bucket.untilAnswered("opening", () => bucket.lastSequence());
        const onMessage =
          bucket === sessions ? (m: JsMsg) => store.sessionMessage(m) : (m: JsMsg) => store.contextMessage(m);
        store.feeds.push(await BucketFeed.start(bucket, startAfter, onMessage, logger));
      }
    } catch (error) {
      await Promise.all(store.feeds.map((feed) => feed.stop()));
      throw error;
    }
    return store;
  }

  async load(): Promise<LoadResult> {
    this.checkOpen();
    const problems: StoreProblem[] = [];
    const records: StoredSession[] = [];
    const contexts = new Map<string, StoredContext>();
    for (const message of await readLastPerKey(this.sessions)) {
      const decoded = decodeSessionMessage(message, this.sessions.prefix);
      if (decoded.kind === "value") records.push(decoded.stored);
      else if (decoded.kind === "corrupt") problems.push(this.corrupt(decoded.problem));
    }
    for (const message of await readLastPerKey(this.contexts)) {
      const decoded = decodeContextMessage(message, this.contexts.prefix);
      if (decoded.kind === "value") contexts.set(decoded.clientId, decoded.context);
      else if (decoded.kind === "corrupt") problems.push(this.corrupt(decoded.problem));
    }
    return { records, contexts, problems };
  }

  put(session: SessionStateData, expectedRevision: number | null): Promise<number> {
    const valid = decodeSessionRecordValue(session);
    if (!valid.ok) {
      return Promise.reject(new InvalidRecordError(`session: ${valid.error.message}`, { cause: valid.error }));
    }
    const record = valid.value;
    const write: Write = { kind: "value", encode: (revision) => encodeStoredSession(revision, record) };
    return this.write(this.sessions, record.session_id, record.session_id, expectedRevision, write).then(
      (seq) => seq ?? UNREVISIONED,
    );
  }

  async delete(sessionId: string, expectedRevision: number | null): Promise<void> {
    await this.write(this.sessions, sessionId, sessionId, expectedRevision, { kind: "delete" });
  }

  putContext(clientId: string, imageId: string | null, expectedRevision: number | null): Promise<number> {
    if (clientId === "") return Promise.reject(new InvalidRecordError("client_id: expected a non-empty string"));
    if (imageId !== null && !ImageId.safeParse(imageId).success) {
      return Promise.reject(new InvalidRecordError(`image_id: not an image id: ${JSON.stringify(imageId)}`));
    }
    const write: Write =
      imageId === null
        ? { kind: "delete" }
        : { kind: "value", encode: (revision) => encodeContextRecord(clientId, imageId, revision) };
    return this.write(this.contexts, clientId, `context of ${clientId}`, expectedRevision, write).then((seq) =>
      imageId === null || seq === null ? UNREVISIONED : seq,
    );
  }

  watch(listener: (change: StoreChange) => void): () => void {
    return this.watchers.add(listener);
  }

  status(): StoreStatus {
    const d = this.degraded;
    return d === null
      ? { writable: true, degraded_since: null, reason: null }
      : { writable: false, degraded_since: d.since, reason: d.reason };
  }

  async ensureWritable(): Promise<void> {
    if (this.degraded !== null && !(await this.probe())) throw new StoreUnavailableError(this.status());
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue.idle();
    await Promise.all(this.feeds.map((feed) => feed.stop()));
  }

  // Internals --------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  /** One compare-and-set at a time per bucket (they would only race each other), then the feed. */
  private write(
    bucket: Bucket,
    id: string,
    what: string,
    expected: number | null,
    write: Write,
  ): Promise<number | null> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    return this.queue.run(bucket.name, async () => {
      await this.ensureWritable();
      let seq: number | null;
      try {
        seq = await bucket.compareAndSet(encodeKey(id), what, expected, write);
      } catch (error) {
        throw this.writeFailure(error);
      }
      if (seq !== null) await this.delivered(bucket, seq);
      return seq;
    });
  }

  private writeFailure(error: unknown): unknown {
    if (error instanceof BucketContended) {
      this.logger.warn({ err: error }, "session store: a write lost the race too often; refused, retry");
      return new StoreUnavailableError({ writable: true, degraded_since: null, reason: "the bucket is too busy" });
    }
    if (!(error instanceof JetStreamUnavailable) && !isUnavailable(error)) return error;
    if (this.degraded === null) {
      this.degraded = { since: isoTime(), reason: "no JetStream leader answers" };
      this.logger.error(
        { err: error, reason: this.degraded.reason },
        "session store: JetStream does not acknowledge writes; they are refused until it answers again",
      );
    }
    return new StoreUnavailableError(this.status());
  }

  /** Waits until this store's feed has delivered `seq`, so watchers heard of the write first. */
  private async delivered(bucket: Bucket, seq: number): Promise<void> {
    const feed = this.feeds[bucket === this.sessions ? 0 : 1];
    if (feed === undefined || (await feed.reached(seq, this.feedTimeoutMs))) return;
    this.logger.warn(
      { stream: bucket.stream, seq, delivered: feed.deliveredUpTo() },
      "session store: a write was acknowledged but the change feed has not delivered it yet",
    );
  }

  /** One probe at a time; `true` once both buckets' leaders answer again. */
  private probe(): Promise<boolean> {
    if (this.degraded === null) return Promise.resolve(true);
    this.probing ??= (async () => {
      try {
        for (const bucket of [this.sessions, this.contexts]) await bucket.lastSequence();
      } catch {
        return false;
      }
      const since = this.degraded?.since;
      this.degraded = null;
      this.logger.info({ degraded_since: since }, "session store: writable again (JetStream answers)");
      return true;
    })().finally(() => {
      this.probing = null;
    });
    return this.probing;
  }

  private sessionMessage(message: JsMsg): void {
    const decoded = decodeSessionMessage(message, this.sessions.prefix);
    if (decoded.kind === "corrupt") this.corrupt(decoded.problem);
    else if (decoded.kind === "value") {
      const { session, revision } = decoded.stored;
      this.watchers.tell({ kind: "session", sessionId: session.session_id, stored: { session, revision } });
    } else if (decoded.kind === "removed") this.watchers.tell({ kind: "session", sessionId: decoded.id, stored: null });
  }

  private contextMessage(message: JsMsg): void {
    const decoded = decodeContextMessage(message, this.contexts.prefix);
    if (decoded.kind === "corrupt") this.corrupt(decoded.problem);
    else if (decoded.kind === "value") {
      this.watchers.tell({ kind: "context", clientId: decoded.clientId, context: decoded.context });
    } else if (decoded.kind === "removed") this.watchers.tell({ kind: "context", clientId: decoded.id, context: null });
  }

  private corrupt(problem: StoreProblem): StoreProblem {
    this.logger.error(
      { file: problem.file, err: problem.error },
      `session store: corrupt record ${problem.file}: ${problem.error.message}; left in place`,
    );
    return problem;
  }
}
