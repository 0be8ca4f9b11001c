/**
 * The instance's side of inspection on NATS: inspectors attach on `stui.inspect.<id>.attach` with
 * a lease (renewed by attaching again) and detach on `.detach`; while any lease holds, the
 * recorder records and its records go out on `.events` in batches every `flushMs`. With none, the
 * recorder only keeps its list of live actors: nothing is produced. Inspection has a share of the
 * instance's time (`maxShare`): when making and sending records has taken more, the recorder drops
 * (and counts) what happens until the share is back under, so that an inspector never slows the
 * service by more than that; a receiver sees the gap in `seq` and attaches again. A malformed request is
 * answered with what is wrong; a subject this instance may not use is logged once, and the service
 * goes on without inspection.
 */
import { performance } from "node:perf_hooks";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { InspectionRecorder } from "../inspect/recorder.js";
import type { Logger } from "../logger.js";
import {
  InspectAttach,
  InspectDetach,
  inspectSubjects,
  type InspectAttached,
  type InspectDetached,
} from "../protocol/inspect.js";
import { parseJson } from "../protocol/json.js";

export interface InspectLinkOptions {
  /** How often records are sent. @default 100 */
  readonly flushMs?: number;
  /** A batch is cut before its JSON grows past this. @default 512 KiB */
  readonly maxBatchBytes?: number;
  /**
   * The most of the instance's time inspection may take (making records, sending them, answering
   * attaches), over about a second; 1 for no limit. @default DEFAULT_MAX_SHARE
   */
  readonly maxShare?: number;
  readonly now?: () => number;
}

/**
 * Inspection's share of the instance's time unless configured: 2 %. What inspection costs beyond
 * what it measures (the collector, NATS and the inspector on the same cores) comes on top, and at
 * this share the whole stays under 5 % of the service's throughput (`npm run bench -- inspect`).
 */
export const DEFAULT_MAX_SHARE = 0.02;

/** How much inspection time may be saved up for a burst: this long at `maxShare`. */
const BURST_MS = 1000;

const encoder = new TextEncoder();

export class InspectLink {
  private readonly leases = new Map<string, number>();
  private readonly subs: Subscription[] = [];
  private readonly listeners = new Set<(json: string) => void>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly maxBatchBytes: number;
  private readonly maxShare: number;
  /** Inspection time (ms) that may still be spent; below 0, the recorder sheds. */
  private allowance: number;
  private lastFlush = performance.now();
  private lastShedLog = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly nc: NatsConnection,
    private readonly instanceId: string,
    private readonly recorder: InspectionRecorder,
    private readonly logger: Logger,
    options: InspectLinkOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.maxBatchBytes = options.maxBatchBytes ?? 512 * 1024;
    this.maxShare = options.maxShare ?? DEFAULT_MAX_SHARE;
    this.allowance = this.maxShare * BURST_MS;
    this.listen(inspectSubjects.attach(instanceId), (body) => this.attach(body));
    this.listen(inspectSubjects.detach(instanceId), (body) => this.detach(body));
    this.timer = setInterval(() => this.flush(), options.flushMs ?? 100);
    this.timer.unref();
  }

  /** Inspectors attached now. */
  get attached(): number {
    return this.leases.size;
  }

  stop(): void {
    clearInterval(this.timer);
    for (const sub of this.subs) sub.unsubscribe();
    this.listeners.clear();
    this.leases.clear();
    this.recorder.setRecording(false);
  }

  private listen(subject: string, answer: (body: unknown) => unknown): void {
    const sub = this.nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error !== null) {
          this.logger.warn({ err: error, subject }, `inspection is not available on ${subject}: ${error.message}`);
          return;
        }
        const parsed = parseJson(msg.data);
        const reply = parsed.ok ? answer(parsed.value) : { error: `not JSON: ${parsed.error.message}` };
        if (msg.reply !== undefined && msg.reply !== "") msg.respond(JSON.stringify(reply));
      },
    });
    this.subs.push(sub);
  }

  private attach(body: unknown): InspectAttached | { error: string } {
    const request = InspectAttach.safeParse(body);
    if (!request.success) return { error: `a malformed attach: ${issues(request.error)}` };
    return this.attachLocal(request.data.inspector_id, request.data.lease_ms);
  }

  /** Attaches (or renews) an inspector in this process, as `.attach` does for one on NATS. */
  attachLocal(inspectorId: string, leaseMs: number): InspectAttached {
    const expires = this.now() + leaseMs;
    const first = this.leases.size === 0;
    this.leases.set(inspectorId, expires);
    if (first) this.logger.info({ inspector_id: inspectorId }, "an inspector attached");
    this.recorder.setRecording(true);
    const started = performance.now();
    // In one turn: the actors as they are now, and the number after which records follow.
    const reply = {
      instance_id: this.instanceId,
      sequence: this.recorder.lastSequence,
      lease_expires_at: new Date(expires).toISOString(),
      ...this.recorder.actors(),
      dropped: this.recorder.dropped,
    };
    this.spend(performance.now() - started);
    return reply;
  }

  /** Counts `ms` of inspection work against the share; the recorder sheds while it is overspent. */
  private spend(ms: number): void {
    this.allowance -= ms;
    const over = this.allowance < 0 && this.maxShare < 1;
    if (over && performance.now() - this.lastShedLog > 60_000) {
      this.lastShedLog = performance.now();
      this.logger.info(
        { max_share: this.maxShare },
        `inspection took more than ${Math.round(this.maxShare * 100)}% of this instance's time: ` +
          "what happens is dropped (and counted) until it is back under",
      );
    }
    this.recorder.setShedding(over);
  }

  private detach(body: unknown): InspectDetached | { error: string } {
    const request = InspectDetach.safeParse(body);
    if (!request.success) return { error: `a malformed detach: ${issues(request.error)}` };
    return this.detachLocal(request.data.inspector_id);
  }

  detachLocal(inspectorId: string): InspectDetached {
    this.leases.delete(inspectorId);
    if (this.leases.size === 0) this.stopRecording("the last inspector detached");
    return { instance_id: this.instanceId, attached: this.leases.size };
  }

  /** Every batch's JSON (an `InspectBatch`) as it is published, for an inspector in this process; returns the unsubscribe. */
  onBatch(listener: (json: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private stopRecording(why: string): void {
    if (!this.recorder.isRecording) return;
    this.flush();
    this.recorder.setRecording(false);
    this.logger.info({}, `inspection stopped: ${why}`);
  }

  private flush(): void {
    const started = performance.now();
    this.allowance = Math.min(this.allowance + this.maxShare * (started - this.lastFlush), this.maxShare * BURST_MS);
    this.lastFlush = started;
    const now = this.now();
    for (const [id, expires] of this.leases) if (expires <= now) this.leases.delete(id);
    if (this.leases.size === 0 && this.recorder.isRecording) {
      this.recorder.setRecording(false);
      this.logger.info({}, "inspection stopped: no inspector renewed its lease");
      return;
    }
    const records = this.recorder.takeText();
    if (records.length > 0) {
      for (const batch of this.batches(records)) {
        try {
          this.nc.publish(inspectSubjects.events(this.instanceId), encoder.encode(batch));
        } catch (error) {
          this.logger.warn({ err: error }, "an inspection batch could not be published");
        }
        for (const listener of this.listeners) listener(batch);
      }
    }
    this.spend(performance.now() - started);
  }

  /** The records (their JSON) as batches, each under `maxBatchBytes` (a record alone may be over). */
  private *batches(records: readonly string[]): Generator<string> {
    const head = `{"instance_id":${JSON.stringify(this.instanceId)},"dropped":${this.recorder.dropped},"records":[`;
    let parts: string[] = [];
    let size = head.length + 2;
    for (const text of records) {
      if (parts.length > 0 && size + text.length + 1 > this.maxBatchBytes) {
        yield `${head}${parts.join(",")}]}`;
        parts = [];
        size = head.length + 2;
      }
      parts.push(text);
      size += text.length + 1;
    }
    if (parts.length > 0) yield `${head}${parts.join(",")}]}`;
  }
}

const issues = (error: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> }): string =>
  error.issues.map((i) => `${i.path.map(String).join(".") || "body"}: ${i.message}`).join("; ");
