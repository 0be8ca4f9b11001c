/**
 * Real disk faults for a running process: `strace` attached to it injecting an error into its
 * fsync calls (all of them, or only those on given paths), and a small tmpfs that fills up
 * (ENOSPC). Both are undone by pid / by mount point after the test, also on failure.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { spawnProcess, type ProcessHandle } from "./processes.js";

const run = promisify(execFile);

export interface Injection {
  /** Detaches strace: the process's fsync calls work again. */
  stop(): Promise<void>;
}

const injections = new Set<Injection>();
const mounts = new Set<string>();

/** The pids of the tracers attached to each of the process's threads (0: none). */
async function tracers(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`);
  return Promise.all(
    tasks.map(async (task) => {
      const status = await readFile(`/proc/${pid}/task/${task}/status`, "utf8").catch(() => "TracerPid:\t0");
      return Number(/TracerPid:\s+(\d+)/.exec(status)?.[1] ?? 0);
    }),
  );
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Makes every `fsync` of `pid` (of every thread, present and future) fail with `error`; with
 * `paths`, only those on these paths (strace's `-P`, which follows file descriptors).
 */
export async function injectFsyncError(
  pid: number,
  options: { error?: "EIO" | "ENOSPC"; paths?: readonly string[] } = {},
): Promise<Injection> {
  const args = [
    "-f",
    "-qq",
    "-p",
    String(pid),
    ...(options.paths ?? []).flatMap((p) => ["-P", p]),
    "-e",
    "trace=fsync",
    "-e",
    `inject=fsync:error=${options.error ?? "EIO"}`,
    "-o",
    "/dev/null",
  ];
  const strace: ProcessHandle = spawnProcess("strace", args, { linesFrom: "stderr" });
  try {
    await until(async () => (await tracers(pid)).every((t) => t === strace.pid), "strace to attach to every thread");
  } catch (error) {
    await strace.stop();
    throw error;
  }
  const injection: Injection = {
    async stop() {
      if (!injections.delete(injection)) return;
      strace.signal("SIGINT"); // strace detaches on SIGINT/SIGTERM
      await strace.exited;
      await until(async () => (await tracers(pid).catch(() => [0])).every((t) => t === 0), "strace to detach");
    },
  };
  injections.add(injection);
  return injection;
}

/** A fresh tmpfs of `sizeKiB`; removed by `cleanupFaults`. Needs root. */
export async function mountTmpfs(sizeKiB: number): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "stui-tmpfs-"));
  await run("mount", ["-t", "tmpfs", "-o", `size=${sizeKiB}k,mode=0700`, "tmpfs", dir]);
  mounts.add(dir);
  return dir;
}

/** For `afterEach`: detaches every injection and unmounts every tmpfs. */
export async function cleanupFaults(): Promise<void> {
  for (const injection of [...injections]) await injection.stop();
  for (const dir of [...mounts]) {
    await run("umount", ["-l", dir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    mounts.delete(dir);
  }
}

export const isRoot = (): boolean => process.getuid?.() === 0;
