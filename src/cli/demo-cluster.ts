/**
 * `stui demo --cluster`: several instances sharing images, on one machine. Three nats-servers in
 * a cluster (JetStream, free loopback ports), six simulated images, and three `stui serve`
 * processes a, b and c with the same six images (`store: { kind: kv, replicas: 3 }`,
 * `cluster: { lease_ttl_ms: 3000 }`), each connecting to a different node. Each image is
 * connected by the one instance holding its lease. Keys a, b, c SIGKILL that instance (by pid):
 * the view shows its images' owner go down and, once the leases lapse, the others take them over;
 * the same key starts it again, and it takes its share of the images back. The view is demo-cluster-view.ts; the life and ways
 * out are demo-run.ts's, as for `stui demo`.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { KvLeaseStore } from "../adapters/kv-store/leases.js";
import { StuiClient } from "../client.js";
import { findNatsServer, startChild, type Child } from "./children.js";
import { clusterView, type Instance } from "./demo-cluster-view.js";
import { demoInspector, type DemoContext } from "./demo-run.js";
import type { Logger } from "../logger.js";
import { demoKeys, STUI_BIN, startedSim, type DemoKeys, type Sim, type Switchable } from "./demo-view.js";
import { childProcesses, startNatsCluster } from "./nats-cluster.js";

const INSTANCE_IDS = ["a", "b", "c"] as const;
const IMAGES = ["dev", "staging", "build", "test", "docs", "perf"] as const;
/** Short, so that a takeover is seen within a few seconds. */
export const LEASE_TTL_MS = 3000;

/** The inspector's warnings would tear the view: the page shows them. */
const quiet: Logger = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };

/** The instances' ready line: `stui serve` logs JSON lines when its output is not a terminal. */
const LISTENING = /"msg":"stui serve: listening"/;

export async function startClusterDemo(context: DemoContext): Promise<"running" | "no nats-server"> {
  const { dir, cleanups, exits, tty } = context;
  const binary = findNatsServer();
  if (binary === null) return "no nats-server";
  withoutServeSettings(process.env);
  const startedAt = new Date();
  const cluster = await startNatsCluster({
    binary,
    processes: childProcesses(),
    parentDir: dir,
    clusterName: "stui-demo",
  });
  await cleanups.add(() => cluster.cleanup());

  const sims: Sim[] = [];
  await cleanups.add(async () => {
    await stopAll(sims);
  });
  const keys = await demoKeys(dir);
  await allStarted(
    IMAGES.map((id) => startedSim(id, keys)),
    sims,
  );

  const instances: Instance[] = [];
  // Before the sims' clean-up runs: stopped first, the instances release their leases and publish
  // each image's final Disconnected instead of going Reconnecting.
  await cleanups.add(async () => {
    await stopAll(instances);
  });
  const configs = await Promise.all(
    INSTANCE_IDS.map(async (id, n) => {
      // One node each, not the list: nats.js shuffles a server list, so with one the instances
      // connect to different nodes; they learn the others from the cluster and fail over to them.
      const node = cluster.nodes[n % cluster.nodes.length];
      if (node === undefined) throw new Error("the NATS cluster has no nodes");
      const file = path.join(dir, `${id}.yaml`);
      await writeFile(file, serveConfig(id, node.url, sims, keys));
      return { id, node: `${node.name} ${node.url}`, file };
    }),
  );
  // All at once, so that none has a whole start-up's head start; the instances then even out the
  // images among themselves (the least loaded take free leases, the most loaded hand theirs over).
  await allStarted(
    configs.map(async ({ id, node, file }) => instance(id, node, file, await startServe(file))),
    instances,
  );

  const client = await StuiClient.connect({ servers: [...cluster.urls] });
  await cleanups.add(() => client.close());
  // The instances created the bucket (R3); opening it here changes nothing.
  const leases = await twice(() => KvLeaseStore.open({ nc: client.nc, replicas: 3 }));
  await cleanups.add(() => leases.close());
  const replay = await client.replay({ since: startedAt });
  await cleanups.add(() => replay.close());
  await demoInspector(context, client.nc, quiet);
  if (exits.stopping()) return "running";
  if (!tty) {
    const pids = [
      ...cluster.nodes.map((n) => `${n.name}=${n.process()?.pid ?? "-"}`),
      ...[...sims, ...instances].map((s) => `${s.id}=${s.state.kind === "up" ? s.state.child.pid : "-"}`),
    ];
    console.log(
      `stui demo: images ${sims.map((s) => `${s.id}=${s.endpoint}`).join(", ")}; NATS ${cluster.urls.join(",")}`,
    );
    console.log(`stui demo: instances ${instances.map((i) => `${i.id}=${i.node.split(" ")[0] ?? ""}`).join(" ")}`);
    console.log(`stui demo: pids ${pids.join(" ")}; temp dir ${dir}`);
  }
  const view = clusterView({
    urls: cluster.urls,
    nodes: cluster.nodes.map((n) => n.name),
    images: sims,
    instances,
    leases,
    events: replay,
    ttlMs: LEASE_TTL_MS,
    tty,
    quit: () => exits.stop("quit"),
  });
  await cleanups.add(() => view.close());
  exits.onInput(view.input);
  return "running";
}

/** Stops (SIGTERM, then SIGKILL) every one that is up, all at once. */
async function stopAll(items: readonly Switchable[]): Promise<void> {
  await Promise.all(items.map(async (item) => (item.state.kind === "up" ? item.state.child.stop() : undefined)));
}

/**
 * Waits for every start; those that started go into `into` (to be cleaned up) even when another
 * failed, and then the first failure is thrown.
 */
async function allStarted<T>(starts: ReadonlyArray<Promise<T>>, into: T[]): Promise<void> {
  const settled = await Promise.allSettled(starts);
  for (const result of settled) if (result.status === "fulfilled") into.push(result.value);
  const failed = settled.find((result) => result.status === "rejected");
  if (failed !== undefined) throw failed.reason;
}

/**
 * `stui serve` lets NATS_URL and STUI_* variables override its file: the instances must run on the
 * demo's own cluster with the demo's settings, so they are not passed on (the nats-server to run
 * was already found).
 */
function withoutServeSettings(env: NodeJS.ProcessEnv): void {
  for (const name of Object.keys(env)) {
    if (name === "NATS_URL" || (name.startsWith("STUI_") && name !== "STUI_NATS_SERVER" && name !== "STUI_DEBUG")) {
      delete env[name];
    }
  }
}

/** One instance's configuration, as a user would write it (YAML). */
function serveConfig(id: string, natsUrl: string, sims: readonly Sim[], keys: DemoKeys): string {
  const curve = `curve: { server_public_key: "${keys.image.public_key}", client_key_file: "${keys.serviceKeyFile}" }`;
  return [
    `instance_id: ${id}`,
    `nats: { url: ["${natsUrl}"] }`,
    "store: { kind: kv, replicas: 3 }",
    `cluster: { lease_ttl_ms: ${LEASE_TTL_MS} }`,
    "images:",
    ...sims.map((s) => `  - { id: ${s.id}, address: "${s.endpoint}", name: "${s.id} (simulated)", ${curve} }`),
    "backoff: { base_ms: 100, cap_ms: 1000, max_restarts: 1000 }",
    "metrics_port: 0",
    "log_level: info",
    "",
  ].join("\n");
}

/**
 * `stui serve --config config`, until it is listening. Started once more if it exits first: on a
 * busy machine, creating the buckets on a cluster that has just formed can outlast a JetStream
 * request's timeout (2 s), and the instance then exits; by the second try they exist.
 */
const startServe = (config: string): Promise<Child> =>
  twice(() => startChild(process.execPath, [STUI_BIN, "serve", "--config", config], LISTENING, "stdout", 30_000));

/** `run()`, and once more if that fails. */
async function twice<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch {
    return run();
  }
}

/** The metrics URL from the listening line, `null` when it has none. */
function metricsOf(child: Child): string | null {
  try {
    const logged: unknown = JSON.parse(child.ready.input ?? "");
    const metrics =
      typeof logged === "object" && logged !== null ? (logged as Record<string, unknown>)["metrics"] : null;
    return typeof metrics === "string" ? metrics : null;
  } catch {
    return null;
  }
}

function instance(id: string, node: string, config: string, child: Child): Instance {
  const self: Instance = {
    id,
    node,
    metrics: metricsOf(child),
    state: { kind: "up", child },
    start: async () => {
      const again = await startServe(config);
      self.metrics = metricsOf(again);
      return again;
    },
    killed: (pid) =>
      `killed ${id} (pid ${pid}, SIGKILL): its leases lapse within ${LEASE_TTL_MS / 1000} s, then the others take its images over`,
    started: (again) => `started ${id} again (pid ${again.pid}): it takes its share of the images back from the others`,
  };
  return self;
}
