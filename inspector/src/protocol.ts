/**
 * What the inspector bridge sends the page, one JSON text message per WebSocket message. These
 * mirror the zod schemas in src/protocol/inspect.ts as plain interfaces: the page must not bundle
 * zod, and its shape checks (`decodeMessage`) only go as deep as the page relies on.
 */
import type { ContextChange } from "../../src/protocol/inspect-change.js";

export interface InspectSnapshot {
  /** `active`, `done`, `error` or `stopped`. */
  readonly status: string;
  readonly value: unknown;
  readonly context: unknown;
  readonly children: readonly string[];
}

export interface InspectActor {
  readonly actor_id: string;
  readonly parent_id: string | null;
  readonly id: string;
  readonly system_id: string | null;
  readonly machine_id: string | null;
  readonly snapshot: InspectSnapshot;
}

interface RecordBase {
  readonly seq: number;
  /** ISO time. */
  readonly at: string;
  readonly actor_id: string;
}

export type InspectRecord =
  | (RecordBase & {
      readonly kind: "actor";
      readonly parent_id: string | null;
      readonly id: string;
      readonly system_id: string | null;
      readonly machine_id: string | null;
      readonly definition: unknown;
    })
  | (RecordBase & {
      readonly kind: "event";
      readonly source_id: string | null;
      readonly event_type: string;
      readonly event: unknown;
    })
  | (RecordBase & { readonly kind: "snapshot"; readonly event_type: string; readonly snapshot: InspectSnapshot })
  | (RecordBase & {
      readonly kind: "change";
      readonly event_type: string;
      readonly status: string;
      readonly value: unknown;
      readonly children: readonly string[];
    } & ContextChange)
  | (RecordBase & { readonly kind: "stopped"; readonly event_type: string; readonly snapshot: InspectSnapshot })
  | (RecordBase & {
      readonly kind: "microstep";
      readonly event_type: string;
      readonly value: unknown;
      readonly transitions: readonly { source: string; targets: readonly string[]; event_type: string }[];
    })
  | (RecordBase & { readonly kind: "action"; readonly action_type: string; readonly params: unknown });

export type RecordKind = InspectRecord["kind"];

export interface InspectAttached {
  readonly instance_id: string;
  readonly sequence: number;
  readonly lease_expires_at: string;
  readonly actors: readonly InspectActor[];
  readonly definitions: Readonly<Record<string, unknown>>;
  readonly dropped: number;
}

export interface InspectBatch {
  readonly instance_id: string;
  readonly records: readonly InspectRecord[];
  readonly dropped: number;
}

export type ServerMessage =
  | { readonly type: "hello"; readonly version: number }
  | { readonly type: "instances"; readonly instances: readonly string[] }
  | { readonly type: "attached"; readonly at: number; readonly body: InspectAttached }
  | { readonly type: "batch"; readonly at: number; readonly body: InspectBatch }
  | { readonly type: "gone"; readonly at: number; readonly instance_id: string }
  | { readonly type: "error"; readonly message: string };

export const recordingFormat = "stui-inspector-recording";

/** A saved session: the messages that rebuild it, in order. */
export interface Recording {
  readonly format: typeof recordingFormat;
  readonly version: 1;
  readonly exported_at?: string;
  readonly messages: readonly ServerMessage[];
}

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Checks the envelope and the fields the store indexes by; record bodies are trusted as sent,
 * since the bridge forwards what the instance's own encoder produced.
 */
export function decodeMessage(value: unknown): Decoded<ServerMessage> {
  if (!isObject(value) || typeof value["type"] !== "string") return { ok: false, error: "not a message object" };
  const type = value["type"];
  switch (type) {
    case "hello":
    case "error":
    case "instances":
      return { ok: true, value: value as unknown as ServerMessage };
    case "gone":
      if (typeof value["instance_id"] !== "string") return { ok: false, error: "gone: no instance_id" };
      return { ok: true, value: value as unknown as ServerMessage };
    case "attached":
    case "batch": {
      const body = value["body"];
      if (!isObject(body) || typeof body["instance_id"] !== "string") return { ok: false, error: `${type}: no body` };
      const list = type === "attached" ? body["actors"] : body["records"];
      if (!Array.isArray(list))
        return { ok: false, error: `${type}: no ${type === "attached" ? "actors" : "records"}` };
      return { ok: true, value: value as unknown as ServerMessage };
    }
    default:
      return { ok: false, error: `unknown message type ${JSON.stringify(type)}` };
  }
}

/** Parses an imported file: a recording, or a bare array of messages. */
export function decodeRecording(text: string): Decoded<ServerMessage[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `not JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  const list = Array.isArray(parsed) ? parsed : isObject(parsed) ? parsed["messages"] : undefined;
  if (isObject(parsed) && parsed["format"] !== recordingFormat) {
    return { ok: false, error: `not a ${recordingFormat} file` };
  }
  if (!Array.isArray(list)) return { ok: false, error: "no messages" };
  const messages: ServerMessage[] = [];
  for (const [index, item] of list.entries()) {
    const decoded = decodeMessage(item);
    if (!decoded.ok) return { ok: false, error: `message ${index}: ${decoded.error}` };
    messages.push(decoded.value);
  }
  return { ok: true, value: messages };
}
