/**
 * The client commands log in as `stui serve` does (flags, environment, credentials in the URL) and
 * each mistake is one line on stderr with the documented exit code, never a stack trace: a wrong
 * password, an unreachable server, a permissions violation, a bad subject, no JetStream, no event
 * stream yet, a reader that closes the pipe, bare `stui`.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { ResponseOf } from "../src/protocol/index.js";
import { natsOptionsFromFlags } from "../src/cli/nats-flags.js";
import { cleanEnv, oneLine, runStui, runStuiJson } from "./helpers/cli.js";
import { startImageSim } from "./helpers/image-sim.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { stopAllProcesses } from "./helpers/processes.js";
import { startService, stopServices } from "./helpers/service.js";

const servers: NatsServerHandle[] = [];
async function natsServer(options: Parameters<typeof startNatsServer>[0] = {}): Promise<NatsServerHandle> {
  const server = await startNatsServer(options);
  servers.push(server);
  return server;
}
const dirs: string[] = [];
afterEach(async () => {
  await stopServices();
  await stopAllProcesses();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const hostPort = (server: NatsServerHandle): string => `127.0.0.1:${server.port}`;

describe("client commands - NATS login", () => {
  it("logs in by flags, by environment and by URL; flags win over the environment; a wrong password is one line and exit 3", async () => {
    const server = await natsServer({ extraArgs: ["--user", "u", "--pass", "p"] });
    await startService({ nats: { servers: server.url, user: "u", pass: "p" } });
    const url = server.url;
    const imagesOf = (r: ResponseOf<"Images">): unknown[] => r.images;

    expect(imagesOf(await runStuiJson(["images", "-s", url, "--user", "u", "--password", "p"]))).toEqual([]);
    expect(imagesOf(await runStuiJson(["health", "--server", url, "--user", "u", "--password", "p"]))).toEqual([]);
    expect(
      imagesOf(await runStuiJson(["images"], { env: { NATS_URL: url, STUI_NATS_USER: "u", STUI_NATS_PASS: "p" } })),
    ).toEqual([]);
    expect(
      imagesOf(await runStuiJson(["images"], { env: { STUI_NATS_URL: `nats://u:p@${hostPort(server)}` } })),
    ).toEqual([]);
    expect(imagesOf(await runStuiJson(["images", "--nats-url", `nats://u:p@${hostPort(server)}`]))).toEqual([]);
    // A flag beats its variable: the right password by flag over a wrong one in the environment,
    // and credentials in a URL given by flag over a user and password in the environment.
    const wrongEnv = { NATS_URL: url, STUI_NATS_USER: "u", STUI_NATS_PASS: "wrong" };
    expect(imagesOf(await runStuiJson(["images", "--password", "p"], { env: wrongEnv }))).toEqual([]);
    expect(imagesOf(await runStuiJson(["images", "-s", `nats://u:p@${hostPort(server)}`], { env: wrongEnv }))).toEqual(
      [],
    );

    for (const args of [
      ["images", "-s", url, "--user", "u", "--password", "wrong"],
      ["images", "-s", `nats://u:wrong@${hostPort(server)}`],
      ["images", "-s", url],
    ]) {
      const refused = await runStui(args);
      expect(refused.code, args.join(" ")).toBe(3);
      const line = oneLine(refused.stderr);
      expect(line).toMatch(new RegExp(`^stui: cannot connect to NATS at nats://${hostPort(server)}: .*Authorization`));
      expect(line).not.toContain("wrong");
    }
  });

  it("maps flags and environment to the connection options, reading the seed file and TLS files", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "stui-flags-"));
    dirs.push(dir);
    const seed = path.join(dir, "user.nk");
    await writeFile(seed, "SUAEXAMPLESEED\n");
    expect(
      natsOptionsFromFlags(
        {
          server: "nats://a:4222,nats://b:4222",
          token: "t",
          "nkey-seed-file": seed,
          creds: "x.creds",
          "tls-ca": "ca.pem",
          "tls-cert": "c.pem",
          "tls-key": "k.pem",
        },
        { NATS_URL: "nats://env:4222", STUI_NATS_TOKEN: "envtoken", STUI_NATS_USER: "eu", STUI_NATS_PASS: "ep" },
      ),
    ).toEqual({
      servers: ["nats://a:4222", "nats://b:4222"],
      user: "eu",
      pass: "ep",
      token: "t",
      nkeySeed: "SUAEXAMPLESEED",
      credsFile: "x.creds",
      tls: { caFile: "ca.pem", certFile: "c.pem", keyFile: "k.pem" },
    });
    expect(
      natsOptionsFromFlags(
        {},
        {
          NATS_URL: "nats://low:4222",
          STUI_NATS_URL: "nats://high:4222",
          STUI_NATS_NKEY_SEED: "SUENV",
          STUI_NATS_CREDS_FILE: "env.creds",
          STUI_NATS_TOKEN: "",
        },
      ),
    ).toEqual({ servers: "nats://high:4222", nkeySeed: "SUENV", credsFile: "env.creds" });
    expect(natsOptionsFromFlags({}, {})).toEqual({ servers: "nats://127.0.0.1:4222" });

    const missing = await runStui(["images", "--nkey-seed-file", path.join(dir, "nope.nk")]);
    expect(missing.code).toBe(2);
    expect(oneLine(missing.stderr)).toMatch(
      /^stui: --nkey-seed-file: cannot read .*nope\.nk \(ENOENT\) \(stui images --help\)$/,
    );
  });
});

describe("client commands - mistakes are one line", () => {
  it("bare stui exits 2 with the usage on stderr; --help exits 0 on stdout", async () => {
    const bare = await runStui([]);
    expect(bare.code).toBe(2);
    expect(bare.stdout).toBe("");
    expect(bare.stderr).toMatch(/^usage: stui <command>/);
    const help = await runStui(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: stui <command>/);
    expect(help.stdout).toMatch(/\n {2}context +a client's current image/);
  });

  it("an unreachable NATS, a permissions violation, a bad subject: one line each", async () => {
    const down = await runStui(["images", "-s", "nats://127.0.0.1:1", "--timeout-ms", "2000"]);
    expect(down.code).toBe(3);
    expect(oneLine(down.stderr)).toMatch(/^stui: cannot connect to NATS at nats:\/\/127\.0\.0\.1:1: /);

    const dir = await mkdtemp(path.join(tmpdir(), "stui-perm-"));
    dirs.push(dir);
    const conf = path.join(dir, "nats.conf");
    await writeFile(
      conf,
      `authorization { users = [ { user: u, password: p, permissions: {
         publish: { deny: ["stui.api.>"] }, subscribe: { deny: ["stui.events.>"] } } } ] }\n`,
    );
    const server = await natsServer({ jetstream: false, extraArgs: ["-c", conf] });
    const login = ["-s", `nats://u:p@${hostPort(server)}`];
    const request = await runStui(["images", ...login]);
    expect(request.code).toBe(3);
    expect(oneLine(request.stderr)).toBe(
      'stui: NATS refused: Permissions Violation for Publish to "stui.api.list_images"',
    );
    const subscribe = await runStui(["events", "--json", ...login]);
    expect(subscribe.code).toBe(3);
    expect(oneLine(subscribe.stderr)).toMatch(
      /^stui: NATS refused: Permissions Violation for Subscription to "stui\.events\.>"/,
    );

    const bad = await runStui(["events", "--subject", "bad..subject", ...login]);
    expect(bad.code).toBe(2);
    expect(oneLine(bad.stderr)).toMatch(/^stui: --subject "bad\.\.subject": not a valid subject: /);
    const since = await runStui(["events", "--since", "yesterday", ...login]);
    expect(since.code).toBe(2);
    expect(oneLine(since.stderr)).toMatch(/--since: not a time or a duration: yesterday/);
  });

  it("a replay without JetStream on the server, or before any stream exists, says so in one line", async () => {
    const plain = await natsServer({ jetstream: false });
    const noJs = await runStui(["events", "--since", "10m", "-s", plain.url]);
    expect(noJs.code).toBe(3);
    expect(oneLine(noJs.stderr)).toBe("stui: the NATS server has no JetStream, so no events to replay");
    const withJs = await natsServer();
    const noStream = await runStui(["events", "--since", "10m", "--json", "-s", withJs.url]);
    expect(noStream.code).toBe(3);
    expect(oneLine(noStream.stderr)).toMatch(/^stui: no event stream STUI_EVENTS yet/);
  });

  it("stui events --json | head -1 prints one event and exits quietly", async () => {
    const server = await natsServer();
    const sim = await startImageSim({ name: "dev" });
    const h = await startService({
      nats: { servers: server.url },
      images: [{ id: "dev", address: sim.endpoint, name: null }],
    });
    // A few events in the stream (started, the image's status), so the replay writes on after head has gone.
    await expect
      .poll(
        async () => {
          const r = await h.client.getImageConnectionStatus({ image_id: "dev" });
          return r.type === "ImageConnectionStatus" ? r.status : r.code;
        },
        { timeout: 20_000 },
      )
      .toBe("Connected");
    const bin = fileURLToPath(new URL("../bin/stui.js", import.meta.url));
    const child = spawn(
      "bash",
      ["-o", "pipefail", "-c", `"${process.execPath}" "${bin}" events --json --since 1h -s ${server.url} | head -1`],
      { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const closed = new Promise<number | null>((resolve) => child.once("close", resolve));
    // The closed pipe is seen on the next write after head has gone: if the whole replay fitted in
    // one write, only a later event makes one. So events keep coming until the pipeline ends.
    let n = 0;
    const more = setInterval(() => {
      n += 1;
      void h.client.switchImageContext({ client_id: `tick-${n}`, to_image_id: "dev" }).catch(() => undefined);
    }, 300);
    const code = await closed.finally(() => clearInterval(more));
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ specversion: "1.0", type: "io.stui.instance.started" });
  });
});
