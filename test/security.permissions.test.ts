/**
 * The minimal NATS permissions of docs/security.md, as they stand in the doc: the ```conf blocks
 * (service user, API client, event subscriber, inspector) are read from it, put into a real
 * nats-server's `authorization`, and `stui serve` and the client commands run under exactly them.
 * The service's block is sufficient when neither its log nor the server's names a permission
 * violation over a whole run (stream created, then updated by a restart); the client's when every
 * command and every request type is answered; the subscriber's is read-only when its publishes on
 * `stui.api.*` and `stui.events.*` are refused by the server and land nowhere; the inspector's
 * is sufficient when `stui inspect` under it shows an instance's actors and their records.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { PermissionViolationError, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import type { PageMessage } from "../src/inspect/bridge.js";
import { StuiClient } from "../src/client.js";
import type { Response, StuiEvent } from "../src/protocol/index.js";
import {
  documentedBlock,
  documentedUser,
  natsConfigWithUsers,
  type DocumentedUser,
} from "./helpers/documented-users.js";
import { startImageSim, type ImageSimHandle } from "./helpers/image-sim.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { spawnStui, stopAllProcesses, type ProcessHandle } from "./helpers/processes.js";
import { isolatedEnv } from "./helpers/cli.js";

const ROLES = {
  service: "service user",
  api: "api client",
  events: "event subscriber",
  inspector: "inspector",
} as const;
type Role = keyof typeof ROLES;

async function documentedUsers(): Promise<Record<Role, DocumentedUser>> {
  return {
    service: await documentedUser(ROLES.service),
    api: await documentedUser(ROLES.api),
    events: await documentedUser(ROLES.events),
    inspector: await documentedUser(ROLES.inspector),
  };
}

// --- the running system: a nats-server under the documented users, two sims, `stui serve` -------

const IMAGE_IDS = ["alpha", "beta"] as const;

interface Stack {
  readonly nats: NatsServerHandle;
  readonly users: Record<Role, DocumentedUser>;
  readonly sims: ImageSimHandle[];
  readonly config: string;
  /** Every `stui serve` process of the test, restarts included. */
  readonly serves: ProcessHandle[];
}

let dir: string | null = null;
let nats: NatsServerHandle | null = null;
const clients: StuiClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
  await stopAllProcesses();
  await nats?.stop();
  nats = null;
  if (dir !== null) await rm(dir, { recursive: true, force: true });
  dir = null;
});

async function startStack(): Promise<Stack> {
  const users = await documentedUsers();
  dir = await mkdtemp(path.join(tmpdir(), "stui-perms-"));
  const natsConfig = await natsConfigWithUsers(dir, Object.values(users));
  nats = await startNatsServer({ jetstream: false, extraArgs: ["-c", natsConfig] });
  const sims = [await startImageSim({ name: "Alpha" }), await startImageSim({ name: "Beta" })];
  const config = path.join(dir, "stui.yaml");
  await writeFile(
    config,
    [
      "instance_id: perms",
      "nats:",
      `  url: ${nats.url}`,
      "store:",
      `  path: ${path.join(dir, "data")}`,
      "images:",
      ...IMAGE_IDS.map((id, i) => `  - id: ${id}\n    address: ${sims[i]?.endpoint ?? ""}`),
      "backoff:",
      "  base_ms: 50",
      "  cap_ms: 300",
      "",
    ].join("\n"),
  );
  const stack: Stack = { nats, users, sims, config, serves: [] };
  await startServe(stack);
  return stack;
}

/** `stui serve` logging in as the documented service user (credentials from the environment). */
async function startServe(stack: Stack): Promise<ProcessHandle> {
  const { user, pass } = stack.users.service;
  const child = spawnStui(["serve", "--config", stack.config], {
    env: isolatedEnv({ STUI_NATS_USER: user, STUI_NATS_PASS: pass, STUI_LOG_LEVEL: "info" }),
  });
  stack.serves.push(child);
  await child.waitForLine(/"stui serve: listening"/, { timeoutMs: 30_000 });
  return child;
}

async function connectAs(stack: Stack, role: Role): Promise<StuiClient> {
  const { user, pass } = stack.users[role];
  const client = await StuiClient.connect({ servers: stack.nats.url, user, pass, timeoutMs: 5000 });
  clients.push(client);
  return client;
}

/** The permission errors nats.js reports on a connection, as they come. */
function permissionErrors(nc: NatsConnection): PermissionViolationError[] {
  const seen: PermissionViolationError[] = [];
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "error" && status.error instanceof PermissionViolationError) seen.push(status.error);
    }
  })();
  return seen;
}

async function imagesConnected(client: StuiClient): Promise<void> {
  await expect
    .poll(
      async () => {
        const r = await client.listImages();
        return r.type === "Images" ? r.images.map((i) => `${i.image_id} ${i.status}`) : [];
      },
      { timeout: 20_000, interval: 200 },
    )
    .toEqual(IMAGE_IDS.map((id) => `${id} Connected`));
}

/**
 * What proves the service's block sufficient: over the whole run, no `Permissions Violation` in any
 * of its processes' output, and no violation the server logged for its user. Nor its password.
 */
function expectServiceNeverRefused(stack: Stack): void {
  for (const serve of stack.serves) {
    const output = `${serve.stdout()}${serve.stderr()}`;
    expect(output).not.toMatch(/Permissions? Violation/i);
    expect(output).not.toContain(stack.users.service.pass);
    expect(serve.stdout()).toMatch(/"stui service started"/);
  }
  const serverLog = stack.nats.process().stderr();
  expect(serverLog).not.toContain(`User "${stack.users.service.user}"`);
}

// --- the client commands as child processes -----------------------------------------------------

/** `nats://user:pass@127.0.0.1:port`: the CLI logs in with the credentials in the URL. */
const urlWithCredentials = (stack: Stack, role: Role): string =>
  stack.nats.url.replace("nats://", `nats://${stack.users[role].user}:${stack.users[role].pass}@`);

async function stuiJson(stack: Stack, ...args: string[]): Promise<Response> {
  const child = spawnStui([...args, "--json", "--nats-url", urlWithCredentials(stack, "api")], { env: isolatedEnv() });
  const exit = await child.exited;
  if (exit.code !== 0) {
    throw new Error(`stui ${args.join(" ")}: exit ${String(exit.code)}: ${child.stderr()}${child.stdout()}`);
  }
  return JSON.parse(child.stdout()) as Response;
}

describe("security - the documented NATS permissions", () => {
  it("security - docs/security.md has its blocks, none granting the whole JetStream API or everything", async () => {
    const users = await documentedUsers();
    expect(Object.values(users).map((u) => u.user)).toHaveLength(new Set(Object.values(users).map((u) => u.user)).size);
    for (const { block } of Object.values(users)) {
      expect(block).not.toMatch(/"\$JS\.API\.>"|"\$JS\.>"|"\$JS\.API\.\*"|"[>]"|allow_responses/);
    }
    expect(() => documentedBlock("```conf\n# stui: other\n{}\n```\n", ROLES.service)).toThrow(/found 0/);
  });

  it(
    "security - stui serve and the client commands work under the service and API client blocks, across a restart",
    { timeout: 120_000 },
    async () => {
      const stack = await startStack();
      const api = await connectAs(stack, "api");
      await imagesConnected(api);

      const images = await stuiJson(stack, "images");
      expect(images.type === "Images" && images.images.map((i) => [i.image_id, i.status])).toEqual([
        ["alpha", "Connected"],
        ["beta", "Connected"],
      ]);
      expect((await stuiJson(stack, "sessions")).type).toBe("ImageSessions");
      expect(await stuiJson(stack, "switch", "--client", "alice", "--to", "beta")).toMatchObject({
        type: "ContextSwitched",
        client_id: "alice",
        to_image_id: "beta",
      });
      expect(await stuiJson(stack, "cleanup", "--image", "alpha")).toMatchObject({
        type: "CleanupResult",
        image_id: "alpha",
      });

      // Replay from the stream, then live: a few lines, then stopped by its pid.
      const events = spawnStui(["events", "--since", "10m", "--json", "--nats-url", urlWithCredentials(stack, "api")], {
        env: isolatedEnv(),
      });
      await events.waitForLine(/"io\.stui\.instance\.started"/);
      await events.waitForLine(/"io\.stui\.context\.switched"/);
      events.signal("SIGTERM");
      expect((await events.exited).code).toBe(0);
      const replayed = events.lines().map((l) => JSON.parse(l) as StuiEvent);
      expect(replayed[0]?.type).toBe("io.stui.instance.started");
      expect(replayed.map((e) => e.type)).toContain("io.stui.image.status.changed");
      expect(events.stderr()).not.toMatch(/Violation/i);

      // A second start finds the stream and updates it: the rest of the service's block.
      const first = stack.serves[0];
      first?.signal("SIGTERM");
      expect((await first?.exited)?.code).toBe(0);
      await startServe(stack);
      await imagesConnected(api);
      expect((await stuiJson(stack, "images")).type).toBe("Images");
      const second = stack.serves[1];
      second?.signal("SIGTERM");
      expect((await second?.exited)?.code).toBe(0);

      expectServiceNeverRefused(stack);
      expect(stack.nats.process().stderr()).not.toContain(`User "${stack.users.api.user}"`);
    },
  );

  it(
    "security - the API client block answers every request type, $SRV discovery and the tagged endpoint",
    { timeout: 90_000 },
    async () => {
      const stack = await startStack();
      const api = await connectAs(stack, "api");
      const refused = permissionErrors(api.nc);
      await imagesConnected(api);
      const [alpha, beta] = IMAGE_IDS;
      const betaAddress = stack.sims[1]?.endpoint ?? "";

      const created = await api.createSession({ image_id: alpha, client_id: "bob", session_name: "work" });
      if (created.type !== "SessionCreated") throw new Error(`CreateSession: ${JSON.stringify(created)}`);
      const sessionId = created.session.session_id;
      const evaluated = await api.evaluate({ client_id: "bob", image_id: alpha, code: "3 + 4" });
      expect(evaluated).toMatchObject({ type: "EvaluationResult", result: "7" });

      const answers: [string, Response][] = [
        ["ListImages", await api.listImages()],
        ["GetConnectionHealthSummary", await api.getConnectionHealthSummary()],
        ["GetImageConnectionStatus", await api.getImageConnectionStatus({ image_id: alpha })],
        ["ListImageSessions", await api.listImageSessions({ image_id: alpha })],
        ["GetImageSessionStats", await api.getImageSessionStats({ image_id: alpha })],
        ["SwitchImageContext", await api.switchImageContext({ client_id: "bob", to_image_id: beta })],
        ["CloseSession", await api.closeSession({ session_id: sessionId })],
        ["CleanupImageSessions", await api.cleanupImageSessions({ image_id: alpha, force: true })],
        ["DisconnectImage", await api.disconnectImage({ image_id: beta })],
        ["ConnectImage", await api.connectImage({ image_id: beta, address: betaAddress })],
      ];
      expect(answers.map(([request, r]) => `${request} → ${r.type}`)).toEqual([
        "ListImages → Images",
        "GetConnectionHealthSummary → ConnectionHealthSummary",
        "GetImageConnectionStatus → ImageConnectionStatus",
        "ListImageSessions → ImageSessions",
        "GetImageSessionStats → ImageSessionStats",
        "SwitchImageContext → ContextSwitched",
        "CloseSession → SessionClosed",
        "CleanupImageSessions → CleanupResult",
        "DisconnectImage → ImageDisconnected",
        "ConnectImage → ImageConnected",
      ]);

      const tagged = await api.nc.request("stui.api.request", JSON.stringify({ ListImages: {} }), { timeout: 5000 });
      expect(tagged.json<Record<string, unknown>>()).toHaveProperty("Images");
      for (const verb of ["$SRV.PING", "$SRV.INFO.stui", "$SRV.STATS.stui"]) {
        const answer = await api.nc.request(verb, "", { timeout: 5000 });
        expect(answer.json<Record<string, unknown>>(), verb).toHaveProperty("name", "stui");
      }

      // Replay through the typed client too, by stream sequence.
      const feed = await api.replay({ sequence: 1 });
      const seen: string[] = [];
      for await (const { event } of feed) {
        seen.push(event.type);
        if (event.type === "io.stui.context.switched") break;
      }
      expect(seen[0]).toBe("io.stui.instance.started");
      expect(seen).toContain("io.stui.session.created");

      expect(refused).toEqual([]);
      expectServiceNeverRefused(stack);
    },
  );

  it(
    "security - the event subscriber sees live and replayed events, and its publishes on the API and events are refused",
    { timeout: 90_000 },
    async () => {
      const stack = await startStack();
      const reader = await connectAs(stack, "events");
      const refused = permissionErrors(reader.nc);
      const api = await connectAs(stack, "api");
      await imagesConnected(api);

      // Replay by time: what the stream stored since the service started.
      const replay = await reader.replay({ since: new Date(Date.now() - 10 * 60_000) });
      const stored: StuiEvent[] = [];
      for await (const { event } of replay) {
        stored.push(event);
        const connected = stored.filter(
          (e) => e.type === "io.stui.image.status.changed" && e.data.status === "Connected",
        );
        if (connected.length === IMAGE_IDS.length) break;
      }
      expect(stored[0]).toMatchObject({ type: "io.stui.instance.started", source: "/stui/perms" });

      // Live: an image killed shows as Reconnecting.
      const live = reader.events({ subject: "stui.events.image.alpha.status" });
      const statuses: string[] = [];
      const following = (async () => {
        for await (const event of live) {
          if (event.type === "io.stui.image.status.changed") statuses.push(event.data.status);
        }
      })();
      await reader.nc.flush();
      stack.sims[0]?.kill("SIGKILL");
      await expect.poll(() => statuses, { timeout: 15_000 }).toContain("Reconnecting");
      await live.close();
      await following;

      // Read-only: the server refuses its publishes on the API and on the events.
      const forged: string[] = [];
      const watch = reader.nc.subscribe("stui.events.x", { callback: (_e, m) => void forged.push(m.subject) });
      const jsm = await jetstreamManager(reader.nc, { checkAPI: false });
      await expect(reader.nc.request("stui.api.list_images", "{}", { timeout: 3000 })).rejects.toThrow(
        /Permissions Violation for Publish to "stui\.api\.list_images"/,
      );
      reader.nc.publish("stui.events.x", JSON.stringify({ specversion: "1.0", forged: true }));
      await reader.nc.flush();
      await expect
        .poll(() => refused.map((e) => `${e.operation} ${e.subject}`), { timeout: 5000 })
        .toEqual(["publish stui.api.list_images", "publish stui.events.x"]);
      await new Promise((resolve) => setTimeout(resolve, 300));
      watch.unsubscribe();
      expect(forged).toEqual([]);
      const after = await jsm.streams.info("STUI_EVENTS", { subjects_filter: "stui.events.x" });
      expect(after.state.subjects ?? {}).toEqual({});
      const serverLog = stack.nats.process().stderr();
      for (const subject of ["stui.api.list_images", "stui.events.x"]) {
        expect(serverLog).toContain(`Publish Violation - User "${stack.users.events.user}", Subject "${subject}"`);
      }

      expectServiceNeverRefused(stack);
    },
  );
  it("security - stui inspect works under the inspector block: it finds the instance, attaches and gets its records", async () => {
    const stack = await startStack();
    const api = await connectAs(stack, "api");
    await imagesConnected(api);
    const inspect = spawnStui(["inspect", "--port", "0", "--nats-url", urlWithCredentials(stack, "inspector")], {
      env: isolatedEnv(),
    });
    const url = new URL((await inspect.waitForLine(/^inspector: (\S+)$/))[1] ?? "");
    const socket = new WebSocket(`ws://${url.host}/ws${url.search}`);
    const got: PageMessage[] = [];
    socket.on("message", (data: Buffer) => void got.push(JSON.parse(data.toString("utf8")) as PageMessage));
    try {
      await expect
        .poll(() => got.some((m) => m.type === "attached" && m.body.actors.some((a) => a.id === "alpha")), {
          timeout: 15_000,
        })
        .toBe(true);
      stack.sims[0]?.kill("SIGKILL");
      await expect
        .poll(() => got.some((m) => m.type === "batch" && JSON.stringify(m.body).includes("Reconnecting")), {
          timeout: 15_000,
        })
        .toBe(true);
    } finally {
      socket.close();
    }
    inspect.signal("SIGTERM");
    expect((await inspect.exited).code).toBe(0);
    expect(`${inspect.stdout()}${inspect.stderr()}`).not.toMatch(/Violation|refused/i);
    expect(stack.nats.process().stderr()).not.toContain(`User "${stack.users.inspector.user}"`);
    expectServiceNeverRefused(stack);
  });
});
