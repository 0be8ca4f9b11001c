/**
 * The `sessions` benchmark at scale: loading a 100 000-session store (against plain readFile +
 * JSON.parse of the same snapshot, line by line), migrating the old one-file-per-record layout, the heap a session costs in the manager (against the same
 * records parsed into a plain Map), `CreateSession` with that many sessions in the registry, and
 * the heap per image actor (against standalone image connections).
 */
import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { FileSessionStore } from "../src/adapters/file-store/store.js";
import { SNAPSHOT_FILE } from "../src/adapters/file-store/journal.js";
import { startImageConnection, waitForStatus } from "../src/actors/image-connection.js";
import { SessionManager } from "../src/actors/session-manager.js";
import { DEFAULT_POLICY } from "../src/machines/connection-policy.js";
import { fmt, printTable } from "./harness.js";
import {
  connectionOf,
  deadAddress,
  gcAvailable,
  IMAGE_IDS,
  QUIET_POLICY,
  quietLogger,
  removeDir,
  printCreateSample,
  sampleCreate,
  seedLegacyStore,
  seedStore,
  settledHeap,
  type Sim,
} from "./sessions-support.js";

const LOAD_N = Number(process.env.STUI_BENCH_SESSIONS_LOAD_N ?? 100_000);
const IMAGE_ACTORS = Number(process.env.STUI_BENCH_SESSIONS_IMAGES ?? 200);

const seconds = (ms: number): string => `${fmt(ms / 1000, 2)} s`;
const perSec = (count: number, ms: number): string => fmt((count / ms) * 1000, 0);
const kib = (bytes: number): string => `${fmt(bytes / 1024, 1)} KiB`;

/** The baseline: the snapshot read whole and each line JSON.parse-d, kept in a Map by session id. */
async function plainRead(dir: string): Promise<{ ms: number; byId: Map<string, unknown> }> {
  const t0 = performance.now();
  const text = await readFile(path.join(dir, SNAPSHOT_FILE), "utf8");
  const byId = new Map<string, unknown>();
  let start = text.indexOf("\n") + 1; // past the header
  for (let end = text.indexOf("\n", start); end >= 0; start = end + 1, end = text.indexOf("\n", start)) {
    const envelope = JSON.parse(text.slice(start, end)) as { session: { session_id: string } };
    byId.set(envelope.session.session_id, envelope.session);
  }
  return { ms: performance.now() - t0, byId };
}

/** `FileSessionStore.open` + `load()` of the store in `dir`, timed; problems are reported. */
export async function timedFileLoad(dir: string): Promise<{ ms: number; records: number }> {
  const t0 = performance.now();
  const store = await FileSessionStore.open({ dir, logger: quietLogger });
  const loaded = await store.load();
  const ms = performance.now() - t0;
  if (loaded.problems.length > 0) console.log(`(load reported ${loaded.problems.length} problems)`);
  await store.close();
  return { ms, records: loaded.records.length };
}

async function loadStore(root: string, sim: Sim): Promise<void> {
  const dir = path.join(root, "load");
  const dead = await deadAddress();
  const images = [{ id: "live", address: sim.endpoint }, ...IMAGE_IDS.map((id) => ({ id, address: dead }))];
  const seedMs = await seedStore(dir, LOAD_N, dead);
  spawnSync("sync"); // the seed's dirty pages written back now, not during the timed reads
  console.log(
    `\nsessions: a ${fmt(LOAD_N)}-session store, seeded in ${seconds(seedMs)} by writing its snapshot directly ` +
      `(encodeStoredSession per line, one fs.writeFile, no fsync, then sync(1)); page cache warm`,
  );

  const times = { plain: [] as number[], load: [] as number[] };
  const counts = { plain: 0, load: 0 };
  let plainBytes = Number.NaN;
  const baseline = async (): Promise<void> => {
    const heap0 = settledHeap();
    const plain = await plainRead(dir);
    counts.plain = plain.byId.size;
    if (Number.isNaN(plainBytes)) plainBytes = (settledHeap() - heap0) / counts.plain;
    times.plain.push(plain.ms);
    plain.byId.clear();
  };
  const load = async (): Promise<void> => {
    const loaded = await timedFileLoad(dir);
    times.load.push(loaded.ms);
    counts.load = loaded.records;
  };
  // Two rounds in opposite orders, so that neither side always runs first.
  await baseline();
  await load();
  await load();
  await baseline();

  const legacyDir = path.join(root, "legacy");
  const legacySeedMs = await seedLegacyStore(legacyDir, LOAD_N, dead);
  spawnSync("sync");
  const migrated = await timedFileLoad(legacyDir);
  await removeDir(legacyDir);

  const heap0 = settledHeap();
  const t0 = performance.now();
  const managerStore = await FileSessionStore.open({ dir, logger: quietLogger });
  const manager = await SessionManager.start({
    store: managerStore,
    images,
    logger: quietLogger,
    policy: QUIET_POLICY,
  });
  const startMs = performance.now() - t0;
  const managerBytes = (settledHeap() - heap0) / manager.sessionCount;
  const compactMs: number[] = [];
  for (let round = 0; round < 2; round++) {
    const t = performance.now();
    await managerStore.compact();
    compactMs.push(performance.now() - t);
  }

  const row = (name: string, count: number, ms: readonly number[]): string[] => [
    name,
    fmt(count),
    ms.map(seconds).join(" / "),
    perSec(count, Math.min(...ms)),
  ];
  printTable([
    ["", "records", "time (round 1 / 2)", "records/s (best)"],
    row("readFile + JSON.parse of each snapshot line (baseline)", counts.plain, times.plain),
    row("FileSessionStore.open + load()", counts.load, times.load),
    row("FileSessionStore.open + SessionManager.start (once)", manager.sessionCount, [startMs]),
    row("the old one-file-per-record layout migrated: open + load() (once)", migrated.records, [migrated.ms]),
    row("a compaction (the live records copied to a new snapshot, 2 fsyncs)", manager.sessionCount, compactMs),
  ]);
  const best = (ms: readonly number[]): number => Math.min(...ms);
  console.log(
    `best load / best baseline: ${fmt(best(times.load) / best(times.plain), 2)}x; ` +
      `the old layout was seeded in ${seconds(legacySeedMs)} (${fmt(LOAD_N)} files written directly)`,
  );

  console.log(`\nsessions: heap per session${gcAvailable() ? " (after full GCs)" : " (NO gc available: rough)"}`);
  printTable([
    ["", "bytes per session"],
    ["the records JSON.parse-d into a plain Map (baseline)", fmt(plainBytes, 0)],
    [`the manager holding ${fmt(manager.sessionCount)} sessions (heap after start - before)`, fmt(managerBytes, 0)],
  ]);

  try {
    await waitForStatus(connectionOf(manager, "live"), "Connected", 15_000);
    const putStore = await FileSessionStore.open({ dir: path.join(root, "put-baseline-load"), logger: quietLogger });
    const sample = await sampleCreate(manager, "live", putStore, 50);
    await putStore.close();
    printCreateSample(`sessions: CreateSession with ${fmt(LOAD_N)} sessions already in the registry`, sample);
  } finally {
    await manager.stop();
    await removeDir(dir);
  }
}

/**
 * Heap per image actor: standalone connections (baseline), then the manager's children. RSS is
 * left out: after the earlier sections it shrinks as the GC returns pages, so its delta is noise.
 */
async function imageActors(root: string): Promise<void> {
  const address = await deadAddress();
  const settle = (): Promise<void> =>
    new Promise((resolve) => setTimeout(resolve, DEFAULT_POLICY.connectTimeoutMs + 200));

  let heap0 = settledHeap();
  const standalone = Array.from({ length: IMAGE_ACTORS }, (_, i) =>
    startImageConnection({ imageId: `solo-${i}`, address }),
  );
  await settle();
  const soloHeap = (settledHeap() - heap0) / IMAGE_ACTORS;
  for (const c of standalone) c.stop();

  const manager = await SessionManager.start({
    store: await FileSessionStore.open({ dir: path.join(root, "images"), logger: quietLogger }),
    images: [],
    logger: quietLogger,
    policy: QUIET_POLICY,
  });
  try {
    heap0 = settledHeap();
    const t0 = performance.now();
    const answers = await Promise.all(
      Array.from({ length: IMAGE_ACTORS }, (_, i) =>
        manager.handle({ type: "ConnectImage", image_id: `img-${i}`, address, name: null }),
      ),
    );
    const connectMs = performance.now() - t0;
    await settle();
    const childHeap = (settledHeap() - heap0) / IMAGE_ACTORS;
    const statuses = new Map<string, number>();
    for (const a of answers) {
      const key = a.type === "ImageConnected" ? a.status : a.type;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
    }
    console.log(
      `\nsessions: ${IMAGE_ACTORS} image actors to ${address} (nothing listens), measured after ` +
        `${DEFAULT_POLICY.connectTimeoutMs + 200} ms; ConnectImage x${IMAGE_ACTORS} concurrently took ${fmt(connectMs, 0)} ms ` +
        `(answers: ${[...statuses].map(([k, v]) => `${v} ${k}`).join(", ")})`,
    );
    printTable([
      ["", "heap per image"],
      ["standalone startImageConnection (baseline)", kib(soloHeap)],
      ["ConnectImage: the manager's child + watcher", kib(childHeap)],
    ]);
  } finally {
    await manager.stop();
  }
}

export async function loadAndMemory(root: string, sim: Sim): Promise<void> {
  await loadStore(root, sim);
  await imageActors(root);
}
