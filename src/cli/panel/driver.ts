/**
 * Feeds the model from NATS: the live events (subscribed before the first snapshot is asked, so
 * nothing falls between them), the stream's last events from before (shown as replayed), the
 * connection's status, and a snapshot whenever the model wants one. After a session event, and
 * every second while an image reconnects, the image's own status is asked again: its session
 * counts and reconnect figures come from that answer. A plain store the view subscribes to.
 */
import type { StuiClient } from "../../client.js";
import { messageOf } from "../client-run.js";
import { imageOf, initialState, isSessionEvent, reduce, type PanelAction, type PanelState } from "./model.js";
import type { PanelStore } from "./view.js";

export interface PanelDriver extends PanelStore {
  readonly dispatch: (action: PanelAction) => void;
  /** Stops listening (the connection itself is the caller's). */
  readonly stop: () => void;
}

/** A store of the model, without any I/O: what the view tests use. */
export function createStore(
  state: PanelState = initialState(),
): PanelStore & { readonly dispatch: (a: PanelAction) => void } {
  let current = state;
  const listeners = new Set<() => void>();
  return {
    getState: () => current,
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    dispatch: (action) => {
      current = reduce(current, action);
      for (const l of listeners) l();
    },
  };
}

/** How soon after a session event its image is asked again (events in a burst share one ask). */
const REFRESH_MS = 200;
/** How often a reconnecting image is asked for its attempt and next attempt time. */
const RECONNECTING_POLL_MS = 1000;

export function startDriver(client: StuiClient, maxEvents = 50): PanelDriver {
  const store = createStore(initialState(maxEvents));
  let stopped = false;
  let loading = false;
  const feed = client.events();
  const dirty = new Set<string>();
  let refreshTimer: NodeJS.Timeout | null = null;

  const dispatch = (action: PanelAction): void => {
    if (stopped) return;
    store.dispatch(action);
    if (store.getState().wantSnapshot && !loading) void load();
  };

  const refreshSoon = (imageId: string): void => {
    dirty.add(imageId);
    refreshTimer ??= setTimeout(() => {
      refreshTimer = null;
      const ids = [...dirty];
      dirty.clear();
      for (const id of ids) void refresh(id);
    }, REFRESH_MS);
  };
  const refresh = async (imageId: string): Promise<void> => {
    try {
      const r = await client.getImageConnectionStatus({ image_id: imageId });
      if (r.type !== "Error") dispatch({ type: "image-refreshed", image: r });
    } catch {
      // No answer: the next event or poll asks again.
    }
  };
  const poll = setInterval(() => {
    for (const image of store.getState().images) if (image.status === "Reconnecting") refreshSoon(image.image_id);
  }, RECONNECTING_POLL_MS);
  poll.unref();

  const replayRecent = async (): Promise<void> => {
    try {
      const past = await client.recent(maxEvents);
      dispatch({ type: "replayed", events: past.map((r) => r.event) });
    } catch {
      // No stream to replay from (a service without JetStream): live events only.
    }
  };

  const load = async (): Promise<void> => {
    loading = true;
    store.dispatch({ type: "snapshot-requested" });
    try {
      const r = await client.listImages();
      if (r.type === "Error") dispatch({ type: "snapshot-failed", message: `${r.code}: ${r.message}` });
      else dispatch({ type: "snapshot", images: r.images });
    } catch (error) {
      dispatch({ type: "snapshot-failed", message: messageOf(error) });
      // No answer (the service restarting?): try again shortly, events held meanwhile.
      setTimeout(() => {
        loading = false;
        if (!stopped) void load();
      }, 1000).unref();
      return;
    }
    loading = false;
    if (store.getState().wantSnapshot) void load();
  };

  void (async () => {
    try {
      for await (const event of feed) {
        dispatch({ type: "event", event });
        const imageId = imageOf(event);
        if (isSessionEvent(event) && imageId !== null) refreshSoon(imageId);
      }
    } catch {
      // The subscription ends with the connection.
    }
  })();
  void (async () => {
    try {
      for await (const s of client.nc.status()) {
        if (s.type === "disconnect" || s.type === "reconnecting") dispatch({ type: "link", link: "reconnecting" });
        else if (s.type === "reconnect") dispatch({ type: "link", link: "connected" });
      }
    } catch {
      // Ends with the connection.
    }
    dispatch({ type: "link", link: "closed" });
  })();
  void client.nc.closed().then(() => dispatch({ type: "link", link: "closed" }));

  dispatch({ type: "link", link: "connected" });
  void replayRecent();
  return {
    getState: store.getState,
    subscribe: store.subscribe,
    dispatch,
    stop: () => {
      stopped = true;
      clearInterval(poll);
      if (refreshTimer !== null) clearTimeout(refreshTimer);
      void feed.close().catch(() => undefined);
    },
  };
}
