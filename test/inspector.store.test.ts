import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { decodeRecording } from "../inspector/src/protocol.js";
import type { InspectRecord, ServerMessage } from "../inspector/src/protocol.js";
import { actorStateText } from "../inspector/src/state.js";
import { InspectorStore } from "../inspector/src/store.js";
import type { StoreView } from "../inspector/src/store.js";

const fixture = readFileSync(new URL("fixtures/inspector/capture.json", import.meta.url), "utf8");

function fixtureMessages(): ServerMessage[] {
  const decoded = decodeRecording(fixture);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value;
}

function loaded(options?: ConstructorParameters<typeof InspectorStore>[0]): InspectorStore {
  const store = new InspectorStore(options);
  for (const message of fixtureMessages()) store.ingest(message);
  return store;
}

/** name → dotted state, for one instance of a view. */
function states(view: StoreView, instance = "test"): Record<string, string> {
  const actors = view.instances.find((item) => item.id === instance)?.actors ?? [];
  return Object.fromEntries(actors.map((actor) => [actor.path, actorStateText(actor)]));
}

/** The timeline index of the first record matching `predicate`. */
function indexWhere(store: InspectorStore, predicate: (record: InspectRecord) => boolean): number {
  for (let index = 0; index < store.length; index++) {
    const item = store.entry(index)?.item;
    if (item?.kind === "record" && predicate(item.record)) return index;
  }
  throw new Error("no such record");
}

/** beta's value first changes with a microstep, before its snapshot follows. */
const isBetaValue = (value: string) => (record: InspectRecord) =>
  (record.kind === "snapshot" || record.kind === "microstep") &&
  record.actor_id === "x:4" &&
  JSON.stringify(record.kind === "snapshot" ? record.snapshot.value : record.value).includes(value);

const isBetaSnapshot = (value: string) => (record: InspectRecord) =>
  record.kind === "snapshot" && record.actor_id === "x:4" && JSON.stringify(record.snapshot.value).includes(value);

describe("inspector store", () => {
  it("inspector store - the fixture's tree: session manager, images, links, with dotted states", () => {
    const store = loaded();
    const view = store.viewAt(null);
    expect(view.instances.map((instance) => instance.id)).toEqual(["test"]);
    const actors = view.instances[0]?.actors ?? [];
    expect(actors[0]).toMatchObject({ actorId: "x:0", name: "x:0", machineId: "sessionManager", depth: 0 });
    const alpha = actors.find((actor) => actor.name === "alpha");
    expect(alpha).toMatchObject({ actorId: "x:1", machineId: "image", depth: 1, path: "test/sessionManager/alpha" });
    expect(actors.find((actor) => actor.parentId === "x:1")).toMatchObject({ name: "link", depth: 2 });
    const byPath = states(view);
    expect(byPath["test/sessionManager"]).toBe("running");
    expect(byPath["test/sessionManager/alpha"]).toBe("Connected.pinging");
    expect(byPath["test/sessionManager/beta"]).toBe("Connected.pinging");
    expect(byPath["test/sessionManager/alpha/link"]).toBe("active");
    // beta's first links stopped when its image was killed; only the current one is in the tree
    expect(actors.filter((actor) => actor.parentId === "x:4").map((actor) => actor.actorId)).toEqual(["x:12"]);
    expect(store.counters()).toMatchObject({ records_ingested: 1412, records_retained: 1412, actors: 10, dropped: 0 });
  });

  it("inspector store - an earlier cursor shows beta Connected before the kill and Reconnecting after", () => {
    const store = loaded();
    const reconnecting = indexWhere(store, isBetaValue("Reconnecting"));
    expect(states(store.viewAt(reconnecting - 1))["test/sessionManager/beta"]).toBe("Connected.pinging");
    expect(states(store.viewAt(reconnecting))["test/sessionManager/beta"]).toBe("Reconnecting.backoff");
    expect(states(store.viewAt(0))["test/sessionManager/beta"]).toBe("Connected.pinging");
    // seeking backwards and forwards gives the same answers (checkpoints are not disturbed)
    expect(states(store.viewAt(reconnecting))).toEqual(states(loaded().viewAt(reconnecting)));
  });

  it("inspector store - the snapshot view keeps the previous snapshot to mark changes against", () => {
    const store = loaded();
    const beta = store.viewAt(indexWhere(store, isBetaSnapshot("Reconnecting"))).instances[0]?.actors[4];
    expect(beta?.name).toBe("beta");
    expect(beta?.previous?.value).toEqual({ Connected: "pinging" });
    expect(beta?.snapshot?.value).toEqual({ Reconnecting: "backoff" });
  });

  it("inspector store - beyond the cap the oldest records are folded into the base state", () => {
    const store = new InspectorStore({ cap: 300, checkpointEvery: 50 });
    const messages = fixtureMessages();
    for (const message of messages) store.ingest(message);
    const counters = store.counters();
    expect(counters.records_ingested).toBe(1412);
    expect(counters.records_retained).toBeLessThanOrEqual(350);
    expect(counters.records_retained).toBeGreaterThanOrEqual(300);
    expect(store.length).toBeLessThan(700);
    // the live view is the same as without a cap, and the oldest retained point still has every actor
    expect(states(store.viewAt(null))).toEqual(states(loaded().viewAt(null)));
    expect(Object.keys(states(store.viewAt(store.firstIndex))).length).toBeGreaterThanOrEqual(10);
  });

  it("inspector store - a seq gap becomes a gap entry and counts as dropped", () => {
    const messages = fixtureMessages();
    const store = new InspectorStore();
    for (const message of messages) {
      if (message.type !== "batch") {
        store.ingest(message);
        continue;
      }
      const records = message.body.records.filter((record) => record.seq < 100 || record.seq > 104);
      store.ingest({ ...message, body: { ...message.body, records } });
    }
    const gaps = [];
    for (let index = 0; index < store.length; index++) {
      const item = store.entry(index)?.item;
      if (item?.kind === "gap") gaps.push(item);
    }
    expect(gaps).toEqual([{ kind: "gap", from: 100, to: 104 }]);
    expect(store.counters().dropped).toBe(5);
  });

  it("inspector store - a change record applies to the actor's previous context; scrubbing back shows it before", () => {
    const [attached] = fixtureMessages();
    if (attached?.type !== "attached") throw new Error("the fixture starts with attached");
    const store = loaded();
    const last = store.viewAt(null).instances[0]?.actors.find((a) => a.name === "beta");
    if (last === undefined) throw new Error("no beta in the fixture");
    const before = last.snapshot?.context as Record<string, unknown>;
    const at = attached.at + 60_000;
    const seq = Math.max(
      ...fixtureMessages().flatMap((m) => (m.type === "batch" ? m.body.records.map((r) => r.seq) : [])),
    );
    store.ingest({
      type: "batch",
      at,
      body: {
        instance_id: "test",
        dropped: 0,
        records: [
          {
            seq: seq + 1,
            at: new Date(at).toISOString(),
            actor_id: last.actorId,
            kind: "change",
            event_type: "LINK.REPLY",
            status: "active",
            value: { Connected: "pinging" },
            children: [],
            set: { attempt: 42 },
            patch: { image: { set: { rtt_ms: 7 } } },
            unset: ["reason"],
          },
        ],
      },
    });
    const now = store.viewAt(null).instances[0]?.actors.find((a) => a.name === "beta");
    const context = now?.snapshot?.context as Record<string, unknown>;
    expect(context["attempt"]).toBe(42);
    expect((context["image"] as Record<string, unknown>)["rtt_ms"]).toBe(7);
    expect((context["image"] as Record<string, unknown>)["image_id"]).toBe("beta");
    expect(context).not.toHaveProperty("reason");
    expect(context["policy"]).toEqual(before["policy"]);
    expect(now?.previous?.context).toEqual(before);
    const back = store.viewAt(store.length - 2).instances[0]?.actors.find((a) => a.name === "beta");
    expect(back?.snapshot?.context).toEqual(before);
  });

  it("inspector store - a second attached replaces that instance's actors", () => {
    const [attached] = fixtureMessages();
    if (attached?.type !== "attached") throw new Error("the fixture starts with attached");
    const store = loaded();
    const actors = attached.body.actors.filter((actor) => actor.actor_id !== "x:7" && actor.parent_id !== "x:7");
    store.ingest({ ...attached, at: attached.at + 10_000, body: { ...attached.body, sequence: 5000, actors } });
    expect(Object.keys(states(store.viewAt(null)))).not.toContain("test/sessionManager/gamma");
    expect(Object.keys(states(store.viewAt(store.length - 2)))).toContain("test/sessionManager/gamma");
  });

  it("inspector store - listed instances show before they attach; unlisted ones are flagged", () => {
    const store = loaded();
    store.ingest({ type: "instances", instances: ["east-1"] });
    const view = store.viewAt(null);
    expect(view.instances.map((instance) => [instance.id, instance.listed, instance.actors.length])).toEqual([
      ["east-1", true, 0],
      ["test", false, 10],
    ]);
  });

  it("inspector store - gone marks the instance and keeps its actors", () => {
    const store = loaded();
    store.ingest({ type: "gone", at: Date.now(), instance_id: "test" });
    const instance = store.viewAt(null).instances[0];
    expect(instance?.gone).toBe(true);
    expect(instance?.actors.length).toBe(10);
    expect(store.viewAt(store.length - 2).instances[0]?.gone).toBe(false);
  });

  it("inspector store - export then import gives the same view, also after folding", () => {
    for (const options of [{}, { cap: 300, checkpointEvery: 50 }]) {
      const store = loaded(options);
      const recording = store.exportRecording(new Date("2026-12-02T08:00:00Z"));
      expect(recording).toMatchObject({ format: "stui-inspector-recording", version: 1 });
      const decoded = decodeRecording(JSON.stringify(recording));
      if (!decoded.ok) throw new Error(decoded.error);
      const imported = new InspectorStore(options);
      for (const message of decoded.value) imported.ingest(message);
      expect(states(imported.viewAt(null))).toEqual(states(store.viewAt(null)));
      expect(imported.counters().records_retained).toBe(store.counters().records_retained);
      const paths = (s: InspectorStore) => {
        const result = [];
        for (let index = s.firstIndex; index < s.length; index++) {
          const entry = s.entry(index);
          if (entry?.item.kind === "record") result.push(`${entry.item.record.seq} ${entry.path}`);
        }
        return result;
      };
      expect(paths(imported)).toEqual(paths(store));
    }
  });
});
