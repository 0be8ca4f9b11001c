/**
 * `npm run bench -- store`: the session store's writes and loads, the JetStream KV store (one
 * nats-server, R1; a 3-node cluster, R3) against the embedded file store measured in the same run
 * (its fsync-ed write is the baseline). `STUI_BENCH_STORE_N` (writes, default 300) and
 * `STUI_BENCH_STORE_LOAD_N` (records loaded, default 5000) scale it.
 */
import path from "node:path";
import { performance } from "node:perf_hooks";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { FileSessionStore } from "../src/adapters/file-store/store.js";
import { KvSessionStore } from "../src/adapters/kv-store/store.js";
import { UNREVISIONED, type SessionStore } from "../src/ports.js";
import { startNatsCluster } from "../test/helpers/nats-cluster.js";
import { startNatsServer } from "../test/helpers/nats-server.js";
import { fmt, percentile, printTable } from "./harness.js";
import { benchSession, makeTempRoot, quietLogger, removeDir } from "./sessions-support.js";

const N = Number(process.env["STUI_BENCH_STORE_N"] ?? 300);
const LOAD_N = Number(process.env["STUI_BENCH_STORE_LOAD_N"] ?? 5000);
const ADDRESS = "tcp://127.0.0.1:5555";

interface Figures {
  readonly name: string;
  readonly puts: number[];
  readonly loadMs: number;
}

/** `N` new sessions one after the other, then `LOAD_N` in all (8 at a time), then `load()`. */
async function measure(name: string, open: () => Promise<SessionStore>): Promise<Figures> {
  const store = await open();
  const puts: number[] = [];
  for (let i = 0; i < N; i += 1) {
    const t0 = performance.now();
    await store.put(benchSession(i, ADDRESS), UNREVISIONED);
    puts.push(performance.now() - t0);
  }
  for (let i = N; i < LOAD_N; i += 8) {
    const batch = Array.from({ length: Math.min(8, LOAD_N - i) }, (_, k) => benchSession(i + k, ADDRESS));
    await Promise.all(batch.map((s) => store.put(s, UNREVISIONED)));
  }
  await store.close();
  const reopened = await open();
  const t0 = performance.now();
  const loaded = await reopened.load();
  const loadMs = performance.now() - t0;
  if (loaded.records.length !== Math.max(N, LOAD_N)) {
    throw new Error(`${name}: loaded ${loaded.records.length} of ${Math.max(N, LOAD_N)} records`);
  }
  await reopened.close();
  return { name, puts, loadMs };
}

export async function run(): Promise<void> {
  const root = await makeTempRoot();
  const single = await startNatsServer();
  const cluster = await startNatsCluster();
  const connections: NatsConnection[] = [];
  const nc = async (servers: string | readonly string[]): Promise<NatsConnection> => {
    const c = await connect({ servers: [servers].flat() });
    connections.push(c);
    return c;
  };
  try {
    const file = await measure("FileSessionStore, fsync-ed files (baseline)", () =>
      FileSessionStore.open({ dir: path.join(root, "file"), logger: quietLogger }),
    );
    const r1c = await nc(single.url);
    const r1 = await measure("KvSessionStore, one nats-server, R1", () =>
      KvSessionStore.open({ nc: r1c, replicas: 1, logger: quietLogger }),
    );
    const r3c = await nc(cluster.urls);
    const r3 = await measure("KvSessionStore, 3-node cluster, R3", () =>
      KvSessionStore.open({ nc: r3c, replicas: 3, logger: quietLogger }),
    );
    console.log(`\nstore: ${N} sequential puts of new sessions, then a load() of ${Math.max(N, LOAD_N)} records`);
    const base = percentile(file.puts, 50);
    printTable([
      ["", "put p50", "put p99", "p50 vs file", "load()", "records/s"],
      ...[file, r1, r3].map((f) => [
        f.name,
        `${fmt(percentile(f.puts, 50), 3)} ms`,
        `${fmt(percentile(f.puts, 99), 3)} ms`,
        `${fmt(percentile(f.puts, 50) / base, 2)}x`,
        `${fmt(f.loadMs / 1000, 2)} s`,
        fmt(Math.max(N, LOAD_N) / (f.loadMs / 1000), 0),
      ]),
    ]);
  } finally {
    await Promise.all(connections.map((c) => c.close()));
    await cluster.cleanup();
    await single.stop();
    await removeDir(root);
  }
}
