/**
 * The client commands end to end: a service in-process over a real nats-server and real
 * `stui image-sim` processes, driven only by `node bin/stui.js` child processes. Sessions are
 * created, evaluated in, listed, counted, closed; images connected, disconnected and retried; a
 * restarted sim orphans the sessions and every listing agrees on the counts; `cleanup --dry-run`
 * lists exactly what the real cleanup then removes.
 */
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import type { ResponseOf, SessionMetadata } from "../src/protocol/index.js";
import { oneLine, runStui, runStuiJson, type CliOptions } from "./helpers/cli.js";
import { startImageSim, type ImageSimHandle } from "./helpers/image-sim.js";
import { natsServerPerTest } from "./helpers/per-test.js";
import { startService, type ServiceHarness } from "./helpers/service.js";

const nats = natsServerPerTest();
const on = (): CliOptions => ({ env: { NATS_URL: nats().url } });

async function serviceWith(
  images: ReadonlyArray<{ id: string; address: string }>,
  maxRestarts?: number,
): Promise<ServiceHarness> {
  const h = await startService({
    nats: { servers: nats().url },
    images: images.map((i) => ({ ...i, name: null })),
    ...(maxRestarts === undefined ? {} : { policy: { connection: { maxRestarts } } }),
  });
  for (const { id } of images) await statusIs(h, id, "Connected");
  return h;
}

async function statusIs(h: ServiceHarness, imageId: string, status: string): Promise<void> {
  await expect
    .poll(
      async () => {
        const r = await h.client.getImageConnectionStatus({ image_id: imageId });
        return r.type === "ImageConnectionStatus" ? r.status : r.code;
      },
      { timeout: 20_000, interval: 100 },
    )
    .toBe(status);
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });

async function createSession(client: string, image = "dev"): Promise<string> {
  const r = await runStuiJson<ResponseOf<"SessionCreated">>(
    ["session", "create", "--image", image, "--client", client],
    on(),
  );
  return r.session.session_id;
}

/** How many `context.switched` events the stream holds (those published within a second or so). */
async function contextEvents(h: ServiceHarness): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 500));
  const feed = await h.client.replay({ subject: "stui.events.context.switched" });
  let count = 0;
  const timer = setTimeout(() => void feed.close(), 1000);
  for await (const _ of feed) count += 1;
  clearTimeout(timer);
  return count;
}

const sessionsJson = async (image: string): Promise<SessionMetadata[]> =>
  (await runStuiJson<ResponseOf<"ImageSessions">>(["sessions", "--image", image], on())).sessions;

describe("client commands - sessions, eval and context", () => {
  it("creates a session, evaluates in the client's context or on a named image, tells the context, and closes", async () => {
    const sim = await startImageSim({ name: "dev" });
    const h = await serviceWith([{ id: "dev", address: sim.endpoint }]);

    const created = await runStui(["session", "create", "--image", "dev", "--client", "alice", "--name", "work"], on());
    expect(created.code).toBe(0);
    const [id = ""] = created.stdout.split(/\s+/);
    expect(created.stdout).toMatch(/created on dev for alice \(work\)/);

    expect((await runStui(["context", "--client", "alice"], on())).stdout.trim()).toBe("alice: (none)");
    const noContext = await runStui(["eval", "--client", "alice", "3 + 4"], on());
    expect(noContext.code).toBe(1);
    expect(oneLine(noContext.stderr)).toMatch(/InvalidRequest: client alice has no current image context/);

    expect((await runStui(["switch", "--client", "alice", "--to", "dev"], on())).code).toBe(0);
    expect((await runStui(["context", "--client", "alice"], on())).stdout.trim()).toBe("alice: dev");
    expect(await runStuiJson(["context", "--client", "alice"], on())).toEqual({
      type: "ClientContext",
      client_id: "alice",
      image_id: "dev",
    });
    expect(await runStuiJson(["context", "--client", "bob"], on())).toEqual({
      type: "ClientContext",
      client_id: "bob",
      image_id: null,
    });
    // Asking changed nothing: no switch beyond the one above was announced.
    expect(await contextEvents(h)).toBe(1);

    expect((await runStui(["eval", "--client", "alice", "3", "+", "4", "*", "2"], on())).stdout).toBe("14\n");
    expect(
      (await runStui(["eval", "--client", "bob", "--image", "dev", "-"], { ...on(), input: "6 * 7\n" })).stdout,
    ).toBe("42\n");
    const json = await runStuiJson<ResponseOf<"EvaluationResult">>(["eval", "--client", "alice", "'hi'"], on());
    expect(json).toMatchObject({ type: "EvaluationResult", image_id: "dev", result: "'hi'", has_error: false });
    const failed = await runStui(["eval", "--client", "alice", "1 // 0"], on());
    expect(failed.code).toBe(1);
    expect(oneLine(failed.stderr)).toMatch(/^stui: EvaluationError: /);
    const empty = await runStui(["eval", "--client", "alice"], on());
    expect(empty.code).toBe(2);
    expect(oneLine(empty.stderr)).toMatch(/no code to evaluate/);

    const stats = await runStui(["stats", "--image", "dev"], on());
    expect(stats.stdout).toMatch(/^dev: 1 session\(s\): 1 active, 0 orphaned; last activity /);

    const closed = await runStui(["session", "close", "--session", id], on());
    expect(closed.stdout.trim()).toBe(`${id}  closed (record kept)`);
    expect((await sessionsJson("dev")).map((s) => [s.session_id, s.is_active])).toEqual([[id, false]]);
    const deleted = await runStuiJson<ResponseOf<"SessionClosed">>(
      ["session", "close", "--session", id, "--delete"],
      on(),
    );
    expect(deleted).toMatchObject({ session_id: id, saved: false });
    expect(await sessionsJson("dev")).toEqual([]);
    const missing = await runStui(["session", "close", "--session", id], on());
    expect(missing.code).toBe(1);
    expect(oneLine(missing.stderr)).toMatch(/SessionNotFound/);
    const usage = await runStui(["session", "create", "--image", "dev"], on());
    expect(usage.code).toBe(2);
    expect(oneLine(usage.stderr)).toBe("stui: --client is required (stui session create --help)");
  });
});

describe("client commands - images and health", () => {
  it("connects, disconnects and retries images, and reports the health summary", async () => {
    const dev = await startImageSim({ name: "dev" });
    const extra = await startImageSim({ name: "extra" });
    // Few restarts allowed, so that an image nothing listens for goes Failed quickly.
    const h = await serviceWith([{ id: "dev", address: dev.endpoint }], 3);

    const connected = await runStui(["image", "connect", "--image", "extra", "--address", extra.endpoint], on());
    expect(connected.code).toBe(0);
    expect(connected.stdout).toMatch(/^extra: Connected \(\w+\) at tcp:\/\/127\.0\.0\.1:\d+; sessions 0 active/);
    const conflict = await runStui(["image", "connect", "--image", "extra", "--address", "tcp://127.0.0.1:1"], on());
    expect(conflict.code).toBe(1);
    expect(oneLine(conflict.stderr)).toMatch(/^stui: Conflict: /);

    const health = await runStuiJson<ResponseOf<"ConnectionHealthSummary">>(["health"], on());
    expect(health).toMatchObject({ total_images: 2, by_status: { Connected: 2 }, nats: { status: "Connected" } });
    const text = (await runStui(["health"], on())).stdout;
    expect(text).toMatch(/^images: 2 \(2 Connected\)\n/);
    expect(text).toMatch(/\nnats: Connected to .*, 0 event\(s\) buffered, 0 dropped\n/);
    expect(text).toMatch(/\nextra +Connected/);

    expect((await runStui(["image", "disconnect", "--image", "extra"], on())).stdout.trim()).toBe(
      "extra: disconnected",
    );
    const images = await runStuiJson<ResponseOf<"Images">>(["images"], on());
    expect(images.images.map((i) => i.image_id)).toEqual(["dev"]);
    const gone = await runStui(["image", "retry", "--image", "extra"], on());
    expect(gone.code).toBe(1);
    expect(oneLine(gone.stderr)).toMatch(/ImageNotFound/);

    // An image whose address nothing listens on goes Failed; once a sim is there, retry brings it back.
    const port = await freePort();
    const address = `tcp://127.0.0.1:${port}`;
    await h.service.manager.handle({ type: "ConnectImage", image_id: "late", address, name: null });
    await statusIs(h, "late", "Failed");
    let late: ImageSimHandle | null = null;
    try {
      late = await startImageSim({ bind: address, name: "late" });
      const retried = await runStuiJson<ResponseOf<"ImageConnectionStatus">>(
        ["image", "retry", "--image", "late"],
        on(),
      );
      expect(retried).toMatchObject({ image_id: "late", address });
      await statusIs(h, "late", "Connected");
      // --all: every image, a line each.
      const all = await runStui(["image", "retry", "--all"], on());
      expect(all.code).toBe(0);
      expect(
        all.stdout
          .trim()
          .split("\n")
          .map((l) => l.split(":")[0]),
      ).toEqual(["dev", "late"]);
      const neither = await runStui(["image", "retry"], on());
      expect(neither.code).toBe(2);
      expect(neither.stderr).toContain("give --image ID or --all");
    } finally {
      await late?.stop();
    }
    const badGroup = await runStui(["image", "reboot"], on());
    expect(badGroup.code).toBe(2);
  });
});

describe("client commands - counts that agree", () => {
  it("after the image loses its sessions, images, sessions and stats all show 0 active, 2 orphaned, 2 total", async () => {
    const sim = await startImageSim({ name: "dev" });
    const h = await serviceWith([{ id: "dev", address: sim.endpoint }]);
    const ids = [await createSession("alice"), await createSession("bob")];
    const before = await runStuiJson<ResponseOf<"Images">>(["images"], on());
    expect(before.images[0]).toMatchObject({ active_sessions: 2, orphaned_sessions: 0, session_count: 2 });

    // SIGKILL and a new sim on the same endpoint: the image comes back without the sessions.
    sim.kill("SIGKILL");
    await sim.process.exited;
    await statusIs(h, "dev", "Reconnecting");
    const again = await startImageSim({ bind: sim.endpoint, name: "dev" });
    await statusIs(h, "dev", "Connected");
    await expect
      .poll(async () => (await sessionsJson("dev")).filter((s) => s.orphaned_at !== null).length, { timeout: 15_000 })
      .toBe(2);

    const after = await runStuiJson<ResponseOf<"Images">>(["images"], on());
    expect(after.images[0]).toMatchObject({ active_sessions: 0, orphaned_sessions: 2, session_count: 2 });
    const table = (await runStui(["images"], on())).stdout.split("\n");
    expect(table[0]).toMatch(/STATUS +HEALTH +RTT ms +ACTIVE +ORPHANED +TOTAL +VERSION$/);
    expect(table[1]).toMatch(/ Connected +\w+ +[\d.-]+ +0 +2 +2 /);
    expect(await runStuiJson(["stats", "--image", "dev"], on())).toMatchObject({
      total_sessions: 2,
      active_sessions: 0,
      orphaned_sessions: 2,
    });

    // A new session on the restarted image: never listed active and orphaned at once.
    const fresh = await createSession("carol");
    const listed = await sessionsJson("dev");
    expect(listed.filter((s) => s.is_active && s.orphaned_at !== null)).toEqual([]);
    expect(Object.fromEntries(listed.map((s) => [s.session_id, s.is_active]))).toEqual({
      [ids[0] ?? ""]: false,
      [ids[1] ?? ""]: false,
      [fresh]: true,
    });
    const rows = (await runStui(["sessions", "--image", "dev"], on())).stdout.split("\n").slice(1);
    expect(rows.filter((r) => r !== "").map((r) => r.split(/\s+/)[4])).toEqual(["orphaned", "orphaned", "active"]);
    expect((await runStuiJson<ResponseOf<"Images">>(["images"], on())).images[0]).toMatchObject({
      active_sessions: 1,
      orphaned_sessions: 2,
      session_count: 3,
    });

    // --dry-run lists exactly what the real cleanup removes, and removes nothing itself.
    const dry = await runStuiJson<{ would_remove_session_ids: string[]; remaining_sessions: number }>(
      ["cleanup", "--image", "dev", "--dry-run"],
      on(),
    );
    expect([...dry.would_remove_session_ids].sort()).toEqual([...ids].sort());
    expect(dry.remaining_sessions).toBe(1);
    const dryText = await runStui(["cleanup", "--image", "dev", "--dry-run"], on());
    expect(dryText.stdout).toMatch(/^dev: would remove 2 session\(s\), 1 would remain \(dry run: nothing removed\)/);
    expect(await sessionsJson("dev")).toHaveLength(3);
    const forcedDry = await runStuiJson<{ would_remove_session_ids: string[] }>(
      ["cleanup", "--image", "dev", "--dry-run", "--force", "--include-active"],
      on(),
    );
    expect(forcedDry.would_remove_session_ids).toHaveLength(3);
    const real = await runStuiJson<ResponseOf<"CleanupResult">>(["cleanup", "--image", "dev"], on());
    expect(real.removed_session_ids).toEqual(dry.would_remove_session_ids);
    expect((await sessionsJson("dev")).map((s) => s.session_id)).toEqual([fresh]);
    const unknown = await runStui(["cleanup", "--image", "nope", "--dry-run"], on());
    expect(unknown.code).toBe(1);
    expect(oneLine(unknown.stderr)).toMatch(/ImageNotFound/);
    await again.stop();
  });
});
