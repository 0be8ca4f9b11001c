import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  decodeImageReply,
  decodeImageResult,
  type ImageCommand,
  type ImageErrorReply,
  type ImageResult,
} from "../src/protocol/index.js";
import { ImageSimClient, startImageSim, type ImageSimHandle } from "./helpers/image-sim.js";
import { stopAllProcesses } from "./helpers/processes.js";

const clients = new Set<ImageSimClient>();
function client(endpoint: string, options?: ConstructorParameters<typeof ImageSimClient>[1]): ImageSimClient {
  const c = new ImageSimClient(endpoint, options);
  clients.add(c);
  return c;
}
afterEach(() => {
  clients.forEach((c) => c.close());
  clients.clear();
});
// Not afterEach: the protocol tests share one sim.
afterAll(stopAllProcesses);

let nextId = 0;
const newId = (): string => `req-${++nextId}`;

/** Sends `command` and returns its typed result, failing the test on an error reply. */
async function call<C extends ImageCommand>(c: ImageSimClient, command: C, parameters: object = {}) {
  const id = newId();
  const decoded = decodeImageReply(await c.request({ id, command, parameters }));
  if (!decoded.ok) throw decoded.error;
  const reply = decoded.value;
  expect(reply.id).toBe(id);
  expect(reply.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  if (reply.status !== "success") throw new Error(`${command} failed: ${reply.error_type}: ${reply.error}`);
  const result = decodeImageResult(command, reply.result);
  if (!result.ok) throw result.error;
  return result.value satisfies ImageResult<C>;
}

async function callError(c: ImageSimClient, request: object | string | Buffer): Promise<ImageErrorReply> {
  const decoded = decodeImageReply(await c.request(request));
  if (!decoded.ok) throw decoded.error;
  if (decoded.value.status !== "error")
    throw new Error(`expected an error reply, got ${JSON.stringify(decoded.value)}`);
  return decoded.value;
}

describe("image-sim - the image protocol", () => {
  let sim: ImageSimHandle;
  // One sim for these, so each test pays for a request, not for a Node start.
  beforeAll(async () => {
    sim = await startImageSim({ name: "dev-image", imageVersion: "Pharo-11.0.0" });
  });
  afterAll(async () => {
    await sim.stop();
  });

  it("image-sim - answers ping with pong, ready and its uptime", async () => {
    const result = await call(client(sim.endpoint), "ping");
    expect(result).toEqual({ message: "pong", status: "ready", uptime: expect.any(Number) as number });
  });

  it("image-sim - reports the configured name and version in system_info", async () => {
    const result = await call(client(sim.endpoint), "system_info");
    expect(result).toMatchObject({ image_name: "dev-image", image_version: "Pharo-11.0.0", pid: sim.pid });
    expect(result.vm_version).toContain("image-sim");
  });

  it("image-sim - evaluates Smalltalk left to right and answers Smalltalk version", async () => {
    const c = client(sim.endpoint);
    expect(await call(c, "evaluate", { code: "3 + 4 * 2" })).toMatchObject({
      result: "14",
      result_type: "SmallInteger",
      has_error: false,
    });
    expect(await call(c, "evaluate", { code: "Smalltalk version" })).toMatchObject({ result: "'Pharo-11.0.0'" });
  });

  it("image-sim - answers code it cannot evaluate with an EvaluationError", async () => {
    const id = newId();
    const reply = await callError(client(sim.endpoint), { id, command: "evaluate", parameters: { code: "3 foo" } });
    expect(reply).toMatchObject({ id, error_type: "EvaluationError", error: "cannot evaluate: unknown message #foo" });
  });

  it("image-sim - creates, restores, lists, counts and closes sessions", async () => {
    const c = client(sim.endpoint);
    const clientId = `alice-${newId()}`;
    const created = await call(c, "create_session", { client_id: clientId });
    expect(created).toMatchObject({ client_id: clientId, timeout: 3600, is_active: true, last_activity: null });
    expect(created.session_id).toMatch(/^[0-9a-f-]{36}$/);
    const other = await call(c, "create_session", { client_id: `bob-${newId()}` });

    const { session_id } = created;
    expect(await call(c, "get_session_info", { session_id })).toEqual(created);
    const restored = await call(c, "restore_session", { session_id });
    expect(restored.last_activity).not.toBeNull();
    const listed = await call(c, "list_client_sessions", { client_id: clientId });
    expect(listed).toEqual({ client_id: clientId, sessions: [restored] });
    const stats = await call(c, "get_session_statistics");
    expect(stats.total_sessions).toBeGreaterThanOrEqual(2);
    expect(stats.active_sessions).toBeGreaterThanOrEqual(2);

    expect(await call(c, "close_session", { session_id })).toEqual({ session_id, closed: true });
    expect(await call(c, "list_client_sessions", { client_id: clientId })).toEqual({
      client_id: clientId,
      sessions: [],
    });
    expect((await call(c, "get_session_statistics")).total_sessions).toBe(stats.total_sessions - 1);
    await call(c, "close_session", { session_id: other.session_id });
  });

  it.each(["restore_session", "get_session_info", "close_session"])(
    "image-sim - answers %s of an unknown session with SessionNotFound",
    async (command) => {
      const id = newId();
      const reply = await callError(client(sim.endpoint), { id, command, parameters: { session_id: "s-9" } });
      expect(reply).toMatchObject({ id, error_type: "SessionNotFound", error: "Session s-9 not found" });
    },
  );

  it("image-sim - answers an undecodable request with InvalidRequest, keeping its id when readable", async () => {
    const c = client(sim.endpoint);
    expect(await callError(c, "not json")).toMatchObject({ id: null, error_type: "InvalidRequest" });
    const id = newId();
    const badCode = await callError(c, { id, command: "evaluate", parameters: { code: 42 } });
    expect(badCode).toMatchObject({ id, error_type: "InvalidRequest" });
    expect(badCode.error).toContain("code");
    const unknown = await callError(c, { id, command: "launch_missiles" });
    expect(unknown).toMatchObject({ id, error_type: "InvalidRequest" });
    expect(unknown.error).toContain("launch_missiles");
  });

  it("image-sim - answers a request of several frames with InvalidRequest and keeps serving", async () => {
    const c = client(sim.endpoint);
    await c.socket.send(["", "{}", "{}"]);
    const reply = decodeImageReply(await c.receive());
    expect(reply.ok && reply.value.status === "error" && reply.value.error_type).toBe("InvalidRequest");
    await call(c, "ping");
  });

  it("image-sim - answers pipelined requests in order", async () => {
    const c = client(sim.endpoint);
    const ids = [newId(), newId(), newId()];
    for (const id of ids) await c.send({ id, command: "evaluate", parameters: { code: "1 + 1" } });
    const replies = [];
    for (const _ of ids) replies.push(decodeImageReply(await c.receive()));
    expect(replies.map((r) => (r.ok ? r.value.id : r.error.message))).toEqual(ids);
  });
});

describe("image-sim - sessions live in memory only", () => {
  it("image-sim - a restarted sim on the same endpoint has forgotten its sessions", async () => {
    const first = await startImageSim();
    const c = client(first.endpoint);
    const { session_id } = await call(c, "create_session", { client_id: "alice" });
    expect((await first.stop()).code).toBe(0);

    await using _second = await startImageSim({ bind: first.endpoint });
    // The same DEALER reconnects by itself, as the service's would.
    const reply = await callError(c, { id: newId(), command: "get_session_info", parameters: { session_id } });
    expect(reply.error_type).toBe("SessionNotFound");
  });
});
