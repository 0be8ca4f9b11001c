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
import { DEFAULT_LIMITS, isRedacted, toSafeJson, type JsonValue, type SafeLimits } from "./safe.js";

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
  private sequence = 0;
  private droppedCount = 0;
  private recording = false;
  private readonly capacity: number;
  private readonly limits: SafeLimits;
  private readonly now: () => number;
  /** Machine definitions already sent since the last attach, by machine id. */
  private readonly definitionsSent = new Set<string>();
  /** Each machine's definition, made once: it does not change. */
  private readonly definitions = new Map<string, JsonValue>();

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
    if (this.buffer.length >= this.capacity) {
      this.buffer.shift();
      this.droppedCount += 1;
    }
    this.buffer.push({ seq: ++this.sequence, at: this.now(), event, ref, ended });
  };

  /** Starts or stops turning events into records; starting forgets what was buffered. */
  setRecording(on: boolean): void {
    if (on && !this.recording) {
      this.buffer = [];
      this.definitionsSent.clear();
    }
    this.recording = on;
    if (!on) this.buffer = [];
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
    const pending = this.buffer;
    this.buffer = [];
    return pending.map((p) => this.record(p));
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

  private record({ seq, at, event, ref, ended }: Pending): InspectRecord {
    const base = { seq, at: new Date(at).toISOString(), actor_id: ref.sessionId };
    switch (event.type) {
      case "@xstate.actor":
        return {
          ...base,
          kind: "actor",
          parent_id: ref._parent?.sessionId ?? null,
          id: ref.id,
          system_id: ref.systemId ?? null,
          machine_id: machineIdOf(ref),
          definition: this.definitionOf(ref, false),
        };
      case "@xstate.event":
        return {
          ...base,
          kind: "event",
          source_id: (event.sourceRef as unknown as ActorLike | undefined)?.sessionId ?? null,
          event_type: event.event.type,
          event: toSafeJson(event.event, this.limits),
        };
      case "@xstate.snapshot":
      case "@xstate.transition":
        return {
          ...base,
          kind: ended ? "stopped" : "snapshot",
          event_type: event.event.type,
          snapshot: this.snapshotOf(event.snapshot),
        };
      case "@xstate.microstep":
        return {
          ...base,
          kind: "microstep",
          event_type: event.event.type,
          value: toSafeJson(valueOf(event.snapshot), this.limits),
          transitions: event._transitions.map((t) => ({
            source: t.source.id,
            targets: (t.target ?? []).map((n) => n.id),
            event_type: String(t.eventType),
          })),
        };
      case "@xstate.action":
        return {
          ...base,
          kind: "action",
          action_type: event.action.type,
          params: toSafeJson(event.action.params, this.limits),
        };
    }
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
