/**
 * Everything the session manager decides, published on NATS as CloudEvents: one subject per kind
 * (src/protocol/subjects.ts), kept by the JetStream stream `STUI_EVENTS` for replay.
 *
 * - `sequence` counts 1, 2, 3… per source (`/stui/<instance_id>`) from the `instance.started` of
 *   each run, so a subscriber sees a gap as a jump.
 * - Each event is validated against the schema `docs/schemas/` is generated from before it leaves;
 *   one that fails is logged and counted as dropped, never published.
 * - Publishing goes through JetStream with `Nats-Msg-Id` = the event's id, so a publish retried
 *   after a lost acknowledgement is stored once.
 * - While NATS is down, events wait in order in a buffer of `bufferLimit`; beyond it the oldest is
 *   dropped and counted (`dropped_events`), which subscribers see as a sequence gap.
 * - Health debounce, per image: a health change is published at once unless one was published
 *   for that image less than `healthDebounceMs` ago; then it is held, and at the end of that window
 *   the latest held health is published if it differs from the last one published. Status changes
 *   are never held or skipped.
 */
import { addStreamWhenPlaced } from "./stream-placement.js";
import { randomUUID } from "node:crypto";
import {
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type StreamConfig,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import type { NatsLink } from "./nats-link.js";
import type { SessionManager } from "./session-manager.js";
import type { Logger } from "../logger.js";
import type { SessionNotice } from "../machines/session-manager.js";
import {
  encodeEvent,
  eventSubject,
  EVENTS_WILDCARD,
  timestamp,
  validateEvent,
  type EventData,
  type EventType,
  type ImageHealthChanged,
  type StuiEventOf,
} from "../protocol/index.js";
import { systemClock } from "../clock.js";

export interface EventStreamOptions {
  /** @default "STUI_EVENTS" */
  readonly name: string;
  /** Events older than this are discarded. @default 604800000 (7 days) */
  readonly maxAgeMs: number;
  /** The oldest events are discarded beyond this size. @default 268435456 (256 MiB) */
  readonly maxBytes: number;
  /** How long JetStream remembers a `Nats-Msg-Id` to refuse its duplicate. @default 120000 */
  readonly duplicateWindowMs: number;
  /** Replicas when the stream is created (an existing stream keeps its own). @default 1 */
  readonly replicas: number;
}

export const DEFAULT_STREAM: EventStreamOptions = {
  name: "STUI_EVENTS",
  maxAgeMs: 7 * 24 * 3_600_000,
  maxBytes: 256 * 1024 * 1024,
  duplicateWindowMs: 120_000,
  replicas: 1,
};

export interface EventPublisherOptions {
  /** A subject token; the events' source is `/stui/<instanceId>`. */
  readonly instanceId: string;
  readonly stream?: Partial<EventStreamOptions>;
  /** Events held while NATS is down; beyond it the oldest are dropped. @default 10000 */
  readonly bufferLimit?: number;
  /** At most one health event per image per window. @default 1000 */
  readonly healthDebounceMs?: number;
  /** One publish attempt's wait for its acknowledgement. @default 2000 */
  readonly publishTimeoutMs?: number;
}

export interface PublisherCounts {
  readonly published: number;
  readonly buffered: number;
  readonly dropped: number;
}

/** The event type of each session lifecycle notice. */
const SESSION_EVENTS = {
  created: "io.stui.session.created",
  closed: "io.stui.session.closed",
  orphaned: "io.stui.session.orphaned",
  cleaned: "io.stui.session.cleaned",
} as const satisfies Record<Exclude<SessionNotice["kind"], "context">, EventType>;

interface Outgoing {
  readonly id: string;
  readonly subject: string;
  readonly payload: string;
}

/** Makes sure the stream exists with these limits (creating it, or updating its limits). */
export async function ensureEventStream(link: NatsLink, options: EventStreamOptions): Promise<void> {
  const jsm = await jetstreamManager(link.nc);
  const config: Partial<StreamConfig> & { name: string } = {
    name: options.name,
    subjects: [EVENTS_WILDCARD],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(options.maxAgeMs),
    max_bytes: options.maxBytes,
    duplicate_window: nanos(options.duplicateWindowMs),
  };
  try {
    const info = await jsm.streams.info(options.name);
    await jsm.streams.update(options.name, { ...info.config, ...config });
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
    await addStreamWhenPlaced(jsm, { ...config, num_replicas: options.replicas });
  }
}

export class EventPublisher {
  private readonly js: JetStreamClient;
  private readonly source: string;
  private readonly outbox: Outgoing[] = [];
  private sequence = 0;
  private published = 0;
  private dropped = 0;
  private pumping: Promise<void> | null = null;
  private closed = false;
  private readonly lastHealth = new Map<string, { readonly at: number; readonly data: ImageHealthChanged }>();
  private readonly heldHealth = new Map<string, { data: ImageHealthChanged; readonly timer: NodeJS.Timeout }>();
  private readonly bufferLimit: number;
  private readonly healthDebounceMs: number;
  private readonly publishTimeoutMs: number;
  private readonly unlisten: () => void;

  private constructor(
    private readonly link: NatsLink,
    readonly instanceId: string,
    options: EventPublisherOptions,
    private readonly logger: Logger,
  ) {
    this.js = jetstream(link.nc);
    this.source = `/stui/${instanceId}`;
    this.bufferLimit = options.bufferLimit ?? 10_000;
    this.healthDebounceMs = options.healthDebounceMs ?? 1000;
    this.publishTimeoutMs = options.publishTimeoutMs ?? 2000;
    this.unlisten = link.onChange((status) => {
      if (status === "Connected") this.kick();
    });
  }

  /** Ensures the stream, then announces `instance.<id>.started` (sequence 1). */
  static async start(link: NatsLink, options: EventPublisherOptions, logger: Logger): Promise<EventPublisher> {
    await ensureEventStream(link, { ...DEFAULT_STREAM, ...options.stream });
    const publisher = new EventPublisher(link, options.instanceId, options, logger);
    publisher.publish(
      "io.stui.instance.started",
      { instance_id: options.instanceId, at: timestamp() },
      options.instanceId,
    );
    return publisher;
  }

  get counts(): PublisherCounts {
    return { published: this.published, buffered: this.outbox.length, dropped: this.dropped };
  }

  /** Publishes what the manager announces: status, health (debounced) and session changes. */
  attach(manager: SessionManager): () => void {
    const subs = [
      manager.actor.on("status", ({ data }) => this.publish("io.stui.image.status.changed", data, data.image_id)),
      manager.actor.on("health", ({ data }) => this.health(data)),
      manager.actor.on("session", ({ notice }) => this.notice(notice)),
    ];
    return () => subs.forEach((s) => s.unsubscribe());
  }

  /** Builds, validates and queues one event; it is published in order as soon as NATS takes it. */
  publish<T extends EventType>(type: T, data: EventData<T>, subject: string | null): StuiEventOf<T> | null {
    if (this.closed) return null;
    const event = {
      specversion: "1.0",
      id: randomUUID(),
      source: this.source,
      type,
      time: timestamp(),
      sequence: (this.sequence += 1),
      datacontenttype: "application/json",
      subject,
      data,
    } as unknown as StuiEventOf<T>;
    const valid = validateEvent(event);
    if (!valid.ok) {
      this.dropped += 1;
      this.logger.error({ err: valid.error, type }, "an event failed its schema and was not published");
      return null;
    }
    this.outbox.push({
      id: event.id,
      subject: eventSubject(event),
      payload: encodeEvent(event),
    });
    while (this.outbox.length > this.bufferLimit) {
      this.outbox.shift();
      this.dropped += 1;
    }
    this.kick();
    return event;
  }

  /** Resolves once every queued event is published, or after `timeoutMs`; `true` if all were. */
  async flush(timeoutMs: number): Promise<boolean> {
    for (const id of [...this.heldHealth.keys()]) this.releaseHealth(id);
    const deadline = systemClock.monotonic() + timeoutMs;
    while (this.outbox.length > 0 && systemClock.monotonic() < deadline) {
      this.kick();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return this.outbox.length === 0;
  }

  /** Announces `instance.<id>.stopped`, flushes, and resolves with how many events stayed unpublished. */
  async close(timeoutMs = 2000): Promise<number> {
    if (this.closed) return this.outbox.length;
    // A health change still held by the debounce would otherwise follow `instance.stopped`: the
    // stopped event is the run's last (the images' final Disconnected statuses precede it).
    for (const held of this.heldHealth.values()) clearTimeout(held.timer);
    this.heldHealth.clear();
    this.publish("io.stui.instance.stopped", { instance_id: this.instanceId, at: timestamp() }, this.instanceId);
    await this.flush(timeoutMs);
    this.closed = true;
    this.unlisten();
    if (this.outbox.length > 0) {
      this.logger.warn({ unpublished: this.outbox.length }, "events not published before stopping");
    }
    return this.outbox.length;
  }

  private notice(notice: SessionNotice): void {
    if (notice.kind === "context") {
      this.publish("io.stui.context.switched", notice.data, notice.data.client_id);
    } else {
      this.publish(SESSION_EVENTS[notice.kind], notice.data, notice.data.image_id);
    }
  }

  /** Publishes a health change under the debounce rule (see the top of this file). */
  health(data: ImageHealthChanged): void {
    const id = data.image_id;
    const held = this.heldHealth.get(id);
    if (held !== undefined) {
      held.data = data;
      return;
    }
    const last = this.lastHealth.get(id);
    const elapsed = last === undefined ? Infinity : systemClock.monotonic() - last.at;
    if (elapsed >= this.healthDebounceMs) {
      this.publishHealth(data);
      return;
    }
    const timer = setTimeout(() => this.releaseHealth(id), this.healthDebounceMs - elapsed);
    this.heldHealth.set(id, { data, timer });
  }

  private releaseHealth(imageId: string): void {
    const held = this.heldHealth.get(imageId);
    if (held === undefined) return;
    clearTimeout(held.timer);
    this.heldHealth.delete(imageId);
    const last = this.lastHealth.get(imageId);
    if (last !== undefined && last.data.health === held.data.health) return;
    this.publishHealth({ ...held.data, previous_health: last?.data.health ?? held.data.previous_health });
  }

  private publishHealth(data: ImageHealthChanged): void {
    this.lastHealth.set(data.image_id, { at: systemClock.monotonic(), data });
    this.publish("io.stui.image.health.changed", data, data.image_id);
  }

  private kick(): void {
    if (this.pumping !== null || this.closed || this.link.status !== "Connected") return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
    });
  }

  /** One publisher at a time, in order; a failed publish is retried (same id) until NATS takes it. */
  private async pump(): Promise<void> {
    while (this.outbox.length > 0 && !this.closed && this.link.status === "Connected") {
      const next = this.outbox[0] as Outgoing;
      try {
        await this.js.publish(next.subject, next.payload, { msgID: next.id, timeout: this.publishTimeoutMs });
        // Dropped from the buffer meanwhile (overflow) if it is no longer at its head.
        if (this.outbox[0] === next) this.outbox.shift();
        this.published += 1;
      } catch (error) {
        if (this.link.status !== "Connected" || this.closed) return;
        this.logger.warn({ err: error, subject: next.subject }, "publishing an event failed; retrying");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}
