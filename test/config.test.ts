/**
 * `stui serve` configuration: JSON and YAML files, environment and flag overrides in that order,
 * and errors that name the file and the key.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { apiOptionsOf, loadConfig, managerPolicyOf, natsOptionsOf, readConfig } from "../src/config.js";
import { ConfigError } from "../src/errors.js";
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
    const at = await file("stui.json", JSON.stringify(ISSUE_EXAMPLE));
    const config = await loadConfig(at, {});
    const store = { path: path.join(path.dirname(at), "data") };
    expect(config).toMatchObject({ ...ISSUE_EXAMPLE, store, log_level: "info", metrics_port: null });
    expect(apiOptionsOf(config)).toEqual({ replyPrefixes: ["_INBOX."] });
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
    await expect(loadConfig(null, { STUI_METRICS_PORT: "port" })).rejects.toThrow(/^STUI_METRICS_PORT=port: /);
  });
});

/** The problems `loadConfig` reports, one per line; fails the test if it loads. */
async function problems(at: string | null, env: NodeJS.ProcessEnv = {}, flags = {}): Promise<string[]> {
  const error = await loadConfig(at, env, flags).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  const message = (error as ConfigError).message;
  expect(message.split("\n")).toEqual((error as ConfigError).problems);
  return (error as ConfigError).problems.slice();
}

describe("config - exact problems", () => {
  it("lists every problem, one per line, each naming the file and its key", async () => {
    const yaml = [
      "imagez: []",
      "nats:",
      "  url: [nats://a:4222, 'http://b:80']",
      "images:",
      "  - id: dev",
      "    address: localhost:5555",
      "  - id: x.y",
      "    address: inproc://dev",
      "metrics_port: 70000",
      "inspect:",
      "  max_share: 0",
    ].join("\n");
    const at = await file("bad.yaml", yaml);
    expect(await problems(at)).toEqual([
      `${at}: nats.url[1]: expected a NATS URL nats://host:port or tls://host:port, got "http://b:80"`,
      `${at}: images[0].address: expected a ZeroMQ endpoint tcp://host:port or ipc://path, got "localhost:5555"`,
      `${at}: images[1].id: expected an id of letters, digits, '_' or '-', got "x.y"`,
      `${at}: images[1].address: inproc:// only reaches sockets inside one process; expected a ZeroMQ endpoint tcp://host:port or ipc://path, got "inproc://dev"`,
      `${at}: inspect.max_share: expected a number > 0, got 0`,
      `${at}: metrics_port: expected a number <= 65535, got 70000`,
      `${at}: imagez: unknown key`,
    ]);
  });

  it("blames a bad environment variable or flag on it, not on the file, and never shows secrets", async () => {
    const at = await file("stui.yaml", "log_level: info\n");
    expect(await problems(at, { STUI_METRICS_PORT: "abc" })).toEqual(["STUI_METRICS_PORT=abc: expected an integer"]);
    expect(await problems(at, {}, { metricsPort: "abc" })).toEqual(["--metrics-port abc: expected an integer"]);
    expect(await problems(at, { STUI_LOG_LEVEL: "loud" }, { storePath: "" })).toEqual([
      '--store "": expected a string of length >= 1, got length 0',
      'STUI_LOG_LEVEL=loud: expected "fatal" | "error" | "warn" | "info" | "debug" | "trace", got "loud"',
    ]);
    const [url = ""] = await problems(null, { NATS_URL: "http://alice:s3cret@host:4222" });
    expect(url).toMatch(/^NATS_URL=http:\/\/\[redacted\]@host:4222: expected a NATS URL/);
    expect(url).not.toContain("s3cret");
    // A flag that overrides a bad variable leaves nothing to complain about.
    expect((await loadConfig(at, { STUI_METRICS_PORT: "abc" }, { metricsPort: "9464" })).metrics_port).toBe(9464);
  });

  it("takes tcp:// and ipc:// image addresses, and refuses inproc://, bare host:port and bad ports", async () => {
    const images = (address: string): string => JSON.stringify({ images: [{ id: "dev", address }] });
    for (const address of [
      "tcp://127.0.0.1:5555",
      "tcp://image.example:1",
      "tcp://[::1]:5555",
      "ipc:///run/stui/dev",
    ]) {
      const config = await loadConfig(await file("ok.json", images(address)), {});
      expect(config.images[0]?.address).toBe(address);
    }
    for (const address of [
      "inproc://dev",
      "127.0.0.1:5555",
      "tcp://host",
      "tcp://host:0",
      "tcp://host:70000",
      "ipc://",
    ]) {
      const [problem = ""] = await problems(await file("bad.json", images(address)));
      expect(problem, address).toContain(`images[0].address: `);
      expect(problem, address).toContain(`got ${JSON.stringify(address)}`);
    }
  });

  it("takes nats:// and tls:// URLs, reads host:port as nats://, and refuses other schemes", async () => {
    const urlOf = async (url: string | string[]): Promise<string | string[]> =>
      (await loadConfig(await file("n.json", JSON.stringify({ nats: { url } })), {})).nats.url;
    expect(await urlOf("nats://10.0.0.1:4222")).toBe("nats://10.0.0.1:4222");
    expect(await urlOf(["tls://a:4222", "nats://u:p@b:4222"])).toEqual(["tls://a:4222", "nats://u:p@b:4222"]);
    expect(await urlOf("nats.example:4222")).toBe("nats://nats.example:4222");
    expect((await loadConfig(null, { NATS_URL: "127.0.0.1:4333" })).nats.url).toBe("nats://127.0.0.1:4333");
    for (const url of ["ws://a:80", "http://a:4222", "nats://a:4222/path", "nats://a:port"]) {
      expect(await problems(await file("n.json", JSON.stringify({ nats: { url } })))).toHaveLength(1);
    }
    expect(await problems(await file("n.json", JSON.stringify({ nats: { url: [] } })))).toEqual([
      expect.stringMatching(/nats\.url: expected an array of length >= 1, got length 0$/),
    ]);
  });

  it("reads store.path from the file relative to the file's directory, from env or flags relative to cwd", async () => {
    const at = await file("stui.yaml", "store: { path: ./data }\nnats: { tls: { ca_file: ca.pem } }\n");
    const dir = path.dirname(at);
    const config = await loadConfig(at, {});
    expect(config.store.path).toBe(path.join(dir, "data"));
    expect(config.nats.tls?.ca_file).toBe(path.join(dir, "ca.pem"));
    expect((await loadConfig(at, { STUI_STORE_PATH: "rel/env" })).store.path).toBe("rel/env");
    expect((await loadConfig(at, {}, { storePath: "rel/flag" })).store.path).toBe("rel/flag");
    expect((await loadConfig(await file("abs.yaml", "store: { path: /var/lib/stui }\n"), {})).store.path).toBe(
      "/var/lib/stui",
    );
    expect((await loadConfig(await file("none.yaml", "log_level: info\n"), {})).store.path).toBe("./stui-data");
  });

  it("warns about a configuration without images, and not about one with images", async () => {
    const empty = await readConfig(await file("empty.yaml", ""), {});
    expect(empty.config.images).toEqual([]);
    expect(empty.warnings).toEqual([
      "no images configured: the service runs with none until a ConnectImage request adds one",
    ]);
    expect((await readConfig(await file("one.json", JSON.stringify(ISSUE_EXAMPLE)), {})).warnings).toEqual([]);
  });

  it("refuses a file that is not .json, .yaml or .yml by its name", async () => {
    const toml = await file("stui.toml", "x = 1\n");
    expect(await problems(toml)).toEqual([`${toml}: unknown extension ".toml": expected a .json, .yaml or .yml file`]);
    const bare = await file("stui", "{}");
    expect(await problems(bare)).toEqual([`${bare}: no extension: expected a .json, .yaml or .yml file`]);
  });

  it("reads api.reply_prefixes: a non-empty list of subject prefixes ending in a dot", async () => {
    const withPrefixes = (reply_prefixes: unknown): string => JSON.stringify({ api: { reply_prefixes } });
    const config = await loadConfig(await file("api.json", withPrefixes(["_INBOX.", "_INBOX.panel."])), {});
    expect(apiOptionsOf(config)).toEqual({ replyPrefixes: ["_INBOX.", "_INBOX.panel."] });
    expect(apiOptionsOf(await loadConfig(null, {}))).toEqual({ replyPrefixes: ["_INBOX."] });
    const at = await file("api.json", withPrefixes(["_INBOX", "a.*.", "a..", " x."]));
    const found = await problems(at);
    expect(found).toHaveLength(4);
    found.forEach((problem, i) =>
      expect(problem).toContain(`${at}: api.reply_prefixes[${i}]: expected a NATS subject prefix`),
    );
    expect(await problems(await file("api.json", withPrefixes([])))).toEqual([
      expect.stringMatching(/api\.reply_prefixes: expected an array of length >= 1, got length 0$/),
    ]);
  });

  it("reads nats.inbox_prefix from the file or STUI_NATS_INBOX_PREFIX, and refuses wildcards and a trailing dot", async () => {
    const at = await file("stui.yaml", "nats:\n  inbox_prefix: _INBOX_stui\n");
    expect(natsOptionsOf(await loadConfig(at, {}))).toMatchObject({ inboxPrefix: "_INBOX_stui" });
    expect(natsOptionsOf(await loadConfig(at, { STUI_NATS_INBOX_PREFIX: "_INBOX.stui-2" }))).toMatchObject({
      inboxPrefix: "_INBOX.stui-2",
    });
    expect(natsOptionsOf(await loadConfig(null, {}))).not.toHaveProperty("inboxPrefix");
    const bad = await file("bad.yaml", 'nats:\n  inbox_prefix: "_INBOX.>"\n');
    expect(await problems(bad)).toEqual([
      `${bad}: nats.inbox_prefix: expected an inbox prefix of tokens [A-Za-z0-9_-] separated by "." (e.g. "_INBOX_alice"), without wildcards or a trailing dot, got "_INBOX.>"`,
    ]);
    expect(await problems(null, { STUI_NATS_INBOX_PREFIX: "_INBOX_stui." })).toEqual([
      expect.stringMatching(/^STUI_NATS_INBOX_PREFIX=_INBOX_stui\.: expected an inbox prefix .* trailing dot/),
    ]);
  });
});
