/**
 * `npm run bench -- nats`: what the service's NATS face costs, each figure beside a baseline
 * measured in the same run on the same nats-server (its own, on a free port, never 4222):
 *
 * 1. The round trip of `get_image_connection_status` (a raw `nc.request` with the JSON body, and
 *    the typed client) against a bare echo responder answering a body of the same size;
 *    sequential and 32 at a time.
 * 2. Requests per second at concurrency 32 for it and for `list_images` (with its own echo).
 * 3. From a state change to a subscriber's receipt of its event: `SwitchImageContext` sent →
 *    `stui.events.context.switched` received, and SIGKILL of an image-sim →
 *    `stui.events.image.<id>.status` with `Reconnecting`; against a bare publish → subscriber.
 *
 * All of it twice: the service in this process (with the client and the echo responder: one
 * event loop for all), then in a child Node process (`node --import tsx`), where a second echo
 * responder runs beside it and is the baseline, having the same process hops. Scale with `STUI_BENCH_NATS_N` (requests per
 * variant and round), `_SWITCHES`, `_KILLS`; `STUI_BENCH_NATS_CHILD=0` skips the child run.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { NatsConnection } from "@nats-io/transport-node";
import { FileSessionStore } from "../src/adapters/file-store/store.js";
import { ServiceUnavailableError, StuiClient } from "../src/client.js";
import { apiSubject, decodeResponse } from "../src/protocol/index.js";
import { startImageSim, type ImageSimHandle } from "../test/helpers/image-sim.js";
import { startNatsServer, type NatsServerHandle } from "../test/helpers/nats-server.js";
import { stopAllProcesses } from "../test/helpers/processes.js";
import { fmt, percentile, printTable } from "./harness.js";
import {
  CHILD_ECHO,
  concurrent,
  connectBare,
  EventWatch,
  LATENCY_HEADER,
  latencyRow,
  ratio,
  roundRobin,
  startChild,
  startEcho,
  startInProcess,
  statusIs,
  type Call,
  type RunningService,
  type ServiceConfig,
} from "./nats-support.js";

const N = Number(process.env.STUI_BENCH_NATS_N ?? 3000);
const SWITCHES = Number(process.env.STUI_BENCH_NATS_SWITCHES ?? 200);
const KILLS = Number(process.env.STUI_BENCH_NATS_KILLS ?? 20);
const CHILD = process.env.STUI_BENCH_NATS_CHILD !== "0";
const CONCURRENCY = 32;
const C_ROUNDS = 5;

const STATUS = apiSubject("GetImageConnectionStatus");
const LIST = apiSubject("ListImages");
const STATUS_BODY = JSON.stringify({ image_id: "live" });

interface Bench {
  /** The temp directory everything is kept in. */
  readonly root: string;
  readonly client: StuiClient;
  /** The echo responder's and the baseline publisher's own connection. */
  readonly bare: NatsConnection;
  readonly watch: EventWatch;
  /** `live` (killed and restarted) and `live-2`. */
  readonly sims: ImageSimHandle[];
}

/** One line of the closing summary per service placement. */
type Summary = Record<string, string>;

interface Variant {
  readonly key: "echo" | "echoChild" | "status" | "typed" | "echoList" | "echoListChild" | "list";
  readonly name: string;
  readonly call: Call;
}

/**
 * Figures 1 and 2: round trips against the echo, sequential and 32 at a time. With the service in
 * a child process there is a second echo there, which has the same process hops as the service.
 */
async function roundTrips(bench: Bench, svc: RunningService, tag: string, summary: Summary): Promise<void> {
  const nc = bench.client.nc;
  let errors = 0;
  // A service error carries the error headers; the typed client decodes it to an `Error`.
  const checked = (ok: boolean): void => void (ok || (errors += 1));
  const statusAnswer = await nc.request(STATUS, STATUS_BODY);
  const listAnswer = await nc.request(LIST, "{}");
  for (const answer of [statusAnswer, listAnswer]) {
    const decoded = decodeResponse(answer.data);
    if (!decoded.ok || decoded.value.type === "Error") throw new Error(`unexpected answer ${answer.string()}`);
  }
  const [statusBytes, listBytes] = [statusAnswer.data.length, listAnswer.data.length];
  const echoStatus = `bench.echo.${tag}.status`;
  const echoList = `bench.echo.${tag}.list`;
  await startEcho(bench.bare, echoStatus, statusAnswer.data);
  await startEcho(bench.bare, echoList, listAnswer.data);
  const child = svc.service === null;
  const here = child ? "in this process" : "beside the service";
  const variants: Variant[] = [
    {
      key: "echo",
      name: `bare echo ${here}, ${statusBytes} B (baseline)`,
      call: () => nc.request(echoStatus, STATUS_BODY),
    },
    ...(child
      ? [
          {
            key: "echoChild",
            name: `bare echo in the child, ${statusBytes} B (baseline)`,
            call: () => nc.request(`${CHILD_ECHO}.${statusBytes}`, STATUS_BODY),
          } as const,
        ]
      : []),
    {
      key: "status",
      name: "get_image_connection_status, raw nc.request",
      call: () => nc.request(STATUS, STATUS_BODY).then((m) => checked(m.headers === undefined)),
    },
    {
      key: "typed",
      name: "get_image_connection_status, typed client",
      call: () => bench.client.getImageConnectionStatus({ image_id: "live" }).then((r) => checked(r.type !== "Error")),
    },
    { key: "echoList", name: `bare echo ${here}, ${listBytes} B (baseline)`, call: () => nc.request(echoList, "{}") },
    ...(child
      ? [
          {
            key: "echoListChild",
            name: `bare echo in the child, ${listBytes} B (baseline)`,
            call: () => nc.request(`${CHILD_ECHO}.${listBytes}`, "{}"),
          } as const,
        ]
      : []),
    {
      key: "list",
      name: "list_images (2 images), raw nc.request",
      call: () => nc.request(LIST, "{}").then((m) => checked(m.headers === undefined)),
    },
  ];
  const seq = new Map(variants.map((v) => [v.key, [] as number[]]));
  const lat = new Map(variants.map((v) => [v.key, [] as number[]]));
  const rates = new Map(variants.map((v) => [v.key, [] as number[]]));
  const get = (m: Map<Variant["key"], number[]>, key: Variant["key"]): number[] => m.get(key) ?? [];
  const baseline = child ? "echoChild" : "echo";
  const listBaseline = child ? "echoListChild" : "echoList";
  const ratios = (m: Map<Variant["key"], number[]>): string =>
    `p50 service/echo${child ? " (the echo in the child)" : ""}: get_image_connection_status raw ` +
    `${ratio(get(m, "status"), get(m, baseline))} (target ≤ 1.5), typed client ` +
    `${ratio(get(m, "typed"), get(m, baseline))}; list_images raw ${ratio(get(m, "list"), get(m, listBaseline))}`;

  const calls = variants.map((v) => v.call);
  await roundRobin(calls, 200); // warm-up
  const taken = await roundRobin(calls, N);
  variants.forEach((v, i) => seq.set(v.key, taken[i] ?? []));
  console.log(`\nnats (service ${svc.where}): sequential round trips, ${N} each, taking turns call by call`);
  printTable([LATENCY_HEADER, ...variants.map((v) => latencyRow(v.name, get(seq, v.key), "µs"))]);
  console.log(ratios(seq));

  for (const v of variants) await concurrent(v.call, 500, CONCURRENCY); // warm-up
  for (let r = 0; r < C_ROUNDS; r++) {
    for (const v of variants) rates.get(v.key)?.push(await concurrent(v.call, N, CONCURRENCY, lat.get(v.key)));
  }
  const rate = (key: Variant["key"]): number => percentile(get(rates, key), 50);
  console.log(
    `\nnats (service ${svc.where}): concurrency ${CONCURRENCY}, ${N} requests per variant and round, ` +
      `${C_ROUNDS} interleaved rounds (req/s: median round)`,
  );
  printTable([
    ["", "req/s", "p50", "p99"],
    ...variants.map((v) => {
      const row = latencyRow(v.name, get(lat, v.key), "µs");
      return [v.name, fmt(rate(v.key)), row[2] ?? "", row[3] ?? ""];
    }),
  ]);
  console.log(
    `${ratios(lat)}\nreq/s service/echo: get_image_connection_status raw ${fmt(rate("status") / rate(baseline), 2)}x, ` +
      `list_images ${fmt(rate("list") / rate(listBaseline), 2)}x`,
  );
  if (errors > 0) console.log(`(${errors} answers were service errors)`);
  const p50 = (m: Map<Variant["key"], number[]>): string =>
    `${fmt(percentile(get(m, "status"), 50) * 1000)} µs (${ratio(get(m, "status"), get(m, baseline))})`;
  Object.assign(summary, {
    "status p50, c=1 (ratio to echo)": p50(seq),
    "status p50, c=32 (ratio to echo)": p50(lat),
    "status req/s, c=32 (echo)": `${fmt(rate("status"))} (${fmt(rate(baseline))})`,
    "list_images req/s, c=32 (echo)": `${fmt(rate("list"))} (${fmt(rate(listBaseline))})`,
  });
}

/**
 * Figure 3a: `SwitchImageContext` sent → its event received, beside a bare publish → receipt, the
 * fsync-ed `putContext` every switch pays, and (in-process) the same switch through `manager.handle`.
 */
async function contextSwitches(bench: Bench, svc: RunningService, tag: string, summary: Summary): Promise<void> {
  const nc = bench.client.nc;
  const store = await FileSessionStore.open({
    dir: path.join(bench.root, `put-baseline-${tag}`),
    logger: { error: () => undefined, warn: () => undefined, info: () => undefined },
  });
  const baselineSubject = `bench.events.baseline`;
  let arrived: (at: number) => void = () => undefined;
  const sub = nc.subscribe(baselineSubject, { callback: () => arrived(performance.now()) });
  await nc.flush();
  const samples = {
    bare: [] as number[],
    put: [] as number[],
    direct: [] as number[],
    reply: [] as number[],
    event: [] as number[],
  };
  const manager = svc.service?.manager;
  let payload = new Uint8Array(0);
  try {
    for (let i = -20; i < SWITCHES; i++) {
      const client = `client-${(i >> 1) & 7}`; // each client alternates, so every switch writes
      const to = i % 2 === 0 ? "live" : "live-2";
      const event = bench.watch.next(
        (e) => e.type === "io.stui.context.switched" && e.data.client_id === client && e.data.to_image_id === to,
      );
      const body = JSON.stringify({ client_id: client, to_image_id: to });
      const t0 = performance.now();
      const reply = await nc.request(apiSubject("SwitchImageContext"), body);
      const t1 = performance.now();
      const got = await event;
      const decoded = decodeResponse(reply.data);
      if (!decoded.ok || decoded.value.type !== "ContextSwitched") throw new Error(`switch: ${reply.string()}`);
      if (payload.length === 0) payload = new TextEncoder().encode(JSON.stringify(got.event));
      const received = new Promise<number>((resolve) => (arrived = resolve));
      const b0 = performance.now();
      bench.bare.publish(baselineSubject, payload);
      const b1 = await received;
      const p0 = performance.now();
      await store.putContext(client, to, null);
      const p1 = performance.now();
      // In-process only: the same switch (another client) through the manager, without NATS.
      const d0 = performance.now();
      const direct = await manager?.handle({
        type: "SwitchImageContext",
        client_id: `direct-${client}`,
        from_image_id: null,
        to_image_id: to,
        preserve_context: true,
      });
      const d1 = performance.now();
      if (direct !== undefined && direct.type !== "ContextSwitched")
        throw new Error(`switch: ${JSON.stringify(direct)}`);
      if (i < 0) continue; // warm-up
      samples.put.push(p1 - p0);
      if (direct !== undefined) samples.direct.push(d1 - d0);
      samples.reply.push(t1 - t0);
      samples.event.push(got.at - t0);
      samples.bare.push(b1 - b0);
    }
  } finally {
    sub.unsubscribe();
    await store.close();
  }
  console.log(
    `\nnats (service ${svc.where}): SwitchImageContext (raw nc.request), ${SWITCHES} sequential, 8 clients ` +
      `alternating between two images, each beside one bare publish of the ${payload.length} B event and one ` +
      `fsync-ed putContext on a store of its own`,
  );
  printTable([
    LATENCY_HEADER,
    latencyRow("bare nc.publish → subscriber (baseline)", samples.bare),
    latencyRow("store.putContext, fsync-ed (baseline)", samples.put),
    ...(samples.direct.length > 0
      ? [latencyRow("the same switch through manager.handle, no NATS", samples.direct)]
      : []),
    latencyRow("request sent → ContextSwitched reply", samples.reply),
    latencyRow("request sent → context.switched event (typed feed)", samples.event),
    latencyRow(
      "event arrival − reply arrival (same switch)",
      samples.event.map((e, i) => e - (samples.reply[i] ?? 0)),
    ),
  ]);
  console.log(`p50 event/bare publish: ${ratio(samples.event, samples.bare)}`);
  summary["switch → event p50 / p99"] =
    `${fmt(percentile(samples.event, 50), 2)} / ${fmt(percentile(samples.event, 99), 2)} ms`;
}

/** Figure 3b: SIGKILL of the `live` sim → `Reconnecting` event; restart → `Connected` event. */
async function kills(bench: Bench, svc: RunningService, summary: Summary): Promise<void> {
  const samples = { emit: [] as number[], event: [] as number[], back: [] as number[] };
  for (let i = 0; i < KILLS; i++) {
    const sim = bench.sims[0];
    if (sim === undefined) throw new Error("no sim");
    const down = bench.watch.next(statusIs("live", "Reconnecting"));
    let emitted = Number.NaN;
    const listener = svc.service?.manager.actor.on("status", ({ data }) => {
      if (data.image_id === "live" && data.status === "Reconnecting") emitted = performance.now();
    });
    const t0 = performance.now();
    sim.kill("SIGKILL");
    const { at } = await down;
    listener?.unsubscribe();
    samples.event.push(at - t0);
    if (!Number.isNaN(emitted)) samples.emit.push(emitted - t0);
    process.stdout.write(i === 0 ? `\nnats: killing the sim ${KILLS} times ` : ".");
    await sim.process.exited;
    const up = bench.watch.next(statusIs("live", "Connected"));
    bench.sims[0] = await startImageSim({ bind: sim.endpoint });
    const ready = performance.now();
    samples.back.push((await up).at - ready);
  }
  console.log(`\nnats (service ${svc.where}): SIGKILL of the image-sim, ${KILLS} trials (backoff 50–300 ms)`);
  printTable([
    LATENCY_HEADER,
    ...(samples.emit.length > 0 ? [latencyRow("SIGKILL → the manager emits Reconnecting", samples.emit)] : []),
    latencyRow("SIGKILL → Reconnecting event (typed feed)", samples.event),
    latencyRow("restarted sim ready → Connected event", samples.back),
  ]);
  summary["SIGKILL → event p50 / p99"] =
    `${fmt(percentile(samples.event, 50), 2)} / ${fmt(percentile(samples.event, 99), 2)} ms`;
}

async function waitConnected(client: StuiClient, ids: readonly string[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (let first = true; ; first = false) {
    if (!first) await new Promise((resolve) => setTimeout(resolve, 50));
    // Until the service's subscriptions have reached the server, there is no responder.
    const r = await client.listImages().catch((error: unknown) => {
      if (error instanceof ServiceUnavailableError && Date.now() < deadline) return null;
      throw error;
    });
    if (r === null) continue;
    const up = r.type === "Images" ? r.images.filter((i) => ids.includes(i.image_id) && i.status === "Connected") : [];
    if (up.length === ids.length) return;
    if (Date.now() > deadline) throw new Error(`images not Connected: ${JSON.stringify(r)}`);
  }
}

async function measure(bench: Bench, svc: RunningService, tag: string): Promise<Summary> {
  const summary: Summary = {};
  const t0 = performance.now();
  await waitConnected(bench.client, ["live", "live-2"]);
  await roundTrips(bench, svc, tag, summary);
  await contextSwitches(bench, svc, tag, summary);
  await kills(bench, svc, summary);
  await waitConnected(bench.client, ["live", "live-2"]);
  console.log(`(${fmt((performance.now() - t0) / 1000, 1)} s; the service logged ${svc.problems()} warnings/errors)`);
  return summary;
}

export async function run(): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), "stui-bench-nats-"));
  let nats: NatsServerHandle | null = null;
  let interrupting = false;
  // `on`, not `once`: Ctrl-C reaches this process twice (from the terminal and relayed by npm and
  // tsx), and with no listener left tsx's own handler would exit before the cleanup is done.
  const interrupted = (signal: NodeJS.Signals): void => {
    if (interrupting) return;
    interrupting = true;
    console.log(`\nnats: ${signal}, stopping the child processes`);
    void stopAllProcesses()
      .then(() => nats?.stop())
      .then(() => rm(root, { recursive: true, force: true }))
      .finally(() => process.exit(130));
  };
  process.on("SIGINT", interrupted);
  process.on("SIGTERM", interrupted);
  const connections: { close(): Promise<void> }[] = [];
  try {
    nats = await startNatsServer();
    const sims = [await startImageSim(), await startImageSim()];
    console.log(
      `nats: nats-server pid ${nats.process().pid} at ${nats.url}; image-sims pid ${sims.map((s) => s.pid).join(", ")}; ` +
        `temp dir ${root}`,
    );
    const client = await StuiClient.connect({ servers: nats.url, timeoutMs: 10_000 });
    connections.push(client);
    const bare = await connectBare(nats.url, "bare");
    connections.push({ close: () => bare.drain() });
    const watch = new EventWatch(client.events({ subject: "stui.events.>" }));
    await client.nc.flush();
    const bench: Bench = { root, client, bare, watch, sims };
    const config = (instanceId: string): ServiceConfig => ({
      instanceId,
      natsUrl: nats?.url ?? "",
      dir: path.join(root, instanceId),
      images: sims.map((s, i) => ({ id: i === 0 ? "live" : "live-2", address: s.endpoint })),
    });
    const placements: { name: string; start: () => Promise<RunningService> }[] = [
      { name: "in-process", start: () => startInProcess(config("inproc")) },
      ...(CHILD ? [{ name: "child process", start: () => startChild(config("child")) }] : []),
    ];
    const summaries: Summary[] = [];
    for (const placement of placements) {
      const svc = await placement.start();
      console.log(`\nnats: service ${svc.where}, FileSessionStore, images live and live-2`);
      try {
        summaries.push(await measure(bench, svc, placement.name.replace(/\W/g, "-")));
      } finally {
        await svc.stop();
      }
    }
    console.log("\nnats: summary (the client always in this process; ratios against the echo beside the service)");
    const keys = Object.keys(summaries[0] ?? {});
    printTable([
      ["", ...placements.map((p) => `service ${p.name}`)],
      ...keys.map((k) => [k, ...summaries.map((s) => s[k] ?? "")]),
    ]);
  } finally {
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
    for (const c of connections) await c.close().catch(() => undefined);
    await stopAllProcesses();
    await nats?.stop();
    await rm(root, { recursive: true, force: true });
  }
}
