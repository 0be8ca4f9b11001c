/**
 * The service user's permissions with `store.kind: kv`, as docs/security.md documents them: the
 * block `# stui: service user, store.kind kv` is read from the doc, put into a real nats-server's
 * `authorization` (with the documented API client), and `stui serve` runs under exactly it: it
 * creates its buckets, writes a session and a context, is stopped, and on its second start finds
 * the buckets and loads them; then the nats-server restarts (the change feeds' consumers are
 * recreated) and writes go on. The block is sufficient when neither the service's output nor the
 * server's log names a permission violation of the service user over the whole run.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { StuiClient } from "../src/client.js";
import { documentedUser, natsConfigWithUsers, type DocumentedUser } from "./helpers/documented-users.js";
import { startImageSim } from "./helpers/image-sim.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { spawnStui, stopAllProcesses, type ProcessHandle } from "./helpers/processes.js";
import { isolatedEnv } from "./helpers/cli.js";

const KV_SERVICE = "service user, store.kind kv";
const API_CLIENT = "api client";

let dir: string | null = null;
let nats: NatsServerHandle | null = null;
let client: StuiClient | null = null;

afterEach(async () => {
  await client?.close().catch(() => undefined);
  client = null;
  await stopAllProcesses();
  await nats?.stop();
  nats = null;
  if (dir !== null) await rm(dir, { recursive: true, force: true });
  dir = null;
});

/** `stui serve` logging in as the documented KV service user (credentials from the environment). */
async function startServe(config: string, service: DocumentedUser): Promise<ProcessHandle> {
  const child = spawnStui(["serve", "--config", config], {
    env: isolatedEnv({ STUI_NATS_USER: service.user, STUI_NATS_PASS: service.pass, STUI_LOG_LEVEL: "info" }),
  });
  await child.waitForLine(/"stui serve: listening"/, { timeoutMs: 30_000 });
  return child;
}

async function connected(c: StuiClient): Promise<void> {
  await expect
    .poll(
      async () => {
        const r = await c.getImageConnectionStatus({ image_id: "dev" });
        return r.type === "ImageConnectionStatus" ? r.status : r.type;
      },
      { timeout: 20_000, interval: 200 },
    )
    .toBe("Connected");
}

async function sessionIds(c: StuiClient): Promise<string[]> {
  const r = await c.listImageSessions({ image_id: "dev", include_disconnected: true });
  if (r.type !== "ImageSessions") throw new Error(JSON.stringify(r));
  return r.sessions.map((s) => s.session_id);
}

describe("security - the documented NATS permissions with store.kind kv", () => {
  it("security - docs/security.md's KV service block grants neither the whole JetStream API nor $KV.>", async () => {
    const { block } = await documentedUser(KV_SERVICE);
    expect(block).not.toMatch(/"\$JS\.API\.>"|"\$JS\.>"|"\$JS\.API\.\*"|"\$KV\.>"|"[>]"|allow_responses/);
  });

  it(
    "security - stui serve with store.kind kv creates, writes and reloads its buckets under the documented service block",
    { timeout: 120_000 },
    async () => {
      const service = await documentedUser(KV_SERVICE);
      const api = await documentedUser(API_CLIENT);
      dir = await mkdtemp(path.join(tmpdir(), "stui-kvperms-"));
      const natsConfig = await natsConfigWithUsers(dir, [service, api]);
      nats = await startNatsServer({ jetstream: false, extraArgs: ["-c", natsConfig] });
      const sim = await startImageSim({ name: "Dev" });
      const config = path.join(dir, "stui.yaml");
      await writeFile(
        config,
        [
          "instance_id: kvperms",
          `nats: { url: "${nats.url}" }`,
          "store: { kind: kv }",
          `images: [{ id: dev, address: "${sim.endpoint}" }]`,
          "backoff: { base_ms: 50, cap_ms: 300 }",
          "",
        ].join("\n"),
      );

      const serves: ProcessHandle[] = [await startServe(config, service)];
      client = await StuiClient.connect({ servers: nats.url, user: api.user, pass: api.pass, timeoutMs: 5000 });
      await connected(client);
      const created = await client.createSession({ image_id: "dev", client_id: "alice", session_name: "work" });
      if (created.type !== "SessionCreated") throw new Error(`CreateSession: ${JSON.stringify(created)}`);
      const sessionId = created.session.session_id;
      expect(await client.switchImageContext({ client_id: "alice", to_image_id: "dev" })).toMatchObject({
        type: "ContextSwitched",
        client_id: "alice",
        to_image_id: "dev",
      });

      const first = serves[0];
      first?.signal("SIGTERM");
      expect((await first?.exited)?.code).toBe(0);

      // The second start finds the buckets and loads what the first one wrote.
      serves.push(await startServe(config, service));
      await connected(client);
      expect(await sessionIds(client)).toContain(sessionId);

      // A nats-server restart: the change feeds' ordered consumers are recreated, and writes go on.
      await nats.restart({ downMs: 500 });
      await connected(client);
      const after = await client.createSession({ image_id: "dev", client_id: "bob", session_name: "later" });
      if (after.type !== "SessionCreated") throw new Error(`CreateSession: ${JSON.stringify(after)}`);
      expect(await client.switchImageContext({ client_id: "bob", to_image_id: "dev" })).toMatchObject({
        type: "ContextSwitched",
      });
      expect(await sessionIds(client)).toEqual(expect.arrayContaining([sessionId, after.session.session_id]));
      const second = serves[1];
      second?.signal("SIGTERM");
      expect((await second?.exited)?.code).toBe(0);

      for (const serve of serves) {
        const output = `${serve.stdout()}${serve.stderr()}`;
        expect(output).not.toMatch(/Permissions? Violation/i);
        expect(output).not.toContain(service.pass);
        expect(serve.stdout()).toMatch(/"stui service started"/);
      }
      const violations = nats
        .process()
        .stderr()
        .split("\n")
        .filter((line) => /Violation/.test(line));
      expect(violations.filter((line) => line.includes(`User "${service.user}"`))).toEqual([]);
    },
  );
});
