/** Images and events as the panel's tests write them. */
import type { Outcome, PanelActions } from "../../src/cli/panel/actions.js";
import type { ImageConnectionStatus, SessionMetadata, StuiEvent } from "../../src/protocol/index.js";

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
    reconnect_attempt: null,
    next_attempt_at: null,
    failure: null,
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
    data: {
      image_id: id,
      status,
      previous_status: "Connected",
      reason,
      at: "2026-12-01T10:00:01.000Z",
      reconnect_attempt: null,
      next_attempt_at: null,
      failure: null,
    },
  };
}

/** What the view asked the service to do, and the answers it gets: actions held in memory. */
export interface RecordedActions extends PanelActions {
  readonly calls: string[];
  sessions: SessionMetadata[];
}

export function recordedActions(sessions: SessionMetadata[] = []): RecordedActions {
  const calls: string[] = [];
  const done = (call: string, text = `done: ${call}`): Promise<Outcome> => {
    calls.push(call);
    return Promise.resolve({ ok: true, text });
  };
  const actions: RecordedActions = {
    calls,
    sessions,
    detail: (imageId) =>
      Promise.resolve({
        sessions: actions.sessions.filter((s) => s.image_id === imageId),
        stats: null,
      }),
    switchContext: (clientId, imageId) => done(`switch ${clientId} ${imageId}`),
    createSession: (clientId, imageId, name) => done(`create ${clientId} ${imageId} ${name ?? "-"}`),
    closeSession: (sessionId) => done(`close ${sessionId}`),
    evaluate: (clientId, imageId, code) => {
      calls.push(`evaluate ${clientId} ${imageId} ${code}`);
      return Promise.resolve({ ok: true, text: `result on ${imageId}`, lines: [`=> ${code}`] });
    },
    connect: (imageId, address, name) => done(`connect ${imageId} ${address} ${name ?? "-"}`),
    disconnect: (imageId) => done(`disconnect ${imageId}`),
    retry: (image) => done(`retry ${image.image_id}`),
    cleanupPreview: (imageId) =>
      Promise.resolve(actions.sessions.filter((s) => s.image_id === imageId && s.orphaned_at !== null)),
    cleanup: (imageId, ids) => {
      calls.push(`cleanup ${imageId} ${ids.join(",")}`);
      actions.sessions = actions.sessions.filter((s) => !ids.includes(s.session_id));
      return Promise.resolve({ ok: true, text: `removed ${ids.length}`, lines: [...ids], removed: [...ids] });
    },
  };
  return actions;
}

export function session(id: string, imageId: string, over: Partial<SessionMetadata> = {}): SessionMetadata {
  return {
    session_id: id,
    client_id: "alice",
    session_name: null,
    description: null,
    created_at: "2026-12-01T09:00:00.000Z",
    last_activity: "2026-12-01T09:30:00.000Z",
    is_active: true,
    orphaned_at: null,
    image_id: imageId,
    image_address: "tcp://127.0.0.1:5555",
    image_name: null,
    image_version: null,
    connection_status: "Connected",
    ...over,
  };
}
