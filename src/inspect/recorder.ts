/**
 * The inspection observer of an instance's actors (xstate's `inspect` option): it always knows
 * which actors are alive (a map of refs, nothing copied), and only while an inspector is attached
 * does it keep what happens in a bounded buffer, which drops the oldest when full and counts what
 * it dropped; what the link takes from it is turned into safe records then (`record-text.ts`,
 * `safe.ts`), so that the actors' own work pays only for keeping a reference. Nothing here knows NATS: the inspect link
 * attaches it and drains its buffer.
 */
import type { InspectionEvent } from "xstate";
import type { InspectActor, InspectRecord, InspectSnapshot } from "../protocol/inspect.js";
import { machineIdOf, RecordWriter, statusOf, type ActorLike, type Pending } from "./record-text.js";
import { DEFAULT_LIMITS, isRedacted, toSafeJson, type JsonValue, type SafeLimits } from "./safe.js";

export interface RecorderOptions {
  /** Records kept while the link has not sent them. @default 10000 */
  readonly capacity?: number;
  readonly limits?: SafeLimits;
  readonly now?: () => number;
}

/** What ends an actor: a snapshot with one of these. */
const ENDED = new Set(["stopped", "done", "error"]);

export class InspectionRecorder {
  private readonly live = new Map<string, ActorLike>();
  /** What happened, kept as xstate gave it (its snapshots do not change): copied when taken. */
  private buffer: Pending[] = [];
  /** Safe copies of the parts of contexts, by object: a part an assign left alone is not copied again. */
  private readonly copies = new WeakMap<object, JsonValue>();
  /** Each live actor's snapshot in its last record made (xstate's object, not a copy). */
  private readonly lastSnapshots = new Map<string, unknown>();
  private sequence = 0;
  private droppedCount = 0;
  private recording = false;
  /** While set, what happens is counted as dropped, not kept: inspection is over its share of time. */
  private shedding = false;
  private readonly capacity: number;
  private readonly limits: SafeLimits;
  private readonly now: () => number;
  /** Machine definitions already sent since the last attach, by machine id. */
  private readonly definitionsSent = new Set<string>();
  /** Each machine's definition, made once: it does not change. */
  private readonly definitions = new Map<string, JsonValue>();
  private readonly definitionTexts = new Map<string, string>();

  private readonly writer: RecordWriter;

  constructor(options: RecorderOptions = {}) {
    this.capacity = options.capacity ?? 10_000;
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.now = options.now ?? Date.now;
    this.writer = new RecordWriter(this.limits, (ref) => this.definitionTextOf(ref));
  }

  /** The observer to give `createActor(…, { inspect })`. */
  readonly observe = (event: InspectionEvent): void => {
    const ref = event.actorRef as unknown as ActorLike;
    if (event.type === "@xstate.actor") this.live.set(ref.sessionId, ref);
    const ended = event.type === "@xstate.snapshot" && ENDED.has(statusOf(event.snapshot));
    if (ended) this.live.delete(ref.sessionId);
    if (!this.recording) return;
    const snapshot = event.type === "@xstate.snapshot" ? event.snapshot : undefined;
    if (ended) this.lastSnapshots.delete(ref.sessionId);
    // The very snapshot the actor's last record had (a callback actor's, an event that changed
    // nothing): there is nothing to say.
    else if (snapshot !== undefined && this.lastSnapshots.get(ref.sessionId) === snapshot) return;
    if (this.shedding) {
      this.sequence += 1;
      this.droppedCount += 1;
      this.forget(ref.sessionId);
      return;
    }
    if (this.buffer.length >= this.capacity) {
      const lost = this.buffer.shift();
      if (lost !== undefined) this.forget(lost.ref.sessionId);
      this.droppedCount += 1;
    }
    if (snapshot !== undefined && !ended) this.lastSnapshots.set(ref.sessionId, snapshot);
    this.buffer.push({ seq: ++this.sequence, at: this.now(), event, ref, ended });
  };

  /** A record of this actor was dropped: its next snapshot is recorded, and whole. */
  private forget(actorId: string): void {
    this.writer.forget(actorId);
    this.lastSnapshots.delete(actorId);
  }

  /** Starts or stops turning events into records; starting forgets what was buffered. */
  setRecording(on: boolean): void {
    if (on && !this.recording) {
      this.buffer = [];
      this.definitionsSent.clear();
    }
    this.recording = on;
    if (!on) {
      this.buffer = [];
      this.writer.reset();
      this.lastSnapshots.clear();
    }
  }

  /** Drops (and counts) what happens instead of keeping it, while `on`: the link's time budget. */
  setShedding(on: boolean): void {
    this.shedding = on;
  }

  get isRecording(): boolean {
    return this.recording;
  }

  /** The number of the last record made (0: none yet); a late joiner's records follow it. */
  get lastSequence(): number {
    return this.sequence;
  }

  /** Records dropped since the start: the buffer was full, or inspection was over its share of time. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** The records made since the last call, oldest first. */
  take(): InspectRecord[] {
    return this.takeText().map((text) => JSON.parse(text) as InspectRecord);
  }

  /**
   * The same records as their JSON text, what the link sends: written straight from what xstate
   * gave, without a copy in between (`toSafeJsonText`), each context part an assign kept written once.
   */
  takeText(): string[] {
    const pending = this.buffer;
    this.buffer = [];
    const out = new Array<string>(pending.length);
    for (let i = 0; i < pending.length; i++) out[i] = this.writer.write(pending[i] as Pending);
    return out;
  }

  /** Every live actor with its current snapshot, and their machines' definitions: what a late joiner starts from. */
  actors(): { actors: InspectActor[]; definitions: Record<string, JsonValue> } {
    const definitions: Record<string, JsonValue> = {};
    const actors = [...this.live.values()].map((ref) => {
      const machineId = machineIdOf(ref);
      if (machineId !== null && !(machineId in definitions)) definitions[machineId] = this.definitionOf(ref, true);
      return {
        actor_id: ref.sessionId,
        parent_id: ref._parent?.sessionId ?? null,
        id: ref.id,
        system_id: ref.systemId ?? null,
        machine_id: machineId,
        snapshot: this.snapshotOf(ref.getSnapshot()),
      };
    });
    return { actors, definitions };
  }

  /** `definitionOf(ref, false)` as JSON. */
  private definitionTextOf(ref: ActorLike): string {
    const definition = this.definitionOf(ref, false);
    const machineId = machineIdOf(ref);
    if (definition === null || machineId === null) return "null";
    let text = this.definitionTexts.get(machineId);
    if (text === undefined) {
      text = JSON.stringify(definition);
      this.definitionTexts.set(machineId, text);
    }
    return text;
  }

  private snapshotOf(snapshot: unknown): InspectSnapshot {
    const s = (snapshot ?? {}) as { status?: unknown; value?: unknown; context?: unknown; children?: unknown };
    const children = s.children !== null && typeof s.children === "object" ? Object.values(s.children) : [];
    return {
      status: statusOf(snapshot),
      value: toSafeJson(s.value ?? null, this.limits),
      context: this.contextOf(s.context),
      children: children.flatMap((c) => {
        const id = (c as { sessionId?: unknown } | undefined)?.sessionId;
        return typeof id === "string" ? [id] : [];
      }),
    };
  }

  /** A context's safe copy, each part copied once per object (contexts share what an assign keeps). */
  private contextOf(context: unknown): JsonValue {
    if (context === null || typeof context !== "object" || Object.getPrototypeOf(context) !== Object.prototype) {
      return toSafeJson(context ?? null, this.limits);
    }
    const out: { [key: string]: JsonValue } = {};
    for (const [key, part] of Object.entries(context as Record<string, unknown>)) {
      if (isRedacted(key)) out[key] = "[redacted]";
      else if (part === null || typeof part !== "object") out[key] = toSafeJson(part, this.limits);
      else {
        let copy = this.copies.get(part);
        if (copy === undefined) {
          copy = toSafeJson(part, this.limits);
          this.copies.set(part, copy);
        }
        out[key] = copy;
      }
    }
    return out;
  }

  /** A machine's definition (`machine.toJSON()`), sent once per machine per attach unless `always`. */
  private definitionOf(ref: ActorLike, always: boolean): JsonValue {
    const machineId = machineIdOf(ref);
    const toJSON = ref.logic?.toJSON;
    if (machineId === null || typeof toJSON !== "function") return null;
    if (!always && this.definitionsSent.has(machineId)) return null;
    this.definitionsSent.add(machineId);
    let definition = this.definitions.get(machineId);
    if (definition === undefined) {
      // Through JSON first: as `JSON.stringify` sees it (state nodes as their ids), nothing more.
      const plain: unknown = JSON.parse(JSON.stringify(toJSON.call(ref.logic)));
      definition = toSafeJson(plain, { ...this.limits, maxDepth: 32, maxItems: 256, maxNodes: 50_000 });
      this.definitions.set(machineId, definition);
    }
    return definition;
  }
}
