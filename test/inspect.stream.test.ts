/**
 * Inspection: the safe copy of what actors hold (maps, refs, cut values, redacted payloads); the
 * recorder (nothing recorded until attached, a bounded buffer that drops the oldest and counts,
 * stopped actors gone from the list); and the instance's inspection link on a real nats-server
 * with a real service and image-sim: nothing on `stui.inspect.>` while no inspector is attached;
 * attach answers every live actor with its definition and snapshot; records follow the attach's
 * sequence, with an image-sim's kill seen as the connection actor going Reconnecting; a malformed
 * attach is answered with what is wrong; detach and a lapsed lease stop the stream.
 */
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { createActor, createMachine, setup } from "xstate";
import { InspectionRecorder } from "../src/inspect/recorder.js";
import { toSafeJson, toSafeJsonText } from "../src/inspect/safe.js";
import { InspectAttached, InspectBatch, inspectSubjects, type InspectRecord } from "../src/protocol/inspect.js";
import { startImageSim } from "./helpers/image-sim.js";
import { cleanupManagers } from "./helpers/manager.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { stopAllProcesses } from "./helpers/processes.js";
import { startFleet, startService, stopServices } from "./helpers/service.js";

let nats: NatsServerHandle | null = null;
afterEach(async () => {
  await stopServices();
  await stopAllProcesses();
  await nats?.stop();
  nats = null;
  await cleanupManagers();
});

describe("inspection - the safe copy", () => {
  it("turns maps, sets, refs and dates into JSON, cuts what is long, redacts payloads, survives cycles", () => {
    const ref = { sessionId: "x:3", send: () => undefined, getSnapshot: () => ({}) };
    const cyclic: { self?: unknown } = {};
    cyclic.self = cyclic;
    const safe = toSafeJson(
      {
        pending: new Map([["r1", { code: "Smalltalk at: #Secret", origin: "client" }]]),
        tags: new Set(["a", "b"]),
        link: ref,
        at: new Date("2026-12-01T10:00:00.000Z"),
        long: "x".repeat(600),
        many: Array.from({ length: 70 }, (_, n) => n),
        workspace_context: { variables: { password: "hunter2" } },
        password: "hunter2",
        cyclic,
        fn: () => 1,
      },
      { maxString: 512, maxItems: 64, maxDepth: 8, maxNodes: 5000 },
    );
    expect(safe).toMatchObject({
      pending: { r1: { code: "[redacted]", origin: "client" } },
      tags: ["a", "b"],
      link: { $actor: "x:3" },
      at: "2026-12-01T10:00:00.000Z",
      long: `${"x".repeat(512)}…[+88 chars]`,
      workspace_context: "[redacted]",
      password: "[redacted]",
      cyclic: { self: "[circular]" },
      fn: "[function]",
    });
    expect((safe as { many: unknown[] }).many).toHaveLength(65);
    expect((safe as { many: unknown[] }).many.at(-1)).toBe("…[+6 items]");
    expect(JSON.stringify(safe)).not.toContain("hunter2");
    expect(JSON.stringify(safe)).not.toContain("Secret");
  });

  it("writes as JSON text exactly what the copy stringifies to, cuts and budget included", () => {
    const shared = { id: "r1", code: "x" };
    const value = {
      pending: new Map<unknown, unknown>([
        ["1", shared],
        [1, { again: shared }],
        ["…", 2],
      ]),
      list: [undefined, Number.NaN, -0, 10n, Symbol("s"), new Date(Number.NaN), new Error("boom"), new Uint8Array(4)],
      text: 'quote " and \u2028',
      __proto__x: { deep: { deeper: { deepest: [1, [2, [3]]] } } },
      10: "ten",
      2: "two",
    };
    for (const limits of [
      { maxString: 512, maxItems: 64, maxDepth: 8, maxNodes: 5000 },
      { maxString: 3, maxItems: 2, maxDepth: 2, maxNodes: 7 },
      { maxString: 0, maxItems: 0, maxDepth: 0, maxNodes: 1 },
    ])
      expect(toSafeJsonText(value, limits)).toBe(JSON.stringify(toSafeJson(value, limits)));
  });
});

describe("inspection - the recorder", () => {
  const child = createMachine({ id: "child", initial: "a", states: { a: { on: { GO: "b" } }, b: {} } });
  const parent = setup({ actors: { child } }).createMachine({
    id: "parent",
    initial: "on",
    states: { on: { invoke: { src: "child", id: "kid" }, on: { OFF: "off" } }, off: {} },
  });

  it("records nothing until recording, then every kind; a stopped actor leaves the list", () => {
    const recorder = new InspectionRecorder({ capacity: 1000 });
    const actor = createActor(parent, { inspect: recorder.observe });
    actor.start();
    expect(recorder.take()).toEqual([]);
    expect(recorder.actors().actors.map((a) => [a.id, a.machine_id, a.snapshot.value])).toEqual([
      [expect.any(String), "parent", "on"],
      ["kid", "child", "a"],
    ]);
    expect(recorder.actors().definitions["parent"]).toMatchObject({ id: "parent", states: { on: {}, off: {} } });
    recorder.setRecording(true);
    actor.send({ type: "OFF" });
    const records = recorder.take();
    const kinds = new Set(records.map((r) => r.kind));
    for (const kind of ["event", "microstep", "snapshot", "stopped", "action"]) expect(kinds).toContain(kind);
    expect(records.map((r) => r.seq)).toEqual(records.map((_, n) => n + 1));
    expect(records.find((r) => r.kind === "stopped")).toMatchObject({ event_type: "xstate.stop" });
    expect(recorder.actors().actors.map((a) => a.machine_id)).toEqual(["parent"]);
    actor.stop();
  });

  it("keeps at most its capacity, dropping the oldest and counting them; stopping recording forgets the buffer", () => {
    const recorder = new InspectionRecorder({ capacity: 5 });
    const toggler = createMachine({ id: "t", initial: "a", states: { a: { on: { T: "b" } }, b: { on: { T: "a" } } } });
    const actor = createActor(toggler, { inspect: recorder.observe }).start();
    recorder.setRecording(true);
    for (let n = 0; n < 10; n++) actor.send({ type: "T" });
    const kept = recorder.take();
    expect(kept).toHaveLength(5);
    expect(recorder.dropped).toBe(recorder.lastSequence - 5);
    expect(kept.at(-1)?.seq).toBe(recorder.lastSequence);
    actor.send({ type: "T" });
    recorder.setRecording(false);
    expect(recorder.take()).toEqual([]);
    actor.stop();
  });
});

/** Every message on `subject` from now on. */
function collect(nc: NatsConnection, subject: string): Msg[] {
  const got: Msg[] = [];
  nc.subscribe(subject, { callback: (_e, msg) => void got.push(msg) });
  return got;
}

const records = (msgs: readonly Msg[]): InspectRecord[] => msgs.flatMap((m) => InspectBatch.parse(m.json()).records);

describe("inspection - over NATS, with a real service", () => {
  it("publishes nothing unattached; attach answers the actors, then records follow; detach stops them", async () => {
    nats = await startNatsServer();
    const sim = await startImageSim({ name: "dev" });
    const h = await startService({
      nats: { servers: nats.url },
      images: [{ id: "dev", address: sim.endpoint, name: null }],
    });
    await expect
      .poll(async () => (await h.client.listImages()).type === "Images" && (await h.client.listImages()))
      .toMatchObject({
        images: [{ status: "Connected" }],
      });
    const nc = h.client.nc;
    const all = collect(nc, "stui.inspect.>");
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(all).toEqual([]);

    const malformed = await nc.request(inspectSubjects.attach("test"), JSON.stringify({ lease_ms: 5 }));
    expect(malformed.json<{ error: string }>().error).toMatch(/inspector_id: .*; lease_ms: /);
    const notJson = await nc.request(inspectSubjects.attach("test"), "{");
    expect(notJson.json<{ error: string }>().error).toMatch(/^not JSON/);

    const batches = collect(nc, inspectSubjects.events("test"));
    const reply = InspectAttached.parse(
      (await nc.request(inspectSubjects.attach("test"), JSON.stringify({ inspector_id: "t1" }))).json(),
    );
    const machines = reply.actors.map((a) => a.machine_id);
    expect(machines).toContain("sessionManager");
    expect(machines).toContain("image");
    const connection = reply.actors.find((a) => a.machine_id === "image");
    expect(connection?.snapshot.value).toHaveProperty("Connected");
    expect(reply.definitions["image"]).toMatchObject({ id: "image", states: { Connected: {}, Reconnecting: {} } });

    // What a client evaluates reaches the image as a frame; neither is ever shown.
    await h.client.evaluate({ client_id: "t", image_id: "dev", code: "Smalltalk at: #Secret" });
    sim.kill("SIGKILL");
    await expect
      .poll(
        () =>
          records(batches).some(
            (r) =>
              r.actor_id === connection?.actor_id &&
              r.kind === "snapshot" &&
              JSON.stringify(r.snapshot.value).includes("Reconnecting"),
          ),
        { timeout: 10_000 },
      )
      .toBe(true);
    const seen = records(batches);
    expect(seen[0]?.seq).toBe(reply.sequence + 1);
    expect(seen.map((r) => r.seq)).toEqual(seen.map((_, n) => reply.sequence + 1 + n));
    expect(JSON.stringify(seen)).not.toMatch(/"code":"(?!\[redacted\])/);
    expect(seen.some((r) => r.kind === "event" && r.event_type === "SEND")).toBe(true);
    expect(batches.map((m) => m.string()).join("")).not.toContain("#Secret");

    const detached = (await nc.request(inspectSubjects.detach("test"), JSON.stringify({ inspector_id: "t1" }))).json();
    expect(detached).toEqual({ instance_id: "test", attached: 0 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = batches.length;
    await startImageSim({ name: "dev", bind: sim.endpoint });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(batches.length).toBe(after);
  });

  it("answers a late joiner with 50 images' actors in one message, each machine's definition once", async () => {
    nats = await startNatsServer();
    const h = await startFleet(nats.url, 50);
    const msg = await h.client.nc.request(inspectSubjects.attach("test"), JSON.stringify({ inspector_id: "late" }));
    const reply = InspectAttached.parse(msg.json());
    expect(reply.actors.filter((a) => a.machine_id === "image")).toHaveLength(50);
    expect(Object.keys(reply.definitions).sort()).toEqual(["image", "sessionManager"]);
    console.log(`inspection: attach answer with ${reply.actors.length} actors: ${msg.data.length} bytes`);
    expect(msg.data.length).toBeLessThan(1024 * 1024);
  });

  it("stops recording once the lease lapses unrenewed", async () => {
    nats = await startNatsServer();
    const h = await startService({ nats: { servers: nats.url } });
    const nc = h.client.nc;
    await nc.request(inspectSubjects.attach("test"), JSON.stringify({ inspector_id: "t2", lease_ms: 1000 }));
    expect(h.service.inspection.attached).toBe(1);
    await expect.poll(() => h.service.inspection.attached, { timeout: 5000 }).toBe(0);
    expect(h.logText()).toMatch(/inspection stopped: no inspector renewed its lease/);
  });
});
