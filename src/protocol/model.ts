/**
 * The records the service keeps and reports: sessions with their image, image connection status,
 * per-image stats and the health summary. Field names are the seed's, in snake_case as on the wire.
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
  StringMap,
  Timestamp,
} from "./primitives.js";

/** Where a record written before sessions knew their image lands (see docs/protocol.md). */
export const DEFAULT_IMAGE_ID = "default";
export const DEFAULT_IMAGE_ADDRESS = "tcp://127.0.0.1:5555";

/** What a client was doing in a session: restored with the session. */
export const WorkspaceContext = z.object({
  current_workspace: z.string().nullable().default(null),
  input_history: z.array(z.string()).default([]),
  variables: StringMap.default({}),
});
export type WorkspaceContext = z.infer<typeof WorkspaceContext>;

export const emptyWorkspace = (): WorkspaceContext => ({ current_workspace: null, input_history: [], variables: {} });

/**
 * A stored session. The image fields default so that a record an older STUI wrote (without them)
 * still decodes: it lands on the default image.
 */
export const SessionStateData = z.object({
  session_id: Id,
  client_id: Id,
  session_name: z.string().nullable().default(null),
  description: z.string().nullable().default(null),
  created_at: Timestamp,
  last_activity: Timestamp,
  is_active: z.boolean().default(true),
  /** When the session was found orphaned; `null` while its image still knows it. */
  orphaned_at: Timestamp.nullable().default(null),
  workspace_context: WorkspaceContext.default(emptyWorkspace),
  image_id: ImageId.default(DEFAULT_IMAGE_ID),
  image_address: z.string().default(DEFAULT_IMAGE_ADDRESS),
  image_name: z.string().nullable().default(null),
  image_version: z.string().nullable().default(null),
  image_metadata: StringMap.default({}),
});
export type SessionStateData = z.infer<typeof SessionStateData>;

/** A session as listed to clients: the session fields, its image, and that image's status. */
export const SessionMetadata = z.object({
  session_id: Id,
  client_id: Id,
  session_name: z.string().nullable(),
  description: z.string().nullable(),
  created_at: Timestamp,
  last_activity: Timestamp,
  is_active: z.boolean(),
  orphaned_at: Timestamp.nullable(),
  image_id: ImageId,
  image_address: z.string(),
  image_name: z.string().nullable(),
  image_version: z.string().nullable(),
  connection_status: ConnectionStatus,
});
export type SessionMetadata = z.infer<typeof SessionMetadata>;

export const ImageConnectionStatus = z.object({
  image_id: ImageId,
  /** The configured display name. */
  name: z.string().nullable(),
  address: z.string(),
  status: ConnectionStatus,
  connection_health: ConnectionHealth,
  /** Last time the image answered anything. */
  last_seen: Timestamp.nullable(),
  /** Last session activity on this image. */
  last_activity: Timestamp.nullable(),
  /** Every session stored for this image: `active_sessions` + `orphaned_sessions` + closed ones. */
  session_count: Count,
  /** Sessions that are active (`is_active`) and not orphaned. */
  active_sessions: Count,
  /** Sessions found orphaned (`orphaned_at` set). */
  orphaned_sessions: Count,
  /** Round-trip time of the last application ping. */
  rtt_ms: Millis.nullable(),
  /** What the image says of itself (`system_info`). */
  image_name: z.string().nullable(),
  image_version: z.string().nullable(),
  /**
   * The `instance_id` of the instance that owns (connects) the image; `null`: none right now (an
   * instance died and its lease has not lapsed yet, or the service runs without NATS).
   */
  owner: ImageId.nullable().default(null),
  /** When the owner's lease on the image lapses unless renewed; `null` without shared images. */
  lease_expires_at: Timestamp.nullable().default(null),
  /**
   * While `Reconnecting`: the failed connection attempts since the image was last Connected (0
   * right after a Connected link was lost, 1 after the first attempt failed); `null` in any other
   * status.
   */
  reconnect_attempt: Count.nullable().default(null),
  /**
   * While `Reconnecting` and waiting out the backoff: when the next attempt starts; `null` while
   * an attempt is under way, and in any other status.
   */
  next_attempt_at: Timestamp.nullable().default(null),
  /** While `Failed`: why (`ImageFailure`); `null` in any other status. */
  failure: ImageFailure.nullable().default(null),
});
export type ImageConnectionStatus = z.infer<typeof ImageConnectionStatus>;

export const ImageSessionStats = z.object({
  image_id: ImageId,
  total_sessions: Count,
  active_sessions: Count,
  orphaned_sessions: Count,
  last_activity: Timestamp.nullable(),
});
export type ImageSessionStats = z.infer<typeof ImageSessionStats>;

/** The service's own link to NATS, as reported in the health summary. */
export const NatsLinkStatus = z.object({
  status: ConnectionStatus,
  server: z.string().nullable(),
  /** Events held while the link is down, waiting to be published. */
  buffered_events: Count,
  /** Events dropped because the buffer was full. */
  dropped_events: Count,
});
export type NatsLinkStatus = z.infer<typeof NatsLinkStatus>;

/**
 * Whether the session store takes writes. After a write failed (an I/O error, a full disk) the
 * store is degraded: writes are refused until a probe write succeeds.
 */
export const StoreStatus = z.object({
  writable: z.boolean(),
  /** When writes started failing; `null` while writable. */
  degraded_since: Timestamp.nullable(),
  /** What failed, without paths or system detail (those are in the log); `null` while writable. */
  reason: z.string().nullable(),
});
export type StoreStatus = z.infer<typeof StoreStatus>;

export const ImageHealthEntry = z.object({
  image_id: ImageId,
  status: ConnectionStatus,
  connection_health: ConnectionHealth,
  rtt_ms: Millis.nullable(),
  /** As in `ImageConnectionStatus`. */
  owner: ImageId.nullable().default(null),
});
export type ImageHealthEntry = z.infer<typeof ImageHealthEntry>;

export const ConnectionHealthSummary = z.object({
  total_images: Count,
  by_status: z.object({
    Connected: Count,
    Disconnected: Count,
    Reconnecting: Count,
    Failed: Count,
    Unknown: Count,
  }),
  by_health: z.object({ Healthy: Count, Warning: Count, Critical: Count, Unknown: Count }),
  images: z.array(ImageHealthEntry),
  /** `null` when the service runs without NATS (in-process use). */
  nats: NatsLinkStatus.nullable(),
  store: StoreStatus,
});
export type ConnectionHealthSummary = z.infer<typeof ConnectionHealthSummary>;
