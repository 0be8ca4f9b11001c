/**
 * Child processes for `stui demo`: started, waited for until they print a ready line, and ended by
 * their pid (also when the demo itself exits). `stopAllChildren()` is the last sweep of a demo's
 * way out: whatever is still running is stopped, and nothing new may start after it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";

export interface Child {
  readonly pid: number;
  /** The ready line's match. */
  readonly ready: RegExpMatchArray;
  readonly exited: Promise<void>;
  /** Sends a signal by pid; `false` if it had exited. */
  kill(signal?: NodeJS.Signals): boolean;
  /** Writes `line` and a newline to its stdin (a sim's control line); `false` if it had exited. */
  write(line: string): boolean;
  /** SIGTERM (and SIGCONT, should it be stopped), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const children = new Set<ChildProcess>();
/** Set by `stopAllChildren()`: a start racing the way out must not leave a process behind. */
let closed = false;
process.once("exit", killAllChildrenNow);

/** SIGKILL to every child still running, by pid: the exit hook, and a second signal's way out. */
export function killAllChildrenNow(): void {
  for (const child of children) if (child.pid !== undefined) killPid(child.pid, "SIGKILL");
}

/** Stops every child still running (SIGTERM, SIGKILL after `graceMs`) and refuses new ones. */
export async function stopAllChildren(graceMs = 3000): Promise<void> {
  closed = true;
  const running = [...children];
  for (const child of running) if (child.pid !== undefined) terminate(child.pid);
  const force = setTimeout(killAllChildrenNow, graceMs);
  await Promise.all(running.map(exitOf));
  clearTimeout(force);
}

const exitOf = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (!children.has(child)) return resolve();
    child.once("close", () => resolve());
  });

/** SIGTERM; then SIGCONT, as a stopped (SIGSTOP) process acts on SIGTERM only once continued. */
function terminate(pid: number): void {
  if (killPid(pid, "SIGTERM")) killPid(pid, "SIGCONT");
}

function killPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Starts `command` and resolves once a line of `stream` matches `ready`; rejects on exit or timeout. */
export function startChild(
  command: string,
  args: readonly string[],
  ready: RegExp,
  stream: "stdout" | "stderr",
  timeoutMs = 15_000,
): Promise<Child> {
  if (closed) return Promise.reject(new Error(`${path.basename(command)} not started: stopping`));
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
  children.add(child);
  let output = "";
  const exited = new Promise<void>((resolve) =>
    child.once("close", () => {
      children.delete(child);
      resolve();
    }),
  );
  child.stdout.resume();
  child.stderr.resume();
  // A write racing the child's exit fails with EPIPE: that must not crash the demo.
  child.stdin.on("error", () => undefined);
  return new Promise<Child>((resolve, reject) => {
    const fail = (why: string): void => {
      clearTimeout(timer);
      if (child.pid !== undefined) killPid(child.pid, "SIGKILL");
      reject(new Error(`${path.basename(command)} ${why}${output === "" ? "" : `:\n${output}`}`));
    };
    const timer = setTimeout(() => fail(`printed nothing ready within ${timeoutMs} ms`), timeoutMs);
    child.once("error", (error) => fail(`could not start: ${error.message}`));
    void exited.then(() => fail("exited before it was ready"));
    createInterface({ input: child[stream] }).on("line", (line) => {
      output = `${output}${line}\n`.slice(-4000);
      const match = line.match(ready);
      if (match === null || child.pid === undefined) return;
      clearTimeout(timer);
      const pid = child.pid;
      resolve({
        pid,
        ready: match,
        exited,
        kill: (signal = "SIGTERM") => children.has(child) && killPid(pid, signal),
        write(text) {
          if (!children.has(child) || !child.stdin.writable) return false;
          child.stdin.write(`${text}\n`);
          return true;
        },
        async stop(graceMs = 3000) {
          if (!children.has(child)) return;
          terminate(pid);
          const force = setTimeout(() => killPid(pid, "SIGKILL"), graceMs);
          await exited;
          clearTimeout(force);
        },
      });
    });
  });
}

/** Where Debian and hand installs put nats-server, outside a normal user's PATH. */
const SBIN_DIRS = ["/usr/local/sbin", "/usr/sbin"];

/**
 * The nats-server to run: `STUI_NATS_SERVER` if set (a path; `null` when it is not executable),
 * else the first on the PATH, else in /usr/local/sbin or /usr/sbin (Debian's package installs it in
 * /usr/sbin); `null` when there is none.
 */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | null {
  const explicit = env["STUI_NATS_SERVER"];
  if (explicit !== undefined && explicit !== "") return executable(explicit) ? explicit : null;
  return onPath("nats-server", env) ?? inDirs("nats-server", SBIN_DIRS);
}

/** The full path of `command` on the PATH, or `null`. */
export function onPath(command: string, env: NodeJS.ProcessEnv = process.env): string | null {
  return inDirs(command, (env["PATH"] ?? "").split(path.delimiter));
}

function inDirs(command: string, dirs: readonly string[]): string | null {
  for (const dir of dirs) {
    if (dir === "") continue;
    const candidate = path.join(dir, command);
    if (executable(candidate)) return candidate;
  }
  return null;
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
