/**
 * A bucket's change feed: an ordered consumer over its subjects from the sequence after the last
 * one at start, handing each message to `onMessage` in stream order, whoever wrote it. It knows
 * how far it has delivered, so a write can wait until its own sequence has been delivered (or
 * passed: a later write of the same key replaces a message not yet delivered, history being 1)
 * before it resolves.
 *
 * An ordered consumer on a replicated stream lives on one node; when that node dies, nats.js did
 * not always recreate it (seen with nats-server 2.9.10: the feed stayed silent for minutes). So the
 * feed watches itself: while a write waits for a sequence and nothing has been delivered for
 * `STALL_MS`, it replaces its consumer with a new one starting after the last sequence delivered
 * (messages of the old one, if any still arrive, are ignored), so nothing is heard twice or lost.
 */
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import type { StoreLogger } from "../../ports.js";
import type { Bucket } from "./bucket.js";

/**
 * A pull's life: the consumer expects heartbeats at half of it and recreates itself after two
 * missed ones, so a feed whose consumer was on a lost node resumes within about this long.
 */
const PULL_EXPIRES_MS = 5000;
/** How long a waited-for feed may deliver nothing before its consumer is replaced. */
const STALL_MS = 1500;

interface Waiter {
  readonly seq: number;
  readonly resolve: (reached: boolean) => void;
  readonly timer: NodeJS.Timeout;
}

export class BucketFeed {
  private delivered: number;
  private messages: ConsumerMessages | null = null;
  private readonly waiters = new Set<Waiter>();
  private running: Promise<void> | null = null;
  private stopped = false;
  /** Which consumer is current: a replaced one's messages are ignored. */
  private generation = 0;
  private watchdog: NodeJS.Timeout | null = null;
  private deliveredAtLastCheck = 0;
  private replacing: Promise<void> | null = null;

  private constructor(
    private readonly js: JetStreamClient,
    private readonly stream: string,
    private readonly onMessage: (message: JsMsg) => void,
    private readonly logger: StoreLogger,
    startAfter: number,
  ) {
    this.delivered = startAfter;
  }

  /** Starts delivering the messages of `bucket` after sequence `startAfter`. */
  static async start(
    bucket: Bucket,
    startAfter: number,
    onMessage: (message: JsMsg) => void,
    logger: StoreLogger,
  ): Promise<BucketFeed> {
    const feed = new BucketFeed(bucket.js, bucket.stream, onMessage, logger, startAfter);
    await bucket.untilAnswered("starting the change feed", () => feed.subscribe());
    return feed;
  }

  private async subscribe(): Promise<void> {
    const consumer = await this.js.consumers.get(this.stream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.delivered + 1,
    });
    const messages = await consumer.consume({ expires: PULL_EXPIRES_MS });
    this.generation += 1;
    this.messages = messages;
    this.running = this.run(messages, this.generation);
  }

  /** Replaces a silent consumer (see the module comment); a failure is retried at the next check. */
  private replace(): void {
    if (this.stopped || this.replacing !== null) return;
    const old = this.messages;
    this.generation += 1; // from now on the old consumer's messages are ignored
    this.replacing = (async () => {
      await old?.close().catch(() => undefined);
      await this.subscribe();
      this.logger.warn({ stream: this.stream, after: this.delivered }, "session store: the change feed was resumed");
    })()
      .catch((error: unknown) => {
        this.logger.warn({ err: error, stream: this.stream }, "session store: cannot resume the change feed yet");
      })
      .finally(() => {
        this.replacing = null;
      });
  }

  private check(): void {
    if (this.waiters.size === 0) {
      if (this.watchdog !== null) clearInterval(this.watchdog);
      this.watchdog = null;
      return;
    }
    if (this.delivered === this.deliveredAtLastCheck) this.replace();
    this.deliveredAtLastCheck = this.delivered;
  }

  /** The last sequence handed to `onMessage` (or skipped as superseded). */
  deliveredUpTo(): number {
    return this.delivered;
  }

  /** Resolves `true` once `seq` has been delivered or passed, `false` after `timeoutMs`. */
  reached(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.delivered >= seq) return Promise.resolve(true);
    if (this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        seq,
        resolve,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          resolve(false);
        }, timeoutMs),
      };
      this.waiters.add(waiter);
      if (this.watchdog === null) {
        this.deliveredAtLastCheck = this.delivered;
        this.watchdog = setInterval(() => this.check(), STALL_MS);
        this.watchdog.unref();
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.watchdog = null;
    await this.replacing;
    await this.messages?.close().catch(() => undefined);
    await this.running;
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(false);
    }
    this.waiters.clear();
  }

  private async run(messages: ConsumerMessages, generation: number): Promise<void> {
    try {
      for await (const message of messages) {
        if (generation !== this.generation) break;
        try {
          this.onMessage(message);
        } catch (error) {
          this.logger.error({ err: error, stream: this.stream }, "session store: a change could not be handled");
        }
        this.delivered = Math.max(this.delivered, message.seq);
        for (const waiter of this.waiters) {
          if (waiter.seq <= this.delivered) {
            clearTimeout(waiter.timer);
            this.waiters.delete(waiter);
            waiter.resolve(true);
          }
        }
      }
    } catch (error) {
      if (!this.stopped)
        this.logger.error({ err: error, stream: this.stream }, "session store: the change feed stopped");
    }
  }
}
