/**
 * What the `nats` benchmark needs around the service: the service started in this process or in a
 * child process (`node --import tsx bench/nats-support.ts --serve <config>`, which this module
 * also is), a bare echo responder, a timestamped event watch, and request loops that time each
 * call, sequential or N at a time.
 */
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { FileSessionStore } from "../src/adapters/file-store/store.js";
import type { EventFeed } from "../src/client.js";
import type { Logger } from "../src/logger.js";
import type { ImageConfig, ManagerPolicy } from "../src/machines/session-manager.js";
import type { ConnectionStatus, StuiEvent } from "../src/protocol/index.js";
import { StuiService } from "../src/service.js";
import { TEST_CONNECTION } from "../test/helpers/manager.js";
import { spawnNode } from "../test/helpers/processes.js";
import { fmt, percentile } from "./harness.js";

/**
 * No grace expiry, no sweep; the tests' fast connection settings (backoff 50–300 ms) so that a
 * killed sim is back quickly, and no restart limit, since every kill trial is a restart.
 */
export const BENCH_POLICY: Partial<ManagerPolicy> = {
  failedGraceMs: 3_600_000,
  orphanMaxAgeMs: null,
  connection: { ...TEST_CONNECTION, maxRestarts: 10_000 },
};

export interface ServiceConfig {
  readonly instanceId: string;
  readonly natsUrl: string;
  /** The FileSessionStore's directory. */
  readonly dir: string;
  readonly images: readonly ImageConfig[];
  /** `inspect.max_share`; the service's default when left out. */
  readonly inspectMaxShare?: number;
}

export interface RunningService {
  /** "in-process" or "child process (pid …)". */
  readonly where: string;
  /** In-process only, to time the manager's own status emits. */
  readonly service: StuiService | null;
  /** Warnings and errors the service logged so far. */
  problems(): number;
  stop(): Promise<void>;
}

export async function startInProcess(config: ServiceConfig, logger?: Logger): Promise<RunningService> {
  let problems = 0;
  const counting: Logger = logger ?? {
    error: () => void (problems += 1),
    warn: () => void (problems += 1),
    info: () => undefined,
    debug: () => undefined,
  };
  const store = await FileSessionStore.open({ dir: config.dir, logger: counting });
  let service: StuiService;
  try {
    service = await StuiService.start({
      instanceId: config.instanceId,
      nats: { servers: config.natsUrl },
      store,
      images: config.images,
      policy: BENCH_POLICY,
      logger: counting,
      ...(config.inspectMaxShare === undefined ? {} : { inspect: { maxShare: config.inspectMaxShare } }),
    });
  } catch (error) {
    await store.close();
    throw error;
  }
  return { where: "in-process", service, problems: () => problems, stop: async () => void (await service.stop(2000)) };
}

const SELF = fileURLToPath(import.meta.url);

/** The child's echo responder: `<CHILD_ECHO>.<n>` is answered with `n` bytes. */
export const CHILD_ECHO = "bench.echo.child-process";

/** The same service in a child Node process (this file with `--serve`); stopped by pid. */
/** `STUI_BENCH_CPU_PROF=DIR`: the service child writes its CPU profile (`--cpu-prof`) into DIR when it stops. */
function cpuProfileFlags(): string[] {
  const dir = process.env["STUI_BENCH_CPU_PROF"];
  return dir === undefined || dir === "" ? [] : ["--cpu-prof", `--cpu-prof-dir=${dir}`];
}

export async function startChild(config: ServiceConfig): Promise<RunningService> {
  const child = spawnNode([...cpuProfileFlags(), "--import", "tsx", SELF, "--serve", JSON.stringify(config)]);
  try {
    await child.waitForLine(/^ready$/, { timeoutMs: 60_000 });
  } catch (error) {
    await child.stop();
    throw error;
  }
  return {
    where: `child process (pid ${child.pid})`,
    service: null,
    problems: () =>
      child
        .stderr()
        .split("\n")
        .filter((line) => line.trim() !== "").length,
    stop: async () => void (await child.stop()),
  };
}

/** Child entry: logs warnings and errors to stderr, stops on SIGTERM/SIGINT or when stdin closes. */
async function serveChild(config: ServiceConfig): Promise<void> {
  const toStderr = (level: string) => (obj: object, msg: string) =>
    void process.stderr.write(`${JSON.stringify({ level, msg, ...obj })}\n`);
  const running = await startInProcess(config, {
    error: toStderr("error"),
    warn: toStderr("warn"),
    info: () => {},
    debug: () => {},
  });
  // The echo baseline with the same hops as the service: in this process, on its own connection.
  const echo = await connectBare(config.natsUrl, "child-echo");
  const bodies = new Map<number, Uint8Array>();
  echo.subscribe(`${CHILD_ECHO}.*`, {
    callback: (error, msg) => {
      if (error !== null) return;
      const size = Number(msg.subject.slice(CHILD_ECHO.length + 1));
      let body = bodies.get(size);
      if (body === undefined) bodies.set(size, (body = new Uint8Array(size).fill(0x20)));
      msg.respond(body);
    },
  });
  await echo.flush();
  console.log("ready");
  let stopping = false;
  const stop = (): void => {
    if (stopping) return; // a second signal (Ctrl-C reaches the whole group) must not cut the stop short
    stopping = true;
    void running
      .stop()
      .then(() => echo.drain())
      .finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdin.once("end", stop);
  process.stdin.resume();
}

// Baselines ------------------------------------------------------------------------------------

/** Its own connection, as the service has; `label` names it in the server's monitoring. */
export const connectBare = (url: string, label: string): Promise<NatsConnection> =>
  connect({ servers: url, name: `stui-bench-${label}` });

/** A plain subscription answering every request on `subject` with `body`. */
export async function startEcho(nc: NatsConnection, subject: string, body: Uint8Array): Promise<void> {
  nc.subscribe(subject, {
    callback: (error, msg) => {
      if (error === null) msg.respond(body);
    },
  });
  await nc.flush();
}

// Timing ---------------------------------------------------------------------------------------

export type Call = () => Promise<unknown>;

/**
 * `n` turns of one call of each, one after the other: ms per call, by call. Taking turns call by
 * call (not in blocks) gives every call the same share of a shared machine's bad moments.
 */
export async function roundRobin(calls: readonly Call[], n: number): Promise<number[][]> {
  const samples = calls.map(() => [] as number[]);
  for (let i = 0; i < n; i++) {
    for (const [j, call] of calls.entries()) {
      const t0 = performance.now();
      await call();
      samples[j]?.push(performance.now() - t0);
    }
  }
  return samples;
}

/** `n` calls, `concurrency` at a time: ms per call (into `into`) and calls per second. */
export async function concurrent(call: Call, n: number, concurrency: number, into: number[] = []): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) {
        const start = performance.now();
        await call();
        into.push(performance.now() - start);
      }
    }),
  );
  return (n / (performance.now() - t0)) * 1000;
}

/** An event and when it arrived (`performance.now()`, after the client decoded it). */
export interface Arrival {
  readonly at: number;
  readonly event: StuiEvent;
}

/** Events from a client feed, each stamped on arrival; `next` waits for one that matches. */
export class EventWatch {
  private readonly waiters = new Set<{ match: (e: StuiEvent) => boolean; resolve: (got: Arrival) => void }>();

  constructor(feed: EventFeed<StuiEvent>) {
    void (async () => {
      for await (const event of feed) {
        const at = performance.now();
        for (const waiter of this.waiters) {
          if (!waiter.match(event)) continue;
          this.waiters.delete(waiter);
          waiter.resolve({ at, event });
        }
      }
    })();
  }

  /** The next matching event and its arrival; rejects after `timeoutMs` (never unhandled). */
  next(match: (e: StuiEvent) => boolean, timeoutMs = 15_000): Promise<Arrival> {
    const arrived = new Promise<Arrival>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`no matching event within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        match,
        resolve: (got: Arrival) => {
          clearTimeout(timer);
          resolve(got);
        },
      };
      this.waiters.add(waiter);
    });
    arrived.catch(() => undefined);
    return arrived;
  }
}

export const statusIs =
  (imageId: string, status: ConnectionStatus) =>
  (e: StuiEvent): boolean =>
    e.type === "io.stui.image.status.changed" && e.data.image_id === imageId && e.data.status === status;

// Printing -------------------------------------------------------------------------------------

export const LATENCY_HEADER = ["", "n", "p50", "p99", "mean"];

/** `[name, n, p50, p99, mean]`; `unit` µs or ms (samples are in ms). */
export function latencyRow(name: string, sample: readonly number[], unit: "µs" | "ms" = "ms"): string[] {
  const scale = unit === "µs" ? 1000 : 1;
  const digits = unit === "µs" ? 0 : 2;
  const mean = sample.reduce((a, b) => a + b, 0) / sample.length;
  const cell = (ms: number): string => `${fmt(ms * scale, digits)} ${unit}`;
  return [name, String(sample.length), cell(percentile(sample, 50)), cell(percentile(sample, 99)), cell(mean)];
}

export const ratio = (a: readonly number[], b: readonly number[]): string =>
  `${fmt(percentile(a, 50) / percentile(b, 50), 2)}x`;

// Last, so that everything above is initialized when the child runs.
if (process.argv[1] === SELF && process.argv[2] === "--serve") {
  await serveChild(JSON.parse(process.argv[3] ?? "{}") as ServiceConfig);
}
