/**
 * Several instances, one set of images: a 3-node nats-server cluster (R3 buckets), two `stui serve`
 * processes with `store.kind: kv` and `cluster.lease_ttl_ms`, four image-sims. Each image is
 * connected by exactly one instance (what each instance's own metrics say it has Connected); an
 * instance killed with SIGKILL has its images Connected on the other within the TTL + 5 s, with
 * their sessions kept (a takeover orphans nothing); SIGTERM hands the leases over at once.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { StuiClient } from "../src/client.js";
import { startImageSim, type ImageSimHandle } from "./helpers/image-sim.js";
import { cleanupManagers, makeStoreDir } from "./helpers/manager.js";
import { startNatsCluster, type NatsCluster } from "./helpers/nats-cluster.js";
import { spawnStui, stopAllProcesses, type ProcessHandle } from "./helpers/processes.js";

const TTL_MS = 3000;
const IMAGES = ["i0", "i1", "i2", "i3"] as const;

let cluster: NatsCluster | null = null;
let client: StuiClient | null = null;
afterEach(async () => {
  await client?.close();
  client = null;
  await stopAllProcesses();
  await cluster?.cleanup();
  cluster = null;
  await cleanupManagers();
});

interface Instance {
  readonly child: ProcessHandle;
  readonly metrics: string;
}

async function serve(id: string, urls: readonly string[], sims: readonly ImageSimHandle[]): Promise<Instance> {
  const dir = await makeStoreDir();
  const config = path.join(dir, "stui.yaml");
  await writeFile(
    config,
    [
      `instance_id: ${id}`,
      `nats: { url: [${urls.map((u) => `"${u}"`).join(", ")}] }`,
      "store: { kind: kv, replicas: 3 }",
      `cluster: { lease_ttl_ms: ${TTL_MS} }`,
      `images: [${sims.map((s, i) => `{ id: ${IMAGES[i] ?? "x"}, address: "${s.endpoint}" }`).join(", ")}]`,
      "backoff: { base_ms: 50, cap_ms: 300 }",
      "metrics_port: 0",
      "",
    ].join("\n"),
  );
  const child = spawnStui(["serve", "--config", config]);
  const [line = ""] = await child.waitForLine(/^.*"stui serve: listening".*$/, { timeoutMs: 30_000 });
  return { child, metrics: (JSON.parse(line) as { metrics: string }).metrics };
}

/** The images an instance itself has Connected, from its own metrics. */
async function connectedOn(instance: Instance): Promise<string[]> {
  const text = await (await fetch(instance.metrics)).text();
  return [...text.matchAll(/^stui_image_status\{image_id="([^"]+)",status="Connected"\} 1$/gm)]
    .map((m) => m[1] ?? "")
    .sort();
}

async function ownership(instances: readonly Instance[]): Promise<string[][]> {
  return Promise.all(instances.map(connectedOn));
}

describe("cluster - one owner per image", () => {
  it("cluster - every image is connected by exactly one instance; SIGKILL moves them within the TTL + 5 s, sessions kept; SIGTERM hands over at once", async () => {
    cluster = await startNatsCluster();
    const sims: ImageSimHandle[] = [];
    for (const id of IMAGES) sims.push(await startImageSim({ name: id }));
    const a = await serve("a", cluster.urls, sims);
    const b = await serve("b", cluster.urls, sims);

    // Each image on exactly one of them, and all of them on one or the other.
    await expect
      .poll(async () => (await ownership([a, b])).flat().sort(), { timeout: 15_000, interval: 200 })
      .toEqual([...IMAGES]);
    for (let sample = 0; sample < 10; sample += 1) {
      const [onA = [], onB = []] = await ownership([a, b]);
      expect(onA.filter((id) => onB.includes(id))).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    // A session on an image that a owns, through whichever instance the API reaches.
    client = await StuiClient.connect({ servers: [...cluster.urls], timeoutMs: 10_000 });
    const [onA = []] = await ownership([a, b]);
    expect(onA.length).toBeGreaterThan(0); // a started first: the SIGKILL below takes something over
    const image = onA[0] ?? "";
    // Requests are not forwarded to the owner yet (Known limits): the instance the queue group picks
    // answers ImageNotFound for an image it does not own, without side effects, so ask again.
    let created = await client.createSession({ image_id: image, client_id: "alice" });
    for (let tries = 0; created.type === "Error" && created.code === "ImageNotFound" && tries < 20; tries += 1) {
      created = await client.createSession({ image_id: image, client_id: "alice" });
    }
    if (created.type !== "SessionCreated") throw new Error(JSON.stringify(created));

    // SIGKILL a: its images are Connected on b within the TTL + 5 s.
    const killedAt = performance.now();
    a.child.signal("SIGKILL");
    await expect.poll(() => connectedOn(b), { timeout: TTL_MS + 5000, interval: 200 }).toEqual([...IMAGES]);
    const movedMs = performance.now() - killedAt;
    console.log(`cluster: SIGKILL → every image Connected on the survivor in ${Math.round(movedMs)} ms`);
    // The image still knows the session: the takeover restored it, orphaned nothing.
    const listed = await client.listImageSessions({ image_id: image, include_disconnected: true });
    expect(listed.type === "ImageSessions" && listed.sessions.map((s) => [s.session_id, s.orphaned_at])).toEqual([
      [created.session.session_id, null],
    ]);

    // A restarted a finds every lease held and waits; SIGTERM of b hands them to it at once.
    const a2 = await serve("a", cluster.urls, sims);
    await new Promise((resolve) => setTimeout(resolve, TTL_MS));
    expect(await connectedOn(a2)).toEqual([]);
    const stoppedAt = performance.now();
    b.child.signal("SIGTERM");
    expect((await b.child.exited).code).toBe(0);
    await expect.poll(() => connectedOn(a2), { timeout: 5000, interval: 100 }).toEqual([...IMAGES]);
    console.log(
      `cluster: SIGTERM → every image Connected on the other in ${Math.round(performance.now() - stoppedAt)} ms`,
    );
  }, 120_000);
});
