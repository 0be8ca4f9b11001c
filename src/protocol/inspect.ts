/**
 * The inspection protocol: what an inspector asks an instance (attach with a lease, detach) and
 * what the instance publishes while one is attached (batches of records of its actors). Subjects:
 * `stui.inspect.<instance_id>.attach`, `.detach` (requests) and `.events` (batches).
 */
import { z } from "zod";
import { Count, Id, ImageId, Timestamp } from "./primitives.js";

/** Plain JSON, as made by the instance's safe copy (src/inspect/safe.ts). */
const Json: z.ZodType<unknown> = z.unknown();

export const inspectSubjects = {
  attach: (instanceId: string) => `stui.inspect.${instanceId}.attach`,
  detach: (instanceId: string) => `stui.inspect.${instanceId}.detach`,
  events: (instanceId: string) => `stui.inspect.${instanceId}.events`,
} as const;

export const InspectSnapshot = z.object({
  /** `active`, `done`, `error` or `stopped`. */
  status: z.string(),
  /** The state value (a machine's), JSON. */
  value: Json,
  context: Json,
  /** The actor ids of its children. */
  children: z.array(z.string()),
});
export type InspectSnapshot = z.infer<typeof InspectSnapshot>;

/** A live actor, as a late joiner gets it. */
export const InspectActor = z.object({
  /** Unique within the instance (xstate's session id). */
  actor_id: z.string(),
  parent_id: z.string().nullable(),
  /** The id it was spawned or invoked with. */
  id: z.string(),
  system_id: z.string().nullable(),
  /** The machine's id (its definition is in the answer's `definitions`); `null` for no machine. */
  machine_id: z.string().nullable(),
  snapshot: InspectSnapshot,
});
export type InspectActor = z.infer<typeof InspectActor>;

/** Of a context (or of one of its fields): what changed, field by field; each part left out when empty. */
interface ContextChangeShape {
  set?: Record<string, unknown> | undefined;
  patch?: Record<string, ContextChangeShape> | undefined;
  unset?: string[] | undefined;
}
const ContextChange: z.ZodObject<{
  set: z.ZodOptional<z.ZodRecord<z.ZodString, z.ZodType<unknown>>>;
  patch: z.ZodOptional<z.ZodRecord<z.ZodString, z.ZodType<ContextChangeShape>>>;
  unset: z.ZodOptional<z.ZodArray<z.ZodString>>;
}> = z.object({
  /** Fields with a new value, whole. */
  set: z.record(z.string(), Json).optional(),
  /** Fields whose value changed in only some of its own fields, each said as a change of its own. */
  patch: z
    .record(
      z.string(),
      z.lazy(() => ContextChange),
    )
    .optional(),
  /** Fields that went. */
  unset: z.array(z.string()).optional(),
});

const base = {
  /** 1, 2, 3… per instance while attached: a gap is a dropped record. */
  seq: z.number().int().min(1),
  at: Timestamp,
  actor_id: z.string(),
};

export const InspectRecord = z.discriminatedUnion("kind", [
  z.object({
    ...base,
    kind: z.literal("actor"),
    parent_id: z.string().nullable(),
    id: z.string(),
    system_id: z.string().nullable(),
    machine_id: z.string().nullable(),
    /** The definition the first time its machine is seen since the attach; then `null`. */
    definition: Json,
  }),
  z.object({
    ...base,
    kind: z.literal("event"),
    /** Who sent it; `null` from outside the actors. */
    source_id: z.string().nullable(),
    event_type: z.string(),
    event: Json,
  }),
  /** The whole snapshot: the actor's first since the attach, or one that cannot be said as a `change`. */
  z.object({ ...base, kind: z.literal("snapshot"), event_type: z.string(), snapshot: InspectSnapshot }),
  /**
   * A snapshot said against the actor's previous `snapshot` or `change` on this stream: its status,
   * value and children whole, and of its context only the fields that changed: new values whole
   * (`set`), objects changed in some of their fields said as changes of their own (`patch`), fields
   * that went (`unset`); each left out when empty. A receiver that missed the previous one (a gap in `seq`)
   * cannot apply it and attaches again for a fresh view.
   */
  z.object({
    ...base,
    kind: z.literal("change"),
    event_type: z.string(),
    status: z.string(),
    value: Json,
    children: z.array(z.string()),
    ...ContextChange.shape,
  }),
  /** Its last snapshot: the actor is gone. */
  z.object({ ...base, kind: z.literal("stopped"), event_type: z.string(), snapshot: InspectSnapshot }),
  z.object({
    ...base,
    kind: z.literal("microstep"),
    event_type: z.string(),
    value: Json,
    transitions: z.array(z.object({ source: z.string(), targets: z.array(z.string()), event_type: z.string() })),
  }),
  z.object({ ...base, kind: z.literal("action"), action_type: z.string(), params: Json }),
]);
export type InspectRecord = z.infer<typeof InspectRecord>;

/** Published on `stui.inspect.<instance_id>.events`. */
export const InspectBatch = z.object({
  instance_id: ImageId,
  records: z.array(InspectRecord),
  /**
   * Records dropped since the instance started: its buffer was full, or inspection had taken more
   * than its share of the instance's time (`inspect.max_share`).
   */
  dropped: Count,
});
export type InspectBatch = z.infer<typeof InspectBatch>;

/** Attaches (or renews): the instance records while some inspector's lease holds. */
export const InspectAttach = z.object({
  inspector_id: Id,
  /** How long this attach holds unless renewed. */
  lease_ms: z.number().int().min(1000).max(600_000).default(10_000),
});
export type InspectAttach = z.infer<typeof InspectAttach>;

export const InspectAttached = z.object({
  instance_id: ImageId,
  /** Records after this one follow on `.events`. */
  sequence: Count,
  lease_expires_at: Timestamp,
  actors: z.array(InspectActor),
  /** Each machine's definition (`machine.toJSON()`), by machine id: once, however many actors run it. */
  definitions: z.record(z.string(), Json),
  dropped: Count,
});
export type InspectAttached = z.infer<typeof InspectAttached>;

export const InspectDetach = z.object({ inspector_id: Id });
export type InspectDetach = z.infer<typeof InspectDetach>;

export const InspectDetached = z.object({
  instance_id: ImageId,
  /** Inspectors still attached. */
  attached: Count,
});
export type InspectDetached = z.infer<typeof InspectDetached>;

/** The answer to a malformed attach or detach. */
export const InspectError = z.object({ error: z.string() });
