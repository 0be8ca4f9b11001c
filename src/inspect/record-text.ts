/**
 * Records as JSON text, written straight from what xstate gave (no copy in between): the fields of
 * `InspectRecord` in their order, as `JSON.stringify` of the safe copy would write them. It keeps
 * what the next record is said against: each actor's context in its last record, so that a
 * snapshot after the first is a `change`, only the fields that differ.
 */
import type { InspectionEvent } from "xstate";
import { isRedacted, toSafeJsonText, type SafeLimits } from "./safe.js";

export interface ActorLike {
  readonly sessionId: string;
  readonly id: string;
  readonly _parent?: { readonly sessionId: string } | undefined;
  readonly logic?: { readonly id?: unknown; readonly toJSON?: () => unknown };
  readonly systemId?: string | undefined;
  getSnapshot(): unknown;
}

/** What happened, kept as xstate gave it until it is written. */
export interface Pending {
  readonly seq: number;
  readonly at: number;
  readonly event: InspectionEvent;
  readonly ref: ActorLike;
  readonly ended: boolean;
}

export class RecordWriter {
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
  /** A transition's JSON in a microstep record, by transition: they are the machine's, they do not change. */
  private readonly transitionTexts = new WeakMap<object, string>();
  /** The last record's time and its ISO text: most records share their millisecond with the one before. */
  private lastAt = Number.NaN;
  private lastAtText = "";

  constructor(
    private readonly limits: SafeLimits,
    /** An actor's machine's definition as JSON text; `"null"` once it was sent since the attach. */
    private readonly definitionTextOf: (ref: ActorLike) => string,
  ) {}

  /** A record of this actor was dropped: its next snapshot is whole. */
  forget(actorId: string): void {
    this.lastContexts.delete(actorId);
  }

  /** Recording stopped: the next snapshot of every actor is whole. */
  reset(): void {
    this.lastContexts.clear();
  }

  /** A record's JSON: the fields of `InspectRecord` in its order, as `JSON.stringify` of the copy would write them. */
  write({ seq, at, event, ref, ended }: Pending): string {
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
    const change = this.lastContexts.has(actorId) ? this.changeText(before, s.context) : null;
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
    // A context itself must be a plain object: what the page keeps of it is one.
    if (depth === 0 && !(isPlainObject(before) && isPlainObject(after))) return null;
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

export function isPlainObject(value: unknown): value is Record<string, unknown> {
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

export function statusOf(snapshot: unknown): string {
  const status = (snapshot as { status?: unknown } | null)?.status;
  return typeof status === "string" ? status : "active";
}

function valueOf(snapshot: unknown): unknown {
  return (snapshot as { value?: unknown } | null)?.value ?? null;
}

export function machineIdOf(ref: ActorLike): string | null {
  const id = ref.logic?.id;
  return typeof id === "string" && typeof ref.logic?.toJSON === "function" ? id : null;
}
