/**
 * `store.kind: kv` end to end: `stui serve` with its sessions and contexts in JetStream KV buckets
 * on a real nats-server, and `stui store migrate --from DIR` copying a file store there, twice
 * (the second time copies nothing). Sessions made under the file store are served from KV, and
 * what is created under KV survives a restart.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { MigrationReport } from "../src/cli/store-command.js";
import { StuiClient } from "../src/client.js";
import { runStui, runStuiJson } from "./helpers/cli.js";
import { startImageSim, type ImageSimHandle } from "./helpers/image-sim.js";
import { cleanupManagers, makeStoreDir } from "./helpers/manager.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { spawnStui, stopAllProcesses, type ProcessHandle } from "./helpers/processes.js";

let nats: NatsServerHandle | null = null;
let client: StuiClient | null = null;
afterEach(async () => {
  await client?.close();
  client = null;
  await stopAllProcesses();
  await nats?.stop();
  nats = null;
  await cleanupManagers();
});

async function serve(natsUrl: string, sim: ImageSimHandle, store: string): Promise<ProcessHandle> {
  const dir = await makeStoreDir();
  const config = path.join(dir, "stui.yaml");
  await writeFile(
    config,
    [`nats: { url: "${natsUrl}" }`, `store: ${store}`, `images: [{ id: dev, address: "${sim.endpoint}" }]`, ""].join(
      "\n",
    ),
  );
  const child = spawnStui(["serve", "--config", config, "--instance-id", "kv"]);
  await child.waitForLine(/"stui serve: listening"/, { timeoutMs: 30_000 });
  return child;
}

async function connected(c: StuiClient): Promise<void> {
  await expect
    .poll(async () => {
      const r = await c.getImageConnectionStatus({ image_id: "dev" });
      return r.type === "ImageConnectionStatus" ? r.status : r.type;
    })
    .toBe("Connected");
}

async function sessionIds(c: StuiClient): Promise<string[]> {
  const r = await c.listImageSessions({ image_id: "dev", include_disconnected: true });
  if (r.type !== "ImageSessions") throw new Error(JSON.stringify(r));
  return r.sessions.map((s) => s.session_id).sort();
}

describe("store kind kv - end to end", () => {
  it("store kind kv - stui store migrate copies a file store into KV once; stui serve serves it from KV, across a restart", async () => {
    nats = await startNatsServer();
    const sim = await startImageSim({ name: "dev" });
    const fileStore = path.join(await makeStoreDir(), "data");
    client = await StuiClient.connect({ servers: nats.url, timeoutMs: 10_000 });
    const c = client;

    // Sessions and a context under the file store.
    let service = await serve(nats.url, sim, `{ path: "${fileStore}" }`);
    await connected(c);
    for (const who of ["alice", "bob"]) {
      expect((await c.createSession({ image_id: "dev", client_id: who })).type).toBe("SessionCreated");
    }
    expect((await c.switchImageContext({ client_id: "alice", to_image_id: "dev" })).type).toBe("ContextSwitched");
    const before = await sessionIds(c);
    service.signal("SIGTERM");
    expect((await service.exited).code).toBe(0);

    const env = { NATS_URL: nats.url };
    const first = await runStuiJson<MigrationReport>(["store", "migrate", "--from", fileStore], { env });
    expect(first.sessions).toEqual({ copied: 2, same: 0, differing: 0 });
    expect(first.contexts).toEqual({ copied: 1, same: 0, differing: 0 });
    expect(first.buckets).toEqual(["stui_sessions", "stui_contexts"]);
    const again = await runStui(["store", "migrate", "--from", fileStore], { env });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(
      /^copied 0 session\(s\) and 0 context\(s\) from .* into stui_sessions, stui_contexts$/m,
    );
    expect(again.stdout).toMatch(/^already there: 2 session\(s\), 1 context\(s\)$/m);

    // Served from KV: what the file store had, and what is made now survives a restart.
    service = await serve(nats.url, sim, "{ kind: kv }");
    await connected(c);
    expect(await sessionIds(c)).toEqual(before);
    expect(await c.getClientContext({ client_id: "alice" })).toMatchObject({ image_id: "dev" });
    const made = await c.createSession({ image_id: "dev", client_id: "carol" });
    if (made.type !== "SessionCreated") throw new Error(JSON.stringify(made));
    expect(await c.switchImageContext({ client_id: "alice", from_image_id: "dev", to_image_id: "dev" })).toMatchObject({
      type: "ContextSwitched",
    });
    service.signal("SIGTERM");
    expect((await service.exited).code).toBe(0);
    service = await serve(nats.url, sim, "{ kind: kv }");
    await connected(c);
    expect(await sessionIds(c)).toEqual([...before, made.session.session_id].sort());

    // The file store is not in use by the KV service: migrating it again still copies nothing.
    const third = await runStuiJson<MigrationReport>(["store", "migrate", "--from", fileStore], { env });
    expect(third.sessions.copied + third.contexts.copied).toBe(0);
  }, 90_000);

  it("store kind kv - a migration names what is wrong: no such flag value, no NATS", async () => {
    const bad = await runStui(["store", "migrate", "--from", "/nonexistent", "--replicas", "9"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--replicas: 1 to 5/);
    const none = await runStui(["store", "migrate", "--from", "/tmp", "--server", "nats://127.0.0.1:1"]);
    expect(none.code).toBe(3);
    expect(none.stderr.trim().split("\n")).toHaveLength(1);
  });
});
