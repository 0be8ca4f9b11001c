/**
 * The package's `./client` entry on the built `dist/`: a child `node` imports it by the package's
 * own name (through `exports`) and reports every module it loaded, three ways: each ESM resolution
 * (a resolve hook, `test/fixtures/module-log/`), the CommonJS module cache (what packages
 * `require()` inside, which the hook does not see) and the shared objects in the process (a native
 * addon is one). The main entry is checked the same way and must show zeromq, so the check is
 * known to see it.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { formatExit, spawnNode, stopAllProcesses } from "./helpers/processes.js";

afterEach(stopAllProcesses);

const REGISTER = "./test/fixtures/module-log/register.js";

/** Imports `entry`, then prints its export names, the CommonJS cache and the shared objects. */
const CHILD = `
const mod = await import(process.argv[1]);
const { createRequire } = await import("node:module");
const cjs = Object.keys(createRequire(import.meta.url).cache);
const { sharedObjects } = process.report.getReport();
console.log(JSON.stringify({ exports: Object.keys(mod), cjs, sharedObjects }));
`;

interface Loaded {
  readonly exports: readonly string[];
  /** Every specifier the ESM loader resolved, and the URL it resolved to. */
  readonly resolved: readonly { readonly specifier: string; readonly url: string }[];
  readonly cjs: readonly string[];
  readonly sharedObjects: readonly string[];
}

async function loadedBy(entry: string): Promise<Loaded> {
  const dir = await mkdtemp(path.join(tmpdir(), "stui-module-log-"));
  try {
    const log = path.join(dir, "modules.jsonl");
    const child = spawnNode(["--import", REGISTER, "--input-type=module", "-e", CHILD, entry], {
      env: { ...process.env, STUI_MODULE_LOG: log },
    });
    const exit = await child.exited;
    if (exit.code !== 0) throw new Error(`node importing ${entry} ended with ${formatExit(exit)}:\n${child.stderr()}`);
    const report = JSON.parse(child.stdout()) as Omit<Loaded, "resolved">;
    const lines = (await readFile(log, "utf8")).split("\n").filter((line) => line !== "");
    return { ...report, resolved: lines.map((line) => JSON.parse(line) as Loaded["resolved"][number]) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What of `loaded` belongs to the package `name`: specifiers, URLs, cached files, shared objects. */
function modulesOf(loaded: Loaded, name: string): string[] {
  const inPackage = new RegExp(`[\\\\/]node_modules[\\\\/]${name}[\\\\/]`);
  return [
    ...loaded.resolved
      .filter(({ specifier, url }) => specifier === name || specifier.startsWith(`${name}/`) || inPackage.test(url))
      .map(({ url }) => url),
    ...loaded.cjs.filter((file) => inPackage.test(file)),
    ...loaded.sharedObjects.filter((file) => inPackage.test(file)),
  ];
}

/** The native addons (`.node` shared objects) in the process. */
const addonsOf = (loaded: Loaded): string[] => loaded.sharedObjects.filter((file) => file.endsWith(".node"));

describe("package - the client entry", () => {
  it("stui-session-service/client gives the client, the protocol and the NATS options, and loads neither zeromq nor xstate", async () => {
    const loaded = await loadedBy("stui-session-service/client");
    expect(loaded.resolved.map((r) => r.url)).toContainEqual(expect.stringMatching(/\/dist\/src\/client-entry\.js$/));
    expect(loaded.exports).toEqual(
      expect.arrayContaining([
        "StuiClient",
        "ServiceUnavailableError",
        "NatsConnectError",
        "apiSubject",
        "decodeEvent",
      ]),
    );
    expect(loaded.exports).not.toContain("StuiService");
    expect(loaded.exports).not.toContain("startImageConnection");
    expect(modulesOf(loaded, "zeromq")).toEqual([]);
    expect(modulesOf(loaded, "xstate")).toEqual([]);
    expect(addonsOf(loaded)).toEqual([]);
    // The check reads real loads: the NATS client is there.
    expect(modulesOf(loaded, "@nats-io/transport-node")).not.toEqual([]);
  });

  it("the main entry, checked the same way, loads zeromq (its native addon included) and xstate", async () => {
    const loaded = await loadedBy("stui-session-service");
    const zeromq = modulesOf(loaded, "zeromq");
    expect(zeromq).toContainEqual(expect.stringMatching(/^file:.*[\\/]zeromq[\\/]/));
    expect(addonsOf(loaded)).toContainEqual(expect.stringMatching(/[\\/]zeromq[\\/].*\.node$/));
    expect(modulesOf(loaded, "xstate")).not.toEqual([]);
  });
});
