/**
 * The fleet's needs checked at start: `stui serve` under a real open files limit (prlimit) too low
 * for its images stops with one line naming the limit and how far to raise it; the ZeroMQ socket
 * limit likewise; `/proc/self/limits` read as the kernel writes it.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { capacityProblem, openFilesLimit } from "../src/limits.js";
import { isolatedEnv } from "./helpers/cli.js";
import { REPO_ROOT, spawnProcess, stopAllProcesses } from "./helpers/processes.js";

let dir = "";
afterEach(async () => {
  await stopAllProcesses();
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

const LIMITS = [
  "Limit                     Soft Limit           Hard Limit           Units     ",
  "Max processes             95567                95567                processes ",
  "Max open files            1024                 524288               files     ",
].join("\n");

describe("fleet limits", () => {
  it("reads the open files limit and names what to raise", () => {
    expect(openFilesLimit(() => LIMITS)).toEqual({ soft: 1024, hard: 524_288 });
    expect(openFilesLimit(() => "Max open files unlimited unlimited files")).toEqual({
      soft: Number.POSITIVE_INFINITY,
      hard: Number.POSITIVE_INFINITY,
    });
    expect(
      openFilesLimit(() => {
        throw new Error("no /proc");
      }),
    ).toBeNull();
    const files = { soft: 1024, hard: 524_288 };
    expect(capacityProblem(100, { openFiles: files, zmqMaxSockets: 16_384 })).toBeNull();
    expect(capacityProblem(1000, { openFiles: files, zmqMaxSockets: 16_384 })).toBe(
      "1000 images need about 4256 open files (4 per image, 256 for the rest), and this process may open 1024 " +
        "(its open files limit, ulimit -n): raise it to 4256 or more (ulimit -n 4256; its hard limit, 524288, allows it)",
    );
    expect(capacityProblem(1000, { openFiles: { soft: 1024, hard: 2048 }, zmqMaxSockets: 16_384 })).toContain(
      "raise it to 4256 or more (LimitNOFILE=4256 in the systemd unit",
    );
    expect(capacityProblem(2000, { openFiles: null, zmqMaxSockets: 1023 })).toBe(
      "2000 images need 2016 ZeroMQ sockets and libzmq allows 1023 (ZMQ_MAX_SOCKETS): run fewer images per " +
        "instance, or several instances as one service (docs/cluster.md)",
    );
  });

  it("stui serve under a low open files limit stops before starting, naming it", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "stui-limits-"));
    const config = path.join(dir, "stui.json");
    const images = Array.from({ length: 100 }, (_, n) => ({ id: `img${n}`, address: `tcp://127.0.0.1:${20_000 + n}` }));
    // A NATS nothing listens on: were the check to pass, nothing would reach a real server.
    const nats = { url: "nats://127.0.0.1:9" };
    await writeFile(config, JSON.stringify({ nats, store: { path: path.join(dir, "store") }, images }));
    const serve = spawnProcess(
      "prlimit",
      ["--nofile=512:512", process.execPath, path.join(REPO_ROOT, "bin/stui.js"), "serve", "--config", config],
      { env: isolatedEnv() },
    );
    const exit = await serve.exited;
    expect(exit.code).toBe(2);
    // Node.js raises its soft limit to the hard one: the hard limit is the one to raise.
    expect(serve.stderr().trim()).toBe(
      "stui serve: 100 images need about 656 open files (4 per image, 256 for the rest), and this process may " +
        "open 512 (its open files limit, ulimit -n): raise it to 656 or more (LimitNOFILE=656 in the systemd " +
        "unit, nofile in /etc/security/limits.conf, or ulimit -Hn 656 as root)",
    );
  });
});
