/** The page's pure parts besides the store: log filters, snapshot diff marks, the chart's graph. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { activeStateIds, eventLabel, isStateNodeJson, machineGraph } from "../inspector/src/chart-model.js";
import { jsonTree } from "../inspector/src/json-diff.js";
import type { JsonNode } from "../inspector/src/json-diff.js";
import { entryKind, entryType, lastMatching, noFilter } from "../inspector/src/log-filter.js";
import { decodeRecording } from "../inspector/src/protocol.js";
import { InspectorStore } from "../inspector/src/store.js";

const decoded = decodeRecording(readFileSync(new URL("fixtures/inspector/capture.json", import.meta.url), "utf8"));
if (!decoded.ok) throw new Error(decoded.error);
const messages = decoded.value;
const first = messages[0];
if (first?.type !== "attached") throw new Error("the fixture starts with attached");
const imageMachine = first.body.definitions["image"];

function loaded(): InspectorStore {
  const store = new InspectorStore();
  for (const message of messages) store.ingest(message);
  return store;
}

function changedPaths(node: JsonNode, into: string[] = []): string[] {
  if (node.changed) into.push(node.path);
  if (node.kind === "branch") for (const child of node.children) changedPaths(child, into);
  return into;
}

describe("inspector model", () => {
  it("inspector log filter - the actor filter matches the path, so alpha keeps alpha and its link", () => {
    const store = loaded();
    const rows = lastMatching((i) => store.entry(i), 0, store.length - 1, { ...noFilter, actor: "alpha" }, 300);
    expect(rows.length).toBe(300);
    expect(new Set(rows.map((entry) => entry.path))).toEqual(
      new Set(["test/sessionManager/alpha", "test/sessionManager/alpha/link"]),
    );
  });

  it("inspector log filter - type and text filters, newest last, bounded", () => {
    const store = loaded();
    const linkUp = lastMatching((i) => store.entry(i), 0, store.length - 1, { ...noFilter, type: "link.up" }, 300);
    expect(linkUp.length).toBeGreaterThan(0);
    expect(linkUp.every((entry) => entryType(entry) === "LINK.UP")).toBe(true);
    const text = lastMatching((i) => store.entry(i), 0, store.length - 1, { ...noFilter, text: "ping-alpha-9" }, 300);
    expect(text.length).toBeGreaterThan(0);
    expect(text.every((entry) => JSON.stringify(entry.item).includes("ping-alpha-9"))).toBe(true);
    const all = lastMatching((i) => store.entry(i), 0, store.length - 1, noFilter, 50);
    expect(all.length).toBe(50);
    expect(all.at(-1)).toBe(store.entry(store.length - 1));
    expect(entryKind(store.entry(0) ?? all[0]!)).toBe("attached");
  });

  it("inspector snapshot diff - changed leaves and new keys are marked, nothing without a previous", () => {
    const before = { status: "active", value: { Connected: "pinging" }, context: { attempt: 0, list: [1] } };
    const after = {
      status: "active",
      value: { Reconnecting: "backoff" },
      context: { attempt: 1, list: [1, 2], extra: {} },
    };
    expect(changedPaths(jsonTree(after, before)).sort()).toEqual(
      ["$.context.attempt", "$.context.extra", "$.context.list.1", "$.value.Reconnecting"].sort(),
    );
    const tree = jsonTree(after, before);
    expect(tree.kind === "branch" && tree.changedWithin).toBe(true);
    expect(changedPaths(jsonTree(after, null))).toEqual([]);
    expect(changedPaths(jsonTree(after, after))).toEqual([]);
  });

  it("inspector chart - the image machine as a compound ELK graph with labelled edges", () => {
    if (!isStateNodeJson(imageMachine)) throw new Error("no image definition");
    const graph = machineGraph(imageMachine);
    const image = graph.children?.[0];
    expect(image?.id).toBe("image");
    expect(image?.children?.map((child) => child.id)).toContain("image.Connected");
    const labels = (graph.edges ?? []).map((edge) => edge.labels?.[0]?.text);
    expect(labels).toContain("LINK.UP");
    expect(labels).toContain("after pingInterval");
    expect(eventLabel("xstate.after.connectTimeout.image.Unknown")).toBe("after connectTimeout");
  });

  it("inspector chart - active state ids follow the definition from the state value", () => {
    if (!isStateNodeJson(imageMachine)) throw new Error("no image definition");
    expect([...activeStateIds(imageMachine, { Connected: "pinging" })]).toEqual([
      "image",
      "image.Connected",
      "image.Connected.pinging",
    ]);
    expect([...activeStateIds(imageMachine, "Failed")]).toEqual(["image", "image.Failed"]);
    expect([...activeStateIds(imageMachine, { Nowhere: "x" })]).toEqual(["image"]);
  });
});
