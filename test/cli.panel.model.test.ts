/**
 * The panel's model without NATS or React: a snapshot, events held while it loads and applied
 * after it, and a resync on a sequence gap, a source starting over, an unknown image or a NATS
 * reconnect.
 */
import { describe, expect, it } from "vitest";
import { initialState, reduce, type PanelAction, type PanelState } from "../src/cli/panel/model.js";
import { image, statusEvent } from "./helpers/panel.js";

const run = (actions: readonly PanelAction[], state: PanelState = initialState()): PanelState =>
  actions.reduce(reduce, state);

const statuses = (s: PanelState): string[] => s.images.map((i) => `${i.image_id}=${i.status}`);

describe("panel model", () => {
  it("panel model - events heard while the snapshot loads are applied after it, in order", () => {
    const s = run([
      { type: "link", link: "connected" },
      { type: "snapshot-requested" },
      { type: "event", event: statusEvent("dev", "Reconnecting", 1) },
      { type: "event", event: statusEvent("dev", "Connected", 2) },
      { type: "event", event: statusEvent("staging", "Failed", 3) },
    ]);
    expect(s.phase).toBe("loading");
    expect(s.held).toHaveLength(3);
    const live = reduce(s, { type: "snapshot", images: [image("staging"), image("dev", { status: "Reconnecting" })] });
    expect(live.phase).toBe("live");
    expect(statuses(live)).toEqual(["dev=Connected", "staging=Failed"]);
    expect(live.held).toEqual([]);
    expect(live.events).toHaveLength(3);
    expect(live.wantSnapshot).toBe(false);
  });

  it("panel model - live events change the rows: status, health and RTT, session counts", () => {
    const s = run([
      { type: "snapshot-requested" },
      { type: "snapshot", images: [image("dev")] },
      { type: "event", event: statusEvent("dev", "Reconnecting", 7) },
      {
        type: "event",
        event: {
          ...statusEvent("dev", "Reconnecting", 8),
          type: "io.stui.image.health.changed",
          data: {
            image_id: "dev",
            health: "Critical",
            previous_health: "Healthy",
            rtt_ms: 250,
            at: "2026-12-01T10:00:02.000Z",
          },
        },
      },
      {
        type: "event",
        event: {
          ...statusEvent("dev", "Reconnecting", 9),
          type: "io.stui.session.created",
          data: { image_id: "dev", session_id: "s1", client_id: "alice", reason: null, at: "2026-12-01T10:00:03.000Z" },
        },
      },
    ]);
    expect(s.images[0]).toMatchObject({
      status: "Reconnecting",
      connection_health: "Critical",
      rtt_ms: 250,
      active_sessions: 1,
      session_count: 1,
    });
    expect(s.sequences).toEqual({ "/stui/a": 9 });
  });

  it("panel model - a sequence gap of a source asks for a new snapshot, and holds events until it comes", () => {
    const live = run([
      { type: "snapshot-requested" },
      { type: "snapshot", images: [image("dev")] },
      { type: "event", event: statusEvent("dev", "Reconnecting", 1) },
      { type: "event", event: statusEvent("dev", "Connected", 2, "/stui/b") },
    ]);
    expect(live.wantSnapshot).toBe(false);
    const gap = reduce(live, { type: "event", event: statusEvent("dev", "Failed", 4) });
    expect(gap.wantSnapshot).toBe(true);
    expect(gap.phase).toBe("loading");
    expect(gap.resyncs).toBe(1);
    expect(gap.resyncReason).toBe("missed 2 event(s) of /stui/a");
    expect(statuses(gap)).toEqual(["dev=Connected"]);
    const after = run(
      [
        { type: "snapshot-requested" },
        { type: "event", event: statusEvent("dev", "Connected", 5) },
        { type: "snapshot", images: [image("dev", { status: "Failed" })] },
      ],
      gap,
    );
    expect(after.wantSnapshot).toBe(false);
    expect(statuses(after)).toEqual(["dev=Connected"]);
    expect(after.sequences).toEqual({ "/stui/a": 5 });
  });

  it("panel model - a duplicate event is ignored; a source that starts over (a restarted instance) resyncs", () => {
    const live = run([
      { type: "snapshot-requested" },
      { type: "snapshot", images: [image("dev")] },
      { type: "event", event: statusEvent("dev", "Reconnecting", 3) },
    ]);
    const dup = reduce(live, { type: "event", event: statusEvent("dev", "Reconnecting", 3) });
    expect(dup.wantSnapshot).toBe(false);
    const restarted = reduce(live, { type: "event", event: statusEvent("dev", "Connected", 1) });
    expect(restarted.wantSnapshot).toBe(true);
    expect(restarted.resyncReason).toMatch(/started over at #1/);
  });

  it("panel model - an event about an image the snapshot does not list resyncs", () => {
    const s = run([
      { type: "snapshot-requested" },
      { type: "snapshot", images: [image("dev")] },
      { type: "event", event: statusEvent("new-one", "Connected", 1) },
    ]);
    expect(s.wantSnapshot).toBe(true);
    expect(s.resyncReason).toBe("new image new-one");
  });

  it("panel model - a NATS reconnect resyncs; a first connect does not", () => {
    const s = run([
      { type: "link", link: "connected" },
      { type: "snapshot-requested" },
      { type: "snapshot", images: [image("dev")] },
    ]);
    expect(s.wantSnapshot).toBe(false);
    const down = reduce(s, { type: "link", link: "reconnecting" });
    expect(down.wantSnapshot).toBe(false);
    expect(down.link).toBe("reconnecting");
    const back = reduce(down, { type: "link", link: "connected" });
    expect(back.wantSnapshot).toBe(true);
    expect(back.resyncReason).toBe("NATS reconnected");
  });

  it("panel model - keeps only the last maxEvents events", () => {
    const events = Array.from(
      { length: 8 },
      (_, n) => ({ type: "event", event: statusEvent("dev", "Connected", n + 1) }) as const,
    );
    const s = run(
      [{ type: "snapshot-requested" }, { type: "snapshot", images: [image("dev")] }, ...events],
      initialState(5),
    );
    expect(s.events.map((e) => e.event.sequence)).toEqual([4, 5, 6, 7, 8]);
  });

  it("panel model - a status event brings its reconnect figures; a fresh answer corrects counts and figures, not status", () => {
    const reconnecting = statusEvent("dev", "Reconnecting", 1);
    const withFigures = {
      ...reconnecting,
      data: { ...reconnecting.data, reconnect_attempt: 0, next_attempt_at: "2026-12-01T10:00:02.000Z" },
    } as typeof reconnecting;
    const s = run([
      { type: "snapshot-requested" },
      { type: "snapshot", images: [image("dev", { active_sessions: 1, session_count: 1 })] },
      { type: "event", event: withFigures },
    ]);
    expect(s.images[0]).toMatchObject({ status: "Reconnecting", reconnect_attempt: 0 });
    const fresh = image("dev", {
      status: "Connected",
      session_count: 4,
      active_sessions: 2,
      orphaned_sessions: 2,
      reconnect_attempt: 3,
      next_attempt_at: "2026-12-01T10:00:09.000Z",
    });
    const refreshed = reduce(s, { type: "image-refreshed", image: fresh });
    expect(refreshed.images[0]).toMatchObject({
      status: "Reconnecting",
      session_count: 4,
      active_sessions: 2,
      orphaned_sessions: 2,
      reconnect_attempt: 3,
      next_attempt_at: "2026-12-01T10:00:09.000Z",
    });
  });

  it("panel model - replayed events go before the live ones, once each, marked, and change no row", () => {
    const s = run([
      { type: "snapshot-requested" },
      { type: "snapshot", images: [image("dev")] },
      { type: "event", event: statusEvent("dev", "Failed", 9) },
      { type: "replayed", events: [statusEvent("dev", "Reconnecting", 8), statusEvent("dev", "Failed", 9)] },
    ]);
    expect(s.events.map((e) => [e.event.sequence, e.replayed])).toEqual([
      [8, true],
      [9, false],
    ]);
    expect(s.images[0]?.status).toBe("Failed");
  });
});
