/**
 * The inspector's side of inspection: it finds the live instances, attaches to each with a lease
 * (renewed well before it lapses) and passes what they send on to every open page, as the page
 * messages below. A page that opens late gets each instance's actors from a fresh attach and then
 * only the records that follow it. When the records of an instance stop following one another
 * (it restarted, it dropped records, or this bridge's lease lapsed while it was stopped), the next
 * attach's answer replaces that instance's view on every page. Where the records come from is an
 * `InspectSource`: NATS (`nats-source.ts`) or, inside the service, its own link.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "../logger.js";
import type { InspectAttached, InspectBatch } from "../protocol/inspect.js";

/** What a page receives, one JSON text per WebSocket message (docs/protocol.md, "The inspector page"). */
export type PageMessage =
  | { readonly type: "hello"; readonly version: 1 }
  | { readonly type: "instances"; readonly instances: readonly string[] }
  | { readonly type: "attached"; readonly at: number; readonly body: InspectAttached }
  | { readonly type: "batch"; readonly at: number; readonly body: InspectBatch }
  | { readonly type: "gone"; readonly at: number; readonly instance_id: string }
  | { readonly type: "error"; readonly message: string };

/** Where the instances and their records come from. */
export interface InspectSource {
  /** The ids of the instances live now. */
  instances(): Promise<string[]>;
  /** Attaches (or renews the lease): the instance's actors now; rejects with what went wrong. */
  attach(instanceId: string, inspectorId: string, leaseMs: number): Promise<InspectAttached>;
  detach(instanceId: string, inspectorId: string): Promise<void>;
  /** Every batch any instance publishes; returns the unsubscribe. */
  onBatch(listener: (batch: InspectBatch) => void): () => void;
}

/** One page (or a forwarder): `text()` is the message's JSON, made once for every page. */
export interface PageSink {
  send(message: PageMessage, text: () => string): void;
}

export interface BridgeOptions {
  /** @default 15000 */
  readonly leaseMs?: number;
  /** How often leases are renewed. @default 5000 */
  readonly renewMs?: number;
  /** How often the live instances are looked for. @default 2000 */
  readonly discoverMs?: number;
  /** Only these instances (e.g. the service's own); `null`: every one found. @default null */
  readonly only?: readonly string[] | null;
  readonly now?: () => number;
}

interface Instance {
  readonly id: string;
  /** When this bridge's lease lapses (its clock). */
  expiresAt: number;
  /** The last record's number passed on (or the attach's `sequence`). */
  lastSeq: number;
  /** Whether the pages' view of it follows from its records; if not, the next attach replaces it. */
  synced: boolean;
  /** Discovery rounds it did not answer in a row. */
  missed: number;
  attaching: Promise<void> | null;
}

interface Page {
  readonly sink: PageSink;
  /** Per instance, the records after this number are the page's (it has the actors as of it). */
  readonly from: Map<string, number>;
}

export class InspectBridge {
  readonly inspectorId = `inspector-${randomUUID()}`;
  private readonly instances = new Map<string, Instance>();
  private readonly pages = new Set<Page>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unsubscribe: () => void;
  private readonly leaseMs: number;
  private readonly only: ReadonlySet<string> | null;
  private readonly now: () => number;
  /** Instance ids whose attach failed, and the message logged, so that a failure is logged once. */
  private readonly failing = new Map<string, string>();
  private stopped = false;

  constructor(
    private readonly source: InspectSource,
    private readonly logger: Logger,
    options: BridgeOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? 15_000;
    this.only = options.only === undefined || options.only === null ? null : new Set(options.only);
    this.now = options.now ?? Date.now;
    this.unsubscribe = source.onBatch((batch) => this.onBatch(batch));
    this.every(options.discoverMs ?? 2000, () => this.discover());
    this.every(options.renewMs ?? 5000, () => {
      for (const instance of this.instances.values()) void this.attach(instance);
    });
    void this.discover();
  }

  /** The ids of the instances attached to now. */
  get attached(): string[] {
    return [...this.instances.keys()].sort();
  }

  /** A page opened: it gets the instances, then each one's actors from a fresh attach, then records. */
  addPage(sink: PageSink): () => void {
    const page: Page = { sink, from: new Map() };
    this.pages.add(page);
    this.sendTo(page, { type: "hello", version: 1 });
    this.sendTo(page, { type: "instances", instances: this.attached });
    for (const instance of this.instances.values()) void this.attach(instance, page);
    return () => void this.pages.delete(page);
  }

  /** Stops looking, detaches from every instance (so they stop recording at once), closes nothing else. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.unsubscribe();
    const ids = [...this.instances.keys()];
    this.instances.clear();
    await Promise.all(ids.map((id) => this.source.detach(id, this.inspectorId).catch(() => undefined)));
  }

  private every(ms: number, run: () => unknown): void {
    const timer = setInterval(run, ms);
    timer.unref();
    this.timers.push(timer);
  }

  private async discover(): Promise<void> {
    let live: string[];
    try {
      live = await this.source.instances();
    } catch (error) {
      this.logOnce("(discovery)", `the instances could not be listed: ${messageOf(error)}`);
      return;
    }
    if (this.stopped) return;
    if (live.length === 0)
      this.logOnce("(discovery)", "no instance answers on this NATS yet (is `stui serve` running?)");
    else this.failing.delete("(discovery)");
    const found = new Set(live.filter((id) => this.only === null || this.only.has(id)));
    let changed = false;
    for (const id of found) {
      const known = this.instances.get(id);
      if (known !== undefined) {
        known.missed = 0;
        continue;
      }
      const instance: Instance = { id, expiresAt: 0, lastSeq: 0, synced: false, missed: 0, attaching: null };
      this.instances.set(id, instance);
      changed = true;
      void this.attach(instance);
    }
    for (const instance of this.instances.values()) {
      if (found.has(instance.id) || ++instance.missed < 2) continue;
      // Twice unanswered: gone (its history stays on the pages).
      this.instances.delete(instance.id);
      changed = true;
      this.logger.info({ instance_id: instance.id }, `instance ${instance.id} no longer answers`);
      this.broadcast({ type: "gone", at: this.now(), instance_id: instance.id });
    }
    if (changed) this.broadcast({ type: "instances", instances: this.attached });
  }

  /**
   * Attaches or renews. The answer goes to every page when their view no longer follows from the
   * records; to `page` alone when it is a page's first view; otherwise nowhere (a renewal).
   */
  private attach(instance: Instance, page?: Page): Promise<void> {
    if (page === undefined && instance.attaching !== null) return instance.attaching;
    const run = async (): Promise<void> => {
      const asked = this.now();
      let reply: InspectAttached;
      try {
        reply = await this.source.attach(instance.id, this.inspectorId, this.leaseMs);
      } catch (error) {
        this.logOnce(instance.id, `attaching to instance ${instance.id} failed: ${messageOf(error)}`);
        return;
      }
      if (this.stopped || this.instances.get(instance.id) !== instance) return;
      this.failing.delete(instance.id);
      // A lapsed lease: the instance may have stopped recording meanwhile, and nothing says what it missed.
      const lapsed = asked >= instance.expiresAt;
      const restarted = reply.sequence < instance.lastSeq;
      instance.expiresAt = asked + this.leaseMs;
      const message: PageMessage = { type: "attached", at: this.now(), body: reply };
      if (!instance.synced || lapsed || restarted) {
        instance.synced = true;
        instance.lastSeq = reply.sequence;
        for (const each of this.pages) each.from.set(instance.id, reply.sequence);
        this.broadcast(message);
      } else if (page !== undefined && this.pages.has(page)) {
        page.from.set(instance.id, reply.sequence);
        this.sendTo(page, message);
      }
    };
    const running = run().finally(() => {
      if (instance.attaching === running) instance.attaching = null;
    });
    if (page === undefined) instance.attaching = running;
    return running;
  }

  private onBatch(batch: InspectBatch): void {
    const instance = this.instances.get(batch.instance_id);
    const first = batch.records[0];
    if (instance === undefined || first === undefined) return;
    const last = batch.records.at(-1)?.seq ?? first.seq;
    if (instance.synced && (first.seq > instance.lastSeq + 1 || last - first.seq + 1 !== batch.records.length)) {
      // Records were lost on the way (dropped by the instance, or missed here): a fresh view soon.
      instance.synced = false;
      setTimeout(() => void this.attach(instance), 200).unref();
    }
    instance.lastSeq = Math.max(instance.lastSeq, last);
    const whole: PageMessage = { type: "batch", at: this.now(), body: batch };
    let wholeText: string | null = null;
    const text = (): string => (wholeText ??= JSON.stringify(whole));
    for (const page of this.pages) {
      const from = page.from.get(batch.instance_id);
      if (from === undefined || last <= from) continue;
      if (first.seq > from) page.sink.send(whole, text);
      else {
        const part: PageMessage = { ...whole, body: { ...batch, records: batch.records.filter((r) => r.seq > from) } };
        this.sendTo(page, part);
      }
    }
  }

  private broadcast(message: PageMessage): void {
    let text: string | null = null;
    for (const page of this.pages) page.sink.send(message, () => (text ??= JSON.stringify(message)));
  }

  private sendTo(page: Page, message: PageMessage): void {
    page.sink.send(message, () => JSON.stringify(message));
  }

  private logOnce(key: string, message: string): void {
    if (this.failing.get(key) === message) return;
    this.failing.set(key, message);
    this.logger.warn({}, message);
    this.broadcast({ type: "error", message });
  }
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));
