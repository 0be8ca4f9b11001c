/**
 * `stui panel` as a user sees it: the real binary in a tmux pane (120×30, then 80×24) against a
 * real `stui serve` with three `stui image-sim` processes and a real nats-server. An image killed
 * shows Reconnecting, a new sim on its endpoint brings it back to Connected, no line is wider than
 * the pane, colors show (and none with NO_COLOR), and `q` ends the panel with exit code 0. Without a terminal: `--once` and `--json`.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Response } from "../src/protocol/index.js";
import { runStui } from "./helpers/cli.js";
import { startImageSim, type ImageSimHandle } from "./helpers/image-sim.js";
import { cleanupManagers, makeStoreDir } from "./helpers/manager.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { REPO_ROOT, spawnStui, stopAllProcesses, type ProcessHandle } from "./helpers/processes.js";
import { StuiClient } from "../src/client.js";

const IDS = ["dev", "staging", "build"] as const;
const hasTmux = spawnSync("tmux", ["-V"]).status === 0;

let nats: NatsServerHandle | null = null;
const sockets: string[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) {
    spawnSync("tmux", ["-L", socket, "kill-server"]);
    rmSync(exitFile(socket), { force: true });
  }
  await stopAllProcesses();
  await nats?.stop();
  nats = null;
  await cleanupManagers();
});

async function startFleet(): Promise<{ sims: ImageSimHandle[]; url: string; restartService: () => Promise<void> }> {
  nats = await startNatsServer();
  const sims: ImageSimHandle[] = [];
  for (const name of IDS) sims.push(await startImageSim({ name }));
  const dir = await makeStoreDir();
  const config = path.join(dir, "stui.yaml");
  await writeFile(
    config,
    [
      "instance_id: panel",
      "store:",
      `  path: ${path.join(dir, "data")}`,
      "images:",
      ...IDS.map((id, i) => `  - id: ${id}\n    address: ${sims[i]?.endpoint ?? ""}\n    name: ${id} image`),
      "backoff:",
      "  base_ms: 50",
      "  cap_ms: 500",
      "  max_restarts: 1000",
      "metrics_port: 0",
      "",
    ].join("\n"),
  );
  const url = nats.url;
  const serve = async (): Promise<ProcessHandle> => {
    const child = spawnStui(["serve", "--config", config], {
      env: { ...process.env, NATS_URL: url, STUI_LOG_LEVEL: "info" },
    });
    await child.waitForLine(/"stui serve: listening"/, { timeoutMs: 30_000 });
    return child;
  };
  let service = await serve();
  const restartService = async (): Promise<void> => {
    await service.stop();
    service = await serve();
  };
  return { sims, url, restartService };
}

const tmux = (socket: string, ...args: string[]): string => {
  const r = spawnSync("tmux", ["-L", socket, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tmux ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};

/** Starts the panel in a detached tmux pane of `width`×`height`; the pane stays when it exits. */
function openPanel(url: string, width: number, height: number, env = ""): string {
  const socket = `stui-panel-${process.pid}-${width}-${Date.now()}`;
  sockets.push(socket);
  // The shell writes the panel's exit code to a file: tmux's #{pane_dead_status} is not always filled in.
  const command = `cd ${REPO_ROOT} && env ${env} node bin/stui.js panel --nats-url ${url}; echo $? > ${exitFile(socket)}`;
  tmux(
    socket,
    "-f",
    "/dev/null",
    "new-session",
    "-d",
    "-x",
    String(width),
    "-y",
    String(height),
    "-s",
    "panel",
    "sh",
    "-c",
    command,
  );
  tmux(socket, "set-option", "-t", "panel", "remain-on-exit", "on");
  return socket;
}

/** The pane with its colors and attributes as escape codes. */
const captureStyled = (socket: string): string => tmux(socket, "capture-pane", "-p", "-e", "-t", "panel");

const capture = (socket: string): string[] =>
  tmux(socket, "capture-pane", "-p", "-t", "panel").replace(/\n$/, "").split("\n");

/** The pane's lines once `test` accepts them. */
async function screenUntil(socket: string, test: (lines: string[]) => boolean, what: string): Promise<string[]> {
  const deadline = Date.now() + 25_000;
  let lines: string[] = [];
  while (Date.now() < deadline) {
    lines = capture(socket);
    if (test(lines)) return lines;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`panel: never showed ${what}; the screen:\n${lines.join("\n")}`);
}

const rowOf = (lines: readonly string[], id: string): string =>
  lines.find((l) => new RegExp(`^[› ] ${id}\\s`).test(l)) ?? "";

const allShow = (status: string) => (lines: string[]) => IDS.every((id) => rowOf(lines, id).includes(status));

async function killAndBringBack(socket: string, sims: ImageSimHandle[], width: number): Promise<void> {
  const all = await screenUntil(socket, allShow("● Connected"), "every image Connected");
  for (const line of all) expect(line.length).toBeLessThanOrEqual(width);
  const staging = sims[1];
  if (staging === undefined) throw new Error("no staging sim");
  staging.kill("SIGKILL");
  await screenUntil(socket, (l) => rowOf(l, "staging").includes("◐ Reconnecting"), "staging Reconnecting");
  sims[1] = await startImageSim({ name: "staging", bind: staging.endpoint });
  const back = await screenUntil(socket, allShow("● Connected"), "staging Connected again");
  for (const line of back) expect(line.length).toBeLessThanOrEqual(width);
}

const send = (socket: string, ...keys: string[]): void => void tmux(socket, "send-keys", "-t", "panel", ...keys);

const exitFile = (socket: string): string => path.join(tmpdir(), `${socket}.exit`);

async function quitWithZero(socket: string): Promise<void> {
  tmux(socket, "send-keys", "-t", "panel", "q");
  const deadline = Date.now() + 10_000;
  let code = "";
  while (Date.now() < deadline) {
    code = existsSync(exitFile(socket)) ? readFileSync(exitFile(socket), "utf8").trim() : "";
    if (code !== "") break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(code).toBe("0");
}

describe.skipIf(!hasTmux)("stui panel - in a terminal (tmux)", () => {
  it("shows every image, a killed image Reconnecting then Connected, at 120 and 80 columns, and q exits 0", async () => {
    const { sims, url } = await startFleet();

    const wide = openPanel(url, 120, 30);
    const first = await screenUntil(wide, allShow("● Connected"), "every image Connected");
    expect(first[0]).toMatch(/^stui panel {2}NATS ● connected nats:\/\//);
    expect(first.join("\n")).toMatch(/IMAGE▲\s+STATUS\s+HEALTH\s+ACT\/ORPH\/ALL\s+RTT ms\s+LAST SEEN\s+OWNER\s+NAME/);
    expect(rowOf(first, "dev")).toMatch(/Healthy .* panel\s+dev image/);
    expect(captureStyled(wide).includes("\u001B[32m● Connected")).toBe(true);
    await killAndBringBack(wide, sims, 120);
    tmux(wide, "send-keys", "-t", "panel", "j");
    await screenUntil(wide, (l) => rowOf(l, "dev").startsWith("› "), "the selection on the second row");
    await quitWithZero(wide);

    const narrow = openPanel(url, 80, 24, "NO_COLOR=1");
    const lines = await screenUntil(narrow, allShow("● Connected"), "every image Connected at 80 columns");
    expect(lines.join("\n")).not.toMatch(/\bNAME\b/);
    expect(captureStyled(narrow).includes("\u001B[")).toBe(false);
    await killAndBringBack(narrow, sims, 80);
    const screen = capture(narrow);
    expect(screen.length).toBeLessThanOrEqual(24);
    expect(screen.join("\n")).toMatch(/staging: Connected → Reconnecting/);
    await quitWithZero(narrow);
  }, 120_000);

  it("the cleanup dialog lists the orphans and removes exactly those; the panel lives through a service and a NATS restart", async () => {
    const { sims, url, restartService } = await startFleet();
    const client = await StuiClient.connect({ servers: url, timeoutMs: 5000 });
    try {
      const create = async (client_id: string): Promise<string> => {
        const r = await client.createSession({ image_id: "dev", client_id });
        if (r.type !== "SessionCreated") throw new Error(`CreateSession: ${JSON.stringify(r)}`);
        return r.session.session_id;
      };
      const lost = [await create("alice"), await create("bob")];
      // A restarted image no longer knows its sessions: they are orphaned.
      const dev = sims[0];
      if (dev === undefined) throw new Error("no dev sim");
      dev.kill("SIGKILL");
      sims[0] = await startImageSim({ name: "dev", bind: dev.endpoint });
      const orphans = async (): Promise<string[]> => {
        const r = await client.listImageSessions({ image_id: "dev", include_disconnected: true });
        return r.type === "ImageSessions"
          ? r.sessions.filter((x) => x.orphaned_at !== null).map((x) => x.session_id)
          : [];
      };
      await expect.poll(orphans, { timeout: 20_000 }).toHaveLength(2);
      const kept = await create("carol");

      const socket = openPanel(url, 120, 30);
      await screenUntil(socket, (l) => rowOf(l, "dev").includes("1/2/3"), "dev with 1 active, 2 orphaned, 3 sessions");
      send(socket, "g", "j"); // build, dev, staging: dev is the second row
      await screenUntil(socket, (l) => l.some((x) => x.startsWith("── dev ·")), "the detail of dev");
      send(socket, "C");
      const preview = await screenUntil(
        socket,
        (l) => l.some((x) => x.includes("would be removed")),
        "the cleanup preview",
      );
      const listed = preview.flatMap((l) => /^ {2}([0-9a-f-]{36}) {2}/.exec(l)?.[1] ?? []);
      expect(listed.sort()).toEqual([...lost].sort());
      send(socket, "y");
      const done = await screenUntil(
        socket,
        (l) => l.some((x) => x.includes("✔ removed 2 session(s) of dev")),
        "the result",
      );
      expect(done.flatMap((l) => /^ {2}removed ([0-9a-f-]{36})/.exec(l)?.[1] ?? []).sort()).toEqual([...lost].sort());
      const left = await client.listImageSessions({ image_id: "dev", include_disconnected: true });
      expect(left.type === "ImageSessions" && left.sessions.map((x) => x.session_id)).toEqual([kept]);
      send(socket, "Enter");
      await screenUntil(socket, (l) => rowOf(l, "dev").includes("1/0/1"), "dev with its one session left");

      await restartService();
      const resynced = await screenUntil(
        socket,
        (l) => /resync \d+: \/stui\/panel started over/.test(l[0] ?? ""),
        "a resync after the restart",
      );
      expect(resynced[0]).toMatch(/NATS ● connected/);
      await killAndBringBack(socket, sims, 120);

      await nats?.restart({ downMs: 1000 });
      await screenUntil(socket, (l) => /NATS ◐ reconnecting/.test(l[0] ?? ""), "the link reconnecting");
      await screenUntil(
        socket,
        (l) => /NATS ● connected.*resync \d+: NATS reconnected/.test(l[0] ?? ""),
        "the link back and a resync",
      );
      await killAndBringBack(socket, sims, 120);
      await quitWithZero(socket);
    } finally {
      await client.close().catch(() => undefined);
    }
  }, 150_000);
});

describe("stui panel - without a terminal", () => {
  it("--once prints the images table and --once --json the ListImages answer, exit 0", async () => {
    const { url } = await startFleet();
    const env = { NATS_URL: url };
    await expect
      .poll(async () => (await runStui(["panel", "--once"], { env })).stdout, { timeout: 20_000, interval: 300 })
      .toMatch(/^build\s+build image\s+\S+\s+panel\s+Connected/m);
    const table = await runStui(["panel", "--once"], { env });
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^IMAGE\s+NAME\s+ADDRESS\s+OWNER\s+STATUS/);
    expect(table.stdout.includes("\u001B[")).toBe(false);
    const json = await runStui(["panel", "--once", "--json"], { env });
    expect(json.code).toBe(0);
    const answer = JSON.parse(json.stdout) as Response;
    expect(answer.type).toBe("Images");
    if (answer.type === "Images")
      expect(answer.images.map((i) => i.image_id).sort()).toEqual(["build", "dev", "staging"]);
  });

  it("refuses to start the live panel without a terminal, naming --once", async () => {
    const r = await runStui(["panel", "--nats-url", "nats://127.0.0.1:1"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/needs a terminal; without one, use --once/);
  });
});
