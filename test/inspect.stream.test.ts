/**
 * Inspection: the safe copy of what actors hold (maps, refs, cut values, redacted payloads); the
 * recorder (nothing recorded until attached, a bounded buffer that drops the oldest and counts,
 * stopped actors gone from the list); and the instance's inspection link on a real nats-server
 * with a real service and image-sim: nothing on `stui.inspect.>` while no inspector is attached;
 * attach answers every live actor with its definition and snapshot; records follow the attach's
 * sequence, with an image-sim's kill seen as the connection actor going Reconnecting; a malformed
 * attach is answered with what is wrong; detach and a lapsed lease stop the stream.
 */
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { assign, createActor, createMachine, fromCallback, sendTo, setup } from "xstate";
import { InspectLink } from "../src/actors/inspect-link.js";
import { InspectionRecorder } from "../src/inspect/recorder.js";
import { toSafeJson, toSafeJsonText } from "../src/inspect/safe.js";
import { InspectAttached, InspectBatch, inspectSubjects, type InspectRecord } from "../src/protocol/inspect.js";
import { applyContextChange } from "../src/protocol/inspect-change.js";
import { startImageSim } from "./helpers/image-sim.js";
import { cleanupManagers, recordingLogger } from "./helpers/manager.js";
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

  it("sends an actor's first snapshot whole, then only the context keys that changed; a dropped one makes the next whole", () => {
    const counter = setup({
      types: {
        context: {} as {
          config: { name: string; tags: string[] };
          count: number;
          image: { id: string; seen: number };
          pending: ReadonlyMap<string, { n: number }>;
        },
      },
    }).createMachine({
      id: "counter",
      context: {
        config: { name: "big", tags: Array.from({ length: 20 }, (_, n) => `tag${n}`) },
        count: 0,
        image: { id: "img", seen: 0 },
        pending: new Map(),
      },
      on: {
        INC: {
          actions: assign(({ context: { count, image, pending } }) => ({
            count: count + 1,
            image: { ...image, seen: count + 1 },
            pending: new Map([...pending, [`r${count}`, { n: count }]]),
          })),
        },
      },
    });
    const recorder = new InspectionRecorder({ capacity: 1000 });
    const actor = createActor(counter, { inspect: recorder.observe }).start();
    recorder.setRecording(true);
    for (let n = 0; n < 3; n++) actor.send({ type: "INC" });
    const snapshots = recorder.take().filter((r) => r.kind === "snapshot" || r.kind === "change");
    expect(snapshots.map((r) => r.kind)).toEqual(["snapshot", "change", "change"]);
    expect(snapshots[1]).toMatchObject({
      kind: "change",
      status: "active",
      set: { count: 2 },
      patch: { image: { set: { seen: 2 } }, pending: { set: { r1: { n: 1 } } } },
    });
    expect(snapshots[1]).not.toHaveProperty("unset");
    expect(JSON.stringify(snapshots[2])).not.toContain("tag19");
    // Applied in order, they give the actor's context as the copy makes it.
    let context: unknown = null;
    for (const r of snapshots) context = r.kind === "snapshot" ? r.snapshot.context : applyContextChange(context, r);
    expect(context).toEqual(toSafeJson(actor.getSnapshot().context));

    const small = new InspectionRecorder({ capacity: 2 });
    const other = createActor(counter, { inspect: small.observe }).start();
    small.setRecording(true);
    other.send({ type: "INC" });
    small.take();
    for (let n = 0; n < 3; n++) other.send({ type: "INC" });
    expect(small.dropped).toBeGreaterThan(0);
    expect(
      small.take().find((r) => r.actor_id === other.sessionId && (r.kind === "snapshot" || r.kind === "change")),
    ).toMatchObject({ kind: "snapshot", snapshot: { context: { count: 4 } } });
    actor.stop();
    other.stop();
  });

  it("records a snapshot only when it is not the very one the actor's last record had", () => {
    const echo = fromCallback(() => () => undefined);
    const host = setup({ actors: { echo } }).createMachine({
      id: "host",
      invoke: { src: "echo", id: "echo" },
      on: { PING: { actions: sendTo("echo", { type: "PONG" }) } },
    });
    const recorder = new InspectionRecorder();
    const actor = createActor(host, { inspect: recorder.observe }).start();
    recorder.setRecording(true);
    for (let n = 0; n < 5; n++) actor.send({ type: "PING" });
    const records = recorder.take();
    const echoId = records.find((r) => r.kind === "event" && r.event_type === "PONG")?.actor_id;
    expect(records.filter((r) => r.kind === "event" && r.actor_id === echoId)).toHaveLength(5);
    // The callback's snapshot never changes: said once, then not again.
    expect(records.filter((r) => r.actor_id === echoId && (r.kind === "snapshot" || r.kind === "change"))).toHaveLength(
      1,
    );
    expect(records.map((r) => r.seq)).toEqual(records.map((_, n) => n + 1));
    actor.stop();
  });

  it("applies a change's set, patch and unset to the previous context, ignoring a __proto__ field", () => {
    const before = { a: 1, b: { deep: true, n: 1 }, c: "gone" };
    const after = applyContextChange(
      before,
      JSON.parse('{"set":{"a":2,"__proto__":{"polluted":1}},"patch":{"b":{"set":{"n":2}}},"unset":["c"]}') as object,
    );
    expect(after).toEqual({ a: 2, b: { deep: true, n: 2 } });
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect(before).toEqual({ a: 1, b: { deep: true, n: 1 }, c: "gone" });
    expect(applyContextChange(before, {})).toBe(before);
  });
});

describe("inspection - the link's share of the instance's time", () => {
  const toggler = createMachine({ id: "t", initial: "a", states: { a: { on: { T: "b" } }, b: { on: { T: "a" } } } });

  /** Waves of events against a link with `maxShare`; the batches published and the local listener's. */
  async function run(maxShare: number): Promise<{ published: InspectBatch[]; local: string[]; dropped: number }> {
    nats ??= await startNatsServer();
    const nc = await connect({ servers: nats.url });
    try {
      const recorder = new InspectionRecorder();
      const link = new InspectLink(nc, "solo", recorder, recordingLogger().logger, { flushMs: 20, maxShare });
      const actor = createActor(toggler, { inspect: recorder.observe }).start();
      const published = collect(nc, inspectSubjects.events("solo"));
      const local: string[] = [];
      link.onBatch((json) => void local.push(json));
      link.attachLocal("t", 10_000);
      for (let wave = 0; wave < 10; wave++) {
        for (let n = 0; n < 200; n++) actor.send({ type: "T" });
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
      expect(link.detachLocal("t")).toEqual({ instance_id: "solo", attached: 0 });
      await nc.flush();
      actor.stop();
      link.stop();
      return { published: published.map((m) => InspectBatch.parse(m.json())), local, dropped: recorder.dropped };
    } finally {
      await nc.close();
    }
  }

  it("drops and counts what happens once inspection is over its share, and keeps all with no limit", async () => {
    const all = await run(1);
    expect(all.dropped).toBe(0);
    const seqs = all.published.flatMap((b) => b.records.map((r) => r.seq));
    expect(seqs).toEqual(seqs.map((_, n) => n + 1));
    expect(all.local.map((json) => InspectBatch.parse(JSON.parse(json)))).toEqual(all.published);

    // 0.1 ms a second: no more than a few records go out, the rest is dropped and counted.
    const tight = await run(1e-4);
    expect(tight.dropped).toBeGreaterThan(seqs.length / 2);
    const kept = tight.published.flatMap((b) => b.records.map((r) => r.seq));
    expect(kept.length + tight.dropped).toBe(seqs.length);
    for (const batch of tight.published) expect(batch.dropped).toBeLessThanOrEqual(tight.dropped);
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
    expect(connection?.snapshot.value).toBe("Connected");
    expect(reply.definitions["image"]).toMatchObject({ id: "image", states: { Connected: {}, Reconnecting: {} } });

    // What a client evaluates reaches the image as a frame (through the link's request lane, not as
    // a machine event); it is never shown. The link's ping results are machine events.
    await h.client.evaluate({ client_id: "t", image_id: "dev", code: "Smalltalk at: #Secret" });
    await expect
      .poll(() => records(batches).some((r) => r.kind === "event" && r.event_type === "LINK.PINGED"), {
        timeout: 5_000,
      })
      .toBe(true);
    sim.kill("SIGKILL");
    await sim.process.exited;
    const inState = (state: string) => () =>
      records(batches).some(
        (r) =>
          r.actor_id === connection?.actor_id &&
          (r.kind === "snapshot" || r.kind === "change") &&
          JSON.stringify(r.kind === "snapshot" ? r.snapshot.value : r.value).includes(state),
      );
    await expect.poll(inState("Reconnecting"), { timeout: 10_000 }).toBe(true);
    // Back, the machine asks the image who it is: a frame it writes itself, shown redacted.
    await startImageSim({ name: "dev", bind: sim.endpoint });
    await expect
      .poll(() => records(batches).some((r) => r.kind === "event" && r.event_type === "SEND"), { timeout: 10_000 })
      .toBe(true);
    const seen = records(batches);
    expect(seen[0]?.seq).toBe(reply.sequence + 1);
    expect(seen.map((r) => r.seq)).toEqual(seen.map((_, n) => reply.sequence + 1 + n));
    expect(JSON.stringify(seen)).not.toMatch(/"code":"(?!\[redacted\])/);
    expect(JSON.stringify(seen.filter((r) => r.kind === "event" && r.event_type === "SEND"))).toContain(
      '"frame":"[redacted]"',
    );
    expect(batches.map((m) => m.string()).join("")).not.toContain("#Secret");

    const detached = (await nc.request(inspectSubjects.detach("test"), JSON.stringify({ inspector_id: "t1" }))).json();
    expect(detached).toEqual({ instance_id: "test", attached: 0 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = batches.length;
    // Pings and their results go on every second: none of them is recorded any more.
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
