/** Images and events as the panel's tests write them. */
import type { ImageConnectionStatus, StuiEvent } from "../../src/protocol/index.js";

export function image(id: string, over: Partial<ImageConnectionStatus> = {}): ImageConnectionStatus {
  return {
    image_id: id,
    name: `${id} image`,
    address: "tcp://127.0.0.1:5555",
    status: "Connected",
    connection_health: "Healthy",
    last_seen: "2026-12-01T10:00:00.000Z",
    last_activity: null,
    session_count: 0,
    active_sessions: 0,
    orphaned_sessions: 0,
    rtt_ms: 1.5,
    image_name: null,
    image_version: null,
    owner: null,
    lease_expires_at: null,
    ...over,
  };
}

export function statusEvent(
  id: string,
  status: ImageConnectionStatus["status"],
  sequence: number,
  source = "/stui/a",
  reason: string | null = null,
): StuiEvent {
  return {
    specversion: "1.0",
    id: `e${sequence}`,
    source,
    type: "io.stui.image.status.changed",
    time: "2026-12-01T10:00:01.000Z",
    sequence,
    datacontenttype: "application/json",
    subject: id,
    data: { image_id: id, status, previous_status: "Connected", reason, at: "2026-12-01T10:00:01.000Z" },
  };
}
