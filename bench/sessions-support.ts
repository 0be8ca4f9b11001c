/**
 * What the `sessions` benchmark needs around the session manager: real `stui image-sim` child
 * processes, temp directories, a store
 * seeded by writing its snapshot file directly (or the old one-file-per-record layout), a heap reading after a full GC, and the
 * interleaved `CreateSession` sample with its two baselines.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { fileKey } from "../src/adapters/file-store/store.js";
import { encodeHeader, SNAPSHOT_FILE, LOG_FILE } from "../src/adapters/file-store/journal.js";
import { requestImage } from "../src/actors/image-connection.js";
import type { SessionManager } from "../src/actors/session-manager.js";
import { UNREVISIONED, type SessionStore } from "../src/ports.js";
import { encodeStoredSession } from "../src/adapters/file-store/envelope.js";
import type { Logger } from "../src/logger.js";
import type { ImageConnectionActor } from "../src/machines/image-connection.js";
import type { ManagerPolicy } from "../src/machines/session-manager.js";
import type { SessionStateData } from "../src/protocol/index.js";
import { fmt, percentile, printTable } from "./harness.js";
import { startImageSim, type ImageSimHandle } from "../test/helpers/image-sim.js";
import { stopAllProcesses } from "../test/helpers/processes.js";

/** No grace expiry, no sweep: nothing but the measured requests writes to the store. */
export const QUIET_POLICY: Partial<ManagerPolicy> = { failedGraceMs: 3_600_000, orphanMaxAgeMs: null };

// Child processes -----------------------------------------------------------------------------

/** A real `stui image-sim` on a free port (the tests' fixture, which stops it by pid). */
export type Sim = ImageSimHandle;
export const startSim = (): Promise<Sim> => startImageSim();
export const stopSims = stopAllProcesses;

/** A TCP address nothing listens on: a port the kernel handed out, then released. */
export async function deadAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return `tcp://127.0.0.1:${address.port}`;
}

// Temp directories, logging, memory ------------------------------------------------------------

export const makeTempRoot = (bench = "sessions"): Promise<string> =>
  mkdtemp(path.join(tmpdir(), `stui-bench-${bench}-`));
export const removeDir = (dir: string): Promise<void> => rm(dir, { recursive: true, force: true });

/** Drops every entry but counts the warnings and errors, which the report mentions. */
export const logCounts = { warn: 0, error: 0 };
export const quietLogger: Logger = {
  error: () => void (logCounts.error += 1),
  warn: () => void (logCounts.warn += 1),
  info: () => undefined,
  debug: () => undefined,
};

setFlagsFromString("--expose-gc");
const exposed: unknown = runInNewContext("gc");
const gcFunction = typeof exposed === "function" ? (exposed as () => void) : null;

/** `heapUsed` after two full collections (`--expose-gc` is switched on at run time for this). */
export function settledHeap(): number {
  gcFunction?.();
  gcFunction?.();
  return process.memoryUsage().heapUsed;
}

export const gcAvailable = (): boolean => gcFunction !== null;

// Session records ------------------------------------------------------------------------------

export const IMAGE_IDS = ["img-0", "img-1", "img-2"] as const;
const BASE_MS = Date.parse("2026-01-01T00:00:00Z");

/** A typical stored session; created_at is scattered so that sorting by it does real work. */
export function benchSession(i: number, address: string): SessionStateData {
  const created = new Date(BASE_MS + ((i * 7919) % 1_000_003) * 1000).toISOString();
  return {
    session_id: `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`,
    client_id: `client-${i % 500}`,
    session_name: `session ${i}`,
    description: null,
    created_at: created,
    last_activity: created,
    is_active: i % 10 !== 0,
    orphaned_at: null,
    workspace_context: {
      current_workspace: "Playground",
      input_history: ["3 + 4", "Smalltalk version"],
      variables: { x: "42" },
    },
    image_id: IMAGE_IDS[i % IMAGE_IDS.length] ?? "img-0",
    image_address: address,
    image_name: "Pharo",
    image_version: "Pharo-12.0.0",
    image_metadata: {},
  };
}

/**
 * Writes a store of `count` sessions (revision 1) the way FileSessionStore compacts one: a
 * snapshot of one line per session and an empty log, mode 0600, no fsync. Returns ms.
 */
export async function seedStore(dir: string, count: number, address: string): Promise<number> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const t0 = performance.now();
  const lines = [encodeHeader(1)];
  for (let i = 0; i < count; i++) lines.push(encodeStoredSession(1, benchSession(i, address)));
  await writeFile(path.join(dir, SNAPSHOT_FILE), lines.join(""), { mode: 0o600 });
  await writeFile(path.join(dir, LOG_FILE), encodeHeader(1), { mode: 0o600 });
  return performance.now() - t0;
}

/**
 * Writes `count` sessions in the layout before store format 3: one v2 envelope file each under
 * `<dir>/sessions/`, plain fs.writeFile, `parallel` at a time, no fsync. Returns ms.
 */
export async function seedLegacyStore(dir: string, count: number, address: string, parallel = 256): Promise<number> {
  const sessionsDir = path.join(dir, "sessions");
  await mkdir(sessionsDir, { recursive: true, mode: 0o700 });
  const t0 = performance.now();
  for (let start = 0; start < count; start += parallel) {
    const batch: Promise<void>[] = [];
    for (let i = start; i < Math.min(count, start + parallel); i++) {
      const session = benchSession(i, address);
      const file = path.join(sessionsDir, `${fileKey(session.session_id)}.json`);
      batch.push(writeFile(file, encodeStoredSession(1, session), { mode: 0o600 }));
    }
    await Promise.all(batch);
  }
  return performance.now() - t0;
}

// CreateSession against its baselines ------------------------------------------------------------

export interface CreateSample {
  /** Milliseconds per request. */
  readonly create: number[];
  /** The bare `create_session` round trip through `requestImage` on the manager's own connection. */
  readonly image: number[];
  /** The bare `store.put` of a new record (for the file store: fsync of the file and of the directory). */
  readonly put: number[];
}

/** The live image's connection actor, as the manager spawned it. */
export function connectionOf(manager: SessionManager, imageId: string): ImageConnectionActor {
  const ref = manager.actor.getSnapshot().context.images.get(imageId)?.ref;
  if (ref === undefined) throw new Error(`the manager has no image ${imageId}`);
  return ref;
}

let putCounter = 0;

/** `n` sequential requests of each kind, interleaved in `rounds` so that noise hits all three alike. */
export async function sampleCreate(
  manager: SessionManager,
  imageId: string,
  putStore: SessionStore,
  n: number,
  rounds = 5,
): Promise<CreateSample> {
  const ref = connectionOf(manager, imageId);
  const out: CreateSample = { create: [], image: [], put: [] };
  const per = Math.max(1, Math.ceil(n / rounds));
  const time = async (into: number[], op: () => Promise<unknown>): Promise<void> => {
    const t0 = performance.now();
    await op();
    into.push(performance.now() - t0);
  };
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < per; i++) {
      await time(out.image, () => requestImage(ref, "create_session", { client_id: "bench-baseline" }));
    }
    for (let i = 0; i < per; i++) {
      const session = { ...benchSession(0, "tcp://127.0.0.1:1"), session_id: `put-${(putCounter += 1)}` };
      await time(out.put, () => putStore.put(session, UNREVISIONED));
    }
    for (let i = 0; i < per; i++) {
      await time(out.create, async () => {
        const response = await manager.handle({
          type: "CreateSession",
          image_id: imageId,
          client_id: `bench-${i % 16}`,
          session_name: null,
          description: null,
        });
        if (response.type !== "SessionCreated") throw new Error(`CreateSession: ${JSON.stringify(response)}`);
      });
    }
  }
  return out;
}

/** `[name, n, p50, p99, mean]` in ms. */
export function latencyRow(name: string, sample: readonly number[]): string[] {
  const mean = sample.reduce((a, b) => a + b, 0) / sample.length;
  return [
    name,
    String(sample.length),
    `${fmt(percentile(sample, 50), 3)} ms`,
    `${fmt(percentile(sample, 99), 3)} ms`,
    `${fmt(mean, 3)} ms`,
  ];
}

export const LATENCY_HEADER = ["", "n", "p50", "p99", "mean"];

/** Prints a `CreateSession` sample beside its two baselines. */
export function printCreateSample(title: string, sample: CreateSample): void {
  console.log(`\n${title}`);
  printTable([
    LATENCY_HEADER,
    latencyRow("image create_session via requestImage (baseline)", sample.image),
    latencyRow("store.put, fsync-ed (baseline)", sample.put),
    latencyRow("CreateSession through handle", sample.create),
  ]);
}
