/**
 * The image connection under the faults of docs/reliability.md that need more than a signal: a
 * blackholed link (a relay that drops every byte and keeps the connections open), a mute image
 * under a flood of requests, and a bounded soak of kills and pauses under load. Real image-sim
 * processes, real ZeroMQ sockets; each test prints what it measured.
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, describe, expect, it } from "vitest";
import { ImageRequestError } from "../src/errors.js";
import { startImageConnection, waitForStatus, type ImageConnection } from "../src/actors/image-connection.js";
import type { ConnectionPolicy } from "../src/machines/connection-policy.js";
import type { ConnectionStatus, ErrorCode } from "../src/protocol/index.js";
import { startImageSim, type ImageSimHandle } from "./helpers/image-sim.js";
import { TEST_CONNECTION } from "./helpers/manager.js";
import { stopAllProcesses } from "./helpers/processes.js";
import { startTcpRelay, type TcpRelay } from "./helpers/tcp-relay.js";

const connections: ImageConnection[] = [];
const relays: TcpRelay[] = [];
afterEach(async () => {
  for (const c of connections.splice(0)) c.stop();
  for (const r of relays.splice(0)) await r.close();
  await stopAllProcesses();
});

function connect(imageId: string, address: string, policy: Partial<ConnectionPolicy> = {}): ImageConnection {
  const conn = startImageConnection({ imageId, address, policy: { ...TEST_CONNECTION, ...policy } });
  connections.push(conn);
  return conn;
}

const reach = (conn: ImageConnection, status: ConnectionStatus, timeoutMs = 15_000): Promise<number> =>
  waitForStatus(conn.actor, status, timeoutMs);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The code a request failed with, or "ok". */
async function outcome(request: Promise<unknown>): Promise<ErrorCode | "ok"> {
  try {
    await request;
    return "ok";
  } catch (error) {
    if (error instanceof ImageRequestError) return error.code;
    throw error;
  }
}

const pendingOf = (conn: ImageConnection): number => conn.actor.getSnapshot().context.pending.size;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** `heapUsed` after two full collections. */
function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe("image connection faults - blackhole, mute image, soak", () => {
  it("a blackholed link is detected by its heartbeats: Reconnecting, its request failed, not waiting out the deadline; restored, Connected again", async () => {
    const sim = await startImageSim();
    const relay = await startTcpRelay(sim.endpoint);
    relays.push(relay);
    const conn = connect("dev", relay.endpoint);
    await reach(conn, "Connected");
    expect(await conn.request("evaluate", { code: "3 + 4" })).toMatchObject({ result: "7" });

    const t0 = performance.now();
    relay.blackhole();
    const request = outcome(conn.request("evaluate", { code: "3 + 4" }, { timeoutMs: 30_000 }));
    await reach(conn, "Reconnecting");
    const detectedMs = performance.now() - t0;
    expect(await request).toBe("ImageUnavailable");
    const failedMs = performance.now() - t0;
    // Heartbeats every 100 ms, a 500 ms timeout: far from the request's 30 s deadline.
    expect(detectedMs).toBeLessThan(5_000);
    // While the route is dead, the attempts' handshakes never complete: it does not flap to Connected.
    await sleep(1_500);
    expect(conn.status().status).not.toBe("Connected");

    const t1 = performance.now();
    relay.restore();
    await reach(conn, "Connected");
    const recoveredMs = performance.now() - t1;
    expect(await conn.request("evaluate", { code: "3 + 4" })).toMatchObject({ result: "7" });
    expect(pendingOf(conn)).toBe(0);
    console.log(
      `blackhole: Reconnecting after ${detectedMs.toFixed(0)} ms, its pending request failed after ${failedMs.toFixed(0)} ms ` +
        `(deadline 30 000 ms); restored → Connected in ${recoveredMs.toFixed(0)} ms`,
    );
  });

  it("a mute image under a flood of 5 000 requests: at most maxInFlight wait, the rest are refused at once, each waiting one times out at its deadline, and it recovers once restarted", async () => {
    const sim = await startImageSim({ extraArgs: ["--delay-ms", "3600000"] });
    const conn = connect("dev", sim.endpoint, { maxInFlight: 256 });
    await reach(conn, "Connected");
    const lag = monitorEventLoopDelay({ resolution: 10 });
    const heap0 = heapAfterGc();
    lag.enable();
    const t0 = performance.now();
    const settledAt: number[] = [];
    const flood = Array.from({ length: 5_000 }, (_, i) =>
      outcome(conn.request("evaluate", { code: `${i}` }, { timeoutMs: 2_000 })).then((code) => {
        settledAt.push(performance.now() - t0);
        return code;
      }),
    );
    const codes = await Promise.all(flood);
    lag.disable();
    const counts = new Map<string, number>();
    for (const code of codes) counts.set(code, (counts.get(code) ?? 0) + 1);
    const timedOut = counts.get("Timeout") ?? 0;
    const overloaded = counts.get("Overloaded") ?? 0;
    expect(timedOut + overloaded).toBe(5_000);
    expect(timedOut).toBeGreaterThan(0);
    expect(timedOut).toBeLessThanOrEqual(256);
    const refusedBy = [...settledAt].sort((a, b) => a - b)[overloaded - 1] ?? 0;
    const lastAt = Math.max(...settledAt);
    expect(lastAt).toBeGreaterThanOrEqual(1_900); // the waiting ones, at their deadline
    expect(lastAt).toBeLessThan(10_000);
    expect(pendingOf(conn)).toBeLessThanOrEqual(1); // the system_info asked on connecting (pings are the link's)
    expect(conn.status().status).toBe("Connected"); // heartbeats still answered: the link is up
    await expect.poll(() => conn.status().connection_health, { timeout: 10_000 }).toBe("Critical");
    const heapGrowth = heapAfterGc() - heap0;

    // It answers one request at a time, and is asleep on the first: it comes back when restarted.
    sim.kill("SIGKILL");
    await sim.stop();
    await startImageSim({ bind: sim.endpoint });
    await expect.poll(() => conn.status().connection_health, { timeout: 10_000 }).toBe("Healthy");
    expect(await conn.request("evaluate", { code: "3 + 4" })).toMatchObject({ result: "7" });
    console.log(
      `mute image flood: 5 000 requests, ${overloaded} refused Overloaded (all within ${refusedBy.toFixed(0)} ms), ` +
        `${timedOut} timed out at their 2 000 ms deadline (the last at ${lastAt.toFixed(0)} ms); event-loop lag p99 ` +
        `${(lag.percentile(99) / 1e6).toFixed(1)} ms; heap ${(heapGrowth / 1024).toFixed(0)} KiB more after it; health Critical, then Healthy once restarted`,
    );
  });

  it("a bounded soak of kills and pauses under load: every request settles, only with ImageUnavailable or Timeout, and every image ends Connected with nothing pending", async () => {
    const soakMs = Number(process.env["STUI_SOAK_MS"] ?? 20_000);
    const sims: ImageSimHandle[] = await Promise.all([0, 1, 2].map(() => startImageSim()));
    const conns = sims.map((s, i) => connect(`img-${i}`, s.endpoint, { requestTimeoutMs: 2_000 }));
    await Promise.all(conns.map((c) => reach(c, "Connected")));
    const heap0 = heapAfterGc();
    const counts = new Map<string, number>();
    let stop = false;
    const load = conns.map(async (conn, i) => {
      for (let n = 0; !stop; n += 1) {
        const code = await outcome(conn.request("evaluate", { code: `${i} + ${n}` }));
        counts.set(code, (counts.get(code) ?? 0) + 1);
        if (code !== "ok") await sleep(20); // not a hot loop while the image is away
      }
    });
    const faults = { kills: 0, pauses: 0 };
    const recoveries = { kill: [] as number[], pause: [] as number[] };
    const deadline = performance.now() + soakMs;
    for (let round = 0; performance.now() < deadline; round += 1) {
      const i = round % sims.length;
      const sim = sims[i];
      const conn = conns[i];
      if (sim === undefined || conn === undefined) break;
      const t0 = performance.now();
      const kind = round % 2 === 0 ? "kill" : "pause";
      if (kind === "kill") {
        sim.kill("SIGKILL");
        await sim.stop();
        sims[i] = await startImageSim({ bind: sim.endpoint });
        faults.kills += 1;
      } else {
        sim.kill("SIGSTOP");
        await sleep(1_200); // past the 500 ms heartbeat timeout
        sim.kill("SIGCONT");
        faults.pauses += 1;
      }
      await reach(conn, "Connected");
      recoveries[kind].push(performance.now() - t0);
      await sleep(300);
    }
    stop = true;
    await Promise.all(load);
    await Promise.all(conns.map((c) => reach(c, "Connected")));
    const codes = [...counts.keys()].sort();
    for (const code of codes) expect(["ImageUnavailable", "Timeout", "ok"]).toContain(code);
    expect(counts.get("ok") ?? 0).toBeGreaterThan(100);
    for (const conn of conns) expect(pendingOf(conn) <= 1).toBe(true); // at most the system_info asked on connecting
    const heapGrowth = heapAfterGc() - heap0;
    const spread = (ms: number[]): string => {
      const sorted = [...ms].sort((a, b) => a - b);
      return `p50 ${(sorted[Math.floor(sorted.length / 2)] ?? 0).toFixed(0)} ms, max ${(sorted.at(-1) ?? 0).toFixed(0)} ms`;
    };
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    console.log(
      `soak: ${(soakMs / 1000).toFixed(0)} s, 3 images, ${faults.kills} SIGKILLs and ${faults.pauses} 1.2 s SIGSTOPs; ` +
        `${total} requests settled (${[...counts].map(([k, v]) => `${v} ${k}`).join(", ")}); Connected again after a ` +
        `SIGKILL and restart: ${spread(recoveries.kill)}; after a SIGSTOP (from the signal, pause included): ${spread(recoveries.pause)}; ` +
        `heap ${(heapGrowth / 1024).toFixed(0)} KiB more after it`,
    );
  }, 120_000);
});
