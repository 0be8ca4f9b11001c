/**
 * The panel's screen (ink-testing-library): the header with the NATS link, one row per image with
 * its status as symbol and word, columns dropped at 80 columns, the events cut to the width,
 * never taller than the screen, no color codes with color off, and the keys j/k/arrows and q.
 */
import { createElement } from "react";
import { render } from "ink-testing-library";
import { afterEach, describe, expect, it } from "vitest";
import { createStore } from "../src/cli/panel/driver.js";
import { wantsColor } from "../src/cli/panel/command.js";
import { initialState } from "../src/cli/panel/model.js";
import { PanelView, type PanelViewProps } from "../src/cli/panel/view.js";
import { image, recordedActions, statusEvent } from "./helpers/panel.js";

const NOW = Date.parse("2026-12-01T10:00:30.000Z");
const mounted: Array<{ unmount: () => void }> = [];
afterEach(() => {
  for (const m of mounted.splice(0)) m.unmount();
});

function storeWith(images = 3) {
  const store = createStore(initialState());
  store.dispatch({ type: "link", link: "connected" });
  store.dispatch({ type: "snapshot-requested" });
  store.dispatch({
    type: "snapshot",
    images: [
      image("dev", { owner: "a", active_sessions: 2, session_count: 3, orphaned_sessions: 1 }),
      image("staging", {
        status: "Reconnecting",
        connection_health: "Unknown",
        rtt_ms: null,
        reconnect_attempt: 2,
        next_attempt_at: "2026-12-01T10:00:32.500Z",
      }),
      image("build", { status: "Failed", last_seen: null }),
      image("old", { status: "Disconnected" }),
    ].slice(0, images),
  });
  return store;
}

function show(props: Partial<PanelViewProps> & Pick<PanelViewProps, "store">) {
  const app = render(
    createElement(PanelView, {
      width: 120,
      height: 30,
      color: false,
      server: "nats://h:4222",
      actions: recordedActions(),
      clientId: "tester",
      now: () => NOW,
      ...props,
    }),
  );
  mounted.push(app);
  return app;
}

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 30));
const frame = (app: { lastFrame: () => string | undefined }): string[] => (app.lastFrame() ?? "").split("\n");

describe("panel view", () => {
  it("panel view - shows the link, and every image with status symbol and word, health, retry, RTT, sessions, last seen, owner", () => {
    const lines = frame(show({ store: storeWith(4) }));
    expect(lines[0]).toMatch(/^stui panel {2}NATS ● connected nats:\/\/h:4222 {2}4 images/);
    expect(lines[1]).toMatch(
      /^ {2}IMAGE▲\s+STATUS\s+HEALTH\s+RETRY\s+ACT\/ORPH\/ALL\s+RTT ms\s+LAST SEEN\s+OWNER\s+NAME$/,
    );
    expect(lines[2]).toMatch(/^› build\s+✖ Failed\s+Healthy\s+-\s+0\/0\/0\s+1\.5\s+-\s+-\s+build image/);
    expect(lines[3]).toMatch(/^ {2}dev\s+● Connected\s+Healthy\s+-\s+2\/1\/3\s+1\.5\s+30s ago\s+a\s+dev image/);
    expect(lines[4]).toMatch(/^ {2}old\s+○ Disconnected/);
    // The third attempt starts in 2.5 s.
    expect(lines[5]).toMatch(/^ {2}staging\s+◐ Reconnecting\s+Unknown\s+#3 in 3s\s+0\/0\/0\s+-\s/);
  });

  it("panel view - without owners there is no OWNER column; loading and resyncs show in the header", () => {
    const store = createStore(initialState());
    const lines = frame(show({ store }));
    expect(lines[0]).toMatch(/loading…/);
    store.dispatch({ type: "snapshot-requested" });
    store.dispatch({ type: "snapshot", images: [image("dev")] });
    store.dispatch({ type: "event", event: statusEvent("dev", "Failed", 1) });
    store.dispatch({ type: "event", event: statusEvent("dev", "Failed", 5) });
    const app = show({ store });
    expect(frame(app)[0]).toMatch(/resync 1: missed 3 event\(s\) of \/stui\/a/);
    expect(frame(app)[1]).not.toMatch(/OWNER/);
  });

  it("panel view - at 80×24 the low-priority columns go, no line is wider than 80 and the frame fits the screen", () => {
    const store = storeWith(4);
    for (let n = 1; n <= 40; n++) {
      store.dispatch({ type: "event", event: statusEvent("dev", "Connected", n, "/stui/a", "x".repeat(200)) });
    }
    const lines = frame(show({ store, width: 80, height: 24 }));
    expect(lines.length).toBeLessThanOrEqual(23);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(80);
    expect(lines[1]).toMatch(/IMAGE▲\s+STATUS\s+HEALTH/);
    expect(lines[1]).not.toMatch(/NAME/);
    // The events pane ends just above the status line.
    expect(lines.at(-2)).toMatch(/#40 image\.status\.changed dev: Connected → Connected \(x+…$/);
    expect(lines.at(-1)).toMatch(/^\? keys/);
  });

  it("panel view - at 40 columns only the most important columns stay, and many images scroll within the screen", () => {
    const store = createStore(initialState());
    store.dispatch({ type: "snapshot-requested" });
    store.dispatch({
      type: "snapshot",
      images: Array.from({ length: 50 }, (_, n) => image(`img${String(n).padStart(2, "0")}`)),
    });
    const app = show({ store, width: 40, height: 12 });
    const lines = frame(app);
    expect(lines.length).toBeLessThanOrEqual(11);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(40);
    expect(lines[1]).toMatch(/^ {2}IMAGE▲\s+STATUS/);
  });

  it("panel view - j, k and the arrows move the selection; the window follows it", async () => {
    const store = createStore(initialState());
    store.dispatch({ type: "snapshot-requested" });
    store.dispatch({
      type: "snapshot",
      images: Array.from({ length: 20 }, (_, n) => image(`img${String(n).padStart(2, "0")}`)),
    });
    const app = show({ store, width: 80, height: 12 });
    const selected = (): string => frame(app).find((l) => l.startsWith("› ")) ?? "";
    expect(selected()).toMatch(/img00/);
    await tick();
    app.stdin.write("j");
    await tick();
    expect(selected()).toMatch(/img01/);
    app.stdin.write("\u001B[B"); // down arrow
    await tick();
    expect(selected()).toMatch(/img02/);
    app.stdin.write("k");
    await tick();
    app.stdin.write("\u001B[A"); // up arrow
    await tick();
    app.stdin.write("k");
    await tick();
    expect(selected()).toMatch(/img00/);
    for (let n = 0; n < 25; n++) {
      app.stdin.write("j");
      await tick();
    }
    expect(selected()).toMatch(/img19/);
    expect(frame(app).length).toBeLessThanOrEqual(11);
  });

  it("panel view - q quits", async () => {
    let quit = 0;
    const app = show({ store: storeWith(), onQuit: () => void quit++ });
    await tick();
    app.stdin.write("q");
    await tick();
    expect(quit).toBe(1);
  });

  it("panel view - color off writes no escape codes; NO_COLOR (non-empty) and --no-color turn color off", () => {
    const plain = show({ store: storeWith(4), color: false }).lastFrame() ?? "";
    expect(plain.includes("\u001B[")).toBe(false);
    expect(wantsColor(false, {})).toBe(true);
    expect(wantsColor(false, { NO_COLOR: "1" })).toBe(false);
    expect(wantsColor(false, { NO_COLOR: "" })).toBe(true);
    expect(wantsColor(true, {})).toBe(false);
  });
});
