/**
 * Child processes for `stui demo`: started, waited for until they print a ready line, and ended by
 * their pid (also when the demo itself exits).
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
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of children) if (child.pid !== undefined) killPid(child.pid, "SIGKILL");
});

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
        async stop(graceMs = 3000) {
          if (!children.has(child)) return;
          killPid(pid, "SIGTERM");
          const force = setTimeout(() => killPid(pid, "SIGKILL"), graceMs);
          await exited;
          clearTimeout(force);
        },
      });
    });
  });
}

/** The full path of `command` on the PATH, or `null`. */
export function onPath(command: string): string | null {
  for (const dir of (process.env["PATH"] ?? "").split(path.delimiter)) {
    if (dir === "") continue;
    const candidate = path.join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}
