/**
 * One inbox per user (docs/security.md): the blocks "service user, one inbox per user" and "api
 * client alice" are read from the doc as they stand (bob is alice's block with his name), put into
 * a real nats-server, and `stui serve` (with `nats.inbox_prefix` and `api.reply_prefixes`) and the
 * client commands run under exactly them. Each client is answered on its own prefix, bob may not
 * subscribe to alice's inbox and never sees her `Evaluate` answer, and alice without
 * `--inbox-prefix` is refused in one line.
 *
 * And a service user that may not subscribe to its API: `stui serve` says so in one line, naming
 * the subject, and exits 1 instead of claiming to listen; refused later (permissions reloaded), the
 * service logs that its API stopped, and why.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { connect, PermissionViolationError, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { StuiClient } from "../src/client.js";
import type { Response, StuiEvent } from "../src/protocol/index.js";
import { cleanEnv, oneLine, runStui, type CliResult } from "./helpers/cli.js";
import { documentedUser, natsConfigWithUsers, type DocumentedUser } from "./helpers/documented-users.js";
import { startImageSim } from "./helpers/image-sim.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { spawnStui, stopAllProcesses, type ProcessHandle } from "./helpers/processes.js";
import { startService, stopServices } from "./helpers/service.js";

type User = DocumentedUser;

const documented = documentedUser;

/** A block with every line matching `drop` left out, under another user name. */
function without(base: User, user: string, drop: RegExp): User {
  const block = base.block
    .split("\n")
    .filter((line) => !drop.test(line))
    .join("\n")
    .replace(`user: "${base.user}"`, `user: "${user}"`);
  return { ...base, user, block };
}

const ADMIN: User = { user: "admin", pass: "admin-pass", block: '{ user: "admin", password: "admin-pass" }' };

let dir: string | null = null;
let nats: NatsServerHandle | null = null;
const connections: NatsConnection[] = [];
const clients: StuiClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
  await Promise.all(connections.splice(0).map((nc) => nc.close().catch(() => undefined)));
  await stopServices();
  await stopAllProcesses();
  await nats?.stop();
  nats = null;
  if (dir !== null) await rm(dir, { recursive: true, force: true });
  dir = null;
});

/** A nats-server whose users are `users`, JetStream in the test's directory. */
async function natsWith(users: readonly User[]): Promise<NatsServerHandle> {
  dir = await mkdtemp(path.join(tmpdir(), "stui-inbox-"));
  const config = await natsConfigWithUsers(dir, users);
  nats = await startNatsServer({ jetstream: false, extraArgs: ["-c", config] });
  return nats;
}

/** `stui serve` as `service`, with one image; the config the doc gives for one inbox per user. */
async function spawnServe(
  server: NatsServerHandle,
  service: User,
  imageEndpoint: string | null,
): Promise<ProcessHandle> {
  const config = path.join(dir ?? "", "stui.yaml");
  await writeFile(
    config,
    [
      "instance_id: inbox",
      "nats:",
      `  url: ${server.url}`,
      "  inbox_prefix: _INBOX_stui",
      "store:",
      `  path: ${path.join(dir ?? "", "data")}`,
      ...(imageEndpoint === null ? [] : ["images:", "  - id: dev", `    address: ${imageEndpoint}`]),
      "api:",
      '  reply_prefixes: ["_INBOX_alice.", "_INBOX_bob."]',
      "",
    ].join("\n"),
  );
  return spawnStui(["serve", "--config", config], {
    env: cleanEnv({ STUI_NATS_USER: service.user, STUI_NATS_PASS: service.pass, STUI_LOG_LEVEL: "info" }),
  });
}

const as = (server: NatsServerHandle, user: User, env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  STUI_NATS_URL: server.url,
  STUI_NATS_USER: user.user,
  STUI_NATS_PASS: user.pass,
  ...env,
});

function answer(result: CliResult): Response {
  if (result.code !== 0) throw new Error(`exit ${String(result.code)}: ${result.stderr}${result.stdout}`);
  return JSON.parse(result.stdout) as Response;
}

interface Watch {
  readonly seen: Msg[];
  readonly refused: Promise<unknown>;
}

/** A subscription that records what it receives, and settles `refused` when the server refuses it. */
function watch(nc: NatsConnection, subject: string): Watch {
  const seen: Msg[] = [];
  let refuse: (error: unknown) => void = () => undefined;
  const refused = new Promise<unknown>((resolve) => (refuse = resolve));
  nc.subscribe(subject, {
    callback: (error, msg) => {
      if (error !== null) refuse(error);
      else seen.push(msg);
    },
  });
  return { seen, refused };
}

describe("security - one inbox per user", () => {
  it(
    "security - alice and bob are answered on their own inbox prefixes, and neither can read the other's answers",
    { timeout: 90_000 },
    async () => {
      const service = await documented("service user, one inbox per user");
      const alice = await documented("api client alice");
      const bob: User = { user: "bob", pass: alice.pass, block: alice.block.replaceAll("alice", "bob") };
      const server = await natsWith([service, alice, bob, ADMIN]);
      const sim = await startImageSim({ name: "Dev" });
      const serve = await spawnServe(server, service, sim.endpoint);
      await serve.waitForLine(/"stui serve: listening"/, { timeoutMs: 30_000 });

      // Alice by flag, bob by variable: each answered on its own prefix.
      const aliceImages = answer(
        await runStui(["images", "--json", "--inbox-prefix", "_INBOX_alice"], { env: as(server, alice) }),
      );
      expect(aliceImages.type === "Images" && aliceImages.images.map((i) => i.image_id)).toEqual(["dev"]);
      const bobImages = answer(
        await runStui(["images", "--json"], { env: as(server, bob, { STUI_NATS_INBOX_PREFIX: "_INBOX_bob" }) }),
      );
      expect(bobImages.type).toBe("Images");

      // Bob may subscribe neither to alice's inbox nor to every inbox; the admin (no permissions
      // set) may, and is the proof that alice's answer went by there.
      const bobNc = await connect({ servers: server.url, user: bob.user, pass: bob.pass, inboxPrefix: "_INBOX_bob" });
      connections.push(bobNc);
      const bobOnAlice = watch(bobNc, "_INBOX_alice.>");
      const bobOnAll = watch(bobNc, "_INBOX.>");
      await bobNc.flush();
      const [onAlice, onAll] = await Promise.all([bobOnAlice.refused, bobOnAll.refused]);
      expect(onAlice).toBeInstanceOf(PermissionViolationError);
      expect((onAlice as Error).message).toMatch(/Permissions Violation for Subscription to "_INBOX_alice\.>"/);
      expect((onAll as Error).message).toMatch(/Permissions Violation for Subscription to "_INBOX\.>"/);
      const adminNc = await connect({ servers: server.url, user: ADMIN.user, pass: ADMIN.pass });
      connections.push(adminNc);
      const adminOnAlice = watch(adminNc, "_INBOX_alice.>");
      await adminNc.flush();

      const aliceClient = await StuiClient.connect({
        servers: server.url,
        user: alice.user,
        pass: alice.pass,
        inboxPrefix: "_INBOX_alice",
        timeoutMs: 10_000,
      });
      clients.push(aliceClient);
      await expect
        .poll(
          async () => {
            const status = await aliceClient.getImageConnectionStatus({ image_id: "dev" });
            return status.type === "ImageConnectionStatus" ? status.status : status.type;
          },
          { timeout: 20_000 },
        )
        .toBe("Connected");
      const evaluated = await aliceClient.evaluate({ client_id: "alice", image_id: "dev", code: "3 + 4" });
      expect(evaluated).toMatchObject({ type: "EvaluationResult", result: "7" });
      await expect
        .poll(() => adminOnAlice.seen.map((m) => m.string()).filter((t) => t.includes("EvaluationResult")).length)
        .toBe(1);
      expect(bobOnAlice.seen).toEqual([]);
      expect(bobOnAll.seen).toEqual([]);

      // Replay and live events reach alice under her prefix too.
      const events = spawnStui(["events", "--since", "10m", "--json", "--inbox-prefix", "_INBOX_alice"], {
        env: cleanEnv(as(server, alice)),
      });
      await events.waitForLine(/"io\.stui\.instance\.started"/);
      events.signal("SIGTERM");
      expect((await events.exited).code).toBe(0);
      expect((JSON.parse(events.lines()[0] ?? "{}") as StuiEvent).type).toBe("io.stui.instance.started");

      // Without her prefix alice asks for an answer on _INBOX.…, which the server refuses her.
      const refused = await runStui(["images"], { env: as(server, alice) });
      expect(refused.code).toBe(3);
      expect(oneLine(refused.stderr)).toMatch(
        /^stui: NATS refused: Permissions Violation for Subscription to "_INBOX\.[^"]+"/,
      );
      const badPrefix = await runStui(["images", "--inbox-prefix", "_INBOX_alice."], { env: as(server, alice) });
      expect(badPrefix.code).toBe(2);
      expect(oneLine(badPrefix.stderr)).toMatch(/^stui: --inbox-prefix: expected an inbox prefix .*trailing dot/);

      // The service's block is enough: nothing refused it, its acks came back under _INBOX_stui.
      serve.signal("SIGTERM");
      expect((await serve.exited).code).toBe(0);
      expect(`${serve.stdout()}${serve.stderr()}`).not.toMatch(/Violation/i);
      expect(server.process().stderr()).not.toContain(`User "${service.user}"`);
    },
  );
});

describe("security - a service user that may not subscribe to its API", () => {
  it.each([
    ["stui.api.*", /"stui\.api\.\* stui"/, /subscription to stui\.api\.[a-z_]+ \(queue group stui\)/],
    // The subscribe lines only: the publish of "$SRV.PING.stui" (the start-up check) stays.
    ["$SRV.*", /"\$SRV\.(PING|\*\.stui)"/, /subscription to \$SRV\.[A-Z]+/],
  ])(
    "security - without subscribe permission on %s stui serve logs one line naming the subject and exits 1",
    { timeout: 60_000 },
    async (_what, drop, named) => {
      const documentedService = await documented("service user, one inbox per user");
      const service = without(documentedService, "stui-no-api", drop);
      expect(service.block).not.toMatch(drop);
      const server = await natsWith([service]);
      const serve = await spawnServe(server, service, null);
      const exit = await serve.exited;
      expect(exit.code).toBe(1);
      const lines = serve
        .stdout()
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as { level: number; msg: string; err?: unknown });
      expect(lines.map((l) => l.msg)).not.toContain("stui serve: listening");
      const errors = lines.filter((l) => l.level >= 50);
      expect(errors).toHaveLength(1);
      const [line] = errors;
      expect(line?.msg).toMatch(named);
      expect(line?.msg).toContain("docs/security.md");
      expect(line?.err).toBeUndefined();
      expect(serve.stderr()).not.toMatch(/^\s+at /m);
      // No stack anywhere, the warnings about each refused subject included.
      expect(serve.stdout()).not.toMatch(/\\n\s+at /);
    },
  );
});

describe("security - the API refused at run time", () => {
  it(
    "security - permissions reloaded without stui.api.* make the service log that its API stopped, and why",
    { timeout: 60_000 },
    async () => {
      const service = await documented("service user, one inbox per user");
      const server = await natsWith([service]);
      const harness = await startService({
        nats: { servers: server.url, user: service.user, pass: service.pass, inboxPrefix: "_INBOX_stui" },
        replyPrefixes: ["_INBOX_alice.", "_INBOX_bob."],
      });
      const reduced = without(service, service.user, /"stui\.api\.\* stui"/);
      const config = path.join(dir ?? "", "nats.conf");
      const text = await readFile(config, "utf8");
      await writeFile(config, text.replace(service.block, reduced.block));
      server.process().signal("SIGHUP");
      await expect
        .poll(
          () => harness.logged.filter((e) => e.msg.startsWith("the API stopped")).map((e) => `${e.level} ${e.msg}`),
          {
            timeout: 15_000,
          },
        )
        .toEqual([
          expect.stringMatching(/^error the API stopped: Permissions Violation for Subscription to "stui\.api\./),
        ]);
      await harness.stop();
      expect(harness.logged.filter((e) => e.msg.startsWith("the API stopped"))).toHaveLength(1);
    },
  );
});
