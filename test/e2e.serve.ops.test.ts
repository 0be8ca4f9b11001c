/**
 * `stui serve` as an operator runs it: a child process over a real nats-server and image-sims.
 * No JetStream is one line and exit 2; the start logs the server version and the fsync risk; a
 * busy metrics port is one line before anything is announced; SIGHUP stops it like SIGTERM; `npm
 * start` hands SIGTERM to the service; a stop that cannot publish its events exits 1; the log says
 * at warn when an image goes down and why; the metrics and probes an operator scrapes.
 */
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import type { StuiEvent } from "../src/protocol/index.js";
import { startImageSim, type ImageSimHandle } from "./helpers/image-sim.js";
import { cleanupManagers, makeStoreDir } from "./helpers/manager.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { spawnProcess, spawnStui, stopAllProcesses, type ProcessHandle } from "./helpers/processes.js";

let nats: NatsServerHandle | null = null;
const servers: Server[] = [];
afterEach(async () => {
  await stopAllProcesses();
  await nats?.stop();
  nats = null;
  for (const s of servers.splice(0)) s.close();
  await cleanupManagers();
});

/** A config file for one instance; `extra` lines are appended. */
async function configFor(
  natsUrl: string,
  images: readonly ImageSimHandle[],
  extra: readonly string[] = [],
): Promise<string> {
  const dir = await makeStoreDir();
  const file = path.join(dir, "stui.yaml");
  const lines = [
    "instance_id: ops",
    `nats: { url: "${natsUrl}" }`,
    `store: { path: "${path.join(dir, "data")}" }`,
    images.length === 0
      ? "images: []"
      : `images: [${images.map((s, i) => `{ id: ${["dev", "staging"][i] ?? `i${i}`}, address: "${s.endpoint}" }`).join(", ")}]`,
    "backoff: { base_ms: 50, cap_ms: 300 }",
    ...extra,
    "",
  ];
  await writeFile(file, lines.join("\n"));
  return file;
}

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

const logLines = (child: ProcessHandle): LogLine[] =>
  child
    .stdout()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as LogLine);

async function listening(child: ProcessHandle): Promise<{ metrics: string | null }> {
  const [line = ""] = await child.waitForLine(/^.*"stui serve: listening".*$/, { timeoutMs: 30_000 });
  return JSON.parse(line) as { metrics: string | null };
}

/** Every event in the stream, oldest first. */
async function streamEvents(url: string): Promise<StuiEvent[]> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("STUI_EVENTS").catch(() => null);
    if (info === null) return [];
    const events: StuiEvent[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq += 1) {
      const m = await jsm.streams.getMessage("STUI_EVENTS", { seq });
      if (m !== null) events.push(m.json<StuiEvent>());
    }
    return events;
  } finally {
    await nc.close();
  }
}

const noStack = (text: string): void => expect(text).not.toMatch(/^\s+at /m);

describe("stui serve - operating it", () => {
  it("stui serve - without JetStream: one line naming the fix, exit 2; with it, the server version and the fsync risk are logged", async () => {
    nats = await startNatsServer({ jetstream: false });
    const child = spawnStui(["serve", "--config", await configFor(nats.url, [])]);
    const exit = await child.exited;
    expect(exit.code).toBe(2);
    const output = `${child.stdout()}${child.stderr()}`;
    noStack(output);
    const fatal = logLines(child).filter((l) => l.level >= 50);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]?.msg).toMatch(/has no JetStream.*`jetstream \{\}` to the server's configuration.*-js/);
    await nats.stop();

    nats = await startNatsServer();
    const ok = spawnStui(["serve", "--config", await configFor(nats.url, [])]);
    await listening(ok);
    const lines = logLines(ok);
    expect(lines.find((l) => l.msg.startsWith("connected to nats-server"))).toMatchObject({
      level: 30,
      server_version: "2.9.10",
    });
    expect(lines.find((l) => l.level === 40 && /cannot fsync every write/.test(l.msg))?.msg).toMatch(
      /sync_interval: always needs 2\.10\+/,
    );
    ok.signal("SIGTERM");
    expect((await ok.exited).code).toBe(0);
  });

  it("stui serve - a busy metrics port is one line before anything is announced", async () => {
    nats = await startNatsServer();
    const busy = createServer();
    servers.push(busy);
    busy.listen(0, "127.0.0.1");
    await once(busy, "listening");
    const port = (busy.address() as { port: number }).port;
    const child = spawnStui(["serve", "--config", await configFor(nats.url, [], [`metrics_port: ${port}`])]);
    expect((await child.exited).code).toBe(1);
    noStack(`${child.stdout()}${child.stderr()}`);
    const fatal = logLines(child).filter((l) => l.level >= 50);
    expect(fatal.map((l) => l.msg)).toEqual([`cannot serve metrics on 127.0.0.1:${port}: ${PORT_IN_USE}`]);
    expect(logLines(child).some((l) => l.msg === "connecting to NATS")).toBe(false);
    expect((await streamEvents(nats.url)).filter((e) => e.source === "/stui/ops")).toEqual([]);
  });

  it("stui serve - SIGHUP stops it as SIGTERM does: final statuses and instance.stopped, exit 0", async () => {
    nats = await startNatsServer();
    const sim = await startImageSim({ name: "dev" });
    const child = spawnStui(["serve", "--config", await configFor(nats.url, [sim])]);
    await listening(child);
    await child.waitForLine(/image dev: Unknown → Connected/, { timeoutMs: 15_000 });
    child.signal("SIGHUP");
    expect((await child.exited).code).toBe(0);
    const events = await streamEvents(nats.url);
    expect(events.map((e) => e.type).slice(-2)).toEqual(["io.stui.image.status.changed", "io.stui.instance.stopped"]);
    expect(events.at(-2)?.data).toMatchObject({ image_id: "dev", status: "Disconnected" });
  });

  it("stui serve - npm start passes SIGTERM to the service process, which stops cleanly", async () => {
    nats = await startNatsServer();
    const npm = spawnProcess("npm", ["start", "--silent", "--", "--config", await configFor(nats.url, [])]);
    const [line = ""] = await npm.waitForLine(/^.*"stui serve: listening".*$/, { timeoutMs: 30_000 });
    const servicePid = (JSON.parse(line) as { pid: number }).pid;
    expect(servicePid).not.toBe(npm.pid);
    npm.signal("SIGTERM");
    await npm.exited;
    await expect.poll(() => alive(servicePid), { timeout: 10_000 }).toBe(false);
    expect((await streamEvents(nats.url)).at(-1)?.type).toBe("io.stui.instance.stopped");
  });

  it("stui serve - a stop that cannot publish its events exits 1 and says so", async () => {
    nats = await startNatsServer();
    const child = spawnStui(["serve", "--config", await configFor(nats.url, [])]);
    await listening(child);
    await nats.process().stop(); // NATS gone: instance.stopped cannot be published
    await child.waitForLine(/NATS link lost/, { timeoutMs: 10_000 });
    child.signal("SIGTERM");
    expect((await child.exited).code).toBe(1);
    expect(logLines(child).find((l) => l.msg === "stopped without publishing every event")).toMatchObject({
      level: 50,
      unpublished_events: 1,
    });
  }, 40_000);

  it("stui serve - the log says when an image goes down (warn, with the reason) and comes back (info); requests only at debug", async () => {
    nats = await startNatsServer();
    const sim = await startImageSim({ name: "dev" });
    const child = spawnStui(["serve", "--config", await configFor(nats.url, [sim], ["metrics_port: 0"])]);
    const { metrics } = await listening(child);
    await child.waitForLine(/image dev: Unknown → Connected/, { timeoutMs: 15_000 });
    const base = (metrics ?? "").replace(/\/metrics$/, "");

    sim.kill("SIGKILL");
    await child.waitForLine(/image dev: Connected → Reconnecting/, { timeoutMs: 15_000 });
    const down = logLines(child).find((l) => l.msg.startsWith("image dev: Connected → Reconnecting"));
    expect(down).toMatchObject({ level: 40, image_id: "dev", status: "Reconnecting" });
    expect(typeof down?.["reason"]).toBe("string");
    expect(down?.msg).toContain(String(down?.["reason"]));
    const restarted = await startImageSim({ name: "dev", bind: sim.endpoint });
    await child.waitForLine(/image dev: Reconnecting → Connected/, { timeoutMs: 15_000 });
    expect(logLines(child).find((l) => l.msg === "image dev: Reconnecting → Connected")?.level).toBe(30);

    await fetch(`${base}/metrics`); // nothing at info about requests or health
    expect(logLines(child).some((l) => l.level < 30)).toBe(false);
    void restarted;

    // Per-image series, the latency histogram, process metrics and the probes.
    await expect
      .poll(async () => (await fetch(`${base}/metrics`)).text(), { timeout: 10_000 })
      .toMatch(/^stui_image_rtt_seconds\{image_id="dev"\} [0-9.e-]+$/m);
    const c = await connect({ servers: nats.url });
    await c.request("stui.api.list_images", "{}", { timeout: 5000 });
    await c.close();
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/^stui_image_status\{image_id="dev",status="Connected"\} 1$/m);
    expect(text).toMatch(/^stui_image_status\{image_id="dev",status="Reconnecting"\} 0$/m);
    expect(text).toMatch(/^stui_image_health\{image_id="dev",health="[A-Za-z]+"\} 1$/m);
    expect(text).toMatch(/^stui_request_duration_seconds_count\{endpoint="list_images"\} 1$/m);
    expect(text).toMatch(/^stui_request_duration_seconds_bucket\{le="0.005",endpoint="list_images"\} \d+$/m);
    expect(text).toMatch(/^# TYPE stui_api_refused_total counter$/m);
    expect(text).toMatch(/^stui_store_writable 1$/m);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    expect(await (await fetch(`${base}/healthz`)).text()).toBe("ok\n");
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, reasons: [] });

    await nats.process().stop();
    await expect.poll(async () => (await fetch(`${base}/readyz`)).status, { timeout: 10_000 }).toBe(503);
    expect(await (await fetch(`${base}/readyz`)).json()).toEqual({
      ready: false,
      reasons: ["the NATS link is Reconnecting"],
    });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it("stui serve - a second instance with the same instance_id, or on the same store directory, is refused in one line; stui instances lists the live ones", async () => {
    nats = await startNatsServer();
    const firstConfig = await configFor(nats.url, []);
    const first = spawnStui(["serve", "--config", firstConfig]);
    await listening(first);

    const twin = spawnStui(["serve", "--config", await configFor(nats.url, [])]); // same instance_id "ops"
    expect((await twin.exited).code).toBe(2);
    noStack(`${twin.stdout()}${twin.stderr()}`);
    expect(
      logLines(twin)
        .filter((l) => l.level >= 50)
        .map((l) => l.msg),
    ).toEqual([
      expect.stringMatching(
        /^instance_id ops is already used by a running stui on this NATS \(service \w+\): give each instance its own instance_id$/,
      ),
    ]);

    const sameStore = spawnStui(["serve", "--config", firstConfig, "--instance-id", "other"]);
    expect((await sameStore.exited).code).toBe(1);
    noStack(`${sameStore.stdout()}${sameStore.stderr()}`);
    expect(
      logLines(sameStore)
        .filter((l) => l.level >= 50)
        .map((l) => l.msg),
    ).toEqual([expect.stringMatching(new RegExp(`is in use by another stui \\(pid ${first.pid} on `))]);

    const second = spawnStui(["serve", "--config", await configFor(nats.url, []), "--instance-id", "ops-2"]);
    await listening(second);
    const listed = spawnStui(["instances", "--json", "--nats-url", nats.url]);
    expect((await listed.exited).code).toBe(0);
    const instances = JSON.parse(listed.stdout()) as { instance_id: string; version: string; started: string }[];
    expect(instances.map((i) => i.instance_id)).toEqual(["ops", "ops-2"]);
    expect(instances.every((i) => i.version === "0.1.0" && !Number.isNaN(Date.parse(i.started)))).toBe(true);
  });

  it("stui serve - at debug, every request is logged with its endpoint, outcome and time", async () => {
    nats = await startNatsServer();
    const child = spawnStui(["serve", "--config", await configFor(nats.url, [], ["log_level: debug"])]);
    await listening(child);
    const c = await connect({ servers: nats.url });
    await c.request("stui.api.get_image_session_stats", JSON.stringify({ image_id: "nope" }), { timeout: 5000 });
    await c.close();
    await child.waitForLine(/answered get_image_session_stats/, { timeoutMs: 5000 });
    expect(logLines(child).find((l) => l.msg === "answered get_image_session_stats")).toMatchObject({
      level: 20,
      endpoint: "get_image_session_stats",
      answer: "Error",
      code: "ImageNotFound",
    });
  });
});

const PORT_IN_USE = "the port is in use (set metrics_port to another port, or 0 for any free one)";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
