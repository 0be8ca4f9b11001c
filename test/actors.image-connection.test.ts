/**
 * The image connection against real `stui image-sim` child processes over real ZeroMQ sockets:
 * crashes, freezes, an image that never returns, long evaluations, broken replies, and a fleet
 * in which one image fails.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ImageRequestError } from "../src/errors.js";
import { startImageConnection, waitForStatus, type ImageConnection } from "../src/actors/image-connection.js";
import type { ConnectionPolicy } from "../src/machines/connection-policy.js";
import type { ConnectionStatus, ImageStatusChanged } from "../src/protocol/index.js";
import { startImageSim } from "./helpers/image-sim.js";
import { TEST_CONNECTION } from "./helpers/manager.js";
import { stopAllProcesses } from "./helpers/processes.js";

const POLICY: Partial<ConnectionPolicy> = { ...TEST_CONNECTION, backoffCapMs: 500, maxMessageBytes: 1024 * 1024 };

const connections: ImageConnection[] = [];
afterEach(async () => {
  for (const c of connections.splice(0)) c.stop();
  await stopAllProcesses();
});

function connect(imageId: string, address: string, policy: Partial<ConnectionPolicy> = {}) {
  const conn = startImageConnection({ imageId, address, policy: { ...POLICY, ...policy } });
  connections.push(conn);
  const changes: ImageStatusChanged[] = [];
  conn.actor.on("status", ({ data }) => changes.push(data));
  return { conn, changes, statuses: () => changes.map((c) => c.status) };
}

/** Generous bounds: the machine is shared. */
const reach = (conn: ImageConnection, status: ConnectionStatus, timeoutMs = 15_000): Promise<number> =>
  waitForStatus(conn.actor, status, timeoutMs);

const statusOf = (conn: ImageConnection): ConnectionStatus => conn.status().status;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("image connection - against a real image-sim", () => {
  it("connects, learns the image's name and version, and evaluates", async () => {
    const sim = await startImageSim({ imageVersion: "Pharo-13.0.0" });
    const { conn } = connect("dev", sim.endpoint);
    await reach(conn, "Connected");
    expect(await conn.request("evaluate", { code: "3 + 4 * 2" })).toMatchObject({ result: "14" });
    await expect.poll(() => conn.status().image_version).toBe("Pharo-13.0.0");
    await expect.poll(() => conn.status().connection_health).toBe("Healthy");
  });

  it("SIGKILL mid-request fails the request with ImageUnavailable, then reconnects to a new sim on the same address", async () => {
    const sim = await startImageSim();
    const { conn, statuses } = connect("dev", sim.endpoint);
    await reach(conn, "Connected");
    await sim.control("delay 3000");
    const pending = conn.request("evaluate", { code: "1 + 1" });
    await sleep(200);
    sim.kill("SIGKILL");
    const error: unknown = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageRequestError);
    expect((error as ImageRequestError).code).toBe("ImageUnavailable");
    await reach(conn, "Reconnecting");
    await startImageSim({ bind: sim.endpoint });
    await reach(conn, "Connected");
    expect(statuses()).toEqual(["Connected", "Reconnecting", "Connected"]);
    expect(await conn.request("evaluate", { code: "2 + 2" })).toMatchObject({ result: "4" });
  });

  it("a request whose signal is already aborted rejects with its reason and sends nothing to the image", async () => {
    const sim = await startImageSim();
    const { conn } = connect("dev", sim.endpoint);
    await reach(conn, "Connected");
    // Were the request sent, the sim would exit without replying.
    await sim.control("exit-on create_session");
    const controller = new AbortController();
    const reason = new Error("the caller gave up");
    controller.abort(reason);
    const error: unknown = await conn
      .request("create_session", { client_id: "alice" }, { signal: controller.signal })
      .catch((e: unknown) => e);
    expect(error).toBe(reason);
    expect([...conn.actor.getSnapshot().context.pending.values()].map((p) => p.origin)).not.toContain("client");
    await sleep(200);
    expect(sim.process.exit()).toBeUndefined();
    const listed = await conn.request("list_client_sessions", { client_id: "alice" });
    expect(listed.sessions).toEqual([]);
    expect(statusOf(conn)).toBe("Connected");
  });

  it("aborting a request the image is slow to answer rejects at once; its late answer is dropped and the next request works", async () => {
    const sim = await startImageSim();
    const { conn, statuses } = connect("dev", sim.endpoint);
    await reach(conn, "Connected");
    await sim.control("delay 500");
    const controller = new AbortController();
    const pending = conn.request("evaluate", { code: "1 + 1" }, { signal: controller.signal });
    const settled = pending.then(
      () => ({ at: performance.now(), error: undefined }),
      (error: unknown) => ({ at: performance.now(), error }),
    );
    await sleep(100);
    const abortedAt = performance.now();
    controller.abort();
    const { at, error } = await settled;
    expect(at - abortedAt).toBeLessThan(50);
    expect(error).toBeInstanceOf(DOMException);
    expect((error as DOMException).name).toBe("AbortError");
    await sim.control("delay 0");
    // The sim answers the aborted request first (after its delay), then this one.
    expect(await conn.request("evaluate", { code: "2 + 2" })).toMatchObject({ result: "4" });
    const clients = () => [...conn.actor.getSnapshot().context.pending.values()].filter((p) => p.origin === "client");
    expect(clients()).toEqual([]);
    expect(statuses()).toEqual(["Connected"]);
  });

  it("SIGSTOP past the heartbeat timeout is detected, and SIGCONT recovers", async () => {
    const sim = await startImageSim();
    const { conn, statuses } = connect("dev", sim.endpoint);
    await reach(conn, "Connected");
    sim.kill("SIGSTOP");
    await reach(conn, "Reconnecting");
    sim.kill("SIGCONT");
    await reach(conn, "Connected");
    expect(statuses()).toEqual(["Connected", "Reconnecting", "Connected"]);
  });

  it("an image that never returns ends Failed, with no socket, timer or child left behind", async () => {
    const sim = await startImageSim();
    const { conn, statuses } = connect("dev", sim.endpoint, {
      maxRestarts: 3,
      connectTimeoutMs: 300,
      backoffBaseMs: 20,
      backoffCapMs: 50,
    });
    await reach(conn, "Connected");
    const stoppedAt = performance.now();
    await sim.stop();
    await reach(conn, "Failed");
    console.log(
      `never returns: Failed ${(performance.now() - stoppedAt).toFixed(0)} ms after the stop (3 restarts allowed)`,
    );
    expect(statuses()).toEqual(["Connected", "Reconnecting", "Failed"]);
    const snapshot = conn.actor.getSnapshot();
    expect(Object.keys(snapshot.children)).toEqual([]);
    expect(snapshot.context.pending.size).toBe(0);
    const resources = process.getActiveResourcesInfo().length;
    await sleep(1000);
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(resources);
    await expect(conn.request("ping", {})).rejects.toMatchObject({ code: "ImageUnavailable" });
  });

  it("a 10 s evaluation with pings running never makes the image look dead", async () => {
    const sim = await startImageSim();
    const { conn, statuses } = connect("dev", sim.endpoint);
    await reach(conn, "Connected");
    await sim.control("block 10 Smalltalk longRunning");
    let missed = 0;
    const healths: string[] = [];
    conn.actor.on("health", ({ data }) => healths.push(data.health));
    const watch = conn.actor.subscribe((snapshot) => (missed = Math.max(missed, snapshot.context.misses)));
    const started = Date.now();
    const result = await conn.request("evaluate", { code: "Smalltalk longRunning" }, { timeoutMs: 30_000 });
    const tookMs = Date.now() - started;
    expect(tookMs).toBeGreaterThanOrEqual(9_000);
    expect(result.result_type).toBeDefined();
    expect(statuses()).toEqual(["Connected"]);
    watch.unsubscribe();
    // Pings went unanswered meanwhile: the health said so, the status did not.
    expect(missed).toBeGreaterThan(1);
    expect(healths).toContain("Warning");
    console.log(
      `busy image: the 10 s evaluation answered after ${tookMs} ms, up to ${missed} pings in a row missed (health ${healths.join(", ")}), status Connected throughout`,
    );
  }, 60_000);

  it("garbage replies reset the link without crashing, and it recovers when they stop", async () => {
    const sim = await startImageSim();
    const { conn } = connect("dev", sim.endpoint);
    await reach(conn, "Connected");
    let t0 = performance.now();
    await sim.control("garbage on");
    await reach(conn, "Reconnecting");
    const resetMs = performance.now() - t0;
    expect(conn.actor.getSnapshot().context.stats.faults).toBeGreaterThan(0);
    t0 = performance.now();
    await sim.control("garbage off");
    await reach(conn, "Connected");
    console.log(
      `garbage replies: link reset ${resetMs.toFixed(0)} ms after they began, Connected ${(performance.now() - t0).toFixed(0)} ms after they stopped`,
    );
  });

  it("an oversized reply drops the link at the socket, and it recovers when they stop", async () => {
    const sim = await startImageSim();
    const { conn } = connect("dev", sim.endpoint);
    await reach(conn, "Connected");
    let t0 = performance.now();
    await sim.control(`oversized ${2 * 1024 * 1024}`);
    await reach(conn, "Reconnecting");
    const resetMs = performance.now() - t0;
    t0 = performance.now();
    await sim.control("oversized off");
    await reach(conn, "Connected");
    console.log(
      `oversized replies (2 MiB, limit 1 MiB): link reset ${resetMs.toFixed(0)} ms after they began, Connected ${(performance.now() - t0).toFixed(0)} ms after they stopped`,
    );
  });

  it("three images where one fails: the other two are unaffected", async () => {
    const sims = await Promise.all([startImageSim(), startImageSim(), startImageSim()]);
    const fleet = sims.map((sim, i) => connect(`img${i}`, sim.endpoint));
    await Promise.all(fleet.map(({ conn }) => reach(conn, "Connected")));
    sims[1]?.kill("SIGKILL");
    await reach(fleet[1]?.conn as ImageConnection, "Reconnecting");
    await sleep(1000);
    for (const i of [0, 2]) {
      const member = fleet[i];
      if (member === undefined) throw new Error("fleet member missing");
      expect(member.statuses()).toEqual(["Connected"]);
      expect(await member.conn.request("evaluate", { code: `${i} + 1` })).toMatchObject({ result: String(i + 1) });
    }
  });
});
