/**
 * What the `cluster` benchmark needs around several `stui serve` processes sharing images: each
 * instance a real child process (`node bin/stui.js serve --config FILE`, `store.kind: kv` R3,
 * `cluster.lease_ttl_ms`) that can be killed by pid and started again with the same id and config,
 * which images each one has Connected (its own metrics, as the e2e test reads them), and a cleanup
 * list run once, in reverse, on every way out.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { isolatedEnv } from "../test/helpers/cli.js";
import type { ImageSimHandle } from "../test/helpers/image-sim.js";
import { spawnStui, type Exit, type ProcessHandle } from "../test/helpers/processes.js";

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface InstanceOptions {
  readonly id: string;
  /** Where its config file is written. */
  readonly dir: string;
  readonly natsUrls: readonly string[];
  readonly ttlMs: number;
  /** The images, every instance the same list: `id` at the sim's endpoint. */
  readonly images: readonly { readonly id: string; readonly sim: ImageSimHandle }[];
}

/** One `stui serve` process at a time under a fixed id and config; `start()` again after a kill. */
export class ServeInstance {
  private current: { child: ProcessHandle; metrics: string } | null = null;
  private readonly configFile: string;

  constructor(private readonly options: InstanceOptions) {
    this.configFile = path.join(options.dir, `stui-${options.id}.yaml`);
  }

  get id(): string {
    return this.options.id;
  }

  /** The `source` of this instance's events. */
  get source(): string {
    return `/stui/${this.options.id}`;
  }

  get pid(): number | null {
    return this.current?.child.pid ?? null;
  }

  /** Spawns it and waits for its "listening" line; resolves with the ms that took. */
  async start(): Promise<number> {
    const { id, natsUrls, ttlMs, images } = this.options;
    await writeFile(
      this.configFile,
      [
        `instance_id: ${id}`,
        `nats: { url: [${natsUrls.map((u) => JSON.stringify(u)).join(", ")}] }`,
        "store: { kind: kv, replicas: 3 }",
        `cluster: { lease_ttl_ms: ${ttlMs} }`,
        `images: [${images.map((i) => `{ id: ${i.id}, address: ${JSON.stringify(i.sim.endpoint)} }`).join(", ")}]`,
        "backoff: { base_ms: 50, cap_ms: 300 }",
        "metrics_port: 0",
        "",
      ].join("\n"),
    );
    const t0 = performance.now();
    // No NATS_URL or STUI_* from the caller's shell may point it at another server.
    const child = spawnStui(["serve", "--config", this.configFile], { env: isolatedEnv() });
    try {
      const [line = ""] = await child.waitForLine(/^.*"stui serve: listening".*$/, { timeoutMs: 30_000 });
      const metrics = (JSON.parse(line) as { metrics: string | null }).metrics;
      if (metrics === null) throw new Error(`instance ${id}: no metrics URL in ${line}`);
      this.current = { child, metrics };
    } catch (error) {
      await child.stop();
      throw error;
    }
    return performance.now() - t0;
  }

  /** Signals the running process by pid; `false` if none runs. */
  signal(signal: NodeJS.Signals): boolean {
    return this.current?.child.signal(signal) ?? false;
  }

  /** Resolves when the running process has exited. */
  async exited(): Promise<Exit | null> {
    return this.current === null ? null : this.current.child.exited;
  }

  /** SIGTERM (SIGKILL after a grace period); idempotent. */
  async stop(): Promise<void> {
    await this.current?.child.stop();
  }

  /** The images this instance itself has Connected, from its own metrics; none while it is down. */
  async connected(): Promise<string[]> {
    const running = this.current;
    if (running === null || running.child.exit() !== undefined) return [];
    try {
      const text = await (await fetch(running.metrics)).text();
      return [...text.matchAll(/^stui_image_status\{image_id="([^"]+)",status="Connected"\} 1$/gm)].map(
        (m) => m[1] ?? "",
      );
    } catch {
      return []; // stopping: its metrics server is gone
    }
  }
}

/**
 * Waits until every image is Connected on exactly one instance (each one's own metrics) and the
 * instances own within one image of each other, and resolves with the owner of each.
 */
export async function settledOwners(
  instances: readonly ServeInstance[],
  images: readonly string[],
  timeoutMs = 30_000,
): Promise<Map<string, ServeInstance>> {
  const deadline = performance.now() + timeoutMs;
  let last = "";
  for (;;) {
    const owners = new Map<string, ServeInstance[]>();
    const connected = await Promise.all(instances.map((instance) => instance.connected()));
    connected.forEach((ids, i) => {
      const instance = instances[i];
      if (instance === undefined) return;
      for (const id of ids) owners.set(id, [...(owners.get(id) ?? []), instance]);
    });
    const settled = new Map<string, ServeInstance>();
    for (const id of images) {
      const [only, ...more] = owners.get(id) ?? [];
      if (only !== undefined && more.length === 0) settled.set(id, only);
    }
    // Balanced too: while the instances are still evening the images out, an owner may hand its
    // image over during a trial, and that move would be timed as the takeover.
    const counts = instances.map((i) => [...settled.values()].filter((o) => o === i).length);
    if (settled.size === images.length && Math.max(...counts) - Math.min(...counts) <= 1) return settled;
    last = images.map((id) => `${id}: [${(owners.get(id) ?? []).map((o) => o.id).join(", ")}]`).join("; ");
    if (performance.now() > deadline) throw new Error(`no single owner per image after ${timeoutMs} ms: ${last}`);
    await sleep(100);
  }
}

/** Cleanups run once, last added first, whether the run ends, fails or is interrupted. */
export class Cleanups {
  private readonly steps: (() => Promise<void>)[] = [];

  add(step: () => Promise<void>): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    for (let step = this.steps.pop(); step !== undefined; step = this.steps.pop()) {
      try {
        await step();
      } catch (error) {
        console.error(`cleanup: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
}
