/**
 * Store answers tell the truth when the disk fails. `stui serve` runs as a child process over a
 * real nats-server and image-sim; its fsync calls are made to fail for real (strace injecting EIO,
 * on every file or only on the store's log) or its store sits on a small tmpfs that fills
 * up (ENOSPC). Each time the answer, the registry (what the API lists) and the disk agree; the
 * store reports itself degraded (health summary, /readyz) and refuses writes with a clear error;
 * once the disk works, retrying the same request succeeds; nothing acknowledged is lost, across a
 * restart too; and no answer carries a path or a system error's text.
 */
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readJournal, replay } from "../src/adapters/file-store/journal.js";
import { StuiClient } from "../src/client.js";
import type { Response, SessionStateData } from "../src/protocol/index.js";
import { cleanupFaults, injectFsyncError, isRoot, mountTmpfs } from "./helpers/faults.js";
import { startImageSim, type ImageSimHandle } from "./helpers/image-sim.js";
import { cleanupManagers, makeStoreDir } from "./helpers/manager.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { spawnStui, stopAllProcesses, type ProcessHandle } from "./helpers/processes.js";

let nats: NatsServerHandle;
let sim: ImageSimHandle;
let client: StuiClient | null = null;
beforeEach(async () => {
  nats = await startNatsServer();
  sim = await startImageSim({ name: "dev" });
});
afterEach(async () => {
  await client?.close();
  client = null;
  await cleanupFaults();
  await stopAllProcesses();
  await nats.stop();
  await cleanupManagers();
});

interface Serving {
  readonly child: ProcessHandle;
  readonly metrics: string;
  readonly store: string;
}

/** `stui serve` over `store` with the one image; resolves once it listens and `dev` is Connected. */
async function serve(store: string): Promise<Serving> {
  const dir = await makeStoreDir();
  const config = path.join(dir, "stui.yaml");
  await writeFile(
    config,
    [
      "instance_id: faults",
      `nats: { url: "${nats.url}" }`,
      `store: { path: "${store}" }`,
      `images: [{ id: dev, address: "${sim.endpoint}" }]`,
      "metrics_port: 0",
      "",
    ].join("\n"),
  );
  const child = spawnStui(["serve", "--config", config], { env: { ...process.env, STUI_LOG_LEVEL: "info" } });
  const [line = ""] = await child.waitForLine(/^.*"stui serve: listening".*$/, { timeoutMs: 30_000 });
  const listening = JSON.parse(line) as { metrics: string };
  client ??= await StuiClient.connect({ servers: nats.url, timeoutMs: 10_000 });
  const c = client;
  await expect
    .poll(async () => {
      const r = await c.getImageConnectionStatus({ image_id: "dev" });
      return r.type === "ImageConnectionStatus" ? r.status : r.type;
    })
    .toBe("Connected");
  return { child, metrics: listening.metrics.replace(/\/metrics$/, ""), store };
}

const api = (): StuiClient => {
  if (client === null) throw new Error("no client");
  return client;
};

/** The sessions on disk (the snapshot, then the log), by id. */
async function onDisk(store: string): Promise<Map<string, SessionStateData>> {
  const read = async (name: string): Promise<ReturnType<typeof readJournal>> =>
    readJournal(await readFile(path.join(store, name)));
  const [snapshot, log] = [await read("snapshot.jsonl"), await read("log.jsonl")];
  if (typeof snapshot === "string") throw new Error(`unreadable snapshot: ${snapshot}`);
  if (typeof log === "string") throw new Error(`unreadable log: ${log}`);
  const replayed = replay(snapshot, log.generation === snapshot.generation ? log : null);
  if (replayed.corrupt.length > 0) throw new Error(`corrupt lines: ${JSON.stringify(replayed.corrupt)}`);
  return new Map(Array.from(replayed.sessions, ([id, located]) => [id, located.value.session]));
}

/** The sessions the service lists, by id, with whether each is active. */
async function listed(): Promise<Map<string, boolean>> {
  const r = await api().listImageSessions({ image_id: "dev", include_disconnected: true });
  if (r.type !== "ImageSessions") throw new Error(JSON.stringify(r));
  return new Map(r.sessions.map((s) => [s.session_id, s.is_active]));
}

async function create(clientId: string): Promise<Response> {
  return api().createSession({ image_id: "dev", client_id: clientId });
}

async function storeWritable(): Promise<boolean> {
  const r = await api().getConnectionHealthSummary();
  if (r.type !== "ConnectionHealthSummary") throw new Error(JSON.stringify(r));
  return r.store.writable;
}

/** An answer that names no path, no errno and no stack, with its error id. */
function expectStoreUnavailable(answer: Response, store: string): void {
  expect(answer.type).toBe("Error");
  if (answer.type !== "Error") return;
  expect(answer.code).toBe("StoreUnavailable");
  expect(answer.message).toMatch(/nothing was changed; retry later \(error id [0-9a-f-]{36}\)/);
  expect(answer.message).not.toContain(store);
  expect(answer.message).not.toMatch(/EIO|ENOSPC|errno|\/tmp|\n\s+at /);
  expect(answer.details).toHaveProperty("error_id");
}

const readyz = async (metrics: string): Promise<number> => (await fetch(`${metrics}/readyz`)).status;

describe.skipIf(!isRoot())("store faults - answers, registry and disk agree", () => {
  it("store faults - fsync EIO: CreateSession is refused and not stored; retried once the disk works, it is", async () => {
    const s = await serve(path.join(await makeStoreDir(), "data"));
    const kept = await create("before");
    expect(kept.type).toBe("SessionCreated");
    expect(await readyz(s.metrics)).toBe(200);

    const fault = await injectFsyncError(s.child.pid); // every fsync: the log's, a temp file's, the directory's
    const refused = await create("alice");
    expectStoreUnavailable(refused, s.store);
    expect([...(await listed()).keys()]).toHaveLength(1);
    expect((await onDisk(s.store)).size).toBe(1);
    expect(await storeWritable()).toBe(false);
    expect(await readyz(s.metrics)).toBe(503);
    // While degraded, writes are refused at once, with the same clear error.
    expectStoreUnavailable(await create("alice"), s.store);
    // Reads still work.
    expect((await api().listImages()).type).toBe("Images");

    await fault.stop();
    const t0 = performance.now();
    const retried = await create("alice");
    expect(retried).toMatchObject({ type: "SessionCreated" });
    console.log(
      `fsync EIO: the retry once the disk worked succeeded in ${(performance.now() - t0).toFixed(0)} ms (its probe included)`,
    );
    expect(await storeWritable()).toBe(true);
    expect(await readyz(s.metrics)).toBe(200);
    const disk = await onDisk(s.store);
    expect([...disk.keys()].sort()).toEqual([...(await listed()).keys()].sort());
    expect(disk.size).toBe(2);
    // The log has the detail, under the answer's error id.
    const id = refused.type === "Error" ? String((refused.details as Record<string, unknown>)["error_id"]) : "";
    expect(s.child.stdout()).toMatch(new RegExp(`"error_id":"${id}"`));
  });

  it("store faults - log fsync EIO: CloseSession is rolled back, not applied; the retry closes it, also across a restart", async () => {
    const store = path.join(await makeStoreDir(), "data");
    let s = await serve(store);
    const created = await create("bob");
    if (created.type !== "SessionCreated") throw new Error(JSON.stringify(created));
    const id = created.session.session_id;

    // Only the log's fsync fails: the line has been written when the write fails.
    const fault = await injectFsyncError(s.child.pid, { paths: [path.join(store, "log.jsonl")] });
    expectStoreUnavailable(await api().closeSession({ session_id: id, save_state: true }), store);
    expect((await listed()).get(id)).toBe(true); // still active, as on disk
    expect((await onDisk(store)).get(id)?.is_active).toBe(true);
    expectStoreUnavailable(await api().switchImageContext({ client_id: "bob", to_image_id: "dev" }), store);
    await fault.stop();

    const closed = await api().closeSession({ session_id: id, save_state: true });
    expect(closed).toMatchObject({ type: "SessionClosed", session_id: id, saved: true });
    expect((await listed()).get(id)).toBe(false);
    expect((await onDisk(store)).get(id)?.is_active).toBe(false);

    s.child.signal("SIGTERM");
    expect((await s.child.exited).code).toBe(0);
    s = await serve(store);
    expect((await listed()).get(id)).toBe(false);
  });

  it("store faults - work the store could not write waits for it: a disconnect is refused up front, orphans of a restarted image follow once the disk works", async () => {
    const store = path.join(await makeStoreDir(), "data");
    const s = await serve(store);
    const created = await create("carol");
    if (created.type !== "SessionCreated") throw new Error(JSON.stringify(created));
    const id = created.session.session_id;

    const fault = await injectFsyncError(s.child.pid);
    expectStoreUnavailable(await create("dave"), store); // degrades the store
    // Refused before the image is removed, which could not be rolled back.
    expectStoreUnavailable(await api().disconnectImage({ image_id: "dev" }), store);
    expect(await api().getImageConnectionStatus({ image_id: "dev" })).toMatchObject({ status: "Connected" });

    // The image restarts and has lost the session: orphaning it must wait for the store.
    sim.kill("SIGKILL");
    await sim.stop();
    sim = await startImageSim({ name: "dev", bind: sim.endpoint });
    await s.child.waitForLine(/"session work \(restore\) postponed/, { timeoutMs: 15_000 });
    expect((await onDisk(store)).get(id)?.orphaned_at).toBeNull();
    const r = await api().listImageSessions({ image_id: "dev", include_disconnected: true });
    expect(r.type === "ImageSessions" && r.sessions.find((x) => x.session_id === id)?.orphaned_at).toBeNull();

    await fault.stop();
    await expect
      .poll(async () => (await onDisk(store)).get(id)?.orphaned_at ?? null, { timeout: 10_000 })
      .not.toBeNull();
    const after = await api().listImageSessions({ image_id: "dev", include_disconnected: true });
    expect(
      after.type === "ImageSessions" && after.sessions.find((x) => x.session_id === id)?.orphaned_at,
    ).not.toBeNull();
    expect(await api().disconnectImage({ image_id: "dev" })).toMatchObject({ type: "ImageDisconnected" });
  });

  it("store faults - a full disk (ENOSPC on a tmpfs): refused, nothing half-written, acknowledged sessions kept; freed, the retry succeeds", async () => {
    const mount = await mountTmpfs(512);
    const store = path.join(mount, "data");
    let s = await serve(store);
    const acknowledged: string[] = [];
    for (const c of ["a", "b", "c"]) {
      const r = await create(c);
      if (r.type === "SessionCreated") acknowledged.push(r.session.session_id);
    }
    expect(acknowledged).toHaveLength(3);

    const filler = path.join(mount, "filler");
    await writeFile(filler, Buffer.alloc(1024 * 1024)).catch(() => undefined); // fills what is left
    // Appends still fit in the log's last allocated page for a while: write until one is refused.
    let refused: Response | null = null;
    for (let n = 0; refused === null && n < 200; n += 1) {
      const r = await create(`d${n}`);
      if (r.type === "SessionCreated") acknowledged.push(r.session.session_id);
      else refused = r;
    }
    if (refused === null) throw new Error("the full disk never refused a write");
    expectStoreUnavailable(refused, store);
    expectStoreUnavailable(await api().closeSession({ session_id: acknowledged[0] ?? "", save_state: true }), store);
    expect([...(await listed()).keys()].sort()).toEqual([...acknowledged].sort());
    expect([...(await onDisk(store)).keys()].sort()).toEqual([...acknowledged].sort());
    const leftovers = (await readdir(store)).filter((n) => n.startsWith(".") && n !== ".lock");
    expect(leftovers).toEqual([]);

    await rm(filler);
    const t0 = performance.now();
    expect((await create("d")).type).toBe("SessionCreated");
    console.log(
      `full disk: ${acknowledged.length - 3} more sessions taken after the disk filled, then refused; the retry once freed took ${(performance.now() - t0).toFixed(0)} ms`,
    );
    expect(await api().closeSession({ session_id: acknowledged[0] ?? "", save_state: true })).toMatchObject({
      type: "SessionClosed",
    });

    s.child.signal("SIGTERM");
    expect((await s.child.exited).code).toBe(0);
    s = await serve(store);
    const after = await listed();
    expect(after.size).toBe(acknowledged.length + 1);
    for (const id of acknowledged) expect(after.has(id)).toBe(true);
    expect(after.get(acknowledged[0] ?? "")).toBe(false);
  });
});
