/**
 * The panel's state, apart from React and NATS: a snapshot of the images (`ListImages`), then the
 * live events applied to it. Events heard while a snapshot loads are held and applied after it;
 * a gap in a source's `sequence`, a source that starts over, an image the snapshot does not know,
 * or a NATS reconnect asks for a new snapshot (`wantSnapshot`), which the driver then loads.
 * The events pane also shows the last events the stream kept from before the panel started
 * (`replayed`), told apart from live ones and never applied to the rows (the snapshot has them).
 */
import type { ImageConnectionStatus, StuiEvent } from "../../protocol/index.js";

/** The panel's own link to NATS. */
export type LinkState = "connecting" | "connected" | "reconnecting" | "closed";

/** An event as the events pane keeps it. */
export interface PaneEvent {
  readonly event: StuiEvent;
  /** From the stream's past (before the panel started), not heard live. */
  readonly replayed: boolean;
}

/** `loading`: a snapshot is on its way and events are held; `live`: events are applied as they come. */
export type Phase = "loading" | "live";

export interface PanelState {
  readonly link: LinkState;
  readonly phase: Phase;
  /** The images, by id. */
  readonly images: readonly ImageConnectionStatus[];
  /** Events heard while loading, applied in order once the snapshot is in. */
  readonly held: readonly StuiEvent[];
  /** The last `sequence` applied per `source`. */
  readonly sequences: Readonly<Record<string, number>>;
  /** The newest events last, at most `maxEvents`. */
  readonly events: readonly PaneEvent[];
  readonly maxEvents: number;
  /** Set when a new snapshot is needed and none is requested yet. */
  readonly wantSnapshot: boolean;
  /** Why the last resync happened, for the header. */
  readonly resyncReason: string | null;
  readonly resyncs: number;
  /** The last snapshot's failure, `null` after a success. */
  readonly error: string | null;
}

export type PanelAction =
  | { readonly type: "snapshot-requested" }
  | { readonly type: "snapshot"; readonly images: readonly ImageConnectionStatus[] }
  | { readonly type: "snapshot-failed"; readonly message: string }
  | { readonly type: "event"; readonly event: StuiEvent }
  /** The stream's last events from before the panel started, oldest first. */
  | { readonly type: "replayed"; readonly events: readonly StuiEvent[] }
  /** A fresh `GetImageConnectionStatus` answer: its counts and reconnect figures replace the row's. */
  | { readonly type: "image-refreshed"; readonly image: ImageConnectionStatus }
  | { readonly type: "link"; readonly link: LinkState };

export function initialState(maxEvents = 50): PanelState {
  return {
    link: "connecting",
    phase: "loading",
    images: [],
    held: [],
    sequences: {},
    events: [],
    maxEvents,
    wantSnapshot: true,
    resyncReason: null,
    resyncs: 0,
    error: null,
  };
}

export function reduce(state: PanelState, action: PanelAction): PanelState {
  switch (action.type) {
    case "snapshot-requested":
      return { ...state, phase: "loading", wantSnapshot: false, held: [], sequences: {} };
    case "snapshot": {
      const images = [...action.images].sort((a, b) => a.image_id.localeCompare(b.image_id));
      let next: PanelState = { ...state, images, phase: "live", held: [], error: null };
      for (const event of state.held) {
        next = applyLive(next, event);
        if (next.phase === "loading") break;
      }
      return next;
    }
    case "snapshot-failed":
      return { ...state, error: action.message };
    case "replayed": {
      const live = new Set(state.events.map((e) => e.event.id));
      const past = action.events.filter((e) => !live.has(e.id)).map((event) => ({ event, replayed: true }));
      return { ...state, events: [...past, ...state.events].slice(-state.maxEvents) };
    }
    case "image-refreshed":
      return {
        ...state,
        images: state.images.map((i) => (i.image_id === action.image.image_id ? refreshed(i, action.image) : i)),
      };
    case "event": {
      const events = [...state.events, { event: action.event, replayed: false }].slice(-state.maxEvents);
      if (state.phase === "loading") return { ...state, events, held: [...state.held, action.event] };
      return applyLive({ ...state, events }, action.event);
    }
    case "link": {
      const reconnected = action.link === "connected" && state.link === "reconnecting";
      const next = { ...state, link: action.link };
      return reconnected ? resync(next, "NATS reconnected") : next;
    }
  }
}

/**
 * What a fresh answer corrects in a row: the session counts (events only adjust them, and a
 * snapshot may already have counted an event held while it loaded) and the reconnect figures,
 * which change without an event. Status and health stay as the events left them: the answer may
 * be older than the last event.
 */
function refreshed(row: ImageConnectionStatus, fresh: ImageConnectionStatus): ImageConnectionStatus {
  return {
    ...row,
    session_count: fresh.session_count,
    active_sessions: fresh.active_sessions,
    orphaned_sessions: fresh.orphaned_sessions,
    last_activity: fresh.last_activity,
    owner: fresh.owner,
    lease_expires_at: fresh.lease_expires_at,
    reconnect_attempt: fresh.reconnect_attempt,
    next_attempt_at: fresh.next_attempt_at,
  };
}

function resync(state: PanelState, reason: string): PanelState {
  return {
    ...state,
    phase: "loading",
    wantSnapshot: true,
    held: [],
    sequences: {},
    resyncReason: reason,
    resyncs: state.resyncs + 1,
  };
}

/** The image an event is about; `null` for one about a client or an instance. */
export function imageOf(event: StuiEvent): string | null {
  return "image_id" in event.data ? event.data.image_id : null;
}

/** Whether `event` changes an image's sessions (which the detail pane and the counts follow). */
export const isSessionEvent = (event: StuiEvent): boolean => event.type.startsWith("io.stui.session.");

/** Applies one event to a live state, or asks for a resync if it shows that something was missed. */
function applyLive(state: PanelState, event: StuiEvent): PanelState {
  const last = state.sequences[event.source];
  if (last !== undefined && event.sequence <= last) {
    // The same event again (a duplicate) or a source that started over (a restarted instance).
    if (event.sequence === last) return state;
    return resync(state, `${event.source} started over at #${event.sequence}`);
  }
  if (last !== undefined && event.sequence > last + 1) {
    return resync(state, `missed ${event.sequence - last - 1} event(s) of ${event.source}`);
  }
  const sequences = { ...state.sequences, [event.source]: event.sequence };
  const imageId = imageOf(event);
  if (imageId !== null && !state.images.some((i) => i.image_id === imageId)) {
    return resync({ ...state, sequences }, `new image ${imageId}`);
  }
  const images = state.images.map((image) => (image.image_id === imageId ? applyToImage(image, event) : image));
  return { ...state, sequences, images };
}

function applyToImage(image: ImageConnectionStatus, event: StuiEvent): ImageConnectionStatus {
  const active = image.active_sessions;
  switch (event.type) {
    case "io.stui.image.status.changed": {
      const seen = event.data.status === "Connected" ? { last_seen: event.data.at } : {};
      const { reconnect_attempt, next_attempt_at, failure } = event.data;
      return { ...image, status: event.data.status, reconnect_attempt, next_attempt_at, failure, ...seen };
    }
    case "io.stui.image.health.changed":
      return { ...image, connection_health: event.data.health, rtt_ms: event.data.rtt_ms, last_seen: event.data.at };
    case "io.stui.session.created":
      return { ...image, active_sessions: active + 1, session_count: image.session_count + 1 };
    case "io.stui.session.closed":
      return { ...image, active_sessions: Math.max(0, active - 1) };
    case "io.stui.session.orphaned":
      return { ...image, active_sessions: Math.max(0, active - 1), orphaned_sessions: image.orphaned_sessions + 1 };
    case "io.stui.session.cleaned":
      return {
        ...image,
        orphaned_sessions: Math.max(0, image.orphaned_sessions - 1),
        session_count: Math.max(0, image.session_count - 1),
      };
    case "io.stui.context.switched":
    case "io.stui.instance.started":
    case "io.stui.instance.stopped":
    case "io.stui.instance.network_changed":
      return image;
  }
}
