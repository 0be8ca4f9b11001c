/**
 * The lease machine on a simulated clock, its store swapped with `.provide()` for a map with
 * compare-and-set (the real store, JetStream KV, is tested on its own): taking a free lease,
 * renewing every third of the TTL, waiting out another's, taking over a lapsed one, losing it when
 * renewals fail for the TTL less the margin (also after a pause far past the TTL) or when it was
 * taken over, and releasing it.
 */
import { createActor, fromPromise, SimulatedClock } from "xstate";
import { describe, expect, it } from "vitest";
import { RevisionConflictError, StoreUnavailableError } from "../src/errors.js";
import { imageLeaseMachine, leaseValid, type LeaseEmitted, type WriteInput } from "../src/machines/image-lease.js";
import type { Lease } from "../src/ports.js";
import { isLeastLoaded, loadsOf, shouldHandOver } from "../src/machines/balance.js";

const TTL = 15_000;
const MARGIN = 1500;

/** A lease store in a map, with the compare-and-set the contract asks for; `down` makes it fail. */
class MapLeases {
  readonly leases = new Map<string, Lease>();
  private revision = 0;
  down = false;
  writes = 0;
  constructor(private readonly now: () => number) {}

  /** While set, a read answers what was stored when it was sent, once this resolves (a read in flight). */
  gate: Promise<void> | null = null;

  async read(imageId: string): Promise<Lease | null> {
    if (this.down) throw new StoreUnavailableError(unavailable);
    const value = this.leases.get(imageId) ?? null;
    if (this.gate !== null) await this.gate;
    return value;
  }

  write(input: WriteInput): Promise<Lease> {
    this.writes += 1;
    if (this.down) return Promise.reject(new StoreUnavailableError(unavailable));
    const current = this.leases.get(input.imageId)?.revision ?? 0;
    if (current !== input.expectedRevision) {
      return Promise.reject(new RevisionConflictError(input.imageId, input.expectedRevision, current));
    }
    this.revision += 1;
    const lease: Lease = {
      imageId: input.imageId,
      owner: input.owner,
      ttlMs: input.ttlMs,
      expiresAt: this.now() + input.ttlMs,
      revision: this.revision,
    };
    this.leases.set(input.imageId, lease);
    return Promise.resolve(lease);
  }

  release(lease: Lease): Promise<void> {
    if (this.leases.get(lease.imageId)?.revision === lease.revision) this.leases.delete(lease.imageId);
    return Promise.resolve();
  }
}

const unavailable = { writable: false, degraded_since: null, reason: "no JetStream leader" };

function setup(options: { owner?: string; store?: MapLeases; clock?: SimulatedClock; eager?: () => boolean } = {}) {
  const clock = options.clock ?? new SimulatedClock();
  const store = options.store ?? new MapLeases(() => clock.now());
  const machine = imageLeaseMachine.provide({
    actors: {
      read: fromPromise(({ input }: { input: { imageId: string } }) => store.read(input.imageId)),
      write: fromPromise(({ input }: { input: WriteInput }) => store.write(input)),
      release: fromPromise(({ input }: { input: Lease }) => store.release(input)),
    },
  });
  const actor = createActor(machine, {
    clock,
    input: {
      imageId: "dev",
      owner: options.owner ?? "a",
      ttlMs: TTL,
      marginMs: MARGIN,
      retryMs: 500,
      now: () => clock.now(),
      monotonic: () => clock.now(),
      ...(options.eager === undefined ? {} : { eager: options.eager }),
    },
  });
  const emitted: LeaseEmitted[] = [];
  for (const type of ["owned", "lost", "released"] as const) actor.on(type, (e) => emitted.push(e));
  actor.start();
  return { actor, clock, store, emitted };
}

/** Lets the promise actors settle. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

async function advance(clock: SimulatedClock, ms: number, step = 100): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.increment(Math.min(step, ms - t));
    await settle();
  }
}

const state = (t: ReturnType<typeof setup>): unknown => t.actor.getSnapshot().value;

/** How many times the actor has entered `Reading` since the call. */
function countReads(t: ReturnType<typeof setup>): () => number {
  let reads = 0;
  t.actor.subscribe((snapshot) => {
    if (snapshot.value === "Reading") reads += 1;
  });
  return () => reads;
}

describe("image lease machine", () => {
  it("image lease - takes a free lease, then renews it every third of the TTL with rising revisions", async () => {
    const t = setup();
    await settle();
    expect(state(t)).toEqual({ Owning: "Held" });
    expect(t.emitted).toMatchObject([{ type: "owned", lease: { owner: "a", revision: 1 }, takenOverFrom: null }]);
    await advance(t.clock, TTL);
    expect(t.store.leases.get("dev")?.revision).toBe(4); // taken, then renewed at 5 s, 10 s and 15 s
    expect(t.emitted).toHaveLength(1);
    expect(leaseValid(t.actor.getSnapshot().context, t.clock.now())).toBe(true);
  });

  it("image lease - waits while another instance holds it, and takes it over once it lapses", async () => {
    const clock = new SimulatedClock();
    const store = new MapLeases(() => clock.now());
    await store.write({ imageId: "dev", owner: "b", ttlMs: TTL, expectedRevision: 0 });
    const t = setup({ clock, store });
    await settle();
    expect(state(t)).toBe("Standby");
    await advance(clock, TTL - 1000);
    expect(t.emitted).toEqual([]);
    await advance(clock, 6000); // b never renewed: its lease lapsed at 15 s
    expect(t.emitted).toMatchObject([{ type: "owned", lease: { owner: "a", revision: 2 }, takenOverFrom: "b" }]);
  });

  it("image lease - renewals failing for the TTL less the margin lose the lease, before it lapses for others", async () => {
    const t = setup();
    await settle();
    const renewedAt = t.clock.now();
    t.store.down = true;
    await advance(t.clock, TTL - MARGIN - 100);
    expect(Object.keys(state(t) as object)).toEqual(["Owning"]);
    await advance(t.clock, 200);
    expect(t.emitted.at(-1)).toEqual({ type: "lost", imageId: "dev", reason: `not renewed within ${TTL - MARGIN} ms` });
    expect(t.clock.now() - renewedAt).toBeLessThan(TTL); // the others may take it only at TTL
    expect(leaseValid(t.actor.getSnapshot().context, t.clock.now())).toBe(false);
    t.store.down = false;
    await advance(t.clock, 1000);
    expect(t.emitted.at(-1)?.type).toBe("owned"); // its own lapsed lease is free again for it
  });

  it("image lease - a pause far past the TTL wakes up with the lease lost, whatever a renewal in flight answers", async () => {
    const t = setup();
    await settle();
    t.clock.increment(3 * TTL); // SIGSTOP: every timer overdue at once
    expect(t.emitted.at(-1)).toMatchObject({ type: "lost" });
    expect(leaseValid(t.actor.getSnapshot().context, t.clock.now())).toBe(false);
  });

  it("image lease - a renewal refused because another instance took the lease over loses it at once", async () => {
    const t = setup();
    await settle();
    const held = t.store.leases.get("dev");
    await t.store.write({ imageId: "dev", owner: "b", ttlMs: TTL, expectedRevision: held?.revision ?? 0 });
    await advance(t.clock, TTL / 3 + 100);
    expect(t.emitted.at(-1)).toEqual({ type: "lost", imageId: "dev", reason: "taken over by another instance" });
  });

  it("image lease - RELEASE gives the lease up at once, so another instance can take it", async () => {
    const t = setup();
    await settle();
    t.actor.send({ type: "RELEASE" });
    await settle();
    expect(t.actor.getSnapshot().status).toBe("done");
    expect(t.store.leases.has("dev")).toBe(false);
    expect(t.emitted.at(-1)).toEqual({ type: "released", imageId: "dev" });
    const b = setup({ owner: "b", store: t.store, clock: t.clock });
    await settle();
    expect(b.emitted).toMatchObject([{ type: "owned", lease: { owner: "b" }, takenOverFrom: null }]);
  });

  it("image lease - a free lease is left to the least loaded for the patience (min(TTL/2, 3 s)), then taken anyway", async () => {
    const t = setup({ eager: () => false });
    await settle();
    expect(state(t)).toBe("Deferring");
    const reads = countReads(t);
    await advance(t.clock, 2900);
    expect(t.emitted).toEqual([]);
    expect(reads()).toBeLessThanOrEqual(12); // four times a second, not in a loop
    await advance(t.clock, 1200); // free since 0: taken at the first read after 3 s
    expect(t.emitted).toMatchObject([{ type: "owned", lease: { owner: "a" } }]);
  });

  it("image lease - a deferred lease another instance takes meanwhile is waited out, not fought for", async () => {
    const t = setup({ eager: () => false });
    await settle();
    await t.store.write({ imageId: "dev", owner: "b", ttlMs: TTL, expectedRevision: 0 });
    await advance(t.clock, 5000);
    expect(state(t)).toBe("Standby");
    expect(t.emitted).toEqual([]);
  });

  it("image lease - HAND_OVER releases the held lease and defers; another takes it, or it is taken back after the patience", async () => {
    let eager = true;
    const t = setup({ eager: () => eager });
    await settle();
    eager = false;
    t.actor.send({ type: "HAND_OVER" });
    await settle();
    expect(t.store.leases.has("dev")).toBe(false);
    expect(state(t)).toBe("Deferring");
    expect(leaseValid(t.actor.getSnapshot().context, t.clock.now())).toBe(false);
    expect(t.emitted.map((e) => e.type)).toEqual(["owned"]); // no "lost": the manager removed the image first
    const b = setup({ owner: "b", store: t.store, clock: t.clock });
    await settle();
    expect(b.emitted).toMatchObject([{ type: "owned", lease: { owner: "b" } }]);
    await advance(t.clock, 10_000);
    expect(state(t)).toBe("Standby");
    expect(t.emitted.map((e) => e.type)).toEqual(["owned"]);
  });

  it("image lease - POKE reads another's lease at once: a release is taken without waiting for the poll", async () => {
    const clock = new SimulatedClock();
    const store = new MapLeases(() => clock.now());
    const held = await store.write({ imageId: "dev", owner: "b", ttlMs: TTL, expectedRevision: 0 });
    const t = setup({ clock, store });
    await settle();
    expect(state(t)).toBe("Standby");
    await store.release(held);
    t.actor.send({ type: "POKE" });
    await settle();
    expect(t.emitted).toMatchObject([{ type: "owned", lease: { owner: "a" }, takenOverFrom: null, handedOverBy: "b" }]);
  });

  it("image lease - a POKE while a read is in flight reads again after it, rather than waiting for the next poll", async () => {
    const clock = new SimulatedClock();
    const store = new MapLeases(() => clock.now());
    const held = await store.write({ imageId: "dev", owner: "b", ttlMs: TTL, expectedRevision: 0 });
    const t = setup({ clock, store });
    await settle();
    let answer = (): void => undefined;
    store.gate = new Promise((resolve) => (answer = resolve));
    clock.increment(1000); // the standby poll: a read is sent, and will answer b's lease
    await settle();
    expect(state(t)).toBe("Reading");
    await store.release(held);
    t.actor.send({ type: "POKE" });
    store.gate = null;
    answer();
    for (let i = 0; i < 4; i += 1) await settle();
    expect(t.emitted).toMatchObject([{ type: "owned", lease: { owner: "a" }, handedOverBy: "b" }]);
  });
});

describe("balance", () => {
  it("balance - every member has a load, 0 when it owns nothing; unknown owners are not counted", () => {
    expect(loadsOf(["a", "a", "b", null, "gone"], ["a", "b", "c"])).toEqual(
      new Map([
        ["a", 2],
        ["b", 1],
        ["c", 0],
      ]),
    );
  });

  it("balance - only the least loaded take at once; an instance two above the least hands one over", () => {
    const loads = loadsOf(["a", "a", "a", "b", "b", "b"], ["a", "b", "c"]);
    expect(["a", "b", "c"].map((m) => isLeastLoaded(m, loads))).toEqual([false, false, true]);
    expect(["a", "b", "c"].map((m) => shouldHandOver(m, loads))).toEqual([true, true, false]);
    // Within one of each other: nothing moves.
    const settled = loadsOf(["a", "a", "b", "b", "c"], ["a", "b", "c"]);
    expect(["a", "b", "c"].map((m) => shouldHandOver(m, settled))).toEqual([false, false, false]);
  });
});
