/**
 * Events: CloudEvents 1.0 JSON envelopes, one `type` per kind of change, each with typed `data`.
 * `sequence` is an Integer extension attribute: 1, 2, 3... per `source`, so a subscriber sees gaps.
 */
import { z } from "zod";
import {
  ConnectionHealth,
  ConnectionStatus,
  Count,
  Id,
  ImageFailure,
  ImageId,
  Millis,
  Timestamp,
} from "./primitives.js";
import { FieldTagged } from "./tagged.js";

export const ImageStatusChanged = z.object({
  image_id: ImageId,
  status: ConnectionStatus,
  previous_status: ConnectionStatus,
  reason: z.string().nullable(),
  at: Timestamp,
  /** `ImageConnectionStatus.reconnect_attempt` as of the change. */
  reconnect_attempt: Count.nullable().default(null),
  /** `ImageConnectionStatus.next_attempt_at` as of the change. */
  next_attempt_at: Timestamp.nullable().default(null),
  /** `ImageConnectionStatus.failure` as of the change: why it is `Failed`. */
  failure: ImageFailure.nullable().default(null),
});
export type ImageStatusChanged = z.infer<typeof ImageStatusChanged>;

export const ImageHealthChanged = z.object({
  image_id: ImageId,
  health: ConnectionHealth,
  previous_health: ConnectionHealth,
  rtt_ms: Millis.nullable(),
  at: Timestamp,
});
export type ImageHealthChanged = z.infer<typeof ImageHealthChanged>;

export const ContextSwitched = z.object({
  client_id: Id,
  from_image_id: ImageId.nullable(),
  to_image_id: ImageId,
  preserve_context: z.boolean(),
  at: Timestamp,
});
export type ContextSwitched = z.infer<typeof ContextSwitched>;

export const SessionLifecycle = z.object({
  image_id: ImageId,
  session_id: Id,
  client_id: Id,
  reason: z.string().nullable(),
  at: Timestamp,
});
export type SessionLifecycle = z.infer<typeof SessionLifecycle>;

export const InstanceLifecycle = z.object({ instance_id: ImageId, at: Timestamp });
export type InstanceLifecycle = z.infer<typeof InstanceLifecycle>;

/** The instance saw its host's network change, or woke from sleep, and has every image link try again. */
export const NetworkChanged = z.object({
  instance_id: ImageId,
  /** What was seen: the interfaces' addresses that came and went, or how late a timer fired. */
  reason: z.string(),
  /** The image connections told (each probes or retries at once). */
  images: Count,
  at: Timestamp,
});
export type NetworkChanged = z.infer<typeof NetworkChanged>;

/** Every event type and the schema of its `data`. */
export const eventData = {
  "io.stui.image.status.changed": ImageStatusChanged,
  "io.stui.image.health.changed": ImageHealthChanged,
  "io.stui.context.switched": ContextSwitched,
  "io.stui.session.created": SessionLifecycle,
  "io.stui.session.closed": SessionLifecycle,
  "io.stui.session.orphaned": SessionLifecycle,
  "io.stui.session.cleaned": SessionLifecycle,
  "io.stui.instance.started": InstanceLifecycle,
  "io.stui.instance.stopped": InstanceLifecycle,
  "io.stui.instance.network_changed": NetworkChanged,
} as const;

export type EventType = keyof typeof eventData;
export const EVENT_TYPES = Object.keys(eventData) as EventType[];
export type EventData<T extends EventType> = z.output<(typeof eventData)[T]>;

function envelope<T extends EventType>(type: T) {
  return z.object({
    specversion: z.literal("1.0"),
    id: Id,
    /** `/stui/<instance_id>`: one sequence per source. */
    source: z.string().min(1),
    type: z.literal(type),
    time: Timestamp,
    sequence: z.number().int().min(1),
    datacontenttype: z.literal("application/json").default("application/json"),
    /** The image or client the event is about. */
    subject: z.string().nullable().default(null),
    data: eventData[type],
  });
}

const eventVariants = {
  "io.stui.image.status.changed": envelope("io.stui.image.status.changed"),
  "io.stui.image.health.changed": envelope("io.stui.image.health.changed"),
  "io.stui.context.switched": envelope("io.stui.context.switched"),
  "io.stui.session.created": envelope("io.stui.session.created"),
  "io.stui.session.closed": envelope("io.stui.session.closed"),
  "io.stui.session.orphaned": envelope("io.stui.session.orphaned"),
  "io.stui.session.cleaned": envelope("io.stui.session.cleaned"),
  "io.stui.instance.started": envelope("io.stui.instance.started"),
  "io.stui.instance.stopped": envelope("io.stui.instance.stopped"),
  "io.stui.instance.network_changed": envelope("io.stui.instance.network_changed"),
} satisfies Record<EventType, z.ZodObject>;

export const StuiEvent = new FieldTagged("Event", "type", eventVariants);
export type StuiEvent = z.output<(typeof eventVariants)[EventType]>;
export type StuiEventOf<T extends EventType> = z.output<(typeof eventVariants)[T]>;
