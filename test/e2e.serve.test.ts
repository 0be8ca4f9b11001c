/**
 * End to end: `stui serve` as a child process with a YAML config for three `stui image-sim`
 * processes and a real nats-server, driven only through the client commands and NATS. An image is
 * killed and the events show it; the service is restarted and finds its sessions; SIGTERM stops it
 * with exit code 0 and the `instance.<id>.stopped` event.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { StuiClient } from "../src/client.js";
import type { Response, StuiEvent } from "../src/protocol/index.js";
import { startImageSim, type ImageSimHandle } from "./helpers/image-sim.js";
import { cleanupManagers, makeStoreDir } from "./helpers/manager.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { spawnStui, stopAllProcesses, type ProcessHandle } from "./helpers/processes.js";

let nats: NatsServerHandle | null = null;
afterEach(async () => {
  await stopAllProcesses();
  await nats?.stop();
  await cleanupManagers();
});

const env = (): NodeJS.ProcessEnv => ({ ...process.env, NATS_URL: nats?.url ?? "" });

/** Runs a client command to its end; its exit code and output. */
async function stui(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnStui(args, { env: env() });
  const exit = await child.exited;
  return { code: exit.code, stdout: child.stdout(), stderr: child.stderr() };
}

async function stuiJson(...args: string[]): Promise<Response> {
  const result = await stui(...args, "--json");
  if (result.code !== 0)
    throw new Error(`stui ${args.join(" ")}: exit ${result.code}: ${result.stderr}${result.stdout}`);
  return JSON.parse(result.stdout) as Response;
}

async function startServe(config: string): Promise<{ child: ProcessHandle; metrics: string }> {
  const child = spawnStui(["serve", "--config", config], { env: { ...env(), STUI_LOG_LEVEL: "info" } });
  const [line = ""] = await child.waitForLine(/^.*"stui serve: listening".*$/, { timeoutMs: 30_000 });
  const listening = JSON.parse(line) as { metrics: string };
  return { child, metrics: listening.metrics };
}

async function allConnected(): Promise<void> {
  await expect
    .poll(
      async () => {
        const r = await stuiJson("images");
        return r.type === "Images" ? r.images.map((i) => i.status) : [];
      },
      { timeout: 20_000, interval: 300 },
    )
    .toEqual(["Connected", "Connected", "Connected"]);
}

describe("stui serve - end to end", () => {
  it("serves three images over NATS, shows a killed image in the events, keeps sessions across a restart, and stops cleanly", async () => {
    nats = await startNatsServer();
    const sims: ImageSimHandle[] = [];
    for (const name of ["dev", "staging", "build"]) sims.push(await startImageSim({ name }));
    const dir = await makeStoreDir();
    const config = path.join(dir, "stui.yaml");
    await writeFile(
      config,
      [
        "instance_id: e2e",
        "store:",
        `  path: ${path.join(dir, "data")}`,
        "images:",
        ...["dev", "staging", "build"].map(
          (id, i) => `  - id: ${id}\n    address: ${sims[i]?.endpoint ?? ""}\n    name: ${id} image`,
        ),
        "backoff:",
        "  base_ms: 50",
        "  cap_ms: 300",
        "metrics_port: 0",
        "",
      ].join("\n"),
    );

    const first = await startServe(config);
    await allConnected();

    // Sessions and a context, through NATS.
    const client = await StuiClient.connect({ servers: nats.url });
    try {
      const created = await client.createSession({ image_id: "staging", client_id: "alice", session_name: "work" });
      expect(created.type).toBe("SessionCreated");
    } finally {
      await client.close();
    }
    expect(await stuiJson("switch", "--client", "alice", "--to", "staging")).toMatchObject({
      type: "ContextSwitched",
      to_image_id: "staging",
    });
    const table = await stui("images");
    expect(table.stdout).toMatch(/^IMAGE\s+NAME\s+ADDRESS\s+OWNER\s+STATUS/m);
    expect(table.stdout).toMatch(/^staging\s+staging image\s+\S+\s+e2e\s+Connected/m);

    // Kill an image: `stui events` shows it go Reconnecting.
    const follower = spawnStui(["events", "--json", "--subject", "stui.events.image.dev.status"], { env: env() });
    await new Promise((resolve) => setTimeout(resolve, 500));
    sims[0]?.kill("SIGKILL");
    const [reconnecting = ""] = await follower.waitForLine(/^.*"Reconnecting".*$/, { timeoutMs: 15_000 });
    expect(JSON.parse(reconnecting)).toMatchObject({
      type: "io.stui.image.status.changed",
      source: "/stui/e2e",
      data: { image_id: "dev", status: "Reconnecting", previous_status: "Connected" },
    });
    await follower.stop();

    const metrics = await (await fetch(first.metrics)).text();
    expect(metrics).toMatch(/^stui_images\{status="Reconnecting"\} 1$/m);
    expect(metrics).toMatch(/^stui_sessions\{state="total"\} 1$/m);
    expect(metrics).toMatch(/^stui_requests_total\{endpoint="switch_image_context"\} 1$/m);
    expect(metrics).toMatch(/^stui_nats_link\{status="Connected"\} 1$/m);

    // Restart: SIGTERM exits 0, and the new process finds the session and the context.
    first.child.signal("SIGTERM");
    expect((await first.child.exited).code).toBe(0);
    sims[0] = await startImageSim({ name: "dev", bind: sims[0]?.endpoint ?? "" });
    const second = await startServe(config);
    await allConnected();
    const sessions = await stuiJson("sessions", "--image", "staging");
    expect(sessions.type === "ImageSessions" && sessions.sessions.map((s) => [s.client_id, s.session_name])).toEqual([
      ["alice", "work"],
    ]);
    expect(await stuiJson("switch", "--client", "alice", "--from", "staging", "--to", "build")).toMatchObject({
      from_image_id: "staging",
    });

    // The final stop: exit 0, the images' final statuses and the stopped event are in the stream.
    second.child.signal("SIGTERM");
    expect((await second.child.exited).code).toBe(0);
    const replay = spawnStui(["events", "--json", "--since", "5m"], { env: env() });
    await replay.waitForLine(/"io\.stui\.instance\.stopped"/, { timeoutMs: 15_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await replay.stop();
    const events = replay.lines().map((l) => JSON.parse(l) as StuiEvent);
    const runs = events.filter((e) => e.type === "io.stui.instance.started" || e.type === "io.stui.instance.stopped");
    expect(runs.map((e) => e.type)).toEqual([
      "io.stui.instance.started",
      "io.stui.instance.stopped",
      "io.stui.instance.started",
      "io.stui.instance.stopped",
    ]);
    const lastRun = events.slice(events.findLastIndex((e) => e.type === "io.stui.instance.started"));
    const finalStatuses = lastRun.flatMap((e) =>
      e.type === "io.stui.image.status.changed" && e.data.status === "Disconnected" ? [e.data.image_id] : [],
    );
    expect(finalStatuses.sort()).toEqual(["build", "dev", "staging"]);
  });

  it("says clearly when no service answers, and refuses a bad config by naming the key", async () => {
    nats = await startNatsServer();
    const none = await stui("images");
    expect(none.code).toBe(3);
    expect(none.stderr).toContain("no stui service answers on stui.api.list_images");
    const dir = await makeStoreDir();
    const config = path.join(dir, "bad.json");
    await writeFile(config, JSON.stringify({ images: [{ id: "dev", address: 5555 }] }));
    const bad = await stui("serve", "--config", config);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("images[0].address");
    await writeFile(config, JSON.stringify({ store: { path: dir }, imagez: [] }));
    const typo = await stui("serve", "--config", config);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("imagez");
  });
});
