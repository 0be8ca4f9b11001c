/**
 * One instance's actors at one point of its history, and how each timeline entry changes them.
 * Pure (no DOM): the store's checkpoints and the tests use it directly.
 */
import type { InspectActor, InspectAttached, InspectRecord, InspectSnapshot } from "./protocol.js";
import { applyContextChange } from "../../src/protocol/inspect-change.js";

/** An actor as the views need it; replaced, never mutated, so states can share them. */
export interface ActorView {
  readonly actorId: string;
  readonly parentId: string | null;
  readonly id: string;
  readonly systemId: string | null;
  readonly machineId: string | null;
  /** `system_id`, else `id`: what the tree's `data-name` shows. */
  readonly name: string;
  /** Its names from the instance down, e.g. `test/sessionManager/alpha/link`: what the actor filter matches. */
  readonly path: string;
  readonly status: string;
  /** The state value: the last snapshot's, or a later microstep's. */
  readonly value: unknown;
  readonly snapshot: InspectSnapshot | null;
  /** The snapshot before `snapshot`: what the snapshot pane marks changes against. */
  readonly previous: InspectSnapshot | null;
}

export interface InstanceState {
  readonly actors: Map<string, ActorView>;
  gone: boolean;
  /** The last record's seq folded into this state: records after it follow without a gap. */
  lastSeq: number;
  /** Epoch ms of the last entry applied. */
  at: number;
}

/** The timeline's items: an instance's records and what happened to its connection. */
export type EntryItem =
  | { readonly kind: "record"; readonly record: InspectRecord }
  | { readonly kind: "attached"; readonly body: InspectAttached }
  | { readonly kind: "gone" }
  /** Records `from`…`to` never arrived. */
  | { readonly kind: "gap"; readonly from: number; readonly to: number };

export interface TimelineEntry {
  /** Global order across instances; never reused, so a cursor survives the oldest entries going. */
  readonly gseq: number;
  readonly instance: string;
  readonly at: number;
  readonly item: EntryItem;
  /** The actor's path when the entry arrived (records only; otherwise the instance id). */
  readonly path: string;
}

export function emptyState(): InstanceState {
  return { actors: new Map(), gone: false, lastSeq: 0, at: 0 };
}

/** A copy whose actor map can be changed without touching `state` (the actors themselves are shared). */
export function cloneState(state: InstanceState): InstanceState {
  return { actors: new Map(state.actors), gone: state.gone, lastSeq: state.lastSeq, at: state.at };
}

/** Root actors are named by their machine when their id is only the generated session id. */
function segmentOf(actor: Pick<ActorView, "actorId" | "id" | "systemId" | "machineId">): string {
  if (actor.systemId !== null) return actor.systemId;
  if (actor.id === actor.actorId && actor.machineId !== null) return actor.machineId;
  return actor.id;
}

function pathOf(
  instance: string,
  actors: ReadonlyMap<string, ActorView>,
  parentId: string | null,
  own: string,
): string {
  const names = [own];
  const seen = new Set<string>();
  for (let id = parentId; id !== null && !seen.has(id);) {
    seen.add(id);
    const parent = actors.get(id);
    if (parent === undefined) break;
    names.push(segmentOf(parent));
    id = parent.parentId;
  }
  return `${instance}/${names.reverse().join("/")}`;
}

interface ActorFields {
  readonly actor_id: string;
  readonly parent_id: string | null;
  readonly id: string;
  readonly system_id: string | null;
  readonly machine_id: string | null;
}

function newActor(
  instance: string,
  actors: ReadonlyMap<string, ActorView>,
  fields: ActorFields,
  snapshot: InspectSnapshot | null,
): ActorView {
  const base = { actorId: fields.actor_id, id: fields.id, systemId: fields.system_id, machineId: fields.machine_id };
  return {
    ...base,
    parentId: fields.parent_id,
    name: fields.system_id ?? fields.id,
    path: pathOf(instance, actors, fields.parent_id, segmentOf(base)),
    status: snapshot?.status ?? "active",
    value: snapshot?.value ?? null,
    snapshot,
    previous: null,
  };
}

/** An actor only known from a record (its `actor` record was lost in a gap). */
function unknownActor(instance: string, actorId: string): ActorView {
  const fields = { actor_id: actorId, parent_id: null, id: actorId, system_id: null, machine_id: null };
  return newActor(instance, new Map(), fields, null);
}

function attachedActors(instance: string, actors: readonly InspectActor[]): Map<string, ActorView> {
  const result = new Map<string, ActorView>();
  // Parents first, whatever order the instance listed them in, so each path finds its parent.
  const pending = new Map(actors.map((actor) => [actor.actor_id, actor]));
  const add = (actor: InspectActor, depth: number): void => {
    if (result.has(actor.actor_id)) return;
    const parent = actor.parent_id === null ? undefined : pending.get(actor.parent_id);
    if (parent !== undefined && depth < actors.length) add(parent, depth + 1);
    result.set(actor.actor_id, newActor(instance, result, actor, actor.snapshot));
  };
  for (const actor of actors) add(actor, 0);
  return result;
}

/** The path of the actor a record is about, as `state` (before the record) knows it. */
export function recordPath(instance: string, state: InstanceState, record: InspectRecord): string {
  if (record.kind === "actor") return newActor(instance, state.actors, record, null).path;
  return state.actors.get(record.actor_id)?.path ?? `${instance}/${record.actor_id}`;
}

/** Applies one entry to `state` in place. */
export function applyEntry(state: InstanceState, entry: TimelineEntry): void {
  state.at = entry.at;
  const item = entry.item;
  switch (item.kind) {
    case "attached": {
      state.actors.clear();
      for (const [id, actor] of attachedActors(entry.instance, item.body.actors)) state.actors.set(id, actor);
      state.gone = false;
      state.lastSeq = item.body.sequence;
      return;
    }
    case "gone":
      state.gone = true;
      return;
    case "gap":
      state.lastSeq = item.to;
      return;
    case "record":
      state.lastSeq = item.record.seq;
      applyRecord(entry.instance, state.actors, item.record);
      return;
  }
}

function applyRecord(instance: string, actors: Map<string, ActorView>, record: InspectRecord): void {
  switch (record.kind) {
    case "actor":
      actors.set(record.actor_id, newActor(instance, actors, record, null));
      return;
    case "snapshot":
    case "change": {
      const actor = actors.get(record.actor_id) ?? unknownActor(instance, record.actor_id);
      const snapshot: InspectSnapshot =
        record.kind === "snapshot"
          ? record.snapshot
          : {
              status: record.status,
              value: record.value,
              context: applyContextChange(actor.snapshot?.context ?? null, record),
              children: record.children,
            };
      actors.set(record.actor_id, {
        ...actor,
        status: snapshot.status,
        value: snapshot.value,
        snapshot,
        previous: actor.snapshot,
      });
      return;
    }
    case "microstep": {
      const actor = actors.get(record.actor_id);
      if (actor !== undefined) actors.set(record.actor_id, { ...actor, value: record.value });
      return;
    }
    case "stopped":
      actors.delete(record.actor_id);
      return;
    case "event":
    case "action":
      return;
  }
}

/** Back to the wire shape, for a recording's synthesized `attached`. */
export function toInspectActor(actor: ActorView): InspectActor {
  const snapshot = actor.snapshot ?? { status: actor.status, value: actor.value, context: null, children: [] };
  return {
    actor_id: actor.actorId,
    parent_id: actor.parentId,
    id: actor.id,
    system_id: actor.systemId,
    machine_id: actor.machineId,
    snapshot: { ...snapshot, status: actor.status, value: actor.value },
  };
}

/** `{"Reconnecting":"backoff"}` → `Reconnecting.backoff`; parallel regions joined by `, `. */
export function stateText(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value !== "object" || value === null) return "";
  const parts = Object.entries(value as Record<string, unknown>).map(([key, child]) => {
    const rest = stateText(child);
    return rest === "" ? key : `${key}.${rest}`;
  });
  return parts.length > 1 ? parts.join(", ") : (parts[0] ?? "");
}

/** What the tree shows for an actor: its state value for a machine, else its status. */
export function actorStateText(actor: ActorView): string {
  return actor.machineId !== null ? stateText(actor.value) || actor.status : actor.status;
}
