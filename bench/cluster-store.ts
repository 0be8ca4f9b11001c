/**
 * The `cluster` benchmark's store figures, each beside the file store in the same run:
 *
 * 2. `CreateSession` through an in-process `SessionManager` with one `stui image-sim`, over the
 *    file store, `KvSessionStore` R1 on a private nats-server and R3 on the 3-node cluster; with
 *    the bare image round trip and each store's bare `put` as baselines.
 * 3. Loading 100 000 sessions: `KvSessionStore.open` + `load()` into a fresh instance, against
 *    `FileSessionStore.open` + `load()` of the same records (bench/sessions-scale.ts's).
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { encodeStoredSession } from "../src/adapters/file-store/envelope.js";
import { FileSessionStore } from "../src/adapters/file-store/store.js";
import { encodeKey } from "../src/adapters/kv-store/bucket.js";
import { KvSessionStore } from "../src/adapters/kv-store/store.js";
import { waitForStatus } from "../src/actors/image-connection.js";
import { SessionManager } from "../src/actors/session-manager.js";
import { UNREVISIONED, type SessionStore } from "../src/ports.js";
import { startImageSim } from "../test/helpers/image-sim.js";
import { startNatsServer } from "../test/helpers/nats-server.js";
import type { Cleanups } from "./cluster-support.js";
import { fmt, percentile, printTable } from "./harness.js";
import { timedFileLoad } from "./sessions-scale.js";
import {
  benchSession,
  connectionOf,
  deadAddress,
  LATENCY_HEADER,
  latencyRow,
  QUIET_POLICY,
  quietLogger,
  removeDir,
  sampleCreate,
  seedStore,
  type CreateSample,
  type Sim,
} from "./sessions-support.js";

const CREATE_N = Number(process.env["STUI_BENCH_CLUSTER_CREATE_N"] ?? 500);
const LOAD_N = Number(process.env["STUI_BENCH_CLUSTER_LOAD_N"] ?? 100_000);
const PUT_N = Math.min(LOAD_N, Number(process.env["STUI_BENCH_CLUSTER_PUT_N"] ?? 5000));
const ROUNDS = 5;

interface Variant {
  readonly name: string;
  readonly manager: SessionManager;
  /** Its own store of the same kind, for the bare `put` baseline (not watched by the manager). */
  readonly putStore: SessionStore;
  readonly sample: CreateSample;
}

/** A manager over a fresh store opened by `open`, connected to the sim, and a second store for `put`. */
async function variant(
  name: string,
  sim: Sim,
  open: (role: "create" | "put") => Promise<SessionStore>,
): Promise<Variant> {
  const store = await open("create");
  const manager = await SessionManager.start({
    store,
    images: [{ id: "live", address: sim.endpoint }],
    logger: quietLogger,
    policy: QUIET_POLICY,
  });
  try {
    await waitForStatus(connectionOf(manager, "live"), "Connected", 15_000);
  } catch (error) {
    await manager.stop();
    throw error;
  }
  return { name, manager, putStore: await open("put"), sample: { create: [], image: [], put: [] } };
}

/** `CREATE_N` sequential `CreateSession`s per store, the stores taking turns in `ROUNDS` rounds. */
async function createSessions(root: string, sim: Sim, r1: NatsConnection, r3: NatsConnection): Promise<void> {
  const kv = (nc: NatsConnection, replicas: number) => (role: string) =>
    KvSessionStore.open({ nc, replicas, bucketPrefix: `bench_${role}`, logger: quietLogger });
  const variants: Variant[] = [];
  try {
    variants.push(
      await variant("FileSessionStore, fsync-ed files", sim, (role) =>
        FileSessionStore.open({ dir: path.join(root, `create-${role}`), logger: quietLogger }),
      ),
    );
    variants.push(await variant("KvSessionStore, one nats-server, R1", sim, kv(r1, 1)));
    variants.push(await variant("KvSessionStore, 3-node cluster, R3", sim, kv(r3, 3)));
    for (const v of variants) await sampleCreate(v.manager, "live", v.putStore, 50, 1); // warm-up
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const v of variants) {
        const s = await sampleCreate(v.manager, "live", v.putStore, Math.ceil(CREATE_N / ROUNDS), 1);
        v.sample.create.push(...s.create);
        v.sample.image.push(...s.image);
        v.sample.put.push(...s.put);
      }
    }
    console.log(
      `\ncluster: CreateSession through SessionManager.handle, one image-sim, ${CREATE_N} sequential per store, ` +
        `the stores taking turns in ${ROUNDS} rounds`,
    );
    printTable([
      LATENCY_HEADER,
      latencyRow(
        "image create_session via requestImage (baseline)",
        variants.flatMap((v) => v.sample.image),
      ),
      ...variants.map((v) => latencyRow(`store.put alone, ${v.name}`, v.sample.put)),
      ...variants.map((v) => latencyRow(`CreateSession, ${v.name}`, v.sample.create)),
    ]);
    const [file, ...others] = variants;
    if (file === undefined) return;
    const vs = (v: Variant, p: number): string =>
      `${fmt(percentile(v.sample.create, p) / percentile(file.sample.create, p), 2)}x`;
    printTable([
      ["CreateSession vs the file store", "p50", "p99"],
      ...others.map((v) => [v.name, vs(v, 50), vs(v, 99)]),
    ]);
  } finally {
    for (const v of variants) {
      await v.manager.stop();
      await v.putStore.close();
    }
  }
}

/**
 * `LOAD_N` sessions into the bucket `bench_load_sessions`: the first `PUT_N` through
 * `KvSessionStore.put` (16 at a time; the store makes them one after the other), the rest
 * published straight into the bucket's stream as put writes them (the envelope naming the
 * sequence the message gets, checked by the server with `expect.lastSequence`), 256 in flight.
 */
async function writeKvSessions(nc: NatsConnection, address: string): Promise<{ putMs: number; publishMs: number }> {
  const writer = await KvSessionStore.open({ nc, replicas: 1, bucketPrefix: "bench_load", logger: quietLogger });
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = next++; i < PUT_N; i = next++) await writer.put(benchSession(i, address), UNREVISIONED);
    }),
  );
  const putMs = performance.now() - t0;
  await writer.close();

  const jsm = await jetstreamManager(nc);
  const js = jsm.jetstream();
  const stream = "KV_bench_load_sessions";
  const base = (await jsm.streams.info(stream)).state.last_seq;
  const t1 = performance.now();
  const inFlight = new Set<Promise<void>>();
  for (let i = PUT_N; i < LOAD_N; i += 1) {
    const session = benchSession(i, address);
    const seq = base + 1 + (i - PUT_N);
    const published = js
      .publish(`$KV.bench_load_sessions.${encodeKey(session.session_id)}`, encodeStoredSession(seq, session), {
        expect: { lastSequence: seq - 1 },
      })
      .then((ack) => {
        if (ack.seq !== seq) throw new Error(`session ${i}: stored at ${ack.seq}, expected ${seq}`);
      })
      .finally(() => inFlight.delete(published));
    inFlight.add(published);
    if (inFlight.size >= 256) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const publishMs = performance.now() - t1;
  const messages = (await jsm.streams.info(stream)).state.messages;
  if (messages !== LOAD_N) throw new Error(`${stream} holds ${messages} messages, expected ${LOAD_N}`);
  return { putMs, publishMs };
}

/** `KvSessionStore.open` + `load()` on a fresh connection, as a starting instance does. */
async function timedKvLoad(url: string): Promise<{ ms: number; records: number }> {
  const nc = await connect({ servers: url, name: "stui-bench-kv-load" });
  try {
    const t0 = performance.now();
    const store = await KvSessionStore.open({ nc, bucketPrefix: "bench_load", logger: quietLogger });
    const loaded = await store.load();
    const ms = performance.now() - t0;
    if (loaded.problems.length > 0) console.log(`(the KV load reported ${loaded.problems.length} problems)`);
    await store.close();
    return { ms, records: loaded.records.length };
  } finally {
    await nc.close();
  }
}

async function loadSessions(root: string, nc: NatsConnection, url: string): Promise<void> {
  const address = await deadAddress();
  const { putMs, publishMs } = await writeKvSessions(nc, address);
  const dir = path.join(root, "load-file");
  const seedMs = await seedStore(dir, LOAD_N, address);
  spawnSync("sync"); // the seed's dirty pages written back now, not during the timed reads
  const seconds = (ms: number): string => `${fmt(ms / 1000, 2)} s`;
  console.log(
    `\ncluster: ${fmt(LOAD_N)} sessions written to KV (R1, one nats-server): ${fmt(PUT_N)} through KvSessionStore.put ` +
      `in ${seconds(putMs)} (${fmt((PUT_N / putMs) * 1000, 0)}/s, so ${fmt(LOAD_N)} that way would take about ` +
      `${seconds((LOAD_N / PUT_N) * putMs)}), the other ${fmt(LOAD_N - PUT_N)} published straight into the bucket's ` +
      `stream in the same envelope, 256 in flight, in ${seconds(publishMs)}; the file store seeded with the same ` +
      `records in ${seconds(seedMs)} (its snapshot file written directly, then sync(1))`,
  );
  // Two rounds in opposite orders, so that neither side always runs first.
  const file: { ms: number; records: number }[] = [];
  const kv: { ms: number; records: number }[] = [];
  kv.push(await timedKvLoad(url));
  file.push(await timedFileLoad(dir));
  file.push(await timedFileLoad(dir));
  kv.push(await timedKvLoad(url));
  await removeDir(dir);
  const best = (runs: readonly { ms: number }[]): number => Math.min(...runs.map((r) => r.ms));
  const row = (name: string, runs: readonly { ms: number; records: number }[]): string[] => [
    name,
    fmt(runs[0]?.records ?? 0),
    runs.map((r) => seconds(r.ms)).join(" / "),
    fmt((LOAD_N / best(runs)) * 1000, 0),
  ];
  printTable([
    ["", "records", "time (round 1 / 2)", "records/s (best)"],
    row("FileSessionStore.open + load() (baseline)", file),
    row("KvSessionStore.open + load(), fresh connection", kv),
  ]);
  console.log(`best KV / best file: ${fmt(best(kv) / best(file), 2)}x`);
}

/** Parts 2 and 3, on a private nats-server (R1) and the running cluster (R3). */
export async function storeFigures(root: string, clusterUrls: readonly string[], cleanups: Cleanups): Promise<void> {
  const single = await startNatsServer();
  cleanups.add(() => single.stop());
  const sim = await startImageSim();
  cleanups.add(async () => void (await sim.stop()));
  const r1 = await connect({ servers: single.url, name: "stui-bench-r1" });
  cleanups.add(() => r1.close());
  const r3 = await connect({ servers: [...clusterUrls], name: "stui-bench-r3" });
  cleanups.add(() => r3.close());
  await createSessions(root, sim, r1, r3);
  await loadSessions(root, r1, single.url);
}
