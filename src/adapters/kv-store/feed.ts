/**
 * A bucket's change feed: an ordered consumer over its subjects from the sequence after the last
 * one at start, handing each message to `onMessage` in stream order, whoever wrote it. It knows
 * how far it has delivered, so a write can wait until its own sequence has been delivered (or
 * passed: a later write of the same key replaces a message not yet delivered, history being 1)
 * before it resolves. The ordered consumer recreates itself after a leader change or a
 * reconnection, resuming after the last sequence it delivered.
 */
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import type { StoreLogger } from "../../ports.js";

/**
 * A pull's life: the consumer expects heartbeats at half of it and recreates itself after two
 * missed ones, so a feed whose consumer was on a lost node resumes within about this long.
 */
const PULL_EXPIRES_MS = 5000;

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

  private constructor(
    private readonly stream: string,
    private readonly onMessage: (message: JsMsg) => void,
    private readonly logger: StoreLogger,
    startAfter: number,
  ) {
    this.delivered = startAfter;
  }

  /** Starts delivering the messages after sequence `startAfter`. */
  static async start(
    js: JetStreamClient,
    stream: string,
    startAfter: number,
    onMessage: (message: JsMsg) => void,
    logger: StoreLogger,
  ): Promise<BucketFeed> {
    const feed = new BucketFeed(stream, onMessage, logger, startAfter);
    const consumer = await js.consumers.get(stream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: startAfter + 1,
    });
    feed.messages = await consumer.consume({ expires: PULL_EXPIRES_MS });
    feed.running = feed.run(feed.messages);
    return feed;
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
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.messages?.close();
    await this.running;
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(false);
    }
    this.waiters.clear();
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const message of messages) {
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
