/**
 * `npm run bench -- panel`: what the terminal panel (`stui panel`) costs with a large fleet and a
 * steady stream of events, against a bare ink render of an equal static table in the same run.
 *
 * Reproduce: `npm run bench -- panel` (needs tmux and nats-server; 2 cores are enough). Knobs:
 * STUI_BENCH_PANEL_IMAGES (200), STUI_BENCH_PANEL_SIMS (10), STUI_BENCH_PANEL_RATE (events/s, 20),
 * STUI_BENCH_PANEL_SECONDS (measured period, 20); STUI_BENCH_PANEL_NODE_ENV (the children's
 * NODE_ENV, `production` by default as `stui panel` sets it; `development` for React's
 * development build);
 * STUI_BENCH_PANEL_SCREEN=1 prints each pane's screen at the end of its period.
 *
 * What runs, all real: a private nats-server on a free port (JetStream); `stui image-sim`
 * processes, each one the address of IMAGES / SIMS image ids (the config allows several images
 * on one address, and a sim answers every peer); `node bin/stui.js serve` with those images, its
 * default connection policy, a file store; the bench waits until every image is Connected. The
 * panel runs as `bench/panel-child.ts` (`runPanel` with an `onFrame` probe, its own StuiClient) in
 * a detached tmux pane of 120×40, a private tmux server (`-L`) per pane.
 *
 * The load: CreateSession and CloseSession through the client API, RATE/2 each per second, one
 * image after the other, so the service publishes RATE session events per second; the bench
 * counts the events it hears on `stui.events.>` during the period.
 *
 * What it prints, for the measured period: frames (ink's `onRender`), their render time p50/p99/
 * max (`renderTime`: ink turning the laid-out tree into the screen's text), and the child's CPU
 * (`process.cpuUsage()` over the period, % of one core). The baseline is the same kind of child in
 * the same pane size rendering `bench/panel-table.ts`, a static table of the same 200 images
 * (the same number of lines, a `Text` per cell), re-rendered at the frame rate the live panel
 * showed, with the same load running on the machine meanwhile (it does not listen to it). Then the
 * ratios live / baseline. Figures only: nothing here passes or fails on time.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { StuiClient } from "../src/client.js";
import type { ImageConnectionStatus, StuiEvent } from "../src/protocol/index.js";
import { startImageSim, type ImageSimHandle } from "../test/helpers/image-sim.js";
import { startNatsServer, type NatsServerHandle } from "../test/helpers/nats-server.js";
import { REPO_ROOT, spawnStui, type ProcessHandle } from "../test/helpers/processes.js";
import { fmt, percentile, printTable } from "./harness.js";
import type { PanelChildResult, PanelChildSpec } from "./panel-child.js";
import { makeTempRoot, removeDir } from "./sessions-support.js";

const IMAGES = Number(process.env.STUI_BENCH_PANEL_IMAGES ?? 200);
const SIMS = Number(process.env.STUI_BENCH_PANEL_SIMS ?? 10);
const RATE = Number(process.env.STUI_BENCH_PANEL_RATE ?? 20);
const SECONDS = Number(process.env.STUI_BENCH_PANEL_SECONDS ?? 20);
/**
 * The children's NODE_ENV: `production`, as `stui panel` sets it unless told otherwise;
 * `development` shows what React's development build costs.
 */
const NODE_ENV = process.env.STUI_BENCH_PANEL_NODE_ENV ?? "production";
/** Print each pane's screen at the end of its period. */
const SHOW_SCREEN = process.env.STUI_BENCH_PANEL_SCREEN === "1";
const WIDTH = 120;
const HEIGHT = 40;
/** After the first screen: the first snapshot's burst of frames is over. */
const SETTLE_MS = 3000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const imageId = (i: number): string => `img-${String(i).padStart(3, "0")}`;

/** Everything started, stopped in reverse order whatever happened. */
class Teardown {
  private readonly steps: { what: string; run: () => unknown }[] = [];
  add(what: string, run: () => unknown): void {
    this.steps.push({ what, run });
  }
  async run(): Promise<void> {
    for (const step of this.steps.reverse()) {
      try {
        await step.run();
      } catch (error) {
        console.error(`panel: stopping ${step.what} failed: ${String(error)}`);
      }
    }
  }
}

// The tmux pane ----------------------------------------------------------------------------------

const hasTmux = (): boolean => spawnSync("tmux", ["-V"]).status === 0;

/** tmux on the benchmark's own socket (`-L`), never the user's server. */
function tmux(socket: string, ...args: string[]): string {
  const r = spawnSync("tmux", ["-L", socket, "-f", "/dev/null", ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tmux ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** Stops the tmux server on `socket` (and so its pane's process) and removes the socket file. */
function killServer(socket: string): void {
  spawnSync("tmux", ["-L", socket, "kill-server"]);
  // tmux leaves the socket file of a killed server behind.
  rmSync(path.join(process.env["TMUX_TMPDIR"] ?? "/tmp", `tmux-${process.getuid?.() ?? 0}`, socket), { force: true });
}

const capture = (socket: string): string => tmux(socket, "capture-pane", "-p", "-t", "bench");

interface Pane {
  readonly pid: number;
  readonly spec: PanelChildSpec;
}

/** Starts the child in a fresh detached pane; resolves once it wrote its pid and shows `img-000`. */
async function openPane(socket: string, dir: string, spec: Omit<PanelChildSpec, "pidFile" | "result">): Promise<Pane> {
  const full: PanelChildSpec = {
    ...spec,
    pidFile: path.join(dir, `${spec.mode}.pid`),
    result: path.join(dir, `${spec.mode}.result.json`),
  };
  const specFile = path.join(dir, `${spec.mode}.spec.json`);
  await writeFile(specFile, JSON.stringify(full));
  const env = `env NODE_ENV=${NODE_ENV}`;
  const command = `cd ${REPO_ROOT} && exec ${env} node --import tsx bench/panel-child.ts ${specFile}`;
  tmux(socket, "new-session", "-d", "-x", String(WIDTH), "-y", String(HEIGHT), "-s", "bench", "sh", "-c", command);
  tmux(socket, "set-option", "-t", "bench", "remain-on-exit", "on");
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const screen = capture(socket);
    if (existsSync(full.pidFile) && screen.includes(imageId(0))) {
      return { pid: Number(readFileSync(full.pidFile, "utf8")), spec: full };
    }
    await sleep(200);
  }
  throw new Error(`the ${spec.mode} pane never showed ${imageId(0)}; the screen:\n${capture(socket)}`);
}

/** Quits with `q` and reads the child's figures. */
async function closePane(socket: string, pane: Pane): Promise<PanelChildResult> {
  if (SHOW_SCREEN) console.log(`the ${pane.spec.mode} pane at the end of its period:\n${capture(socket)}`);
  tmux(socket, "send-keys", "-t", "bench", "q");
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && !existsSync(pane.spec.result)) await sleep(100);
  if (!existsSync(pane.spec.result))
    throw new Error(`the ${pane.spec.mode} child wrote no figures:\n${capture(socket)}`);
  const result = JSON.parse(readFileSync(pane.spec.result, "utf8")) as PanelChildResult;
  if (result.error !== undefined) throw new Error(`the ${pane.spec.mode} child failed: ${result.error}`);
  // A server per pane, stopped here: a new session on a server that is exiting after its last
  // session was killed fails with "server exited unexpectedly".
  killServer(socket);
  return result;
}

// The fleet --------------------------------------------------------------------------------------

async function startServe(dir: string, natsUrl: string, sims: readonly ImageSimHandle[]): Promise<ProcessHandle> {
  const config = path.join(dir, "stui.yaml");
  const images = Array.from({ length: IMAGES }, (_, i) => {
    const sim = sims[i % sims.length];
    return `  - id: ${imageId(i)}\n    address: ${sim?.endpoint ?? ""}\n    name: image ${i}`;
  });
  await writeFile(
    config,
    [
      "instance_id: panel-bench",
      "store:",
      `  path: ${path.join(dir, "data")}`,
      "images:",
      ...images,
      "metrics_port: 0",
      "",
    ].join("\n"),
  );
  const serve = spawnStui(["serve", "--config", config], {
    env: { ...process.env, NATS_URL: natsUrl, STUI_LOG_LEVEL: "info" },
  });
  try {
    await serve.waitForLine(/"stui serve: listening"/, { timeoutMs: 60_000 });
  } catch (error) {
    await serve.stop();
    throw error;
  }
  return serve;
}

async function allConnected(client: StuiClient): Promise<ImageConnectionStatus[]> {
  const deadline = Date.now() + 120_000;
  let connected = 0;
  while (Date.now() < deadline) {
    const r = await client.listImages().catch(() => null);
    if (r !== null && r.type === "Images") {
      connected = r.images.filter((i) => i.status === "Connected").length;
      if (r.images.length === IMAGES && connected === IMAGES) return [...r.images];
    }
    await sleep(500);
  }
  throw new Error(`only ${connected} of ${IMAGES} images Connected after 120 s`);
}

// The load ---------------------------------------------------------------------------------------

interface LoadCounts {
  readonly creates: number;
  readonly closes: number;
  readonly failures: number;
  /** Close turns with no session open yet (its create still on its way). */
  readonly skipped: number;
}

interface Load {
  /** Stops issuing requests and waits for those in flight. */
  stop(): Promise<LoadCounts>;
}

/** CreateSession and CloseSession in turn, RATE requests a second on an absolute schedule. */
function startLoad(client: StuiClient, clientId: string): Load {
  const open: string[] = [];
  const inFlight = new Set<Promise<void>>();
  const counts = { creates: 0, closes: 0, failures: 0, skipped: 0 };
  let stopped = false;
  let tick = 0;
  const t0 = performance.now();
  const track = (p: Promise<void>): void => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  const step = (): void => {
    if (stopped) return;
    const n = tick++;
    if (n % 2 === 0) {
      track(
        client
          .createSession({ image_id: imageId((n / 2) % IMAGES), client_id: clientId })
          .then((r) => {
            if (r.type === "SessionCreated") {
              open.push(r.session.session_id);
              counts.creates += 1;
            } else counts.failures += 1;
          })
          .catch(() => void (counts.failures += 1)),
      );
    } else {
      const id = open.shift();
      if (id === undefined) counts.skipped += 1;
      else {
        track(
          client
            .closeSession({ session_id: id, save_state: false })
            .then((r) => {
              if (r.type === "SessionClosed") counts.closes += 1;
              else counts.failures += 1;
            })
            .catch(() => void (counts.failures += 1)),
        );
      }
    }
    setTimeout(step, Math.max(0, t0 + (tick * 1000) / RATE - performance.now()));
  };
  step();
  return {
    async stop() {
      stopped = true;
      await Promise.all([...inFlight]);
      // What stayed open is closed outside the measured period.
      await Promise.all(open.splice(0).map((id) => client.closeSession({ session_id: id, save_state: false })));
      return counts;
    },
  };
}

/** Counts what arrives on `stui.events.>` while `on`, by type. */
function countEvents(client: StuiClient): { on: boolean; byType: Map<string, number>; stop: () => Promise<void> } {
  const feed = client.events();
  const counter = { on: false, byType: new Map<string, number>(), stop: () => feed.close() };
  void (async () => {
    for await (const event of feed as AsyncIterable<StuiEvent>) {
      if (counter.on) counter.byType.set(event.type, (counter.byType.get(event.type) ?? 0) + 1);
    }
  })();
  return counter;
}

/** utime + stime of `pid` so far, in ms (/proc/<pid>/stat, clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat(5); the slice starts at field 3.
  return (Number(fields[11]) + Number(fields[12])) * (1000 / CLOCK_TICKS);
}

const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim() || "100");

interface Period {
  readonly from: number;
  readonly to: number;
  readonly cpuMs: number;
  readonly load: LoadCounts;
}

/** Runs the load for the period, the child's CPU read at both ends. */
async function measured(pid: number, client: StuiClient, events: { on: boolean }, clientId: string): Promise<Period> {
  const cpu0 = cpuMsOf(pid);
  const from = Date.now();
  events.on = true;
  const load = startLoad(client, clientId);
  await sleep(SECONDS * 1000);
  const cpuMs = cpuMsOf(pid) - cpu0;
  const to = Date.now();
  events.on = false;
  return { from, to, cpuMs, load: await load.stop() };
}

/** The figures of one child over its period. */
interface Figures {
  /** Render ms of the frames rendered in the period. */
  readonly frames: readonly number[];
  readonly before: number;
  readonly wallMs: number;
  readonly cpuMs: number;
}

function figuresOf(result: PanelChildResult, period: Period): Figures {
  const inside = result.frames.filter(([at]) => at >= period.from && at < period.to).map(([, ms]) => ms);
  return {
    frames: inside,
    before: result.frames.filter(([at]) => at < period.from).length,
    wallMs: period.to - period.from,
    cpuMs: period.cpuMs,
  };
}

// Printing ---------------------------------------------------------------------------------------

const cpuPercent = (f: Figures): number => (f.cpuMs / f.wallMs) * 100;
const fps = (f: Figures): number => (f.frames.length / f.wallMs) * 1000;

function row(name: string, r: Figures): string[] {
  return [
    name,
    String(r.frames.length),
    fmt(fps(r), 1),
    `${fmt(percentile(r.frames, 50), 2)} ms`,
    `${fmt(percentile(r.frames, 99), 2)} ms`,
    `${fmt(Math.max(...r.frames), 2)} ms`,
    `${fmt(cpuPercent(r), 1)} %`,
  ];
}

function ratioRow(live: Figures, base: Figures): string[] {
  const x = (a: number, b: number): string => `${fmt(a / b, 2)}x`;
  return [
    "live / baseline",
    "",
    x(fps(live), fps(base)),
    x(percentile(live.frames, 50), percentile(base.frames, 50)),
    x(percentile(live.frames, 99), percentile(base.frames, 99)),
    x(Math.max(...live.frames), Math.max(...base.frames)),
    x(cpuPercent(live), cpuPercent(base)),
  ];
}

// The run ----------------------------------------------------------------------------------------

export async function run(): Promise<void> {
  if (!hasTmux()) {
    console.log("panel: skipped (no tmux on the PATH)");
    return;
  }
  const teardown = new Teardown();
  const socket = `stui-bench-panel-${process.pid}`;
  try {
    const root = await makeTempRoot("panel");
    teardown.add("the temp directory", () => removeDir(root));
    const nats: NatsServerHandle = await startNatsServer();
    teardown.add("nats-server", () => nats.stop());
    const sims: ImageSimHandle[] = [];
    for (let k = 0; k < SIMS; k++) {
      const sim = await startImageSim({ name: `sim-${k}` });
      sims.push(sim);
      teardown.add(`image-sim ${sim.pid}`, () => sim.stop());
    }
    const serve = await startServe(root, nats.url, sims);
    teardown.add(`stui serve ${serve.pid}`, () => serve.stop());
    const client = await StuiClient.connect({ servers: nats.url });
    teardown.add("the client", () => client.close());
    const t0 = performance.now();
    const images = await allConnected(client);
    const upMs = performance.now() - t0;
    const events = countEvents(client);
    teardown.add("the event count", () => events.stop());
    const sockets = { live: `${socket}-live`, baseline: `${socket}-baseline` };
    const killTmux = (): void => {
      killServer(sockets.live);
      killServer(sockets.baseline);
    };
    // Also on Ctrl-C, when no finally runs (the test helpers kill their own children then).
    process.once("exit", killTmux);
    teardown.add(`tmux -L ${socket}-*`, killTmux);
    console.log(
      `panel: ${IMAGES} images on ${SIMS} image-sims (${fmt(IMAGES / SIMS, 0)} image ids per sim address), ` +
        `all Connected ${fmt(upMs / 1000, 1)} s after stui serve was up (nats ${nats.url}, serve pid ${serve.pid}); ` +
        `tmux pane ${WIDTH}×${HEIGHT}, ${SECONDS} s measured, load ${RATE} session events/s ` +
        `(CreateSession + CloseSession, ${RATE / 2}/s each); the panes' NODE_ENV ${NODE_ENV}`,
    );

    const livePane = await openPane(sockets.live, root, { mode: "live", natsUrl: nats.url });
    await sleep(SETTLE_MS);
    const livePeriod = await measured(livePane.pid, client, events, "bench-live");
    const heard = new Map(events.byType);
    const live = figuresOf(await closePane(sockets.live, livePane), livePeriod);

    const frameRate = fps(live);
    const basePane = await openPane(sockets.baseline, root, {
      mode: "baseline",
      natsUrl: nats.url,
      images,
      fps: frameRate,
    });
    await sleep(SETTLE_MS);
    const basePeriod = await measured(basePane.pid, client, events, "bench-baseline");
    const base = figuresOf(await closePane(sockets.baseline, basePane), basePeriod);

    const total = [...heard.values()].reduce((a, b) => a + b, 0);
    const kinds = [...heard.entries()].map(([type, n]) => `${type.replace(/^io\.stui\./, "")} ${n}`).join(", ");
    console.log(
      `events heard by the bench during the live period: ${total} (${fmt((total / live.wallMs) * 1000, 1)}/s): ${kinds}`,
    );
    const loadLine = (l: LoadCounts): string =>
      `${l.creates} created, ${l.closes} closed, ${l.failures} failed, ${l.skipped} closes skipped (nothing open yet)`;
    console.log(`load, live period: ${loadLine(livePeriod.load)}; baseline period: ${loadLine(basePeriod.load)}`);
    console.log(
      `frames before the period (start-up, first snapshot, settling): live ${live.before}, baseline ${base.before}`,
    );
    const [one = 0] = loadavg();
    console.log(`machine load average (1 min) at the end: ${fmt(one, 2)} (other processes share these cores)`);
    console.log("");
    printTable([
      ["", "frames", "frames/s", "render p50", "render p99", "max", "CPU (1 core)"],
      row("stui panel, live (runPanel)", live),
      row(`bare static table, ${fmt(frameRate, 1)} renders/s (baseline)`, base),
      ratioRow(live, base),
    ]);
  } finally {
    await teardown.run();
  }
}
