/**
 * NATS subjects, fixed by docs/protocol.md: other services are written against these names.
 */
import type { StuiEvent } from "./events.js";
import { REQUEST_TYPES, type RequestType } from "./requests.js";

export const EVENTS_WILDCARD = "stui.events.>";
export const API_PREFIX = "stui.api";
/** The endpoint that takes the externally tagged `Request` envelope. */
export const API_REQUEST_SUBJECT = `${API_PREFIX}.request`;
export const SERVICE_NAME = "stui";
/**
 * Where one instance takes the tagged `Request` itself (with `cluster.lease_ttl_ms`): what another
 * instance forwards to the owner of an image, or what a client sends to ask that instance.
 */
export const instanceRequestSubject = (instanceId: string): string => `stui.instance.${instanceId}.request`;

const TOKEN = /^[A-Za-z0-9_-]+$/;
/** A configured id is used as one subject token, so it may not contain `.`, `*`, `>` or spaces. */
export const isSubjectToken = (value: string): boolean => TOKEN.test(value);

export type SessionChange = "created" | "closed" | "orphaned" | "cleaned";
export type InstanceChange = "started" | "stopped" | "network";

export const subjects = {
  imageStatus: (imageId: string) => `stui.events.image.${imageId}.status`,
  imageHealth: (imageId: string) => `stui.events.image.${imageId}.health`,
  contextSwitched: "stui.events.context.switched",
  session: (imageId: string, change: SessionChange) => `stui.events.session.${imageId}.${change}`,
  instance: (instanceId: string, change: InstanceChange) => `stui.events.instance.${instanceId}.${change}`,
} as const;

/** The subject an event is published on. */
export function eventSubject(event: StuiEvent): string {
  switch (event.type) {
    case "io.stui.image.status.changed":
      return subjects.imageStatus(event.data.image_id);
    case "io.stui.image.health.changed":
      return subjects.imageHealth(event.data.image_id);
    case "io.stui.context.switched":
      return subjects.contextSwitched;
    case "io.stui.session.created":
      return subjects.session(event.data.image_id, "created");
    case "io.stui.session.closed":
      return subjects.session(event.data.image_id, "closed");
    case "io.stui.session.orphaned":
      return subjects.session(event.data.image_id, "orphaned");
    case "io.stui.session.cleaned":
      return subjects.session(event.data.image_id, "cleaned");
    case "io.stui.instance.started":
      return subjects.instance(event.data.instance_id, "started");
    case "io.stui.instance.stopped":
      return subjects.instance(event.data.instance_id, "stopped");
    case "io.stui.instance.network_changed":
      return subjects.instance(event.data.instance_id, "network");
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}

/** `SwitchImageContext` → `switch_image_context`. */
export const endpointName = (type: RequestType): string => type.replace(/(?<!^)([A-Z])/g, "_$1").toLowerCase();

/** `stui.api.switch_image_context` for `SwitchImageContext`. */
export const apiSubject = (type: RequestType): string => `${API_PREFIX}.${endpointName(type)}`;

const BY_ENDPOINT = new Map<string, RequestType>(REQUEST_TYPES.map((t) => [endpointName(t), t]));

/** The request an endpoint name serves, if any. */
export const requestTypeOfEndpoint = (name: string): RequestType | undefined => BY_ENDPOINT.get(name);
