/**
 * Events over a real nats-server: the exact sequence for an image killed and brought back, replay
 * for a subscriber that joins late, a NATS restart in the middle of activity, the buffer bound,
 * and the health debounce rule.
 */
import { describe, expect, it } from "vitest";
import { EventPublisher } from "../src/actors/event-publisher.js";
import { connectNats, NatsLink } from "../src/actors/nats-link.js";
import type { ReplayedEvent } from "../src/client.js";
import type { ImageHealthChanged, RequestOf, StuiEvent } from "../src/protocol/index.js";
import { startImageSim, type ImageSimHandle } from "./helpers/image-sim.js";
import { natsServerPerTest } from "./helpers/per-test.js";
import { startService, type ServiceHarness } from "./helpers/service.js";

const nats = natsServerPerTest();

const quietLogger = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };

/** Every event kept in the stream so far (replayed until caught up). */
async function storedEvents(h: ServiceHarness, subject?: string): Promise<ReplayedEvent[]> {
  const feed = await h.client.replay(subject === undefined ? {} : { subject });
  const out: ReplayedEvent[] = [];
  const deadline = Date.now() + 5000;
  const iterator = feed[Symbol.asyncIterator]();
  try {
    while (Date.now() < deadline) {
      const next = await Promise.race([
        iterator.next(),
        new Promise<null>((resolve) => setTimeout(() => resolve(null), 300)),
      ]);
      if (next === null || next.done === true) break;
      out.push(next.value);
    }
  } finally {
    await feed.close();
  }
  return out;
}

/** A service with one image, `dev`, once it is Connected. */
async function serviceWithDev(): Promise<{ h: ServiceHarness; dev: ImageSimHandle }> {
  const dev = await startImageSim();
  const h = await startService({ nats: { servers: nats().url }, images: [{ id: "dev", address: dev.endpoint }] });
  await connectedVia(h, "dev");
  return { h, dev };
}

async function connectedVia(h: ServiceHarness, imageId: string): Promise<void> {
  await expect
    .poll(
      async () => {
        const status = await h.client.getImageConnectionStatus({ image_id: imageId });
        return status.type === "ImageConnectionStatus" && status.status;
      },
      { timeout: 15_000 },
    )
    .toBe("Connected");
}

const statusesOf = (events: readonly StuiEvent[], imageId: string): string[] =>
  events.flatMap((e) =>
    e.type === "io.stui.image.status.changed" && e.data.image_id === imageId ? [e.data.status] : [],
  );

function expectContiguous(events: readonly StuiEvent[]): void {
  const sequences = events.map((e) => e.sequence);
  expect(sequences).toEqual(Array.from({ length: sequences.length }, (_, i) => i + 1));
}

describe("NATS events - what subscribers see", () => {
  it("publishes Connected → Reconnecting → Connected, each once and in order, when an image is killed and brought back", async () => {
    const { h, dev } = await serviceWithDev();
    const live = h.client.events({ subject: "stui.events.image.*.status" });
    const seen: StuiEvent[] = [];
    void (async () => {
      for await (const e of live) seen.push(e);
    })();
    await h.client.nc.flush();
    dev.kill("SIGKILL");
    await expect.poll(() => statusesOf(seen, "dev"), { timeout: 15_000 }).toEqual(["Reconnecting"]);
    await startImageSim({ bind: dev.endpoint });
    await expect.poll(() => statusesOf(seen, "dev"), { timeout: 15_000 }).toEqual(["Reconnecting", "Connected"]);
    await live.close();

    const stored = (await storedEvents(h)).map((r) => r.event);
    expect(stored[0]?.type).toBe("io.stui.instance.started");
    expect(stored.every((e) => e.source === "/stui/test")).toBe(true);
    expectContiguous(stored);
    expect(statusesOf(stored, "dev")).toEqual(["Connected", "Reconnecting", "Connected"]);
    const reconnecting = stored.find(
      (e) => e.type === "io.stui.image.status.changed" && e.data.status === "Reconnecting",
    );
    expect(reconnecting).toMatchObject({ subject: "dev", data: { previous_status: "Connected" } });
  });

  it("lets a subscriber that joins late replay what it missed, by time or by sequence, then go on live", async () => {
    const { h } = await serviceWithDev();
    // Replay by time goes by when the stream stored an event: let what came before be stored first.
    await expect.poll(() => h.service.publisher.counts.buffered).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const before = new Date();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const created = await h.client.createSession({ image_id: "dev", client_id: "alice" });
    expect(created.type).toBe("SessionCreated");
    await h.client.switchImageContext({ client_id: "alice", to_image_id: "dev" });

    const feed = await h.client.replay({ since: before });
    const got: ReplayedEvent[] = [];
    void (async () => {
      // Health events come and go with the pings; this test is about the others.
      for await (const r of feed) if (r.event.type !== "io.stui.image.health.changed") got.push(r);
    })();
    await expect
      .poll(() => got.map((r) => r.event.type))
      .toEqual(["io.stui.session.created", "io.stui.context.switched"]);
    await h.client.switchImageContext({ client_id: "bob", to_image_id: "dev" });
    await expect.poll(() => got.length).toBe(3);
    expect(got[2]?.event).toMatchObject({ type: "io.stui.context.switched", data: { client_id: "bob" } });
    await feed.close();

    const fromSequence = await h.client.replay({
      sequence: got[1]?.streamSequence ?? 0,
      subject: "stui.events.context.>",
    });
    const replayed: ReplayedEvent[] = [];
    void (async () => {
      for await (const r of fromSequence) replayed.push(r);
    })();
    await expect
      .poll(() => replayed.map((r) => r.event.type === "io.stui.context.switched" && r.event.data.client_id))
      .toEqual(["alice", "bob"]);
    await fromSequence.close();
  });

  it("keeps working through a NATS restart: events produced while it is down are published after, in order", async () => {
    const { h } = await serviceWithDev();
    const restarted = nats().restart({ downMs: 1500 });
    await expect.poll(() => h.service.link.status, { timeout: 5000 }).toBe("Reconnecting");
    // The manager goes on while NATS is away; its events wait in the buffer.
    const during = await h.service.manager.handle({
      type: "CreateSession",
      image_id: "dev",
      client_id: "alice",
      session_name: null,
      description: null,
    });
    expect(during.type).toBe("SessionCreated");
    const summary = await h.service.manager.handle({
      type: "GetConnectionHealthSummary",
    } as RequestOf<"GetConnectionHealthSummary">);
    expect(summary).toMatchObject({ nats: { status: "Reconnecting", server: null } });
    const buffered = summary.type === "ConnectionHealthSummary" ? (summary.nats?.buffered_events ?? 0) : 0;
    expect(buffered).toBeGreaterThan(0);
    await restarted;
    const backAt = performance.now();
    await expect.poll(() => h.service.link.status, { timeout: 10_000 }).toBe("Connected");
    await expect.poll(() => h.service.publisher.counts.buffered, { timeout: 10_000 }).toBe(0);
    console.log(
      `NATS restart (down 1.5 s): ${buffered} events buffered meanwhile, all published ${(performance.now() - backAt).toFixed(0)} ms after the server was back`,
    );

    // The test's own client reconnects on its own schedule; a request sent before it has is lost.
    await expect
      .poll(
        () =>
          h.client.nc.flush().then(
            () => true,
            () => false,
          ),
        { timeout: 10_000 },
      )
      .toBe(true);
    expect((await h.client.listImages()).type).toBe("Images");
    const stored = (await storedEvents(h)).map((r) => r.event);
    expectContiguous(stored);
    expect(stored.map((e) => e.type)).toContain("io.stui.session.created");
    expect(h.service.publisher.counts.dropped).toBe(0);
  });
});

describe("NATS events - the publisher's rules", () => {
  async function publisher(options: { bufferLimit?: number; healthDebounceMs?: number } = {}) {
    const nc = await connectNats({ servers: nats().url });
    const link = new NatsLink(nc, quietLogger);
    const p = await EventPublisher.start(link, { instanceId: "p", ...options }, quietLogger);
    const received: StuiEvent[] = [];
    const sub = nc.subscribe("stui.events.>", {
      callback: (_error, msg) => {
        received.push(JSON.parse(msg.string()) as StuiEvent);
      },
    });
    await nc.flush();
    return {
      p,
      link,
      received,
      close: async () => {
        sub.unsubscribe();
        await p.close(1000);
        await nc.close();
      },
    };
  }

  const health = (
    health: ImageHealthChanged["health"],
    previous: ImageHealthChanged["health"],
  ): ImageHealthChanged => ({
    image_id: "dev",
    health,
    previous_health: previous,
    rtt_ms: null,
    at: new Date().toISOString(),
  });

  it("publishes a flapping image's health at most once per window, ending on the latest health", async () => {
    const t = await publisher({ healthDebounceMs: 400 });
    try {
      t.p.health(health("Healthy", "Unknown"));
      t.p.health(health("Warning", "Healthy"));
      t.p.health(health("Critical", "Warning"));
      t.p.health(health("Warning", "Critical"));
      const healths = () =>
        t.received.flatMap((e) =>
          e.type === "io.stui.image.health.changed" ? [[e.data.previous_health, e.data.health]] : [],
        );
      await expect.poll(healths).toEqual([["Unknown", "Healthy"]]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(healths()).toHaveLength(1);
      await expect.poll(healths, { timeout: 2000 }).toEqual([
        ["Unknown", "Healthy"],
        ["Healthy", "Warning"],
      ]);
      // Back to the published health within a window: nothing to announce.
      t.p.health(health("Healthy", "Warning"));
      t.p.health(health("Warning", "Healthy"));
      await new Promise((resolve) => setTimeout(resolve, 900));
      expect(healths()).toHaveLength(2);
    } finally {
      await t.close();
    }
  });

  it("ends a run on instance.stopped: a health change still held by the debounce is not published after it", async () => {
    const t = await publisher({ healthDebounceMs: 300 });
    t.p.health(health("Healthy", "Unknown"));
    t.p.health(health("Warning", "Healthy")); // held for the rest of the window
    try {
      await t.p.close(1000);
      await new Promise((resolve) => setTimeout(resolve, 500)); // past the window
      expect(t.received.at(-1)?.type).toBe("io.stui.instance.stopped");
      expect(t.received.filter((e) => e.type === "io.stui.image.health.changed")).toHaveLength(1);
    } finally {
      await t.close();
    }
  });

  it("holds at most bufferLimit events while NATS is down, drops the oldest and counts them", async () => {
    const t = await publisher({ bufferLimit: 5 });
    try {
      await nats().process().stop();
      await expect.poll(() => t.link.status, { timeout: 5000 }).toBe("Reconnecting");
      for (let i = 0; i < 12; i++) {
        t.p.publish(
          "io.stui.context.switched",
          {
            client_id: `c${i}`,
            from_image_id: null,
            to_image_id: "dev",
            preserve_context: true,
            at: new Date().toISOString(),
          },
          `c${i}`,
        );
      }
      expect(t.p.counts).toMatchObject({ buffered: 5, dropped: 7 });
      await nats().restart();
      await expect.poll(() => t.p.counts.buffered, { timeout: 10_000 }).toBe(0);
      // instance.started was 1, the twelve 2…13; the seven oldest were dropped.
      await expect.poll(() => t.received.map((e) => e.sequence), { timeout: 5000 }).toEqual([9, 10, 11, 12, 13]);
    } finally {
      await t.close();
    }
  });
});
