/**
 * Feeds the model from NATS: the live events (subscribed before the first snapshot is asked, so
 * nothing falls between them), the connection's status, and a snapshot whenever the model wants
 * one. A plain store the view subscribes to.
 */
import type { StuiClient } from "../../client.js";
import { messageOf } from "../client-run.js";
import { initialState, reduce, type PanelAction, type PanelState } from "./model.js";
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

export function startDriver(client: StuiClient, maxEvents = 50): PanelDriver {
  const store = createStore(initialState(maxEvents));
  let stopped = false;
  let loading = false;
  const feed = client.events();

  const dispatch = (action: PanelAction): void => {
    if (stopped) return;
    store.dispatch(action);
    if (store.getState().wantSnapshot && !loading) void load();
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
      for await (const event of feed) dispatch({ type: "event", event });
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
  return {
    getState: store.getState,
    subscribe: store.subscribe,
    dispatch,
    stop: () => {
      stopped = true;
      void feed.close().catch(() => undefined);
    },
  };
}
