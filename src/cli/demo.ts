/**
 * `stui demo`: the whole product on one machine. Three simulated images, a private nats-server
 * (unless NATS_URL names one), the service, and a live view of statuses and events. Keys 1, 2, 3
 * kill a simulated image, or bring it back if it is down, so you watch Reconnecting → Connected;
 * `s` creates a session; `q` quits and cleans everything up.
 *
 * Every way out cleans up: `q`, the end of standard input, SIGINT, SIGTERM and SIGHUP (a closed
 * terminal) stop the service, every child process by its pid, and remove the temp directory, also
 * when they come during start-up. Exit code 0 for `q` and the end of input, 128 + the signal's
 * number for a signal (SIGHUP 129, SIGINT 130, SIGTERM 143). A second signal during the clean-up
 * kills the children at once.
 */
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { constants, tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { FileSessionStore } from "../adapters/file-store/store.js";
import type { Logger } from "../logger.js";
import { StuiService } from "../service.js";
import { StuiClient, type EventFeed, type ReplayedEvent } from "../client.js";
import { findNatsServer, killAllChildrenNow, startChild, stopAllChildren, type Child } from "./children.js";
import { describeEvent } from "./client-commands.js";
import { table } from "./table.js";

const USAGE = `usage: stui demo

Starts three simulated images (dev, staging, build), a private nats-server on a free port (or uses
the one NATS_URL names), and the service; then shows the images' statuses and the events live.

keys: 1 2 3  kill that image, or start it again if it is down
      s      create a session on a connected image
      q      quit (Ctrl-C too)
Without a terminal, the same as lines on stdin: "kill 1", "start 1", "session", "quit".

Every way out stops every process it started and removes its temp directory: q or the end of
standard input (exit 0), SIGINT, SIGTERM or SIGHUP (exit 128 + the signal's number).
nats-server is looked for on the PATH, then in /usr/local/sbin and /usr/sbin (STUI_NATS_SERVER
names another).`;

const STUI_BIN = fileURLToPath(new URL("../../../bin/stui.js", import.meta.url));
const IMAGES = ["dev", "staging", "build"] as const;
const INSTALL_HINT =
  "stui demo needs a NATS server: install one with `sudo apt-get install -y nats-server` (Debian/Ubuntu),\n" +
  "or set NATS_URL to a server that runs with JetStream enabled.";
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** Why the demo ends. */
export type StopReason = "quit" | "end of input" | (typeof SIGNALS)[number];

const exitCodeOf = (reason: StopReason): number =>
  reason === "quit" || reason === "end of input" ? 0 : 128 + constants.signals[reason];

/** Steps run in reverse order on the way out; a step added after that runs at once. */
class Cleanups {
  private readonly steps: Array<() => Promise<void>> = [];
  private closed = false;

  async add(step: () => Promise<void>): Promise<void> {
    if (!this.closed) this.steps.push(step);
    else await step().catch(() => undefined);
  }

  async run(): Promise<void> {
    this.closed = true;
    for (const step of this.steps.splice(0).reverse()) await step().catch(() => undefined);
  }
}

/** The ways out: signals, the end of stdin, `q`; input lines before the view is up are kept. */
interface Exits {
  readonly stopped: Promise<StopReason>;
  stopping(): boolean;
  stop(reason: StopReason): void;
  /** Where input goes once the view is up; earlier input is handed over then. */
  onInput(handler: (text: string) => void): void;
  dispose(): void;
}

function watchExits(dir: string, tty: boolean): Exits {
  let reason: StopReason | null = null;
  let resolve: (reason: StopReason) => void = () => undefined;
  const stopped = new Promise<StopReason>((r) => (resolve = r));
  const stop = (why: StopReason): void => {
    if (reason !== null) return;
    reason = why;
    resolve(why);
  };
  const onSignal = (signal: (typeof SIGNALS)[number]): void => {
    if (reason === null) return stop(signal);
    // A second signal: no more waiting for a clean stop.
    killAllChildrenNow();
    rmSync(dir, { recursive: true, force: true });
    process.exit(128 + constants.signals[signal]);
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  // A closed terminal makes writes fail (EIO, EPIPE): that must not crash the way out.
  const ignore = (): void => undefined;
  process.stdout.on("error", ignore);
  process.stderr.on("error", ignore);

  let handler: ((text: string) => void) | null = null;
  const early: string[] = [];
  const input = (text: string): void => void (handler === null ? early.push(text) : handler(text));
  const lines = tty ? null : createInterface({ input: process.stdin });
  if (lines === null) {
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", input);
    process.stdin.on("end", () => stop("end of input"));
  } else {
    lines.on("line", input);
    lines.on("close", () => stop("end of input"));
  }
  return {
    stopped,
    stopping: () => reason !== null,
    stop,
    onInput(next) {
      handler = next;
      for (const text of early.splice(0)) next(text);
    },
    dispose() {
      for (const signal of SIGNALS) process.off(signal, onSignal);
      lines?.close();
      if (tty && process.stdin.isTTY) process.stdin.setRawMode(false);
      process.stdin.pause();
    },
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { help: { type: "boolean", short: "h" } }, strict: true });
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  const tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const dir = await mkdtemp(path.join(tmpdir(), "stui-demo-"));
  const exits = watchExits(dir, tty);
  const cleanups = new Cleanups();
  let code: number;
  const starting = start(dir, cleanups, exits, tty);
  // Once a way out is taken, a start-up still going fails by design (nothing new may start).
  starting.catch(() => undefined);
  try {
    if ((await Promise.race([starting, exits.stopped])) === "no nats-server") {
      console.error(INSTALL_HINT);
      code = 1;
    } else {
      code = exitCodeOf(await exits.stopped);
    }
  } catch (error) {
    code = exits.stopping() ? exitCodeOf(await exits.stopped) : 1;
    if (!exits.stopping()) console.error(`stui demo: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    // Stop the start-up if it is still going: whatever it registers from now on is undone at once.
    exits.stop("quit");
    await cleanups.run();
    await stopAllChildren();
    await rm(dir, { recursive: true, force: true });
    exits.dispose();
  }
  // A connection that is still closing must not keep a demo that has cleaned up alive.
  setTimeout(() => process.exit(code), 1000).unref();
  return code;
}

/** Starts everything and the view; resolves once the view is up (or there is no nats-server). */
async function start(
  dir: string,
  cleanups: Cleanups,
  exits: Exits,
  tty: boolean,
): Promise<"running" | "no nats-server"> {
  const nats = process.env["NATS_URL"] === undefined ? await privateNats(dir, cleanups) : null;
  const natsUrl = process.env["NATS_URL"] ?? nats?.url;
  if (natsUrl === undefined) return "no nats-server";
  const sims: Sim[] = [];
  await cleanups.add(async () => {
    for (const sim of sims) if (sim.state.kind === "up") await sim.state.child.stop();
  });
  for (const id of IMAGES) {
    const child = await startSim(id, "tcp://127.0.0.1:*");
    sims.push({ id, endpoint: child.ready[1] ?? "", state: { kind: "up", child } });
  }
  const log: string[] = [];
  const logger: Logger = {
    error: (_obj, msg) => void log.push(`error: ${msg}`),
    warn: (_obj, msg) => void log.push(`warn: ${msg}`),
    info: () => undefined,
    debug: () => undefined,
  };
  const startedAt = new Date();
  const store = await FileSessionStore.open({ dir: path.join(dir, "store"), logger });
  await cleanups.add(() => store.close());
  const service = await StuiService.start({
    instanceId: "demo",
    nats: { servers: natsUrl },
    store,
    images: sims.map((s) => ({ id: s.id, address: s.endpoint, name: `${s.id} (simulated)` })),
    policy: { connection: { backoffBaseMs: 100, backoffCapMs: 1000, maxRestarts: 1000 } },
    logger,
  });
  await cleanups.add(async () => void (await service.stop(2000)));
  const client = await StuiClient.connect({ servers: natsUrl });
  await cleanups.add(() => client.close());
  // From the stream, so that the view starts with the service's first events.
  const replay = await client.replay({ since: startedAt });
  await cleanups.add(() => replay.close());
  if (exits.stopping()) return "running";
  if (!tty) {
    const named = [
      ...(nats === null ? [] : [`nats-server=${nats.pid}`]),
      ...sims.flatMap((s) => (s.state.kind === "up" ? [`${s.id}=${s.state.child.pid}`] : [])),
    ];
    console.log(`stui demo: images ${sims.map((s) => `${s.id}=${s.endpoint}`).join(", ")}; NATS ${natsUrl}`);
    console.log(`stui demo: pids ${named.join(" ")}; temp dir ${dir}`);
  }
  const view = liveView({
    service,
    client,
    events: replay,
    sims,
    natsUrl,
    tty,
    startSim: (sim) => startSim(sim.id, sim.endpoint),
    quit: () => exits.stop("quit"),
  });
  await cleanups.add(() => Promise.resolve(view.close()));
  exits.onInput(view.input);
  return "running";
}

/** A nats-server of the demo's own on a free port, or `null` when none is installed. */
async function privateNats(dir: string, cleanups: Cleanups): Promise<{ url: string; pid: number } | null> {
  const binary = findNatsServer();
  if (binary === null) return null;
  const server = await startChild(
    binary,
    ["-a", "127.0.0.1", "-p", "-1", "-js", "-sd", path.join(dir, "jetstream")],
    /Listening for client connections on [^\s]+:(\d+)/,
    "stderr",
  );
  await cleanups.add(() => server.stop());
  return { url: `nats://127.0.0.1:${server.ready[1] ?? ""}`, pid: server.pid };
}

const startSim = (id: string, bind: string): Promise<Child> =>
  startChild(process.execPath, [STUI_BIN, "image-sim", "--bind", bind, "--name", id], /^ready (\S+)$/, "stdout");

// The live view ------------------------------------------------------------------------------------

/** One simulated image; `busy` while it is being killed or started, when its key is ignored. */
export interface Sim {
  readonly id: string;
  readonly endpoint: string;
  state:
    | { readonly kind: "up"; readonly child: Child }
    | { readonly kind: "down" }
    | { readonly kind: "busy"; readonly doing: string };
}

interface ViewOptions {
  readonly service: StuiService;
  readonly client: StuiClient;
  readonly events: EventFeed<ReplayedEvent>;
  readonly sims: Sim[];
  readonly natsUrl: string;
  readonly tty: boolean;
  readonly startSim: (sim: Sim) => Promise<Child>;
  readonly quit: () => void;
}

/** Draws the view (or prints lines without a terminal) and acts on keys or lines. */
function liveView(o: ViewOptions): { input: (text: string) => void; close: () => void } {
  const events: string[] = [];
  let notice = "";
  let closed = false;
  const say = (text: string): void => {
    notice = text;
    if (!o.tty && !closed) console.log(text);
    draw();
  };
  void (async () => {
    for await (const replayed of o.events) {
      events.push(describeEvent(replayed.event));
      if (events.length > 12) events.shift();
      if (!o.tty && !closed) console.log(events.at(-1));
    }
  })().catch(() => undefined);
  const draw = (): void => {
    if (!o.tty || closed) return;
    const rows = o.service.manager
      .imageStatuses()
      .map((i, n) => [
        String(n + 1),
        i.image_id,
        i.status,
        i.connection_health,
        i.rtt_ms === null ? "-" : i.rtt_ms.toFixed(1),
        String(i.session_count),
        i.address,
      ]);
    process.stdout.write(
      "\x1b[2J\x1b[H" +
        `stui demo — NATS ${o.natsUrl}, service instance "demo"\n\n` +
        table(["KEY", "IMAGE", "STATUS", "HEALTH", "RTT ms", "SESSIONS", "ADDRESS"], rows) +
        `\n\nevents (stui.events.>):\n${events.map((e) => `  ${e}`).join("\n")}\n\n` +
        `keys: 1 2 3 kill / restart an image · s new session · q quit${notice === "" ? "" : `\n${notice}`}\n`,
    );
  };

  /** Kills or starts one image; one action at a time per image, a press meanwhile is ignored. */
  const toggle = async (sim: Sim, want: "kill" | "start" | "toggle"): Promise<void> => {
    const state = sim.state;
    if (state.kind === "busy") return say(`${sim.id} is still ${state.doing}: ignored`);
    if (state.kind === "up" && want !== "start") {
      sim.state = { kind: "busy", doing: "stopping" };
      state.child.kill("SIGKILL");
      await state.child.exited;
      sim.state = { kind: "down" };
      return say(`killed ${sim.id}: watch it go Reconnecting`);
    }
    if (state.kind === "down" && want !== "kill") {
      sim.state = { kind: "busy", doing: "starting" };
      try {
        const child = await o.startSim(sim);
        sim.state = { kind: "up", child };
        return say(`started ${sim.id} again on ${sim.endpoint} (pid ${child.pid}): watch it come back Connected`);
      } catch (error) {
        sim.state = { kind: "down" };
        return say(`could not start ${sim.id}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    say(`${sim.id} is already ${state.kind}`);
  };

  const createSession = async (): Promise<void> => {
    const target = o.service.manager.imageStatuses().find((i) => i.status === "Connected");
    if (target === undefined) return say("no image is connected");
    const answer = await o.client.createSession({ image_id: target.image_id, client_id: "demo-user" });
    say(answer.type === "SessionCreated" ? `created a session on ${answer.session.image_id}` : answer.message);
  };

  const act = async (command: string): Promise<void> => {
    const [verb = "", arg] = command.trim().split(/\s+/);
    if (verb === "q" || verb === "quit" || verb === "\u0003") return o.quit();
    if (verb === "s" || verb === "session") return createSession();
    const want = verb === "kill" || verb === "start" ? verb : "toggle";
    const sim = o.sims[Number(want === "toggle" ? verb : arg) - 1];
    if (sim !== undefined) return toggle(sim, want);
  };

  const timer = setInterval(draw, 500);
  if (o.tty) process.stdin.setRawMode(true);
  draw();
  if (!o.tty) console.log('stui demo: ready (lines: "kill 1", "start 1", "session", "quit")');
  return {
    // A key is a command in a terminal; without one, a line is.
    input: (text) => {
      const commands = o.tty ? [...text] : [text];
      for (const command of commands) {
        act(command).catch((error: unknown) => say(`error: ${error instanceof Error ? error.message : String(error)}`));
      }
    },
    close: () => {
      closed = true;
      clearInterval(timer);
      void o.events.close();
    },
  };
}
