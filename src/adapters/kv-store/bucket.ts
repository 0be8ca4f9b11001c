/**
 * One KV-shaped bucket on JetStream and the compare-and-set this server really serializes.
 *
 * The stream is what a JetStream KV bucket is (`KV_<bucket>`, subjects `$KV.<bucket>.<key>`,
 * history 1, rollup headers allowed, deletes by marker only), so `nats kv` tools read it. A key's
 * revision is the stream sequence of its last message; a delete marker (`KV-Operation: DEL`) or a
 * purge leaves it absent (`UNREVISIONED`).
 *
 * Why not KV `update` (`Nats-Expected-Last-Subject-Sequence`): nats-server before 2.9.21 can
 * acknowledge two such writes naming the same revision on a replicated stream
 * (nats-io/nats-server#4320; `test/nats.cluster.cas.test.ts` measures it). The stream-level
 * `Nats-Expected-Last-Sequence` is checked where the leader applies writes, in order, so a write
 * reads the bucket's last sequence (stream info) and then the key's last message, both from the
 * stream leader, checks the caller's expected revision against the key's, and publishes expecting
 * that last sequence. If any write to the bucket came in between, the server refuses it ("wrong
 * last sequence") and the write starts over, at most `MAX_ATTEMPTS` times. Reading the sequence
 * before the key matters: the other order could check an older key revision than the sequence it
 * then names.
 *
 * Each logical write carries one `Nats-Msg-Id` over all its attempts: an attempt whose answer was
 * lost (a leader failing over) is recognised on the next read (the key's message carries it) or
 * answered as a duplicate, rather than written twice.
 */
import { addStreamWhenPlaced } from "../../actors/stream-placement.js";
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
  type StoredMsg,
  type StreamConfig,
} from "@nats-io/jetstream";
import { headers, nuid, NoRespondersError, RequestError, TimeoutError } from "@nats-io/nats-core";
import { UNREVISIONED } from "../../ports.js";
import { InvalidRecordError, RevisionConflictError } from "../../errors.js";

/** The stream-level sequence a write expected has moved on: another write came first. */
const WRONG_LAST_SEQUENCE = 10071;
/** Attempts of one write that lose the race to other writes of the bucket (see the module comment). */
export const MAX_ATTEMPTS = 64;
const OPERATION = "KV-Operation";
const MSG_ID = "Nats-Msg-Id";

/** A key's last message, as the stream leader has it. */
export interface KeyState {
  /** The sequence of the key's last message if it holds a value, else `UNREVISIONED`. */
  readonly revision: number;
  readonly msgId: string | null;
}

/** What a write puts: a value built for the sequence it will get, or a delete marker. */
export type Write =
  { readonly kind: "value"; readonly encode: (revision: number) => string } | { readonly kind: "delete" };

/** JetStream could not answer (no stream leader, no responders, a timeout, a closed connection). */
export class JetStreamUnavailable extends Error {
  override readonly name = "JetStreamUnavailable";
}

/** A write that lost the race to other writes of its bucket `MAX_ATTEMPTS` times in a row. */
export class BucketContended extends Error {
  override readonly name = "BucketContended";
}

const BUCKET_PREFIX = /^[A-Za-z0-9_-]+$/;

/** The options every KV adapter opens its buckets with, checked: the prefix, the replicas, the timing. */
export function bucketOptions(options: {
  readonly bucketPrefix?: string | undefined;
  readonly replicas?: number | undefined;
  readonly unavailableAfterMs?: number | undefined;
  readonly requestTimeoutMs?: number | undefined;
}): {
  readonly prefix: string;
  readonly replicas: number;
  readonly timing: { readonly unavailableAfterMs: number; readonly requestTimeoutMs: number };
} {
  const prefix = options.bucketPrefix ?? "stui";
  if (!BUCKET_PREFIX.test(prefix)) {
    throw new InvalidRecordError(`bucketPrefix: letters, digits, _ and - only: ${JSON.stringify(prefix)}`);
  }
  const replicas = options.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
    throw new InvalidRecordError(`replicas: an integer from 1 to 5: ${replicas}`);
  }
  const timing = {
    unavailableAfterMs: options.unavailableAfterMs ?? 10_000,
    requestTimeoutMs: options.requestTimeoutMs ?? 2000,
  };
  return { prefix, replicas, timing };
}

export function kvStreamConfig(bucket: string, replicas: number): Partial<StreamConfig> & { name: string } {
  return {
    name: `KV_${bucket}`,
    subjects: [`$KV.${bucket}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    max_msgs_per_subject: 1,
    max_msgs: -1,
    max_bytes: -1,
    max_age: 0,
    max_msg_size: -1,
    max_consumers: -1,
    num_replicas: replicas,
    duplicate_window: 120_000_000_000, // 2 min in ns, as KV buckets without a TTL
    allow_rollup_hdrs: true,
    deny_delete: true,
    deny_purge: false,
    allow_direct: false,
  };
}

/** A subject-safe key for an id: its UTF-8 bytes in base64url (letters, digits, `-`, `_`). */
export const encodeKey = (id: string): string => Buffer.from(id, "utf8").toString("base64url");

/** The id of a key; `null` when the key is not one `encodeKey` makes. */
export function decodeKey(key: string): string | null {
  if (!/^[A-Za-z0-9_-]+$/.test(key)) return null;
  const id = Buffer.from(key, "base64url").toString("utf8");
  return encodeKey(id) === key ? id : null;
}

/** Whether a stored message is a delete marker or purge rather than a value. */
export function isRemoval(operation: string | undefined): boolean {
  return operation === "DEL" || operation === "PURGE";
}

/** Whether `error` means JetStream did not answer, rather than refused. */
export function isUnavailable(error: unknown): boolean {
  if (error instanceof JetStreamUnavailable) return true;
  // A refusal by the server's permissions is not an outage: retrying cannot help.
  if (isPermissionDenied(error)) return false;
  if (error instanceof TimeoutError || error instanceof NoRespondersError) return true;
  // nats.js says "jetstream is not enabled" for a publish nobody answers: during a stream leader
  // election (JetStream itself was checked at start). The class is not exported: known by name.
  if (error instanceof Error && error.name === "JetStreamNotEnabled") return true;
  if (error instanceof RequestError) return true;
  if (error instanceof JetStreamApiError) return error.code === 503 || error.status === 503;
  return error instanceof Error && /timeout|no responders|closed|disconnect/i.test(error.message);
}

/** Whether the error, or one of its causes, is the server refusing a publish or subscription. */
function isPermissionDenied(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth += 1) {
    if (/permissions violation/i.test(e.message)) return true;
  }
  return false;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class Bucket {
  readonly stream: string;
  readonly prefix: string;

  constructor(
    readonly name: string,
    private readonly jsm: JetStreamManager,
    readonly js: JetStreamClient,
    private readonly options: { readonly unavailableAfterMs: number; readonly requestTimeoutMs: number },
  ) {
    this.stream = `KV_${name}`;
    this.prefix = `$KV.${name}.`;
  }

  /**
   * `attempt`, tried again while JetStream does not answer, for up to `unavailableAfterMs`; then
   * `JetStreamUnavailable` naming `what`. Right after a node is lost the answers can stay away for
   * a while: a leader election, or an ephemeral consumer the meta leader placed on the lost node
   * (nats-server 2.9 picks among all of the stream's peers, so about one creation in three times
   * out for as long as the node is gone, and the next one usually lands elsewhere).
   */
  async untilAnswered<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.options.unavailableAfterMs;
    for (;;) {
      try {
        return await attempt();
      } catch (error) {
        if (!isUnavailable(error)) throw error;
        if (Date.now() >= deadline) {
          throw new JetStreamUnavailable(
            `${what}: JetStream did not answer for ${this.stream} within ${this.options.unavailableAfterMs} ms`,
            { cause: error },
          );
        }
        await sleep(250);
      }
    }
  }

  /** Creates the stream, or takes the existing one (written by another instance or `nats kv add`). */
  async ensure(replicas: number): Promise<void> {
    try {
      await this.untilAnswered("reading the stream", () => this.jsm.streams.info(this.stream));
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
      try {
        await addStreamWhenPlaced(this.jsm, kvStreamConfig(this.name, replicas), this.options.unavailableAfterMs);
      } catch (added) {
        // Another instance created it first: the same stream name with the same role.
        if (!(added instanceof JetStreamApiError && added.code === 10058)) throw added;
      }
    }
  }

  /** The bucket's last sequence now, from the stream leader. */
  async lastSequence(): Promise<number> {
    return (await this.jsm.streams.info(this.stream)).state.last_seq;
  }

  /** How many messages the stream holds (values and delete markers, one per key at most). */
  async messageCount(): Promise<number> {
    return (await this.jsm.streams.info(this.stream)).state.messages;
  }

  async keyState(key: string): Promise<KeyState> {
    const message: StoredMsg | null = await this.jsm.streams.getMessage(this.stream, {
      last_by_subj: `${this.prefix}${key}`,
    });
    if (message === null) return { revision: UNREVISIONED, msgId: null };
    const operation = message.header.get(OPERATION) || undefined;
    return {
      revision: isRemoval(operation) ? UNREVISIONED : message.seq,
      msgId: message.header.get(MSG_ID) || null,
    };
  }

  /**
   * Writes `write` to `key` if the key's revision is `expected` (`null`: whatever it is), and
   * resolves with the write's sequence; `null` when a delete found the key absent (nothing to do).
   * Rejects with `RevisionConflictError` (naming `what`), `JetStreamUnavailable` once JetStream
   * has not answered for `unavailableAfterMs`, or `BucketContended`.
   */
  async compareAndSet(key: string, what: string, expected: number | null, write: Write): Promise<number | null> {
    const msgId = nuid.next();
    const subject = `${this.prefix}${key}`;
    let unavailableSince: number | null = null;
    let lastFailure: unknown = null;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        const last = await this.lastSequence();
        const state = await this.keyState(key);
        // An earlier attempt landed though its answer was lost.
        if (state.msgId === msgId) return write.kind === "delete" ? null : state.revision;
        if (expected !== null && expected !== state.revision) {
          throw new RevisionConflictError(what, expected, state.revision);
        }
        if (write.kind === "delete" && state.revision === UNREVISIONED) return null;
        const h = headers();
        if (write.kind === "delete") h.set(OPERATION, "DEL");
        const payload = write.kind === "value" ? write.encode(last + 1) : "";
        const ack = await this.js.publish(subject, payload, {
          headers: h,
          msgID: msgId,
          expect: { lastSequence: last },
          timeout: this.options.requestTimeoutMs,
        });
        return ack.seq;
      } catch (error) {
        if (error instanceof RevisionConflictError) throw error;
        if (error instanceof JetStreamApiError && error.code === WRONG_LAST_SEQUENCE) {
          unavailableSince = null;
          // Jittered, growing a little, so two racing writers do not keep colliding.
          await sleep(Math.random() * Math.min(2 ** Math.min(attempt, 5), 25));
          continue;
        }
        if (!isUnavailable(error)) throw error;
        lastFailure = error;
        const now = Date.now();
        unavailableSince ??= now;
        if (now - unavailableSince >= this.options.unavailableAfterMs) {
          throw new JetStreamUnavailable(`no JetStream leader for ${this.stream}`, { cause: error });
        }
        // A leader election takes a few seconds: try again within the bound.
        attempt -= 1;
        await sleep(100);
      }
    }
    throw new BucketContended(
      `${what}: ${MAX_ATTEMPTS} attempts in a row lost the race to other writes of ${this.stream}`,
      { cause: lastFailure },
    );
  }
}
