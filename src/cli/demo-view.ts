/**
 * How the `stui demo` variants take input without the panel: a screen redrawn every half second in
 * a terminal (keys are commands; `stui demo --cluster`), or plain lines without one (input lines
 * are commands, and every notice and event is printed as a line, which is what the tests read);
 * and processes that a key kills (SIGKILL, by pid) or starts again, one action at a time each.
 * In a terminal, `stui demo` runs the panel instead (demo.ts, its keys in demo-keys.ts).
 */
import { fileURLToPath } from "node:url";
import path from "node:path";
import { CurveClient, generateKeyPair, writeKeyFile, type CurveKeyPair } from "../curve.js";
import { startChild, type Child } from "./children.js";

export const STUI_BIN = fileURLToPath(new URL("../../../bin/stui.js", import.meta.url));

/** A process a key kills or starts again; `busy` while that happens, when its key is ignored. */
export interface Switchable {
  readonly id: string;
  state:
    | { readonly kind: "up"; readonly child: Child }
    | { readonly kind: "down" }
    | { readonly kind: "busy"; readonly doing: string };
  /** Starts it again (it is down). */
  start(): Promise<Child>;
  /** What to say once it was killed; `pid` was its process. */
  killed(pid: number): string;
  /** What to say once it was started again. */
  started(child: Child): string;
}

/**
 * Kills (SIGKILL) or starts one process: `toggle` does whichever fits. One action at a time per
 * process: a press meanwhile is ignored, and said so.
 */
export async function toggle(
  item: Switchable,
  want: "kill" | "start" | "toggle",
  say: (text: string) => void,
): Promise<void> {
  const state = item.state;
  if (state.kind === "busy") return say(`${item.id} is still ${state.doing}: ignored`);
  if (state.kind === "up" && want !== "start") {
    item.state = { kind: "busy", doing: "stopping" };
    state.child.kill("SIGKILL");
    await state.child.exited;
    item.state = { kind: "down" };
    return say(item.killed(state.child.pid));
  }
  if (state.kind === "down" && want !== "kill") {
    item.state = { kind: "busy", doing: "starting" };
    try {
      const child = await item.start();
      item.state = { kind: "up", child };
      return say(item.started(child));
    } catch (error) {
      item.state = { kind: "down" };
      return say(`could not start ${item.id}: ${describeError(error)}`);
    }
  }
  say(`${item.id} is already ${state.kind}`);
}

export const describeError = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * The demo's CURVE keys, written by `stui keygen`'s code into its temp dir: one pair its images
 * serve with, one the service connects with (the only client key the images let in).
 */
export interface DemoKeys {
  readonly image: CurveKeyPair;
  readonly imageKeyFile: string;
  readonly service: CurveKeyPair;
  readonly serviceKeyFile: string;
}

export async function demoKeys(dir: string): Promise<DemoKeys> {
  const keys = {
    image: generateKeyPair(),
    imageKeyFile: path.join(dir, "image-key.json"),
    service: generateKeyPair(),
    serviceKeyFile: path.join(dir, "service-key.json"),
  };
  await writeKeyFile(keys.imageKeyFile, keys.image);
  await writeKeyFile(keys.serviceKeyFile, keys.service);
  return keys;
}

/** The `curve` of a demo image's configuration. */
export const demoCurve = (keys: DemoKeys): CurveClient =>
  new CurveClient(keys.image.public_key, keys.service, keys.serviceKeyFile);

/** `stui image-sim --name id` serving CURVE, bound to `bind` (`tcp://127.0.0.1:*`: a free port). */
export const startSim = (id: string, keys: DemoKeys, bind = "tcp://127.0.0.1:*"): Promise<Child> =>
  startChild(
    process.execPath,
    [
      ...[STUI_BIN, "image-sim", "--bind", bind, "--name", id],
      // `=`: a Z85 key may start with "-", which would read as an option.
      ...["--curve-secret-key", keys.imageKeyFile, `--curve-client-key=${keys.service.public_key}`],
    ],
    /^ready (\S+)$/,
    "stdout",
  );

/** One simulated image, started on a free port; started again on the same one. */
export interface Sim extends Switchable {
  readonly endpoint: string;
}

export async function startedSim(id: string, keys: DemoKeys): Promise<Sim> {
  const child = await startSim(id, keys);
  const endpoint = child.ready[1] ?? "";
  return {
    id,
    endpoint,
    state: { kind: "up", child },
    start: () => startSim(id, keys, endpoint),
    killed: () => `killed ${id}: watch it go Reconnecting`,
    started: (again) => `started ${id} again on ${endpoint} (pid ${again.pid}): watch it come back Connected`,
  };
}

export interface ScreenOptions {
  readonly tty: boolean;
  /**
   * The whole screen: drawn every half second and after each notice (in a terminal only).
   * @default none: nothing is drawn (for a view without a terminal)
   */
  readonly frame?: (view: { readonly notice: string; readonly events: readonly string[] }) => string;
  /** Acts on one command: a key in a terminal, a line without one. */
  readonly act: (command: string) => Promise<void>;
  /** The commands the ready line names, for a reader without a terminal. */
  readonly commands: string;
  /** How many event lines the screen keeps. @default 12 */
  readonly eventLines?: number;
}

export interface Screen {
  /** A notice: shown under the keys, printed as a line without a terminal. */
  readonly say: (text: string) => void;
  /** An event line: kept on screen (the last few), printed as a line without a terminal. */
  readonly log: (line: string) => void;
  /** Prints a line without a terminal only (in one, the screen shows the same). */
  readonly print: (line: string) => void;
  /** Draws now (in a terminal). */
  readonly draw: () => void;
  /** Where input goes: keys in a terminal, lines without one. */
  readonly input: (text: string) => void;
  readonly close: () => void;
}

/** Starts drawing (or printing) and taking commands; prints the ready line without a terminal. */
export function openScreen(o: ScreenOptions): Screen {
  const events: string[] = [];
  const keep = o.eventLines ?? 12;
  let notice = "";
  let closed = false;
  const print = (line: string): void => {
    if (!o.tty && !closed) console.log(line);
  };
  const draw = (): void => {
    if (!o.tty || closed || o.frame === undefined) return;
    process.stdout.write(`\x1b[2J\x1b[H${o.frame({ notice, events })}`);
  };
  const say = (text: string): void => {
    notice = text;
    print(text);
    draw();
  };
  const screen: Screen = {
    say,
    log: (line) => {
      events.push(line);
      if (events.length > keep) events.shift();
      print(line);
    },
    print,
    draw,
    // A key is a command in a terminal; without one, a line is.
    input: (text) => {
      for (const command of o.tty ? [...text] : [text]) {
        o.act(command).catch((error: unknown) => say(`error: ${describeError(error)}`));
      }
    },
    close: () => {
      closed = true;
      clearInterval(timer);
    },
  };
  const timer = setInterval(draw, 500);
  if (o.tty) process.stdin.setRawMode(true);
  draw();
  print(`stui demo: ready (lines: ${o.commands})`);
  return screen;
}

/** Whether a command quits: `q`, `quit`, or Ctrl-C as a key in raw mode. */
export const isQuit = (verb: string): boolean => verb === "q" || verb === "quit" || verb === "\u0003";
