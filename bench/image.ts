/**
 * `npm run bench -- image`: how fast a dead or frozen image is noticed, how fast a restarted one is
 * back, what the actor adds to a request's round trip (against a bare DEALER to the same sim, in
 * the same run), and what 1 000 connections cost (CPU, memory, event-loop lag).
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { Dealer } from "zeromq";
import { startImageConnection, waitForStatus, type ImageConnection } from "../src/actors/image-connection.js";
import { DEFAULT_POLICY } from "../src/machines/connection-policy.js";
import { encodeImageRequest, imageRequest, type ConnectionStatus } from "../src/protocol/index.js";
import { startImageSim } from "../test/helpers/image-sim.js";
import { stopAllProcesses } from "../test/helpers/processes.js";
import { fmt, percentile, printTable, SUMMARY_HEADER, summaryRow } from "./harness.js";

const TRIALS = Number(process.env.STUI_BENCH_TRIALS ?? 20);

const reach = (conn: ImageConnection, status: ConnectionStatus, timeoutMs = 30_000): Promise<number> =>
  waitForStatus(conn.actor, status, timeoutMs);

async function detection(): Promise<string[][]> {
  const crash: number[] = [];
  const restart: number[] = [];
  const freeze: number[] = [];
  let sim = await startImageSim();
  // Every trial is a restart; the default intensity (10 a minute) would rightly give up.
  const conn = startImageConnection({ imageId: "bench", address: sim.endpoint, policy: { maxRestarts: 10_000 } });
  try {
    await reach(conn, "Connected");
    for (let i = 0; i < TRIALS; i++) {
      const down = reach(conn, "Reconnecting");
      const t0 = performance.now();
      sim.kill("SIGKILL");
      crash.push((await down) - t0);
      process.stdout.write(".");
      await sim.process.exited;
      const up = reach(conn, "Connected");
      sim = await startImageSim({ bind: sim.endpoint });
      const ready = performance.now();
      restart.push((await up) - ready);
    }
    for (let i = 0; i < TRIALS; i++) {
      const down = reach(conn, "Reconnecting");
      const t0 = performance.now();
      sim.kill("SIGSTOP");
      freeze.push((await down) - t0);
      process.stdout.write(".");
      const up = reach(conn, "Connected");
      sim.kill("SIGCONT");
      await up;
    }
  } finally {
    conn.stop();
    await stopAllProcesses();
  }
  return [
    summaryRow("SIGKILL → Reconnecting", crash),
    summaryRow("SIGSTOP → Reconnecting", freeze),
    summaryRow("restarted sim ready → Connected", restart),
  ];
}

async function roundTrip(): Promise<void> {
  const sim = await startImageSim();
  const conn = startImageConnection({ imageId: "bench", address: sim.endpoint });
  const bare = new Dealer({ linger: 0 });
  bare.connect(sim.endpoint);
  try {
    await reach(conn, "Connected");
    const n = 2000;
    /** Wall time and this process's CPU time (both threads: JavaScript's and libzmq's) per request, in µs. */
    const timed = async (one: (i: number) => Promise<unknown>): Promise<{ wall: number; cpu: number }> => {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await one(i);
      const cpu = process.cpuUsage(cpu0);
      return { wall: ((performance.now() - t0) * 1000) / n, cpu: (cpu.user + cpu.system) / n };
    };
    const viaActor = () => timed(() => conn.request("ping", {}));
    const viaDealer = () =>
      timed(async (i) => {
        await bare.send(["", encodeImageRequest(imageRequest(`b${i}`, "ping", {}))]);
        await bare.receive();
      });
    await viaActor();
    await viaDealer();
    const actor: { wall: number; cpu: number }[] = [];
    const dealer: { wall: number; cpu: number }[] = [];
    for (let round = 0; round < 5; round++) {
      dealer.push(await viaDealer());
      actor.push(await viaActor());
    }
    const median = (xs: readonly { wall: number; cpu: number }[], key: "wall" | "cpu"): number =>
      percentile(
        xs.map((x) => x[key]),
        50,
      );
    const [a, d] = [median(actor, "wall"), median(dealer, "wall")];
    const [ac, dc] = [median(actor, "cpu"), median(dealer, "cpu")];
    console.log(`\nimage: sequential ping round trip, ${n} per round, median of 5 interleaved rounds`);
    printTable([
      ["", "µs per request", "CPU µs per request"],
      ["bare DEALER (baseline)", fmt(d, 1), fmt(dc, 1)],
      ["through the connection actor", fmt(a, 1), fmt(ac, 1)],
      ["ratio", `${fmt(a / d, 2)}x`, `${fmt(ac / dc, 2)}x`],
    ]);
  } finally {
    bare.close();
    conn.stop();
    await stopAllProcesses();
  }
}

async function fleet(): Promise<void> {
  const size = Number(process.env.STUI_BENCH_FLEET ?? 1000);
  const sims = await Promise.all(Array.from({ length: 5 }, () => startImageSim()));
  const heapBefore = process.memoryUsage().heapUsed;
  const rssBefore = process.memoryUsage().rss;
  const conns = Array.from({ length: size }, (_, i) =>
    startImageConnection({ imageId: `img${i}`, address: sims[i % sims.length]?.endpoint ?? "" }),
  );
  try {
    await Promise.all(conns.map((c) => reach(c, "Connected", 60_000)));
    await new Promise((resolve) => setTimeout(resolve, 3000)); // settle: first pings, system_info
    const seconds = 10;
    // What `nodejs_eventloop_lag_p99_seconds` (prom-client's default metrics) reports, over the window.
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const cpu = process.cpuUsage(cpu0);
    lag.disable();
    const wall = (performance.now() - t0) * 1000;
    global.gc?.();
    const heap = process.memoryUsage().heapUsed - heapBefore;
    const rss = process.memoryUsage().rss - rssBefore;
    const healthy = conns.filter((c) => c.status().connection_health === "Healthy").length;
    console.log(`\nimage: ${size} connections (5 sims), ping every ${DEFAULT_POLICY.pingIntervalMs} ms, ${seconds} s`);
    printTable([
      ["", "value"],
      ["CPU of this process (share of one core)", `${fmt(((cpu.user + cpu.system) / wall) * 100, 1)} %`],
      ["heap per connection", `${fmt(heap / size / 1024, 1)} KiB`],
      ["RSS per connection", `${fmt(rss / size / 1024, 1)} KiB`],
      ["event-loop lag p99 / max", `${fmt(lag.percentile(99) / 1e6, 1)} ms / ${fmt(lag.max / 1e6, 1)} ms`],
      ["Healthy at the end", `${healthy} / ${size}`],
    ]);
  } finally {
    for (const c of conns) c.stop();
    await stopAllProcesses();
  }
}

export async function run(): Promise<void> {
  const p = DEFAULT_POLICY;
  console.log(
    `image: default policy: ZMTP heartbeat ${p.heartbeatIntervalMs} ms / timeout ${p.heartbeatTimeoutMs} ms, ` +
      `ping ${p.pingIntervalMs} ms, backoff ${p.backoffBaseMs}–${p.backoffCapMs} ms, connect timeout ${p.connectTimeoutMs} ms`,
  );
  const rows = await detection();
  console.log(`\n\nimage: detection and recovery, ${TRIALS} trials each`);
  printTable([SUMMARY_HEADER, ...rows]);
  await roundTrip();
  await fleet();
}
