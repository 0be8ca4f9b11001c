/**
 * `stui serve` instances sharing images, as the cluster tests run them: a YAML config per instance
 * (`store.kind: kv`, `cluster.lease_ttl_ms`, metrics on a free port), each started as a child
 * process, and which images each one has Connected, read from its own metrics.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { ImageSimHandle } from "./image-sim.js";
import { spawnStui, type ProcessHandle } from "./processes.js";

export interface ServeInstance {
  readonly id: string;
  readonly child: ProcessHandle;
  /** Its `/metrics` URL. */
  readonly metrics: string;
}

export interface SharedServeOptions {
  readonly id: string;
  /** Where the config file goes. */
  readonly dir: string;
  readonly urls: readonly string[];
  readonly sims: readonly ImageSimHandle[];
  /** The images' ids, in the order of `sims`. */
  readonly imageIds: readonly string[];
  readonly ttlMs: number;
  /** `store.replicas`. @default 1 */
  readonly replicas?: number;
  readonly env?: NodeJS.ProcessEnv;
}

/** Starts one instance and waits until it listens. */
export async function serveShared(options: SharedServeOptions): Promise<ServeInstance> {
  const config = path.join(options.dir, `${options.id}.yaml`);
  const images = options.sims.map((s, i) => `{ id: ${options.imageIds[i] ?? "x"}, address: "${s.endpoint}" }`);
  await writeFile(
    config,
    [
      `instance_id: ${options.id}`,
      `nats: { url: [${options.urls.map((u) => `"${u}"`).join(", ")}] }`,
      `store: { kind: kv, replicas: ${options.replicas ?? 1} }`,
      `cluster: { lease_ttl_ms: ${options.ttlMs} }`,
      `images: [${images.join(", ")}]`,
      "backoff: { base_ms: 50, cap_ms: 300 }",
      "metrics_port: 0",
      "",
    ].join("\n"),
  );
  const child = spawnStui(["serve", "--config", config], options.env === undefined ? {} : { env: options.env });
  const [line = ""] = await child.waitForLine(/^.*"stui serve: listening".*$/, { timeoutMs: 30_000 });
  return { id: options.id, child, metrics: (JSON.parse(line) as { metrics: string }).metrics };
}

/** The images an instance itself has Connected, sorted, from its own metrics. */
export async function connectedOn(instance: ServeInstance): Promise<string[]> {
  const text = await (await fetch(instance.metrics)).text();
  return [...text.matchAll(/^stui_image_status\{image_id="([^"]+)",status="Connected"\} 1$/gm)]
    .map((m) => m[1] ?? "")
    .sort();
}

/** Image id → the instances that have it Connected. */
export async function ownership(instances: readonly ServeInstance[]): Promise<Map<string, string[]>> {
  const owners = new Map<string, string[]>();
  for (const instance of instances) {
    for (const image of await connectedOn(instance)) owners.set(image, [...(owners.get(image) ?? []), instance.id]);
  }
  return owners;
}
