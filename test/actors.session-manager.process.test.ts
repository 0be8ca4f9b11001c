/**
 * The session manager as a process of its own (test/fixtures/manager-process.ts) over a real file
 * store and real image-sims: restarted, it finds every session and every client's context again;
 * SIGKILLed in the middle of 1000 session writes, every acknowledged session is found intact.
 */
import { readdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { FileSessionStore } from "../src/adapters/file-store/store.js";
import { decodeResponse, encodeRequest, type Request, type Response, type ResponseOf } from "../src/protocol/index.js";
import { startImageSim } from "./helpers/image-sim.js";
import { cleanupManagers, makeStoreDir } from "./helpers/manager.js";
import { spawnNode, stopAllProcesses, type ProcessHandle } from "./helpers/processes.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/manager-process.ts", import.meta.url));

afterEach(async () => {
  await stopAllProcesses();
  await cleanupManagers();
});

async function startManagerProcess(dir: string, images: Record<string, string>): Promise<ProcessHandle> {
  const args = Object.entries(images).map(([id, address]) => `${id}=${address}`);
  const child = spawnNode(["--import", "tsx", FIXTURE, dir, ...args]);
  await child.waitForLine(/^ready$/, { timeoutMs: 30_000 });
  return child;
}

async function ask(child: ProcessHandle, request: Request): Promise<Response> {
  const since = child.lineCount();
  child.send(encodeRequest(request));
  const [, body = ""] = await child.waitForLine(/^reply (.*)$/, { since });
  const decoded = decodeResponse(body);
  if (!decoded.ok) throw decoded.error;
  return decoded.value;
}

async function created(child: ProcessHandle, image_id: string, client_id: string): Promise<string> {
  const response = await ask(child, {
    type: "CreateSession",
    image_id,
    client_id,
    session_name: `${client_id} on ${image_id}`,
    description: null,
  });
  if (response.type !== "SessionCreated") throw new Error(JSON.stringify(response));
  return response.session.session_id;
}

const listAll = async (child: ProcessHandle): Promise<ResponseOf<"ImageSessions">> =>
  (await ask(child, {
    type: "ListImageSessions",
    image_id: null,
    include_disconnected: true,
  })) as ResponseOf<"ImageSessions">;

describe("session manager process - restart and crash", () => {
  it("finds every session and every client's context again after it is killed and restarted", async () => {
    const dev = await startImageSim();
    const staging = await startImageSim();
    const dir = await makeStoreDir();
    const images = { dev: dev.endpoint, staging: staging.endpoint };
    const first = await startManagerProcess(dir, images);
    await created(first, "dev", "alice");
    await created(first, "staging", "alice");
    const bobs = await created(first, "staging", "bob");
    await ask(first, { type: "CloseSession", session_id: bobs, save_state: true });
    for (const [client_id, to_image_id] of [
      ["alice", "dev"],
      ["bob", "staging"],
      ["carol", "dev"],
      ["carol", "staging"],
    ] as const) {
      const switched = await ask(first, {
        type: "SwitchImageContext",
        client_id,
        from_image_id: null,
        to_image_id,
        preserve_context: true,
      });
      expect(switched.type).toBe("ContextSwitched");
    }
    const before = await listAll(first);
    expect(before.sessions).toHaveLength(3);

    // No goodbye: every answer above was durable before it was sent.
    first.signal("SIGKILL");
    await first.exited;

    const second = await startManagerProcess(dir, images);
    const after = await listAll(second);
    expect(after.sessions).toEqual(before.sessions);
    for (const [client_id, current, other] of [
      ["alice", "dev", "staging"],
      ["bob", "staging", "dev"],
      ["carol", "staging", "dev"],
    ] as const) {
      const stale = await ask(second, {
        type: "SwitchImageContext",
        client_id,
        from_image_id: other,
        to_image_id: other,
        preserve_context: true,
      });
      expect(stale).toMatchObject({ type: "Error", code: "Conflict", details: { current_image_id: current } });
      const evaluated = await ask(second, { type: "Evaluate", client_id, image_id: null, code: "1 + 1" });
      expect(evaluated).toMatchObject({ type: "EvaluationResult", image_id: current, result: "2" });
    }
    await expect(second.stop()).resolves.toMatchObject({ code: 0 });
  });

  it("keeps every acknowledged session intact when killed during a burst of 1000 session writes", async () => {
    const dev = await startImageSim();
    const dir = await makeStoreDir();
    const child = await startManagerProcess(dir, { dev: dev.endpoint });
    child.send("burst 1000 dev alice 16");
    const acked = new Set<string>();
    await child.waitForLine(/^ack /, { since: 0 });
    while (acked.size < 300) {
      await child.waitForLine(/^ack /, { since: child.lineCount() });
      for (const line of child.lines()) if (line.startsWith("ack ")) acked.add(line.slice(4));
    }
    child.signal("SIGKILL");
    await child.exited;
    for (const line of child.lines()) if (line.startsWith("ack ")) acked.add(line.slice(4));
    expect(child.lines().some((l) => l === "burst-done")).toBe(false);
    expect(child.lines().filter((l) => l.startsWith("refused"))).toEqual([]);

    const store = await FileSessionStore.open({ dir });
    const loaded = await store.load();
    await store.close();
    expect(loaded.problems).toEqual([]);
    const stored = new Map(loaded.records.map((r) => [r.session.session_id, r]));
    for (const id of acked) {
      expect(stored.get(id)?.session).toMatchObject({
        session_id: id,
        client_id: "alice",
        image_id: "dev",
        is_active: true,
      });
      expect(stored.get(id)?.revision).toBe(1);
    }
    // Nothing half-written: only the snapshot and the log are left (a cut-off last line was cut back).
    expect((await readdir(dir)).sort()).toEqual(["log.jsonl", "snapshot.jsonl"]);

    const restarted = await startManagerProcess(dir, { dev: dev.endpoint });
    expect((await listAll(restarted)).sessions).toHaveLength(loaded.records.length);
  });
});
