/**
 * The inspection observer of an instance's actors (xstate's `inspect` option): it always knows
 * which actors are alive (a map of refs, nothing copied), and only while an inspector is attached
 * does it keep what happens in a bounded buffer, which drops the oldest when full and counts what
 * it dropped; what the link takes from it is turned into safe records (`safe.ts`) then, so that
 * the actors' own work pays only for keeping a reference. Nothing here knows NATS: the inspect link
 * attaches it and drains its buffer.
 */
import type { InspectionEvent } from "xstate";
import type { InspectActor, InspectRecord, InspectSnapshot } from "../protocol/inspect.js";
import { DEFAULT_LIMITS, isRedacted, toSafeJson, toSafeJsonText, type JsonValue, type SafeLimits } from "./safe.js";

export interface RecorderOptions {
  /** Records kept while the link has not sent them. @default 10000 */
  readonly capacity?: number;
  readonly limits?: SafeLimits;
  readonly now?: () => number;
}

/** What ends an actor: a snapshot with one of these. */
const ENDED = new Set(["stopped", "done", "error"]);

interface ActorLike {
  readonly sessionId: string;
  readonly id: string;
  readonly _parent?: { readonly sessionId: string } | undefined;
  readonly logic?: { readonly id?: unknown; readonly toJSON?: () => unknown };
  readonly systemId?: string | undefined;
  getSnapshot(): unknown;
}

export class InspectionRecorder {
  private readonly live = new Map<string, ActorLike>();
  /** What happened, kept as xstate gave it (its snapshots do not change): copied when taken. */
  private buffer: Pending[] = [];
  /** Safe copies of the parts of contexts, by object: a part an assign left alone is not copied again. */
  private readonly copies = new WeakMap<object, JsonValue>();
  /**
   * The same as JSON text, for whole snapshots: a part an assign left alone is not written again
   * (xstate's values are not changed once made). Only contexts' parts: an entry for every event
   * would cost the collector more than writing them.
   */
  private readonly texts = new WeakMap<object, string>();
  /**
   * Each live actor's context in its last record taken: its next snapshot is sent as a `change`
   * (the keys that differ) against it. Forgotten when a record of the actor is dropped, so that
   * its next one is whole again.
   */
  private readonly lastContexts = new Map<string, unknown>();
  /** Each live actor's snapshot in its last record made (xstate's object, not a copy). */
  private readonly lastSnapshots = new Map<string, unknown>();
  /** A transition's JSON in a microstep record, by transition: they are the machine's, they do not change. */
  private readonly transitionTexts = new WeakMap<object, string>();
  /** The last record's time and its ISO text: most records share their millisecond with the one before. */
  private lastAt = Number.NaN;
  private lastAtText = "";
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

  constructor(options: RecorderOptions = {}) {
    this.capacity = options.capacity ?? 10_000;
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.now = options.now ?? Date.now;
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
    this.lastContexts.delete(actorId);
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
      this.lastContexts.clear();
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

  /** Records dropped because the buffer was full, since the start. */
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
    for (let i = 0; i < pending.length; i++) out[i] = this.recordText(pending[i] as Pending);
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

  /** A record's JSON: the fields of `InspectRecord` in its order, as `JSON.stringify` of the copy would write them. */
  private recordText({ seq, at, event, ref, ended }: Pending): string {
    if (at !== this.lastAt) {
      this.lastAt = at;
      this.lastAtText = new Date(at).toISOString();
    }
    const base = `{"seq":${seq},"at":"${this.lastAtText}","actor_id":${JSON.stringify(ref.sessionId)}`;
    switch (event.type) {
      case "@xstate.actor":
        return (
          `${base},"kind":"actor","parent_id":${JSON.stringify(ref._parent?.sessionId ?? null)}` +
          `${field("id", ref.id)},"system_id":${JSON.stringify(ref.systemId ?? null)}` +
          `,"machine_id":${JSON.stringify(machineIdOf(ref))},"definition":${this.definitionTextOf(ref)}}`
        );
      case "@xstate.event":
        return (
          `${base},"kind":"event"` +
          `,"source_id":${JSON.stringify((event.sourceRef as unknown as ActorLike | undefined)?.sessionId ?? null)}` +
          `${field("event_type", event.event.type)},"event":${this.valueText(event.event)}}`
        );
      case "@xstate.snapshot":
      case "@xstate.transition":
        return this.snapshotRecordText(base, ref.sessionId, event.event.type, event.snapshot, ended);
      case "@xstate.microstep": {
        let transitions = "[";
        for (let i = 0; i < event._transitions.length; i++) {
          const t = event._transitions[i] as (typeof event._transitions)[number];
          let text = this.transitionTexts.get(t);
          if (text === undefined) {
            text = JSON.stringify({
              source: t.source.id,
              targets: (t.target ?? []).map((n) => n.id),
              event_type: String(t.eventType),
            });
            this.transitionTexts.set(t, text);
          }
          transitions += (i === 0 ? "" : ",") + text;
        }
        return (
          `${base},"kind":"microstep"${field("event_type", event.event.type)}` +
          `,"value":${this.valueText(valueOf(event.snapshot))},"transitions":${transitions}]}`
        );
      }
      case "@xstate.action":
        return (
          `${base},"kind":"action"${field("action_type", event.action.type)}` +
          `,"params":${this.valueText(event.action.params)}}`
        );
    }
  }

  /**
   * A snapshot's record: a `change` (status, value, children, and only the context keys that
   * differ, by identity, from the actor's last record) when that record was taken and both
   * contexts are plain objects; else the whole `snapshot` (or `stopped`).
   */
  private snapshotRecordText(
    base: string,
    actorId: string,
    eventType: unknown,
    snapshot: unknown,
    ended: boolean,
  ): string {
    const s = (snapshot ?? {}) as { status?: unknown; value?: unknown; context?: unknown; children?: unknown };
    const head = `${base},"kind":"${ended ? "stopped" : "snapshot"}"${field("event_type", eventType)}`;
    if (ended) {
      this.lastContexts.delete(actorId);
      return `${head},"snapshot":${this.snapshotText(s)}}`;
    }
    const before = this.lastContexts.get(actorId);
    const change =
      this.lastContexts.has(actorId) && (before === s.context || (isPlainObject(before) && isPlainObject(s.context)))
        ? this.changeText(before, s.context)
        : null;
    this.lastContexts.set(actorId, s.context);
    if (change === null) return `${head},"snapshot":${this.snapshotText(s)}}`;
    return (
      `${base},"kind":"change"${field("event_type", eventType)},"status":${JSON.stringify(statusOf(s))}` +
      `,"value":${this.valueText(s.value ?? null)},"children":${childrenText(s.children)}${change}}`
    );
  }

  /** `JSON.stringify(this.snapshotOf(snapshot))`, written directly. */
  private snapshotText(s: { value?: unknown; context?: unknown; children?: unknown }): string {
    return (
      `{"status":${JSON.stringify(statusOf(s))},"value":${this.valueText(s.value ?? null)}` +
      `,"context":${this.contextText(s.context)},"children":${childrenText(s.children)}}`
    );
  }

  /**
   * `,"set":{…}`, `,"patch":{…}` and `,"unset":[…]` (each left out when empty) that turn `before`
   * into `after`, field by field: a field whose value is a new object (or map) with fields of its
   * own is said as a patch of the old one, down to `PATCH_DEPTH` levels. `null` when that cannot be
   * said field by field: either is not a plain object or a map with string keys, or has more fields
   * than the copy keeps (it would cut them).
   */
  private changeText(before: unknown, after: unknown, depth = 0): string | null {
    if (before === after) return "";
    const beforeKeys = fieldNames(before);
    const afterKeys = fieldNames(after);
    if (beforeKeys === null || afterKeys === null) return null;
    if (depth > 0 && Math.max(beforeKeys.length, afterKeys.length) > this.limits.maxItems) return null;
    let set = "";
    let patch = "";
    for (const key of afterKeys) {
      // As in the copy, where it is an assignment, not a field.
      if (key === "__proto__") continue;
      const part = fieldOf(after, key);
      const had = hasField(before, key);
      if (had && (fieldOf(before, key) === part || isRedacted(key))) continue;
      const nested = had && depth + 1 < PATCH_DEPTH ? this.changeText(fieldOf(before, key), part, depth + 1) : null;
      if (nested === "") continue;
      if (nested !== null) patch += `${patch === "" ? "" : ","}${JSON.stringify(key)}:{${nested.slice(1)}}`;
      else set += `${set === "" ? "" : ","}${JSON.stringify(key)}:${isRedacted(key) ? REDACTED : this.valueText(part)}`;
    }
    let unset = "";
    for (const key of beforeKeys) {
      if (key !== "__proto__" && !hasField(after, key)) unset += `${unset === "" ? "" : ","}${JSON.stringify(key)}`;
    }
    return (
      `${set === "" ? "" : `,"set":{${set}}`}${patch === "" ? "" : `,"patch":{${patch}}`}` +
      `${unset === "" ? "" : `,"unset":[${unset}]`}`
    );
  }

  /** `JSON.stringify(this.contextOf(context))`, each part written once per object. */
  private contextText(context: unknown): string {
    if (!isPlainObject(context)) return toSafeJsonText(context ?? null, this.limits);
    let out = "{";
    for (const key of Object.keys(context)) {
      // As in the copy, where it is an assignment, not a field.
      if (key === "__proto__") continue;
      const part = context[key];
      out += `${out === "{" ? "" : ","}${JSON.stringify(key)}:${isRedacted(key) ? REDACTED : this.partText(part)}`;
    }
    return `${out}}`;
  }

  /** `toSafeJsonText(value)`. */
  private valueText(value: unknown): string {
    return toSafeJsonText(value, this.limits);
  }

  /** `toSafeJsonText(part)` of a context's part, written once per object. */
  private partText(part: unknown): string {
    if (part === null || typeof part !== "object") return toSafeJsonText(part, this.limits);
    let text = this.texts.get(part);
    if (text === undefined) {
      text = toSafeJsonText(part, this.limits);
      this.texts.set(part, text);
    }
    return text;
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

interface Pending {
  readonly seq: number;
  readonly at: number;
  readonly event: InspectionEvent;
  readonly ref: ActorLike;
  readonly ended: boolean;
}

/** `,"name":value` as `JSON.stringify` writes a field: none for a value it leaves out (undefined, a function). */
function field(name: string, value: unknown): string {
  const text = JSON.stringify(value) as string | undefined;
  return text === undefined ? "" : `,"${name}":${text}`;
}

const REDACTED = '"[redacted]"';

/** How deep a change says fields of fields: the context's, theirs, and theirs. */
const PATCH_DEPTH = 3;

/** The field names of a plain object or of a map with string keys; `null` for anything else. */
function fieldNames(value: unknown): string[] | null {
  if (isPlainObject(value)) return Object.keys(value);
  if (!(value instanceof Map)) return null;
  const names: string[] = [];
  for (const key of (value as Map<unknown, unknown>).keys()) {
    if (typeof key !== "string") return null;
    names.push(key);
  }
  return names;
}

/** A field of what `fieldNames` accepted. */
function fieldOf(value: unknown, key: string): unknown {
  return value instanceof Map ? (value as Map<string, unknown>).get(key) : (value as Record<string, unknown>)[key];
}

function hasField(value: unknown, key: string): boolean {
  return value instanceof Map ? (value as Map<string, unknown>).has(key) : Object.hasOwn(value as object, key);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype;
}

/** A snapshot's children (a record of refs) as a JSON array of their actor ids. */
function childrenText(children: unknown): string {
  let out = "[";
  if (children !== null && typeof children === "object") {
    for (const c of Object.values(children)) {
      const id = (c as { sessionId?: unknown } | undefined)?.sessionId;
      if (typeof id === "string") out += (out === "[" ? "" : ",") + JSON.stringify(id);
    }
  }
  return `${out}]`;
}

function statusOf(snapshot: unknown): string {
  const status = (snapshot as { status?: unknown } | null)?.status;
  return typeof status === "string" ? status : "active";
}

function valueOf(snapshot: unknown): unknown {
  return (snapshot as { value?: unknown } | null)?.value ?? null;
}

function machineIdOf(ref: ActorLike): string | null {
  const id = ref.logic?.id;
  return typeof id === "string" && typeof ref.logic?.toJSON === "function" ? id : null;
}
