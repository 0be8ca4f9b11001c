/**
 * `stui serve` configuration: JSON and YAML files, environment and flag overrides in that order,
 * and errors that name the file and the key.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, managerPolicyOf, natsOptionsOf } from "../src/config.js";
import { cleanupManagers, makeStoreDir } from "./helpers/manager.js";

afterEach(cleanupManagers);

async function file(name: string, text: string): Promise<string> {
  const at = path.join(await makeStoreDir(), name);
  await writeFile(at, text);
  return at;
}

const ISSUE_EXAMPLE = {
  instance_id: "a",
  nats: { url: "nats://127.0.0.1:4222" },
  store: { path: "./data" },
  images: [{ id: "dev", address: "tcp://127.0.0.1:5555", name: "Dev image" }],
};

describe("config - files, overrides and errors", () => {
  it("reads the documented JSON shape, with defaults for everything else", async () => {
    const config = await loadConfig(await file("stui.json", JSON.stringify(ISSUE_EXAMPLE)), {});
    expect(config).toMatchObject({ ...ISSUE_EXAMPLE, log_level: "info", metrics_port: null });
    expect(natsOptionsOf(config)).toMatchObject({ servers: "nats://127.0.0.1:4222", name: "stui-a" });
  });

  it("reads YAML, and maps tuning keys onto the manager and connection policy", async () => {
    const yaml = [
      "instance_id: b",
      "images:",
      "  - id: dev",
      "    address: tcp://127.0.0.1:5555",
      "heartbeat: { interval_ms: 100, timeout_ms: 400 }",
      "backoff: { base_ms: 50, max_restarts: 3 }",
      "sessions: { failed_grace_ms: 1000, orphan_max_age_ms: null }",
      "log_level: debug",
    ].join("\n");
    const config = await loadConfig(await file("stui.yaml", yaml), {});
    expect(config.images).toEqual([{ id: "dev", address: "tcp://127.0.0.1:5555", name: null }]);
    expect(managerPolicyOf(config)).toEqual({
      failedGraceMs: 1000,
      orphanMaxAgeMs: null,
      connection: { heartbeatIntervalMs: 100, heartbeatTimeoutMs: 400, backoffBaseMs: 50, maxRestarts: 3 },
    });
  });

  it("lets the environment override the file, and flags override both", async () => {
    const at = await file("stui.json", JSON.stringify(ISSUE_EXAMPLE));
    const env = { NATS_URL: "nats://env:4222", STUI_STORE_PATH: "/env/data", STUI_NATS_PASS: "p", STUI_NATS_USER: "u" };
    const fromEnv = await loadConfig(at, env);
    expect(fromEnv).toMatchObject({
      nats: { url: "nats://env:4222", user: "u", pass: "p" },
      store: { path: "/env/data" },
    });
    const fromFlags = await loadConfig(at, env, { natsUrl: "nats://flag:4222", metricsPort: "9464", instanceId: "z" });
    expect(fromFlags).toMatchObject({ nats: { url: "nats://flag:4222" }, metrics_port: 9464, instance_id: "z" });
  });

  it("names the file and the key of every problem", async () => {
    const cases: Array<[string, string, RegExp]> = [
      [
        "bad-type.json",
        JSON.stringify({ images: [{ id: "dev", address: 5555 }] }),
        /images\[0\]\.address: expected string/,
      ],
      ["typo.json", JSON.stringify({ imagez: [] }), /imagez/],
      ["bad-id.yaml", "images:\n  - id: dev.box\n    address: tcp://x:1\n", /images\[0\]\.id/],
      ["dupes.yaml", "images:\n  - {id: a, address: tcp://x:1}\n  - {id: a, address: tcp://x:2}\n", /unique/],
      ["level.json", JSON.stringify({ log_level: "loud" }), /log_level/],
      ["broken.json", "{not json", /not valid JSON/],
      ["broken.yaml", "images: [\n", /not valid YAML/],
      ["list.yaml", "- 1\n- 2\n", /expected a mapping/],
    ];
    for (const [name, text, pattern] of cases) {
      const at = await file(name, text);
      const error = await loadConfig(at, {}).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error, name).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message, name).toMatch(pattern);
      expect((error as ConfigError).message.startsWith(at), name).toBe(true);
    }
    await expect(loadConfig("/nonexistent/stui.yaml", {})).rejects.toThrow(/\/nonexistent\/stui\.yaml: cannot read it/);
    await expect(loadConfig(null, { STUI_METRICS_PORT: "port" })).rejects.toThrow(/metrics_port/);
  });
});
