/**
 * `npm run bench -- sessions`: what the session manager costs per request and per session, each
 * figure beside a baseline measured in the same run.
 *
 * 1. `CreateSession` through `SessionManager.handle` with the durable FileSessionStore and a real
 *    `stui image-sim`, against the bare image round trip and the bare fsync-ed `store.put`;
 *    sequential latency and throughput at concurrency 16.
 * 2. `SwitchImageContext` latency (target: 100 ms p99), against the bare fsync-ed `putContext`.
 * 3. `ListImageSessions` over 10 000 stored sessions, against `JSON.stringify` of the records.
 * 4. and 5. (bench/sessions-scale.ts): loading a 100 000-session store, heap per session and per
 *    image actor.
 */
import path from "node:path";
import { performance } from "node:perf_hooks";
import { FileSessionStore } from "../src/adapters/file-store/store.js";
import { requestImage, waitForStatus } from "../src/actors/image-connection.js";
import { SessionManager } from "../src/actors/session-manager.js";
import { UNREVISIONED } from "../src/ports.js";
import { fmt, percentile, printTable } from "./harness.js";
import { loadAndMemory } from "./sessions-scale.js";
import {
  benchSession,
  connectionOf,
  deadAddress,
  IMAGE_IDS,
  LATENCY_HEADER,
  latencyRow,
  logCounts,
  makeTempRoot,
  QUIET_POLICY,
  quietLogger,
  removeDir,
  printCreateSample,
  sampleCreate,
  seedStore,
  startSim,
  stopSims,
  type Sim,
} from "./sessions-support.js";

const N = Number(process.env.STUI_BENCH_SESSIONS_N ?? 500);
const LIST_N = Number(process.env.STUI_BENCH_SESSIONS_LIST_N ?? 10_000);
const LIST_RUNS = 50;
const CONCURRENCY = 16;

/** The manager over a fresh FileSessionStore in `dir`, with `live` at the sim. */
async function managerAt(dir: string, sim: Sim, dead: string | null): Promise<SessionManager> {
  const store = await FileSessionStore.open({ dir, logger: quietLogger });
  const images = [
    { id: "live", address: sim.endpoint },
    ...(dead === null ? [] : IMAGE_IDS.map((id) => ({ id, address: dead }))),
  ];
  const manager = await SessionManager.start({ store, images, logger: quietLogger, policy: QUIET_POLICY });
  await waitForStatus(connectionOf(manager, "live"), "Connected", 15_000);
  return manager;
}

/** Runs `op` `total` times, `CONCURRENCY` at a time; operations per second. */
async function throughput(total: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < total; i = next++) await op(i);
    }),
  );
  return (total / (performance.now() - t0)) * 1000;
}

async function createSessions(root: string, sim: Sim): Promise<void> {
  const manager = await managerAt(path.join(root, "create"), sim, null);
  const putStore = await FileSessionStore.open({ dir: path.join(root, "put-baseline"), logger: quietLogger });
  try {
    await sampleCreate(manager, "live", putStore, 50, 1); // warm-up
    const sample = await sampleCreate(manager, "live", putStore, N);
    const p50 = (s: readonly number[]): number => percentile(s, 50);
    console.log(`\nsessions: CreateSession, ${N} sequential each, interleaved in 5 rounds (FileSessionStore, ${root})`);
    printTable([
      LATENCY_HEADER,
      latencyRow("image create_session via requestImage (baseline)", sample.image),
      latencyRow("store.put, fsync-ed (baseline)", sample.put),
      latencyRow("CreateSession through handle", sample.create),
    ]);
    const rest = p50(sample.create) - p50(sample.image) - p50(sample.put);
    console.log(
      `p50: CreateSession = image ${fmt(p50(sample.image), 3)} + put ${fmt(p50(sample.put), 3)} ` +
        `+ ${fmt(rest, 3)} ms of the manager's own work (${fmt((p50(sample.create) / (p50(sample.image) + p50(sample.put))) * 100, 0)} % of the two baselines)`,
    );

    const ref = connectionOf(manager, "live");
    const rows: { image: number[]; put: number[]; create: number[] } = { image: [], put: [], create: [] };
    for (let round = 0; round < 3; round++) {
      rows.image.push(await throughput(N, () => requestImage(ref, "create_session", { client_id: "bench-baseline" })));
      rows.put.push(
        await throughput(N, (i) =>
          putStore.put({ ...benchSession(i, sim.endpoint), session_id: `c16-${round}-${i}` }, UNREVISIONED),
        ),
      );
      rows.create.push(
        await throughput(N, async (i) => {
          const r = await manager.handle({
            type: "CreateSession",
            image_id: "live",
            client_id: `bench-${i % CONCURRENCY}`,
            session_name: null,
            description: null,
          });
          if (r.type !== "SessionCreated") throw new Error(`CreateSession: ${JSON.stringify(r)}`);
        }),
      );
    }
    const median = (s: readonly number[]): string => fmt(percentile(s, 50), 0);
    console.log(`\nsessions: concurrency ${CONCURRENCY}, ${N} operations per round, median of 3 interleaved rounds`);
    printTable([
      ["", "ops/s"],
      ["image create_session via requestImage (baseline)", median(rows.image)],
      ["store.put, fsync-ed (baseline)", median(rows.put)],
      ["CreateSession through handle (sessions/s)", median(rows.create)],
    ]);
    console.log(`(the manager now holds ${fmt(manager.sessionCount)} sessions)`);
  } finally {
    await manager.stop();
    await putStore.close();
  }
}

async function switchContexts(root: string, sim: Sim): Promise<void> {
  const manager = await managerAt(path.join(root, "switch"), sim, await deadAddress());
  const contextStore = await FileSessionStore.open({ dir: path.join(root, "context-baseline"), logger: quietLogger });
  const samples = { put: [] as number[], switch: [] as number[] };
  try {
    for (let i = -20; i < N; i++) {
      const client = `client-${(i >> 1) & 7}`; // each client alternates, so every switch writes
      const to = i % 2 === 0 ? "live" : "img-0";
      const t0 = performance.now();
      await contextStore.putContext(client, to, null);
      const t1 = performance.now();
      const r = await manager.handle({
        type: "SwitchImageContext",
        client_id: client,
        from_image_id: null,
        to_image_id: to,
        preserve_context: true,
      });
      const t2 = performance.now();
      if (r.type !== "ContextSwitched") throw new Error(`SwitchImageContext: ${JSON.stringify(r)}`);
      if (i < 0) continue; // warm-up
      samples.put.push(t1 - t0);
      samples.switch.push(t2 - t1);
    }
    console.log(
      `\nsessions: SwitchImageContext, ${N} sequential, 8 clients alternating between two images (target: p99 < 100 ms)`,
    );
    printTable([
      LATENCY_HEADER,
      latencyRow("store.putContext, fsync-ed (baseline)", samples.put),
      latencyRow("SwitchImageContext through handle", samples.switch),
    ]);
  } finally {
    await manager.stop();
    await contextStore.close();
  }
}

async function listSessions(root: string, sim: Sim): Promise<void> {
  const dir = path.join(root, "list");
  const dead = await deadAddress();
  const seedMs = await seedStore(dir, LIST_N, dead);
  const records = Array.from({ length: LIST_N }, (_, i) => benchSession(i, dead));
  const manager = await managerAt(dir, sim, dead);
  const putStore = await FileSessionStore.open({ dir: path.join(root, "put-baseline-list"), logger: quietLogger });
  try {
    const all = { type: "ListImageSessions", image_id: null, include_disconnected: true } as const;
    const one = { type: "ListImageSessions", image_id: "img-1", include_disconnected: true } as const;
    const count = async (request: typeof all | typeof one): Promise<number> => {
      const r = await manager.handle(request);
      if (r.type !== "ImageSessions") throw new Error(`ListImageSessions: ${JSON.stringify(r)}`);
      return r.sessions.length;
    };
    const sizes = [await count(all), await count(one)];
    const samples = { all: [] as number[], one: [] as number[], stringify: [] as number[] };
    for (let run = -5; run < LIST_RUNS; run++) {
      const t0 = performance.now();
      await manager.handle(all);
      const t1 = performance.now();
      await manager.handle(one);
      const t2 = performance.now();
      JSON.stringify(records);
      const t3 = performance.now();
      if (run < 0) continue; // warm-up
      samples.all.push(t1 - t0);
      samples.one.push(t2 - t1);
      samples.stringify.push(t3 - t2);
    }
    console.log(
      `\nsessions: ListImageSessions over ${fmt(LIST_N)} stored sessions on 3 images (seeded in ${fmt(seedMs, 0)} ms ` +
        `by writing its snapshot directly), ${LIST_RUNS} runs each, interleaved`,
    );
    printTable([
      LATENCY_HEADER,
      latencyRow(`JSON.stringify of the ${fmt(LIST_N)} records (baseline)`, samples.stringify),
      latencyRow(`all images, include_disconnected (${fmt(sizes[0] ?? 0)} listed)`, samples.all),
      latencyRow(`image_id img-1 (${fmt(sizes[1] ?? 0)} listed)`, samples.one),
    ]);
    const ratio = (s: readonly number[]): string => `${fmt(percentile(s, 50) / percentile(samples.stringify, 50), 2)}x`;
    console.log(`p50 vs JSON.stringify: all ${ratio(samples.all)}, one image ${ratio(samples.one)}`);

    const sample = await sampleCreate(manager, "live", putStore, 100);
    printCreateSample(`sessions: CreateSession with ${fmt(LIST_N)} sessions already in the registry`, sample);
  } finally {
    await manager.stop();
    await putStore.close();
    await removeDir(dir);
  }
}

export async function run(): Promise<void> {
  const root = await makeTempRoot();
  // Ctrl-C arrives more than once (from the terminal and relayed by npm and tsx): clean up once,
  // and keep the handler so a second signal cannot end the process before that is done.
  let cleaning = false;
  const interrupted = (): void => {
    if (cleaning) return;
    cleaning = true;
    void stopSims().then(() => removeDir(root).finally(() => process.exit(130)));
  };
  process.on("SIGINT", interrupted);
  try {
    const sim = await startSim();
    console.log(`sessions: stui image-sim pid ${sim.pid} at ${sim.endpoint}; temp dir ${root}`);
    await createSessions(root, sim);
    await switchContexts(root, sim);
    await listSessions(root, sim);
    await loadAndMemory(root, sim);
    if (logCounts.warn + logCounts.error > 0) {
      console.log(`\n(the service logged ${logCounts.warn} warnings and ${logCounts.error} errors during the run)`);
    }
  } finally {
    process.off("SIGINT", interrupted);
    await stopSims();
    await removeDir(root);
  }
}
