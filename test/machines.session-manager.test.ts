/**
 * The session-manager machine on its own: simulated clock, fake links (`.provide()`), no I/O.
 * Supervision (one child per image under its system id, a crashing child), the Failed grace
 * timer, the orphan sweep, the restore work on connect, and commits.
 */
import { describe, expect, it } from "vitest";
import { createActor, fromCallback, SimulatedClock } from "xstate";
import type { ConnectionPolicy } from "../src/machines/connection-policy.js";
import { imageConnectionMachine } from "../src/machines/image-connection.js";
import type { LinkCommand, LinkEvent, LinkInput } from "../src/machines/image-link-events.js";
import {
  imageStatusOf,
  sessionManagerMachine,
  type ImageConfig,
  type ManagerPolicy,
  type SessionManagerEmitted,
} from "../src/machines/session-manager.js";
import type { SessionStateData } from "../src/protocol/index.js";
import { FakeLinks } from "./helpers/fake-link.js";

const CONNECTION: Partial<ConnectionPolicy> = {
  connectTimeoutMs: 1000,
  pingIntervalMs: 60_000,
  backoffBaseMs: 100,
  backoffCapMs: 100,
  maxRestarts: 2,
  restartWindowMs: 60_000,
};

const IMAGES: ImageConfig[] = [
  { id: "dev", address: "tcp://dev:5555", name: "Dev" },
  { id: "staging", address: "tcp://staging:5555" },
];

function session(id: string, imageId: string, orphanedAt: string | null = null): SessionStateData {
  return {
    session_id: id,
    client_id: "alice",
    session_name: null,
    description: null,
    created_at: "2026-11-25T00:00:00.000Z",
    last_activity: "2026-11-25T00:00:00.000Z",
    is_active: true,
    orphaned_at: orphanedAt,
    workspace_context: { current_workspace: null, input_history: [], variables: {} },
    image_id: imageId,
    image_address: "tcp://dev:5555",
    image_name: null,
    image_version: null,
    image_metadata: {},
  };
}

/**
 * A link whose first instance throws as it starts (its connection actor errors, and the manager
 * hears of it); later instances are quiet.
 */
function crashOnce() {
  let crashes = 0;
  return fromCallback<LinkCommand, LinkInput, LinkEvent>(() => {
    crashes += 1;
    if (crashes === 1) throw new Error("socket exploded");
    return () => undefined;
  });
}

function setup(
  options: {
    policy?: Partial<ManagerPolicy>;
    sessions?: SessionStateData[];
    link?: ReturnType<typeof crashOnce>;
    images?: ImageConfig[];
  } = {},
) {
  const clock = new SimulatedClock();
  const links = new FakeLinks();
  const connection = imageConnectionMachine.provide({ actors: { link: options.link ?? links.logic } });
  const actor = createActor(sessionManagerMachine.provide({ actors: { connection } }), {
    clock,
    input: {
      images: options.images ?? IMAGES,
      sessions: (options.sessions ?? []).map((s) => ({ session: s, revision: 1 })),
      contexts: new Map([["alice", { imageId: "dev", revision: 1 }]]),
      policy: {
        failedGraceMs: 5000,
        sweepIntervalMs: 1000,
        orphanMaxAgeMs: 10_000,
        connection: CONNECTION,
        ...options.policy,
      },
      now: () => Date.parse("2026-11-25T12:00:00.000Z") + clock.now(),
    },
  });
  const emitted: SessionManagerEmitted[] = [];
  actor.on("*", (event) => emitted.push(event));
  actor.start();
  /** The fake link of one image (the latest opened). */
  const linkOf = (imageId: string) => {
    const address = (options.images ?? IMAGES).find((i) => i.id === imageId)?.address;
    const link = links.instances.findLast((l) => l.input.address === address);
    if (link === undefined) throw new Error(`no link for ${imageId}`);
    return link;
  };
  const up = (imageId: string) => {
    const link = linkOf(imageId);
    link.emit({ type: "LINK.UP", generation: link.input.generation });
  };
  const down = (imageId: string) => {
    const link = linkOf(imageId);
    link.emit({ type: "LINK.DOWN", generation: link.input.generation, reason: "peer closed" });
  };
  const work = () => emitted.flatMap((e) => (e.type === "work" ? [e.work] : []));
  const statuses = (imageId: string) =>
    emitted.flatMap((e) => (e.type === "status" && e.data.image_id === imageId ? [e.data.status] : []));
  return { actor, clock, links, emitted, up, down, work, statuses };
}

describe("session manager machine - supervision", () => {
  it("spawns one connection per configured image, registered under the image id", () => {
    const { actor } = setup();
    expect(actor.system.get("dev")).toBeDefined();
    expect(actor.system.get("staging")).toBeDefined();
    expect([...actor.getSnapshot().context.images.keys()]).toEqual(["dev", "staging"]);
  });

  it("forwards each child's status changes and asks to restore sessions when an image connects", () => {
    const { up, statuses, work } = setup();
    up("dev");
    expect(statuses("dev")).toEqual(["Connected"]);
    expect(work()).toEqual([{ kind: "restore", imageId: "dev" }]);
  });

  it("survives a crashing connection actor: the image reads Failed with the error as reason", () => {
    const { actor, emitted } = setup({ link: crashOnce(), images: [IMAGES[0] as ImageConfig] });
    expect(actor.getSnapshot().status).toBe("active");
    const entry = actor.getSnapshot().context.images.get("dev");
    if (entry === undefined) throw new Error("dev was not added");
    expect(entry.crash).toMatch(/socket exploded/);
    expect(imageStatusOf(entry).status).toBe("Failed");
    const status = emitted.find((e) => e.type === "status");
    expect(status).toMatchObject({ data: { image_id: "dev", status: "Failed" } });
    expect(status?.type === "status" && status.data.reason).toMatch(/^connection actor crashed: .*socket exploded/);
  });

  it("respawns a crashed connection on retry, under the same system id", () => {
    const { actor } = setup({ link: crashOnce(), images: [IMAGES[0] as ImageConfig] });
    const crashed = actor.getSnapshot().context.images.get("dev")?.ref;
    actor.send({ type: "IMAGE.RETRY", imageId: "dev" });
    const respawned = actor.getSnapshot().context.images.get("dev")?.ref;
    expect(respawned).toBeDefined();
    expect(respawned).not.toBe(crashed);
    expect(actor.system.get("dev")).toBe(respawned);
    expect(actor.getSnapshot().status).toBe("active");
  });

  it("removes an image: stops its child, announces Disconnected, and can add it again", () => {
    const { actor, up, statuses, links } = setup();
    up("dev");
    const before = links.instances.length;
    actor.send({ type: "IMAGE.REMOVE", imageId: "dev" });
    expect(actor.system.get("dev")).toBeUndefined();
    expect(actor.getSnapshot().context.images.has("dev")).toBe(false);
    expect(statuses("dev")).toEqual(["Connected", "Disconnected"]);
    expect(links.instances.filter((l) => l.input.address === "tcp://dev:5555").every((l) => l.closed)).toBe(true);
    actor.send({ type: "IMAGE.ADD", config: IMAGES[0] as ImageConfig });
    expect(actor.system.get("dev")).toBeDefined();
    expect(links.instances.length).toBe(before + 1);
  });
});

describe("session manager machine - orphan timers", () => {
  it("asks to orphan the sessions of an image Failed for longer than the grace period", () => {
    const { clock, down, up, work, statuses } = setup();
    up("dev");
    down("dev");
    // Backoff is 100 ms; after maxRestarts (2) failed attempts the next backoff ends in Failed.
    clock.increment(100);
    down("dev");
    clock.increment(100);
    down("dev");
    clock.increment(100);
    expect(statuses("dev").at(-1)).toBe("Failed");
    clock.increment(4999);
    expect(work().filter((w) => w.kind === "orphan")).toEqual([]);
    clock.increment(1);
    expect(work().filter((w) => w.kind === "orphan")).toEqual([
      { kind: "orphan", imageId: "dev", reason: "image failed for longer than 5000 ms" },
    ]);
  });

  it("does not orphan when the image leaves Failed within the grace period", () => {
    const { actor, clock, up, work, statuses } = setup({ policy: { failedGraceMs: 5000 } });
    actor.send({
      type: "IMAGE.STATUS",
      data: {
        image_id: "dev",
        status: "Failed",
        previous_status: "Reconnecting",
        reason: "test",
        at: "2026-11-25T12:00:00Z",
        reconnect_attempt: null,
        next_attempt_at: null,
        failure: null,
      },
    });
    clock.increment(500);
    up("dev");
    clock.increment(10_000);
    expect(statuses("dev")).toContain("Connected");
    expect(work().filter((w) => w.kind === "orphan")).toEqual([]);
  });

  it("asks for a sweep every interval, and never when orphans are kept forever", () => {
    const { clock, work } = setup();
    for (let i = 0; i < 3; i += 1) clock.increment(1000);
    expect(work().filter((w) => w.kind === "sweep")).toHaveLength(3);
    const kept = setup({ policy: { orphanMaxAgeMs: null } });
    kept.clock.increment(3000);
    expect(kept.work()).toEqual([]);
  });
});

describe("session manager machine - registry", () => {
  it("starts from the loaded sessions and contexts, applies the store's changes with their revisions, and announces", () => {
    const { actor, emitted } = setup({ sessions: [session("s1", "dev"), session("s2", "staging")] });
    expect(actor.getSnapshot().context.registry.size).toBe(2);
    expect(actor.getSnapshot().context.registry.contexts.get("alice")).toBe("dev");
    const s3 = session("s3", "dev");
    actor.send({
      type: "STORE.CHANGED",
      change: { kind: "session", sessionId: "s3", stored: { session: s3, revision: 1 } },
    });
    actor.send({ type: "STORE.CHANGED", change: { kind: "session", sessionId: "s1", stored: null } });
    actor.send({
      type: "STORE.CHANGED",
      change: { kind: "context", clientId: "bob", context: { imageId: "staging", revision: 2 } },
    });
    // A change older than what is held (a feed may repeat one) changes nothing.
    actor.send({
      type: "STORE.CHANGED",
      change: { kind: "session", sessionId: "s3", stored: { session: { ...s3, is_active: false }, revision: 0 } },
    });
    expect(emitted.filter((e) => e.type === "session")).toHaveLength(0);
    actor.send({
      type: "ANNOUNCE",
      notices: [
        {
          kind: "created",
          data: { image_id: "dev", session_id: "s3", client_id: "alice", reason: null, at: s3.created_at },
        },
      ],
    });
    const { registry } = actor.getSnapshot().context;
    expect(registry.sessionsOf(null).map((s) => s.session_id)).toEqual(["s2", "s3"]);
    expect(registry.get("s3")?.is_active).toBe(true);
    expect(registry.contexts.get("bob")).toBe("staging");
    expect(registry.contextRevisionOf("bob")).toBe(2);
    expect(registry.revisionOf("s3")).toBe(1);
    expect(registry.revisionOf("s1")).toBeUndefined();
    expect(emitted.filter((e) => e.type === "session")).toHaveLength(1);
  });
});
