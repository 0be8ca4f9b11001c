/**
 * The life of a `stui demo`, whichever variant: a temp directory, the ways out (signals, the end
 * of stdin, `q`), clean-up steps undone in reverse, and the last sweep of every child process by
 * its pid. A variant only says how it starts (`StartDemo`); this runs it and cleans up after it.
 *
 * Every way out cleans up: `q`, the end of standard input, SIGINT, SIGTERM and SIGHUP (a closed
 * terminal) stop what was started, every child process by its pid, and remove the temp directory,
 * also when they come during start-up. Exit code 0 for `q` and the end of input, 128 + the signal's
 * number for a signal (SIGHUP 129, SIGINT 130, SIGTERM 143). A second signal during the clean-up
 * kills the children at once.
 */
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { constants, tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import type { NatsConnection } from "@nats-io/transport-node";
import { openInspector } from "../inspect/inspector.js";
import { NatsInspectSource } from "../inspect/nats-source.js";
import type { Logger } from "../logger.js";
import { killAllChildrenNow, stopAllChildren } from "./children.js";

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** Why the demo ends: `view failed` when its screen ended with an error (exit code 1). */
export type StopReason = "quit" | "end of input" | "view failed" | (typeof SIGNALS)[number];

const exitCodeOf = (reason: StopReason): number =>
  reason === "quit" || reason === "end of input" ? 0 : reason === "view failed" ? 1 : 128 + constants.signals[reason];

/** Steps run in reverse order on the way out; a step added after that runs at once. */
export class Cleanups {
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

/**
 * The ways out: signals, the end of stdin, `q`; input lines before the view is up are kept. In a
 * terminal, stdin is read only once `onInput` is called: a view that reads the keys itself (the
 * panel) does not call it, and has stdin to itself.
 */
export interface Exits {
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
  const readKeys = (): void => {
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", input);
    process.stdin.on("end", () => stop("end of input"));
  };
  if (lines !== null) {
    lines.on("line", input);
    lines.on("close", () => stop("end of input"));
  }
  return {
    stopped,
    stopping: () => reason !== null,
    stop,
    onInput(next) {
      if (tty && handler === null) readKeys();
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

/** What a variant's start-up gets: its temp directory, where to register undo steps, the exits. */
export interface DemoContext {
  readonly dir: string;
  readonly cleanups: Cleanups;
  readonly exits: Exits;
  /** Both stdin and stdout are a terminal: keys and a redrawn screen, else lines. */
  readonly tty: boolean;
  /** `--inspect [PORT]`: the web inspector's port (0: a free one); `null` without it. */
  readonly inspectPort: number | null;
}

/** Starts everything and the view; resolves once the view is up (or there is no nats-server). */
export type StartDemo = (context: DemoContext) => Promise<"running" | "no nats-server">;

/**
 * Runs a demo variant until a way out is taken, then cleans up; resolves with the exit code.
 * `installHint` is printed when the variant finds no nats-server.
 */
export async function runDemo(start: StartDemo, installHint: string, inspectPort: number | null): Promise<number> {
  const tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const dir = await mkdtemp(path.join(tmpdir(), "stui-demo-"));
  const exits = watchExits(dir, tty);
  const cleanups = new Cleanups();
  let code: number;
  const starting = start({ dir, cleanups, exits, tty, inspectPort });
  // Once a way out is taken, a start-up still going fails by design (nothing new may start).
  starting.catch(() => undefined);
  try {
    if ((await Promise.race([starting, exits.stopped])) === "no nats-server") {
      console.error(installHint);
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

/**
 * The web inspector of the demo's instances when `--inspect` asked for it: its URL is printed
 * before the view starts (on a terminal, the view is drawn below it), and it closes with the demo.
 */
export async function demoInspector(
  { inspectPort, cleanups }: DemoContext,
  nc: NatsConnection,
  logger: Logger,
): Promise<void> {
  if (inspectPort === null) return;
  const inspector = await openInspector({ source: new NatsInspectSource(nc, logger), logger, port: inspectPort });
  await cleanups.add(() => inspector.close());
  console.log(`inspector: ${inspector.url}`);
}
