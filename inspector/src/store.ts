/**
 * The inspector's model: it ingests the bridge's messages into one timeline across instances and
 * answers what everything looked like at any point of it. No DOM, so vitest runs it under node.
 */
import { InstanceHistory } from "./history.js";
import type { HistoryOptions } from "./history.js";
import type { InspectAttached, InspectRecord, Recording, ServerMessage } from "./protocol.js";
import { recordingFormat } from "./protocol.js";
import { recordPath, toInspectActor } from "./state.js";
import type { ActorView, EntryItem, InstanceState, TimelineEntry } from "./state.js";

export interface InstanceView {
  readonly id: string;
  /** Stopped answering (its history is kept). */
  readonly gone: boolean;
  /** Listed in the bridge's last `instances` message (always true for a recording). */
  readonly listed: boolean;
  /** Actors in tree order: each parent before its children, siblings by creation. */
  readonly actors: readonly (ActorView & { readonly depth: number })[];
  readonly definitions: ReadonlyMap<string, unknown>;
}

export interface StoreView {
  readonly instances: readonly InstanceView[];
}

export interface StoreCounters {
  readonly records_ingested: number;
  readonly records_retained: number;
  readonly actors: number;
  /** Records known lost: seq gaps plus what the instances said their buffers dropped. */
  readonly dropped: number;
}

function actorNumber(actorId: string): number {
  const number = Number(actorId.slice(actorId.lastIndexOf(":") + 1));
  return Number.isFinite(number) ? number : Number.MAX_SAFE_INTEGER;
}

/** Parents before children, depth first; orphans (parent unknown) start their own branch. */
function treeOrder(state: InstanceState): (ActorView & { depth: number })[] {
  const byParent = new Map<string | null, ActorView[]>();
  for (const actor of state.actors.values()) {
    const parent = actor.parentId !== null && state.actors.has(actor.parentId) ? actor.parentId : null;
    const siblings = byParent.get(parent) ?? [];
    siblings.push(actor);
    byParent.set(parent, siblings);
  }
  const result: (ActorView & { depth: number })[] = [];
  const visit = (parent: string | null, depth: number): void => {
    const children = byParent.get(parent) ?? [];
    children.sort((a, b) => actorNumber(a.actorId) - actorNumber(b.actorId));
    for (const child of children) {
      result.push({ ...child, depth });
      if (depth < 64) visit(child.actorId, depth + 1);
    }
  };
  visit(null, 0);
  return result;
}

interface Batch {
  readonly instance: string;
  readonly at: number;
  readonly records: InspectRecord[];
}

function batchMessage(batch: Batch): ServerMessage {
  return { type: "batch", at: batch.at, body: { instance_id: batch.instance, records: batch.records, dropped: 0 } };
}

export class InspectorStore {
  /** Every retained entry of every instance, in arrival order (`gseq` ascending). */
  private timeline: TimelineEntry[] = [];
  private readonly instances = new Map<string, InstanceHistory>();
  private listed: ReadonlySet<string> | null = null;
  private nextGseq = 1;
  private foldedSinceCompaction = 0;
  private ingested = 0;
  private gapRecords = 0;
  private retainedRecords = 0;
  private readonly reportedDropped = new Map<string, number>();
  /** Bumped on every change, so views can tell whether to redraw. */
  version = 0;
  readonly errors: string[] = [];
  private cached: { key: string; view: StoreView } | null = null;

  constructor(private readonly options: HistoryOptions = {}) {}

  get length(): number {
    return this.timeline.length;
  }

  entry(index: number): TimelineEntry | undefined {
    return this.timeline[index];
  }

  /** The index of the entry with this gseq, or of the first later one (the cursor's entry went). */
  indexOf(gseq: number): number {
    let low = 0;
    let high = this.timeline.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((this.timeline[middle]?.gseq ?? Infinity) < gseq) low = middle + 1;
      else high = middle;
    }
    return Math.min(low, this.timeline.length - 1);
  }

  ingest(message: ServerMessage): void {
    this.version++;
    switch (message.type) {
      case "hello":
        return;
      case "error":
        this.errors.push(message.message);
        if (this.errors.length > 20) this.errors.shift();
        return;
      case "instances":
        this.listed = new Set(message.instances);
        return;
      case "attached":
        this.ingestAttached(message.at, message.body);
        return;
      case "gone":
        this.add(message.instance_id, message.at, { kind: "gone" }, message.instance_id);
        return;
      case "batch": {
        const body = message.body;
        this.reportedDropped.set(body.instance_id, body.dropped);
        for (const record of body.records) this.ingestRecord(body.instance_id, record);
        return;
      }
    }
  }

  private history(instance: string): InstanceHistory {
    let history = this.instances.get(instance);
    if (history === undefined) {
      history = new InstanceHistory(instance, this.options);
      this.instances.set(instance, history);
    }
    return history;
  }

  private ingestAttached(at: number, body: InspectAttached): void {
    const history = this.history(body.instance_id);
    for (const [machineId, definition] of Object.entries(body.definitions)) {
      history.definitions.set(machineId, definition);
    }
    this.add(body.instance_id, at, { kind: "attached", body }, body.instance_id);
  }

  private ingestRecord(instance: string, record: InspectRecord): void {
    this.ingested++;
    const history = this.history(instance);
    const live = history.live;
    // Records the last `attached` already includes (or repeats) change nothing.
    if (record.seq <= live.lastSeq) return;
    const at = Date.parse(record.at);
    if (record.seq > live.lastSeq + 1 && (live.lastSeq > 0 || history.entries.length > 0)) {
      this.gapRecords += record.seq - live.lastSeq - 1;
      this.add(instance, at, { kind: "gap", from: live.lastSeq + 1, to: record.seq - 1 }, instance);
    }
    if (record.kind === "actor" && record.machine_id !== null && record.definition !== null) {
      history.definitions.set(record.machine_id, record.definition);
    }
    this.retainedRecords++;
    this.add(
      instance,
      Number.isFinite(at) ? at : live.at,
      { kind: "record", record },
      recordPath(instance, live, record),
    );
  }

  private add(instance: string, at: number, item: EntryItem, path: string): void {
    const entry: TimelineEntry = { gseq: this.nextGseq++, instance, at, item, path };
    this.timeline.push(entry);
    const folded = this.history(instance).append(entry);
    if (folded.length > 0) {
      for (const old of folded) if (old.item.kind === "record") this.retainedRecords--;
      this.foldedSinceCompaction += folded.length;
      // Dropping from the global timeline costs a pass over it, so it waits for a sizeable batch.
      if (this.foldedSinceCompaction >= Math.max(1000, this.timeline.length / 4)) this.compact();
    }
  }

  private compact(): void {
    const firstKept = new Map<string, number>();
    for (const [id, history] of this.instances) firstKept.set(id, history.entries[0]?.gseq ?? Infinity);
    this.timeline = this.timeline.filter((entry) => entry.gseq >= (firstKept.get(entry.instance) ?? Infinity));
    this.foldedSinceCompaction = 0;
  }

  /** Whether this global entry is still retained by its instance (not yet compacted away). */
  private retained(entry: TimelineEntry): boolean {
    const first = this.instances.get(entry.instance)?.entries[0];
    return first !== undefined && entry.gseq >= first.gseq;
  }

  /** The first retained timeline index (earlier ones are folded, awaiting compaction). */
  get firstIndex(): number {
    let index = 0;
    while (index < this.timeline.length && !this.retained(this.timeline[index] as TimelineEntry)) index++;
    return index;
  }

  /** Everything as it was just after timeline entry `index`; `null` is the live end. */
  viewAt(index: number | null): StoreView {
    const last = this.timeline.length - 1;
    const at = index === null || index >= last ? null : index;
    const gseq = at === null ? Infinity : (this.timeline[at]?.gseq ?? Infinity);
    const key = `${this.version}:${gseq}`;
    if (this.cached?.key === key) return this.cached.view;
    const instances: InstanceView[] = [];
    for (const history of this.instances.values()) {
      const position = gseq === Infinity ? history.entries.length - 1 : history.indexAtOrBefore(gseq);
      if (position < 0 && history.folded === 0) continue;
      const state = history.stateAfter(position);
      instances.push({
        id: history.id,
        gone: state.gone,
        listed: this.listed === null || this.listed.has(history.id),
        actors: treeOrder(state),
        definitions: history.definitions,
      });
    }
    // Instances the bridge lists but that have not attached yet still get a row, at the live end.
    for (const id of at === null ? (this.listed ?? []) : []) {
      if (this.instances.has(id)) continue;
      instances.push({ id, gone: false, listed: true, actors: [], definitions: new Map() });
    }
    instances.sort((a, b) => a.id.localeCompare(b.id));
    const view = { instances };
    this.cached = { key, view };
    return view;
  }

  counters(): StoreCounters {
    let actors = 0;
    let reported = 0;
    for (const history of this.instances.values()) actors += history.live.actors.size;
    for (const dropped of this.reportedDropped.values()) reported += dropped;
    const dropped = this.gapRecords + reported;
    return { records_ingested: this.ingested, records_retained: this.retainedRecords, actors, dropped };
  }

  /**
   * The retained history as a recording: per instance whose oldest entries were folded, one
   * synthesized `attached` of its base state; then the retained entries, consecutive records of
   * one instance as one batch. Importing it rebuilds the same view.
   */
  exportRecording(now: Date): Recording {
    const messages: ServerMessage[] = [{ type: "hello", version: 1 }];
    for (const history of this.instances.values()) {
      if (history.folded === 0) continue;
      const base = history.base;
      const body: InspectAttached = {
        instance_id: history.id,
        sequence: base.lastSeq,
        lease_expires_at: new Date(base.at).toISOString(),
        actors: [...base.actors.values()].map(toInspectActor),
        definitions: Object.fromEntries(history.definitions),
        dropped: 0,
      };
      messages.push({ type: "attached", at: base.at, body });
      if (base.gone) messages.push({ type: "gone", at: base.at, instance_id: history.id });
    }
    let batch: Batch | null = null;
    for (const entry of this.timeline) {
      if (!this.retained(entry)) continue;
      const item = entry.item;
      if (item.kind === "record" && batch !== null && batch.instance === entry.instance) {
        batch.records.push(item.record);
        continue;
      }
      if (batch !== null) messages.push(batchMessage(batch));
      batch = null;
      switch (item.kind) {
        case "record":
          batch = { instance: entry.instance, at: entry.at, records: [item.record] };
          break;
        case "attached":
          messages.push({ type: "attached", at: entry.at, body: item.body });
          break;
        case "gone":
          messages.push({ type: "gone", at: entry.at, instance_id: entry.instance });
          break;
        case "gap":
          // Rebuilt on import from the seq jump.
          break;
      }
    }
    if (batch !== null) messages.push(batchMessage(batch));
    return { format: recordingFormat, version: 1, exported_at: now.toISOString(), messages };
  }
}
