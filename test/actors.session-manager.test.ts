/**
 * The session manager against real `stui image-sim` processes and a real file store: every
 * request of the protocol, its typed errors, and what it does when an image goes away.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ImageSimClient, startImageSim } from "./helpers/image-sim.js";
import { cleanupManagers, startManager } from "./helpers/manager.js";
import { stopAllProcesses } from "./helpers/processes.js";
import type { ManagerHarness } from "./helpers/manager.js";
import type {
  ErrorResponse,
  RequestOf,
  RequestType,
  Response,
  RESPONSE_FOR,
  ResponseOf,
  SessionLifecycle,
} from "../src/protocol/index.js";
import { waitForStatus } from "../src/actors/image-connection.js";

afterEach(async () => {
  await cleanupManagers();
  await stopAllProcesses();
});

type Body<K extends RequestType> = Omit<RequestOf<K>, "type">;

type Success<K extends RequestType> = ResponseOf<(typeof RESPONSE_FOR)[K]>;

const send = async <K extends RequestType>(h: ManagerHarness, type: K, body: Body<K>): Promise<Response> =>
  await h.manager.handle({ type, ...body } as RequestOf<K>);

/** Sends a request and expects its success variant. */
async function ok<K extends RequestType>(h: ManagerHarness, type: K, body: Body<K>): Promise<Success<K>> {
  const response = await send(h, type, body);
  if (response.type === "Error") throw new Error(`${type} failed: ${response.code}: ${response.message}`);
  return response as Success<K>;
}

/** Sends a request and expects an `Error`. */
async function refused<K extends RequestType>(h: ManagerHarness, type: K, body: Body<K>): Promise<ErrorResponse> {
  const response = await send(h, type, body);
  if (response.type !== "Error") throw new Error(`${type} unexpectedly succeeded: ${JSON.stringify(response)}`);
  return response;
}

/** A session of `client` on `image`, without name or description. */
const createSession = (h: ManagerHarness, image_id: string, client_id: string) =>
  ok(h, "CreateSession", { image_id, client_id, session_name: null, description: null });

/** The session notices of one kind, in order. */
const lifecycle = (h: ManagerHarness, kind: "created" | "closed" | "orphaned" | "cleaned"): SessionLifecycle[] =>
  h.notices.flatMap((n) => (n.kind === kind ? [n.data] : []));

async function connected(h: ManagerHarness, imageId: string): Promise<void> {
  const ref = h.manager.actor.getSnapshot().context.images.get(imageId)?.ref;
  if (ref === undefined) throw new Error(`no image ${imageId}`);
  await waitForStatus(ref, "Connected", 15_000);
}

async function twoImages() {
  const dev = await startImageSim({ name: "Dev", imageVersion: "Pharo-13.0" });
  const staging = await startImageSim({ name: "Staging" });
  const h = await startManager({
    images: [
      { id: "dev", address: dev.endpoint, name: "Dev image" },
      { id: "staging", address: staging.endpoint, name: "Staging image" },
    ],
  });
  await connected(h, "dev");
  await connected(h, "staging");
  return { h, dev, staging };
}

describe("session manager - requests against real images", () => {
  it("creates sessions on the named image and lists, counts and closes them", async () => {
    const { h } = await twoImages();
    const created = await ok(h, "CreateSession", {
      image_id: "dev",
      client_id: "alice",
      session_name: "work",
      description: null,
    });
    expect(created.session).toMatchObject({ client_id: "alice", image_id: "dev", session_name: "work" });
    // system_info is asked on connect and answered first (REP answers in order).
    expect(created.session).toMatchObject({ image_version: "Pharo-13.0", image_name: "Dev" });
    await createSession(h, "staging", "bob");

    const all = await ok(h, "ListImageSessions", { image_id: null, include_disconnected: false });
    expect(all.sessions.map((s) => s.image_id).sort()).toEqual(["dev", "staging"]);
    const dev = await ok(h, "ListImageSessions", { image_id: "dev", include_disconnected: false });
    expect(dev.sessions).toHaveLength(1);
    expect(dev.sessions[0]).toMatchObject({ connection_status: "Connected", session_id: created.session.session_id });

    const stats = await ok(h, "GetImageSessionStats", { image_id: "dev" });
    expect(stats).toMatchObject({ total_sessions: 1, active_sessions: 1, orphaned_sessions: 0 });

    const closed = await ok(h, "CloseSession", { session_id: created.session.session_id, save_state: true });
    expect(closed).toMatchObject({ saved: true });
    expect(await ok(h, "GetImageSessionStats", { image_id: "dev" })).toMatchObject({
      total_sessions: 1,
      active_sessions: 0,
    });
    expect(h.notices.map((n) => n.kind)).toEqual(["created", "created", "closed"]);
  });

  it("deletes the record when a session is closed without saving, and the image forgets it", async () => {
    const { h, dev } = await twoImages();
    const { session } = await createSession(h, "dev", "alice");
    expect(await ok(h, "CloseSession", { session_id: session.session_id, save_state: false })).toMatchObject({
      saved: false,
    });
    expect(await ok(h, "GetImageSessionStats", { image_id: "dev" })).toMatchObject({ total_sessions: 0 });
    expect((await refused(h, "CloseSession", { session_id: session.session_id, save_state: true })).code).toBe(
      "SessionNotFound",
    );
    using client = new ImageSimClient(dev.endpoint);
    const reply = await client.request({
      id: "q",
      command: "get_session_info",
      parameters: { session_id: session.session_id },
    });
    expect(JSON.parse(reply.toString())).toMatchObject({ status: "error", error_type: "SessionNotFound" });
  });

  it("switches a client's context, refusing a stale from_image_id, an unknown and a Failed image", async () => {
    const { h } = await twoImages();
    const first = await ok(h, "SwitchImageContext", {
      client_id: "alice",
      from_image_id: null,
      to_image_id: "dev",
      preserve_context: true,
    });
    expect(first).toMatchObject({ from_image_id: null, to_image_id: "dev" });
    const conflict = await refused(h, "SwitchImageContext", {
      client_id: "alice",
      from_image_id: "staging",
      to_image_id: "dev",
      preserve_context: true,
    });
    expect(conflict).toMatchObject({ code: "Conflict", details: { current_image_id: "dev" } });
    expect(conflict.message).toContain("context dev, not staging");
    const unknown = await refused(h, "SwitchImageContext", {
      client_id: "alice",
      from_image_id: "dev",
      to_image_id: "nowhere",
      preserve_context: true,
    });
    expect(unknown.code).toBe("ImageNotFound");
    await ok(h, "SwitchImageContext", {
      client_id: "alice",
      from_image_id: "dev",
      to_image_id: "staging",
      preserve_context: true,
    });
    expect(h.notices.filter((n) => n.kind === "context").map((n) => n.data)).toMatchObject([
      { client_id: "alice", from_image_id: null, to_image_id: "dev" },
      { client_id: "alice", from_image_id: "dev", to_image_id: "staging" },
    ]);
  });

  it("without preserve_context closes the client's sessions on the image it leaves, and only those", async () => {
    const { h } = await twoImages();
    await ok(h, "SwitchImageContext", {
      client_id: "alice",
      from_image_id: null,
      to_image_id: "dev",
      preserve_context: true,
    });
    const mine = await createSession(h, "dev", "alice");
    const theirs = await createSession(h, "dev", "bob");
    await ok(h, "SwitchImageContext", {
      client_id: "alice",
      from_image_id: "dev",
      to_image_id: "staging",
      preserve_context: false,
    });
    const sessions = await ok(h, "ListImageSessions", { image_id: "dev", include_disconnected: true });
    const active = Object.fromEntries(sessions.sessions.map((s) => [s.session_id, s.is_active]));
    expect(active).toEqual({ [mine.session.session_id]: false, [theirs.session.session_id]: true });
    expect(lifecycle(h, "closed")[0]).toMatchObject({ reason: "context switched away" });
  });

  it("evaluates on the client's current image, or the one named, and says when it has neither", async () => {
    const { h } = await twoImages();
    const none = await refused(h, "Evaluate", { client_id: "alice", image_id: null, code: "3 + 4" });
    expect(none).toMatchObject({ code: "InvalidRequest" });
    expect(none.message).toContain("no current image context");
    await ok(h, "SwitchImageContext", {
      client_id: "alice",
      from_image_id: null,
      to_image_id: "staging",
      preserve_context: true,
    });
    expect(await ok(h, "Evaluate", { client_id: "alice", image_id: null, code: "3 + 4 * 2" })).toMatchObject({
      image_id: "staging",
      result: "14",
    });
    expect(await ok(h, "Evaluate", { client_id: "alice", image_id: "dev", code: "6 * 7" })).toMatchObject({
      image_id: "dev",
      result: "42",
    });
    expect((await refused(h, "Evaluate", { client_id: "alice", image_id: "nowhere", code: "1" })).code).toBe(
      "ImageNotFound",
    );
  });

  it("reports image status, the image list and the health summary with session counts", async () => {
    const { h } = await twoImages();
    await createSession(h, "dev", "alice");
    const status = await ok(h, "GetImageConnectionStatus", { image_id: "dev" });
    expect(status).toMatchObject({ image_id: "dev", name: "Dev image", status: "Connected", session_count: 1 });
    expect(status.last_activity).not.toBeNull();
    expect((await ok(h, "ListImages", {})).images.map((i) => i.image_id)).toEqual(["dev", "staging"]);
    await expect
      .poll(async () => (await ok(h, "GetConnectionHealthSummary", {})).by_health.Healthy, { timeout: 10_000 })
      .toBe(2);
    const summary = await ok(h, "GetConnectionHealthSummary", {});
    expect(summary).toMatchObject({ total_images: 2, by_status: { Connected: 2 }, nats: null });
    expect((await refused(h, "GetImageConnectionStatus", { image_id: "nowhere" })).code).toBe("ImageNotFound");
    expect((await refused(h, "GetImageSessionStats", { image_id: "nowhere" })).code).toBe("ImageNotFound");
    expect((await refused(h, "ListImageSessions", { image_id: "nowhere", include_disconnected: true })).code).toBe(
      "ImageNotFound",
    );
  });

  it("connects and disconnects images at run time; a removed image's sessions are orphaned, then cleaned", async () => {
    const { h } = await twoImages();
    const extra = await startImageSim({ name: "Build" });
    const added = await ok(h, "ConnectImage", { image_id: "build", address: extra.endpoint, name: "Build box" });
    expect(added).toMatchObject({ image_id: "build", status: "Connected", name: "Build box" });
    const again = await ok(h, "ConnectImage", { image_id: "build", address: extra.endpoint, name: null });
    expect(again.status).toBe("Connected");
    const moved = await refused(h, "ConnectImage", { image_id: "build", address: "tcp://127.0.0.1:1", name: null });
    expect(moved.code).toBe("Conflict");

    const { session } = await createSession(h, "build", "alice");
    expect(await ok(h, "DisconnectImage", { image_id: "build" })).toEqual({
      type: "ImageDisconnected",
      image_id: "build",
    });
    expect(h.statuses.at(-1)).toMatchObject({ image_id: "build", status: "Disconnected", reason: "image removed" });
    expect((await ok(h, "ListImages", {})).images.map((i) => i.image_id)).toEqual(["dev", "staging"]);
    expect(await ok(h, "GetImageSessionStats", { image_id: "build" })).toMatchObject({
      total_sessions: 1,
      orphaned_sessions: 1,
    });
    expect(lifecycle(h, "orphaned")[0]).toMatchObject({ session_id: session.session_id });
    const listed = await ok(h, "ListImageSessions", { image_id: "build", include_disconnected: true });
    expect(listed.sessions[0]).toMatchObject({ connection_status: "Disconnected" });
    expect((await ok(h, "ListImageSessions", { image_id: "build", include_disconnected: false })).sessions).toEqual([]);

    const cleaned = await ok(h, "CleanupImageSessions", {
      image_id: "build",
      force: false,
      preserve_active: true,
      max_age_hours: null,
      session_ids: null,
    });
    expect(cleaned).toEqual({
      type: "CleanupResult",
      image_id: "build",
      removed_session_ids: [session.session_id],
      remaining_sessions: 0,
    });
    expect((await refused(h, "DisconnectImage", { image_id: "build" })).code).toBe("ImageNotFound");
  });

  it("cleans up only orphans unless forced, never active sessions with preserve_active, and by idle age", async () => {
    const { h } = await twoImages();
    const create = (client: string) => createSession(h, "dev", client);
    const open = await create("alice");
    const closed = await create("bob");
    await ok(h, "CloseSession", { session_id: closed.session.session_id, save_state: true });
    const cleanup = (force: boolean, preserve_active: boolean, max_age_hours: number | null) =>
      ok(h, "CleanupImageSessions", { image_id: "dev", force, preserve_active, max_age_hours, session_ids: null });

    expect((await cleanup(false, true, null)).removed_session_ids).toEqual([]);
    expect((await cleanup(true, true, 1)).removed_session_ids).toEqual([]);
    expect((await cleanup(true, true, null)).removed_session_ids).toEqual([closed.session.session_id]);
    const last = await cleanup(true, false, null);
    expect(last).toMatchObject({ removed_session_ids: [open.session.session_id], remaining_sessions: 0 });
    expect(h.notices.filter((n) => n.kind === "cleaned")).toHaveLength(2);
  });

  it("cleans up only the sessions session_ids names, of those the rules select (a preview's list)", async () => {
    const { h } = await twoImages();
    const sessions = await Promise.all(["alice", "bob", "carol"].map((c) => createSession(h, "dev", c)));
    const [a, b, c] = sessions.map((s) => s.session.session_id);
    for (const id of [a, b]) await ok(h, "CloseSession", { session_id: id ?? "", save_state: true });
    const cleanup = (session_ids: string[]) =>
      ok(h, "CleanupImageSessions", {
        image_id: "dev",
        force: true,
        preserve_active: true,
        max_age_hours: null,
        session_ids,
      });
    const named = await cleanup([a ?? "", c ?? ""]);
    // c is named but active (preserve_active); b is selected by the rules but not named.
    expect(named).toMatchObject({ removed_session_ids: [a], remaining_sessions: 2 });
    expect((await cleanup([])).removed_session_ids).toEqual([]);
  });
});

describe("session manager - when images go away", () => {
  it("orphans the sessions an image lost across its restart, announcing each once", async () => {
    const { h, dev } = await twoImages();
    const { session } = await createSession(h, "dev", "alice");
    dev.kill("SIGKILL");
    await expect.poll(() => h.statuses.filter((s) => s.image_id === "dev").at(-1)?.status).toBe("Reconnecting");
    await using _restarted = await startImageSim({ bind: dev.endpoint, name: "Dev" });
    await expect
      .poll(() => lifecycle(h, "orphaned").map((n) => n.session_id), { timeout: 15_000 })
      .toEqual([session.session_id]);
    expect(lifecycle(h, "orphaned")[0]?.reason).toContain("no longer knows the session");
    expect(h.statuses.filter((s) => s.image_id === "dev").map((s) => s.status)).toEqual([
      "Connected",
      "Reconnecting",
      "Connected",
    ]);
    expect(await ok(h, "GetImageSessionStats", { image_id: "dev" })).toMatchObject({
      total_sessions: 1,
      active_sessions: 0,
      orphaned_sessions: 1,
    });
  });

  it("keeps the sessions of an image that comes back still knowing them, and adopts orphans it knows", async () => {
    const { h, dev } = await twoImages();
    const { session } = await createSession(h, "dev", "alice");
    await ok(h, "DisconnectImage", { image_id: "dev" });
    expect(await ok(h, "GetImageSessionStats", { image_id: "dev" })).toMatchObject({ orphaned_sessions: 1 });
    await ok(h, "ConnectImage", { image_id: "dev", address: dev.endpoint, name: null });
    await expect
      .poll(async () => (await ok(h, "GetImageSessionStats", { image_id: "dev" })).orphaned_sessions, {
        timeout: 10_000,
      })
      .toBe(0);
    const listed = await ok(h, "ListImageSessions", { image_id: "dev", include_disconnected: false });
    expect(listed.sessions.map((s) => s.session_id)).toEqual([session.session_id]);

    dev.kill("SIGSTOP");
    try {
      await expect.poll(() => h.statuses.at(-1)?.status, { timeout: 10_000 }).toBe("Reconnecting");
    } finally {
      dev.kill("SIGCONT");
    }
    await connected(h, "dev");
    await h.manager.idle();
    expect(await ok(h, "GetImageSessionStats", { image_id: "dev" })).toMatchObject({
      active_sessions: 1,
      orphaned_sessions: 0,
    });
  });

  it("orphans the sessions of an image Failed past the grace period, and refuses switching to it", async () => {
    const dev = await startImageSim();
    const h = await startManager({
      images: [{ id: "dev", address: dev.endpoint }],
      policy: { failedGraceMs: 300, connection: { maxRestarts: 2, backoffBaseMs: 20, backoffCapMs: 50 } },
    });
    await connected(h, "dev");
    await createSession(h, "dev", "alice");
    await dev.stop();
    await expect.poll(() => h.statuses.at(-1)?.status, { timeout: 15_000 }).toBe("Failed");
    await expect.poll(() => h.notices.filter((n) => n.kind === "orphaned").length, { timeout: 5_000 }).toBe(1);
    expect(lifecycle(h, "orphaned")[0]?.reason).toBe("image failed for longer than 300 ms");
    const refusedSwitch = await refused(h, "SwitchImageContext", {
      client_id: "alice",
      from_image_id: null,
      to_image_id: "dev",
      preserve_context: true,
    });
    expect(refusedSwitch.code).toBe("ImageUnavailable");
    expect(refusedSwitch.message).toMatch(/^image dev is Failed: 2 reconnection attempts within/);
    expect(
      (
        await refused(h, "CreateSession", {
          image_id: "dev",
          client_id: "alice",
          session_name: null,
          description: null,
        })
      ).code,
    ).toBe("ImageUnavailable");
  });

  it("removes orphans automatically once they are older than the configured age", async () => {
    const dev = await startImageSim();
    const h = await startManager({
      images: [{ id: "dev", address: dev.endpoint }],
      policy: { orphanMaxAgeMs: 200, sweepIntervalMs: 100 },
    });
    await connected(h, "dev");
    const { session } = await createSession(h, "dev", "alice");
    await ok(h, "DisconnectImage", { image_id: "dev" });
    await expect
      .poll(() => h.notices.map((n) => n.kind), { timeout: 5_000 })
      .toEqual(["created", "orphaned", "cleaned"]);
    expect(lifecycle(h, "cleaned")[0]).toMatchObject({
      session_id: session.session_id,
      reason: "orphaned for longer than 200 ms",
    });
    expect((await refused(h, "GetImageSessionStats", { image_id: "dev" })).code).toBe("ImageNotFound");
  });
});
