/**
 * The typed client other TypeScript services use: one method per request (over the service's
 * NATS endpoints), live events filtered by subject, and replay from the `STUI_EVENTS` stream by
 * time or stream sequence.
 *
 * ```ts
 * const stui = await StuiClient.connect({ servers: "nats://127.0.0.1:4222" });
 * const images = await stui.listImages(); // Images | Error
 * for await (const event of stui.events({ subject: "stui.events.image.*.status" })) console.log(event.data);
 * ```
 */
import { DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages } from "@nats-io/jetstream";
import { RequestError, TimeoutError, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { z } from "zod";
import { DEFAULT_STREAM } from "./actors/event-publisher.js";
import { connectNats, type NatsOptions } from "./actors/nats-link.js";
import {
  apiSubject,
  decodeEvent,
  decodeResponse,
  EVENTS_WILDCARD,
  type RequestType,
  type requestVariants,
  type ResponseTo,
  type StuiEvent,
} from "./protocol/index.js";
import { instanceStats, type LiveInstance } from "./actors/instances.js";

/** A request's fields as a caller may write them: fields with defaults may be left out. */
export type RequestBody<K extends RequestType> = z.input<(typeof requestVariants)[K]>;

/** No service answered (none running, or none reachable within the timeout). */
export class ServiceUnavailableError extends Error {
  override readonly name = "ServiceUnavailableError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

export interface ClientOptions {
  /** How long a request waits for its answer. @default 10000 */
  readonly timeoutMs?: number;
  /** The event stream to replay from. @default "STUI_EVENTS" */
  readonly stream?: string;
}

/** Where a replay starts: a time, a stream sequence, or (neither) the oldest event kept. */
export interface ReplayOptions {
  /** A subject filter, wildcards allowed. @default "stui.events.>" */
  readonly subject?: string;
  readonly since?: Date | string;
  readonly sequence?: number;
}

/** An event as replayed: with its position in the stream, to resume from. */
export interface ReplayedEvent {
  readonly event: StuiEvent;
  readonly streamSequence: number;
}

/** An open stream of events; iterate it, and `close()` (or `break`) when done. */
export interface EventFeed<T> extends AsyncIterable<T> {
  close(): Promise<void>;
}

export class StuiClient {
  private readonly timeoutMs: number;
  private readonly stream: string;

  constructor(
    readonly nc: NatsConnection,
    options: ClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.stream = options.stream ?? DEFAULT_STREAM.name;
  }

  static async connect(options: NatsOptions & ClientOptions = {}): Promise<StuiClient> {
    return new StuiClient(await connectNats({ name: "stui-client", ...options }), options);
  }

  /** Sends one request to its endpoint; resolves with its response (`Error` included). */
  async request<K extends RequestType>(type: K, body: RequestBody<K>): Promise<ResponseTo<K>> {
    const subject = apiSubject(type);
    let reply;
    try {
      reply = await this.nc.request(subject, JSON.stringify(body), { timeout: this.timeoutMs });
    } catch (error) {
      if (error instanceof RequestError && error.isNoResponders()) {
        throw new ServiceUnavailableError(`no stui service answers on ${subject}`, { cause: error });
      }
      if (error instanceof TimeoutError) {
        throw new ServiceUnavailableError(`no answer on ${subject} within ${this.timeoutMs} ms`, { cause: error });
      }
      throw error;
    }
    const decoded = decodeResponse(reply.data);
    if (!decoded.ok) throw new Error(`the service sent a malformed response on ${subject}: ${decoded.error.message}`);
    return decoded.value as ResponseTo<K>;
  }

  listImageSessions = (body: RequestBody<"ListImageSessions"> = {}) => this.request("ListImageSessions", body);
  getImageSessionStats = (body: RequestBody<"GetImageSessionStats">) => this.request("GetImageSessionStats", body);
  cleanupImageSessions = (body: RequestBody<"CleanupImageSessions">) => this.request("CleanupImageSessions", body);
  switchImageContext = (body: RequestBody<"SwitchImageContext">) => this.request("SwitchImageContext", body);
  getImageConnectionStatus = (body: RequestBody<"GetImageConnectionStatus">) =>
    this.request("GetImageConnectionStatus", body);
  createSession = (body: RequestBody<"CreateSession">) => this.request("CreateSession", body);
  closeSession = (body: RequestBody<"CloseSession">) => this.request("CloseSession", body);
  evaluate = (body: RequestBody<"Evaluate">) => this.request("Evaluate", body);
  connectImage = (body: RequestBody<"ConnectImage">) => this.request("ConnectImage", body);
  disconnectImage = (body: RequestBody<"DisconnectImage">) => this.request("DisconnectImage", body);
  retryImage = (body: RequestBody<"RetryImage">) => this.request("RetryImage", body);
  listImages = () => this.request("ListImages", {});
  getConnectionHealthSummary = () => this.request("GetConnectionHealthSummary", {});
  getClientContext = (body: RequestBody<"GetClientContext">) => this.request("GetClientContext", body);
  /** The live `stui serve` instances on this NATS (their micro service stats), by instance id. */
  instances = (): Promise<LiveInstance[]> => instanceStats(this.nc);

  /** Live events from now on, on `subject` (wildcards allowed); malformed messages are skipped. */
  events(options: { readonly subject?: string } = {}): EventFeed<StuiEvent> {
    const sub: Subscription = this.nc.subscribe(options.subject ?? EVENTS_WILDCARD);
    return {
      async *[Symbol.asyncIterator]() {
        try {
          for await (const msg of sub) {
            const decoded = decodeEvent(msg.data);
            if (decoded.ok) yield decoded.value;
          }
        } finally {
          sub.unsubscribe();
        }
      },
      close: async () => {
        sub.unsubscribe();
        await sub.closed;
      },
    };
  }

  /** The events kept in the stream from a time or sequence on, then live ones as they come. */
  async replay(options: ReplayOptions = {}): Promise<EventFeed<ReplayedEvent>> {
    const start =
      options.sequence !== undefined
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: options.sequence }
        : options.since !== undefined
          ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(options.since).toISOString() }
          : { deliver_policy: DeliverPolicy.All };
    const consumer = await jetstream(this.nc).consumers.get(this.stream, {
      filter_subjects: options.subject ?? EVENTS_WILDCARD,
      ...start,
    });
    const messages: ConsumerMessages = await consumer.consume();
    return {
      async *[Symbol.asyncIterator]() {
        try {
          for await (const msg of messages) {
            const decoded = decodeEvent(msg.data);
            if (decoded.ok) yield { event: decoded.value, streamSequence: msg.seq };
          }
        } finally {
          await messages.close();
        }
      },
      close: async () => {
        await messages.close();
      },
    };
  }

  /**
   * The last `count` events the stream keeps, oldest first: what happened just before now, for a
   * view that starts. Empty when the stream holds none.
   */
  async recent(count: number): Promise<ReplayedEvent[]> {
    const info = await (await jetstreamManager(this.nc)).streams.info(this.stream);
    const last = info.state.last_seq;
    if (info.state.messages === 0 || count <= 0) return [];
    const feed = await this.replay({ sequence: Math.max(info.state.first_seq, last - count + 1) });
    const events: ReplayedEvent[] = [];
    const timer = setTimeout(() => void feed.close(), this.timeoutMs);
    try {
      for await (const replayed of feed) {
        events.push(replayed);
        if (replayed.streamSequence >= last) break;
      }
    } finally {
      clearTimeout(timer);
      await feed.close();
    }
    return events.slice(-count);
  }

  /** Closes the connection (after letting what was sent go out). */
  async close(): Promise<void> {
    await this.nc.drain();
  }
}
