/**
 * Child processes for integration tests: `node bin/stui.js <args>` with piped stdio, waiting for
 * output lines, and cleanup that cannot be forgotten. Each handle is `await using`-disposable and
 * also registered, so `afterEach(stopAllProcesses)` stops whatever a failing test left behind.
 * The build is `test/helpers/global-setup.ts`'s job: this runs whatever `dist/` holds.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const STUI_BIN = fileURLToPath(new URL("../../bin/stui.js", import.meta.url));

/** Generous on purpose: a loaded 2-core CI machine starts Node slowly. */
export const DEFAULT_WAIT_MS = 15_000;
export const DEFAULT_GRACE_MS = 5_000;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface WaitOptions {
  readonly timeoutMs?: number;
  /** Only lines from this index on (see `lineCount()`), to skip matches from before an action. */
  readonly since?: number;
}

export interface ProcessHandle extends AsyncDisposable {
  readonly pid: number;
  readonly args: readonly string[];
  readonly child: ChildProcessWithoutNullStreams;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<Exit>;
  /** The exit, once it happened. */
  exit(): Exit | undefined;
  /** Complete lines so far (of stdout, or of stderr with `linesFrom: "stderr"`). */
  lines(): readonly string[];
  lineCount(): number;
  stdout(): string;
  stderr(): string;
  /** The first stdout line matching `pattern`; rejects on timeout or exit, showing the output. */
  waitForLine(pattern: RegExp, options?: WaitOptions): Promise<RegExpMatchArray>;
  /** Writes `line` and a newline to stdin. */
  send(line: string): void;
  /** Sends `signal` to the pid; `false` when the process had already exited. */
  signal(signal: NodeJS.Signals): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit. */
  stop(graceMs?: number): Promise<Exit>;
}

// Shared through globalThis: a worker re-imports this module for each test file, and the exit
// hook below must be installed once, not once per file.
const LIVE: unique symbol = Symbol.for("stui.test.live-processes");
const shared = globalThis as { [LIVE]?: Set<ProcessHandle> };
const live = shared[LIVE] ?? installRegistry();

function installRegistry(): Set<ProcessHandle> {
  const handles = new Set<ProcessHandle>();
  shared[LIVE] = handles;
  // Last resort if the runner exits without the hooks: no child outlives the test worker.
  process.once("exit", () => {
    for (const handle of handles) handle.signal("SIGKILL");
  });
  return handles;
}

/**
 * Stops every process still running: `afterEach(stopAllProcesses)` when each test starts its own,
 * `afterAll` when tests share one started in `beforeAll`.
 */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...live].map((handle) => handle.stop()));
}

/** Runs `node bin/stui.js ...args` from the repository root. */
export function spawnStui(args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): ProcessHandle {
  return spawnNode([STUI_BIN, ...args], options);
}

/** Runs `node ...args` from the repository root, with piped stdio. */
export function spawnNode(args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): ProcessHandle {
  return spawnProcess(process.execPath, args, options);
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Which output `lines()` and `waitForLine` read. @default "stdout" */
  readonly linesFrom?: "stdout" | "stderr";
}

/** Runs `command ...args` from the repository root, with piped stdio. */
export function spawnProcess(command: string, args: readonly string[], options: SpawnOptions = {}): ProcessHandle {
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: options.env ?? process.env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  if (child.pid === undefined) throw new Error(`could not start ${command} ${args.join(" ")}`);
  const pid = child.pid;
  const lines: string[] = [];
  let stdout = "";
  let stderr = "";
  let partial = "";
  let exit: Exit | undefined;
  const waiters = new Set<() => void>();
  const wake = (): void => waiters.forEach((w) => w());

  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  const collect = (chunk: string): void => {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop() ?? "";
    lines.push(...parts.map((l) => l.replace(/\r$/, "")));
    wake();
  };
  const fromStderr = options.linesFrom === "stderr";
  child.stdout.on("data", (chunk: string) => {
    stdout += chunk;
    if (!fromStderr) collect(chunk);
  });
  child.stderr.on("data", (chunk: string) => {
    stderr += chunk;
    if (fromStderr) collect(chunk);
  });
  // A child that died has closed its stdin: writing then is not the test's failure.
  child.stdin.on("error", () => undefined);
  const exited = new Promise<Exit>((resolve) => {
    child.once("close", (code, signal) => {
      if (partial !== "") lines.push(partial);
      exit = { code, signal };
      live.delete(handle);
      resolve(exit);
      wake();
    });
  });

  const describe = (): string =>
    `${command} ${args.join(" ")} (pid ${pid})\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;

  const handle: ProcessHandle = {
    pid,
    args,
    child,
    exited,
    exit: () => exit,
    lines: () => lines,
    lineCount: () => lines.length,
    stdout: () => stdout,
    stderr: () => stderr,
    waitForLine(pattern, { timeoutMs = DEFAULT_WAIT_MS, since = 0 } = {}) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          for (let i = since; i < lines.length; i++) {
            const match = lines[i]?.match(pattern);
            if (match) return done(() => resolve(match));
          }
          const ended = exit;
          if (ended !== undefined) {
            done(() => reject(new Error(`exited (${formatExit(ended)}) before printing ${pattern}: ${describe()}`)));
          }
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms: ${describe()}`))),
          timeoutMs,
        );
        const done = (settle: () => void): void => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    send(line) {
      child.stdin.write(`${line}\n`);
    },
    signal(signal) {
      if (exit !== undefined) return false;
      try {
        process.kill(pid, signal);
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
        throw error;
      }
    },
    async stop(graceMs = DEFAULT_GRACE_MS) {
      if (exit !== undefined) return exit;
      handle.signal("SIGTERM");
      const timer = setTimeout(() => handle.signal("SIGKILL"), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    async [Symbol.asyncDispose]() {
      await handle.stop();
    },
  };
  live.add(handle);
  return handle;
}

export function formatExit(exit: Exit): string {
  return exit.signal === null ? `code ${exit.code}` : `signal ${exit.signal}`;
}

/** `/proc/<pid>/stat`'s parent pid and state, or `null` when there is no such process. */
function procStat(pid: number): { ppid: number; state: string } | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces: read after its last ')'.
  const [state = "", ppid = ""] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(ppid), state };
}

/** Whether `pid` is a live process (a zombie, dead but not yet reaped, is not). */
export function isAlive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== null && stat.state !== "Z" && stat.state !== "X";
}

/** The pids of `pid`'s live child processes, from /proc (Linux). */
export function childPidsOf(pid: number): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((candidate) => procStat(candidate)?.ppid === pid && isAlive(candidate));
}

/** Waits until none of `pids` is alive; resolves with those still alive after `timeoutMs`. */
export async function waitUntilGone(pids: readonly number[], timeoutMs = DEFAULT_GRACE_MS): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = pids.filter(isAlive);
    if (alive.length === 0 || Date.now() > deadline) return alive;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
