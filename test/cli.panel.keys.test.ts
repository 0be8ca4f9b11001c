/**
 * The panel's keys and dialogs (ink-testing-library), against actions held in memory: the detail
 * pane of the selected image, the filter and the sort, the help overlay, every action with its
 * visible outcome, the cleanup dialog (preview, confirm, result: exactly the listed orphans),
 * Esc backing out of each dialog, the events filter and replayed events, and a caller's own keys.
 */
import { createElement } from "react";
import { render } from "ink-testing-library";
import { afterEach, describe, expect, it } from "vitest";
import { createStore } from "../src/cli/panel/driver.js";
import { parseFilter, visibleImages } from "../src/cli/panel/list.js";
import { initialState } from "../src/cli/panel/model.js";
import { PanelView, type PanelViewProps } from "../src/cli/panel/view.js";
import { image, recordedActions, session, statusEvent, type RecordedActions } from "./helpers/panel.js";

const NOW = Date.parse("2026-12-01T10:00:30.000Z");
const mounted: Array<{ unmount: () => void }> = [];
afterEach(() => {
  for (const m of mounted.splice(0)) m.unmount();
});

const IMAGES = [
  image("build", { status: "Failed", connection_health: "Unknown", rtt_ms: null }),
  image("dev", { active_sessions: 1, orphaned_sessions: 2, session_count: 3, rtt_ms: 9 }),
  image("staging", { status: "Reconnecting", connection_health: "Unknown", rtt_ms: null }),
];

function fleet() {
  const store = createStore(initialState());
  store.dispatch({ type: "link", link: "connected" });
  store.dispatch({ type: "snapshot-requested" });
  store.dispatch({ type: "snapshot", images: IMAGES });
  return store;
}

const devSessions = () => [
  session("s-active", "dev", { client_id: "alice", session_name: "refactoring" }),
  session("s-orphan1", "dev", { client_id: "bob", is_active: false, orphaned_at: "2026-12-01T09:55:00.000Z" }),
  session("s-orphan2", "dev", { client_id: "carol", is_active: false, orphaned_at: "2026-12-01T09:58:00.000Z" }),
];

function show(over: Partial<PanelViewProps> & { actions?: RecordedActions } = {}) {
  const actions = over.actions ?? recordedActions(devSessions());
  const app = render(
    createElement(PanelView, {
      store: fleet(),
      width: 120,
      height: 30,
      color: false,
      server: "nats://h:4222",
      clientId: "tester",
      now: () => NOW,
      ...over,
      actions,
    }),
  );
  mounted.push(app);
  return { app, actions };
}

const pause = (ms = 40): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const screen = (app: { lastFrame: () => string | undefined }): string => app.lastFrame() ?? "";

/** Presses each key in turn, giving the panel time to draw after each. */
async function press(app: { stdin: { write: (s: string) => void } }, ...keys: string[]): Promise<void> {
  for (const key of keys) {
    app.stdin.write(key);
    await pause();
  }
  await pause(150); // the detail pane asks 100 ms after the selection settles
}

/** The image rows: from under the table's head to the next pane's title. */
const rows = (app: { lastFrame: () => string | undefined }): string[] => {
  const lines = screen(app).split("\n").slice(2);
  return lines.slice(
    0,
    lines.findIndex((l) => l.startsWith("──")),
  );
};

/** Waits for the screen to show `pattern` (the detail pane loads after the selection settles). */
async function until(app: { lastFrame: () => string | undefined }, pattern: RegExp): Promise<string> {
  await expect.poll(() => screen(app), { timeout: 3000, interval: 30 }).toMatch(pattern);
  return screen(app);
}

const ENTER = "\r";
const ESC = "\u001B";
const type = (text: string): string[] => [...text];

describe("panel keys", () => {
  it("panel keys - the detail pane shows the selected image's sessions, stats and recent events", async () => {
    const { app } = show();
    await press(app, "j");
    const text = await until(app, /CLIENT/);
    expect(text).toMatch(/── dev · dev image · tcp:\/\/127\.0\.0\.1:5555 ─/);
    expect(text).toMatch(/3 sessions \(1 active, 2 orphaned\) · last activity - · seen 30s ago · Healthy 9\.0 ms/);
    expect(text).toMatch(/CLIENT\s+NAME\s+CREATED\s+ACTIVITY\s+STATE\s+ID/);
    expect(text).toMatch(/alice\s+refactoring\s+1h ago\s+30m ago\s+active\s+s-active/);
    expect(text).toMatch(/bob\s+-\s+1h ago\s+30m ago\s+orphaned\s+s-orphan/);
    await press(app, "j");
    expect(screen(app)).toMatch(/── staging ·/);
    expect(screen(app)).toMatch(/no sessions/);
  });

  it("panel keys - / filters the rows by a regex, ! inverts, a bad regex is refused in place, Esc backs out", async () => {
    const { app } = show();
    await press(app, "/", ...type("dev|stag"), ENTER);
    expect(screen(app)).toMatch(/2 of 3 images \(filter \/dev\|stag\/\)/);
    expect(screen(app)).not.toMatch(/^[› ] build/m);
    await press(app, "/", "\u0015", ...type("!dev"), ENTER);
    expect(screen(app)).toMatch(/^[› ] build/m);
    expect(screen(app)).not.toMatch(/^[› ] dev\s/m);
    await press(app, "/", "\u0015", ...type("(["), ENTER);
    expect(screen(app)).toMatch(/filter images .*: \(\[█\s+✖ not a regular expression/);
    await press(app, ESC);
    expect(screen(app)).toMatch(/2 of 3 images \(filter \/!dev\/\)/);
    await press(app, "/", "\u0015", ENTER);
    expect(screen(app)).toMatch(/ 3 images/);
  });

  it("panel keys - o sorts by the next column (status: Failed first), O reverses; the column is marked", async () => {
    const { app } = show();
    const order = (): string[] => rows(app).map((row) => row.slice(2).split(" ")[0] ?? "");
    expect(order()).toEqual(["build", "dev", "staging"]);
    await press(app, "o");
    expect(screen(app)).toMatch(/STATUS▲/);
    expect(order()).toEqual(["build", "staging", "dev"]);
    await press(app, "O");
    expect(screen(app)).toMatch(/STATUS▼/);
    expect(order()).toEqual(["dev", "staging", "build"]);
    expect(visibleImages(IMAGES, null, { key: "rtt", descending: false }).map((i) => i.image_id)).toEqual([
      "dev",
      "build",
      "staging",
    ]);
    expect(parseFilter("  ")).toEqual({ filter: null });
  });

  it("panel keys - ? shows every key, the caller's too; Esc closes it", async () => {
    const extra = { key: "K", help: "kill the image's simulated process", run: () => Promise.resolve("killed") };
    const { app } = show({ extraKeys: [extra] });
    await press(app, "?");
    const text = screen(app);
    for (const key of ["j k ↑ ↓", "/", "x", "n", "w", "e", "c", "d", "r", "C", "Esc", "q"]) {
      expect(text).toMatch(new RegExp(`^\\s+${key.replace(/[?/↑↓]/g, "\\$&")}\\s{2,}\\S`, "m"));
    }
    expect(text).toMatch(/K\s+kill the image's simulated process/);
    await press(app, ESC);
    expect(screen(app)).not.toMatch(/── keys/);
    expect(screen(app)).toMatch(/── build ·/);
  });

  it("panel keys - x, n, e, r and w act on the selected image and show their outcome", async () => {
    const { app, actions } = show();
    await press(app, "j", "x");
    expect(screen(app)).toMatch(/switch to dev, client id: tester█/);
    await press(app, ENTER);
    await press(app, "n", ...type("spike"), ENTER);
    await press(app, "e", ...type("3 + 4"), ENTER);
    expect(screen(app)).toMatch(/── ✔ result on dev ─/);
    expect(screen(app)).toMatch(/=> 3 \+ 4/);
    await press(app, ENTER, "k", "r");
    await press(app, "j");
    await until(app, /orphaned\s+s-orphan/);
    await press(app, "w", "j", ENTER);
    expect(actions.calls).toEqual([
      "switch tester dev",
      "create tester dev spike",
      "evaluate tester dev 3 + 4",
      "retry build",
      "close s-orphan1",
    ]);
    expect(screen(app)).toMatch(/✔ done: close s-orphan1/);
  });

  it("panel keys - d asks before disconnecting; c then offers the image disconnected; Esc backs out of both", async () => {
    const { app, actions } = show();
    await press(app, "j", "d");
    expect(screen(app)).toMatch(/disconnect dev\?/);
    await press(app, ESC);
    expect(actions.calls).toEqual([]);
    await press(app, "d", "y");
    expect(actions.calls).toEqual(["disconnect dev"]);
    await press(app, "c");
    expect(screen(app)).toMatch(/connect image: <id> <address> \[name\]: dev tcp:\/\/127\.0\.0\.1:5555 dev image█/);
    await press(app, ESC, "c", ENTER);
    expect(actions.calls).toEqual(["disconnect dev", "connect dev tcp://127.0.0.1:5555 dev image"]);
  });

  it("panel keys - cleanup: the preview lists the orphans, y removes exactly those, the result says so", async () => {
    const { app, actions } = show();
    await press(app, "j");
    await until(app, /orphaned\s+s-orphan/);
    await press(app, "C");
    let text = await until(app, /would be removed/);
    expect(text).toMatch(/clean up dev: these 2 orphaned session\(s\) would be removed/);
    expect(text).toMatch(/s-orphan1\s+bob\s+-\s+orphaned since 5m ago/);
    expect(text).toMatch(/s-orphan2\s+carol/);
    expect(text).not.toMatch(/s-active\s+alice\s+refactoring\s+active$/m);
    await press(app, ESC);
    expect(actions.calls).toEqual([]);
    await press(app, "C", "y");
    text = screen(app);
    expect(actions.calls).toEqual(["cleanup dev s-orphan1,s-orphan2"]);
    expect(text).toMatch(/── ✔ removed 2 ─/);
    expect(text).toMatch(/removed s-orphan1\n\s*removed s-orphan2/);
    await press(app, ENTER);
    expect(screen(app)).toMatch(/── dev ·/);
    await press(app, "C");
    expect(screen(app)).toMatch(/no orphaned sessions: nothing to remove/);
    await press(app, ENTER);
    expect(actions.calls).toHaveLength(1);
  });

  it("panel keys - the events pane marks replayed events, f filters it, and a caller's key acts on the selection", async () => {
    const seen: string[] = [];
    const extra = {
      key: "K",
      help: "kill",
      run: (i: { image_id: string } | null) => {
        seen.push(i?.image_id ?? "none");
        return Promise.resolve(`killed ${i?.image_id ?? "none"}`);
      },
    };
    const store = fleet();
    store.dispatch({ type: "replayed", events: [statusEvent("dev", "Connected", 1, "/stui/old")] });
    store.dispatch({ type: "event", event: statusEvent("staging", "Reconnecting", 1) });
    store.dispatch({ type: "event", event: statusEvent("build", "Failed", 2) });
    const { app } = show({ store, extraKeys: [extra] });
    await press(app);
    let text = screen(app);
    expect(text).toMatch(/── events 3 · ↺ 1 replayed from before ─/);
    expect(text).toMatch(/^↺ 10:00:01 #1 image\.status\.changed dev: Connected → Connected$/m);
    expect(text).toMatch(/^ {2}10:00:01 #1 image\.status\.changed staging/m);
    await press(app, "f", ...type("staging"), ENTER);
    text = screen(app);
    expect(text).toMatch(/── events 1 of 3 \(filter \/staging\/\)/);
    const eventsPane = text.slice(text.indexOf("── events"));
    expect(eventsPane).not.toMatch(/image\.status\.changed build/);
    expect(eventsPane).toMatch(/image\.status\.changed staging/);
    await press(app, "K");
    expect(seen).toEqual(["build"]);
    expect(screen(app)).toMatch(/✔ killed build/);
  });
});
