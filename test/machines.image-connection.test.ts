import { describe, expect, it } from "vitest";
import { createActor, SimulatedClock } from "xstate";
import type { ConnectionPolicy } from "../src/machines/connection-policy.js";
import {
  imageConnectionMachine,
  type ImageConnectionActor,
  type ImageConnectionEmitted,
  type RequestOutcome,
} from "../src/machines/image-connection.js";
import { imageRequest } from "../src/protocol/index.js";
import { FakeLinks, PONG, SYSTEM_INFO } from "./helpers/fake-link.js";

const POLICY: Partial<ConnectionPolicy> = {
  connectTimeoutMs: 2000,
  pingIntervalMs: 1000,
  pingTimeoutMs: 500,
  warnRttMs: 100,
  criticalRttMs: 400,
  criticalMisses: 3,
  backoffBaseMs: 100,
  backoffCapMs: 1000,
  maxRestarts: 3,
  restartWindowMs: 60_000,
  requestTimeoutMs: 5000,
  maxInFlight: 4,
};

const EVALUATED = { result: "7", result_type: "SmallInteger", execution_time: 0.1, has_error: false };

function setupConnection(policy: Partial<ConnectionPolicy> = {}) {
  const clock = new SimulatedClock();
  const links = new FakeLinks();
  const actor: ImageConnectionActor = createActor(imageConnectionMachine.provide({ actors: { link: links.logic } }), {
    clock,
    input: {
      imageId: "dev",
      address: "tcp://127.0.0.1:5555",
      name: "Dev",
      policy: { ...POLICY, ...policy },
      now: () => clock.now(),
      random: () => 0.5,
    },
  });
  const emitted: ImageConnectionEmitted[] = [];
  actor.on("*", (event) => emitted.push(event));
  actor.start();
  const outcomes = new Map<string, RequestOutcome>();
  actor.on("settled", ({ id, outcome }) => outcomes.set(id, outcome));
  let n = 0;
  const request = (code = "3 + 4", timeoutMs?: number): string => {
    const req = imageRequest(`r${++n}`, "evaluate", { code });
    actor.send({ type: "REQUEST", request: req, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    return req.id;
  };
  const connect = (): void => {
    links.up();
    links.succeed("system_info", SYSTEM_INFO);
    links.pinged(5);
  };
  /**
   * SimulatedClock sets the final time before firing what is due, so timers armed while firing
   * count from the end of a jump: advance in small steps to see every periodic tick.
   */
  const advance = (ms: number, step = 50): void => {
    for (let left = ms; left > 0; left -= step) clock.increment(Math.min(step, left));
  };
  const status = () => actor.getSnapshot().context.image;
  const statuses = () => emitted.flatMap((e) => (e.type === "status" ? [e.data.status] : []));
  const healths = () => emitted.flatMap((e) => (e.type === "health" ? [e.data.health] : []));
  return { clock, links, actor, emitted, outcomes, request, connect, advance, status, statuses, healths };
}

describe("image connection - connecting", () => {
  it("counts the ZMTP handshake as Connected and asks the image who it is", () => {
    const t = setupConnection();
    expect(t.actor.getSnapshot().value).toBe("Unknown");
    expect(t.links.instances).toHaveLength(1);
    t.connect();
    expect(t.actor.getSnapshot().matches("Connected")).toBe(true);
    expect(t.status()).toMatchObject({ status: "Connected", image_name: "Pharo-12.0", image_version: "12.0.0" });
    expect(t.statuses()).toEqual(["Connected"]);
  });

  it("goes Reconnecting when no handshake completes within the connect timeout", () => {
    const t = setupConnection();
    t.clock.increment(2000);
    expect(t.actor.getSnapshot().value).toEqual({ Reconnecting: "backoff" });
    expect(t.links.instances[0]?.closed).toBe(true);
    const event = t.emitted.find((e) => e.type === "status");
    expect(event?.type === "status" && event.data.reason).toMatch(/no ZMTP handshake within 2000 ms/);
  });

  it("ignores events from a link it has already replaced", () => {
    const t = setupConnection();
    const first = t.links.current;
    t.clock.increment(2000); // attempt 1 gave up
    t.clock.increment(1000); // backoff over: attempt 2
    expect(t.links.instances).toHaveLength(2);
    first.emit({ type: "LINK.UP", generation: first.input.generation });
    expect(t.actor.getSnapshot().value).toEqual({ Reconnecting: "connecting" });
    t.links.up();
    expect(t.actor.getSnapshot().value).toBe("Connected");
  });
});

describe("image connection - requests", () => {
  it("correlates a reply by id and settles the typed result", () => {
    const t = setupConnection();
    t.connect();
    const id = t.request();
    t.links.succeed("evaluate", { result: "7", result_type: "SmallInteger", execution_time: 0.1, has_error: false });
    expect(t.outcomes.get(id)).toEqual({
      ok: true,
      command: "evaluate",
      result: { result: "7", result_type: "SmallInteger", execution_time: 0.1, has_error: false },
    });
  });

  it("maps an image error reply to the client protocol's code", () => {
    const t = setupConnection();
    t.connect();
    const id = t.request("foo bar");
    t.links.reply({
      id,
      status: "error",
      error: "unknown message #bar",
      error_type: "EvaluationError",
      timestamp: null,
    });
    expect(t.outcomes.get(id)).toMatchObject({ ok: false, code: "EvaluationError", errorType: "EvaluationError" });
  });

  it("fails a request whose result does not match its command", () => {
    const t = setupConnection();
    t.connect();
    const id = t.request();
    t.links.succeed("evaluate", { nonsense: true });
    expect(t.outcomes.get(id)).toMatchObject({ ok: false, code: "ImageError" });
    expect(t.actor.getSnapshot().matches("Connected")).toBe(true);
  });

  it("times each request out at its own deadline with one timer: a shorter one set after a longer one, and replies in between", () => {
    const t = setupConnection({ pingIntervalMs: 60_000 });
    t.connect();
    const long = t.request("1", 1000);
    const answered = t.request("2", 200);
    const short = t.request("3", 300);
    t.links.reply({ id: answered, status: "success", result: EVALUATED, timestamp: null });
    expect(t.outcomes.get(answered)).toMatchObject({ ok: true });
    t.clock.increment(299);
    expect(t.outcomes.has(short)).toBe(false);
    t.clock.increment(1);
    expect(t.outcomes.get(short)).toMatchObject({ ok: false, code: "Timeout" });
    expect(t.outcomes.has(long)).toBe(false);
    t.clock.increment(699);
    expect(t.outcomes.has(long)).toBe(false);
    t.clock.increment(1);
    expect(t.outcomes.get(long)).toMatchObject({ ok: false, code: "Timeout" });
    expect(t.actor.getSnapshot().context).toMatchObject({ deadlineAt: null, stats: { timeouts: 2 } });
    expect(t.actor.getSnapshot().context.pending.size).toBe(0);
  });

  it("times a request out at its deadline, then drops and counts its late reply", () => {
    const t = setupConnection();
    t.connect();
    const id = t.request("3 + 4", 300);
    t.clock.increment(299);
    expect(t.outcomes.has(id)).toBe(false);
    t.clock.increment(1);
    expect(t.outcomes.get(id)).toMatchObject({ ok: false, code: "Timeout" });
    t.links.succeed("evaluate", { result: "7", result_type: "SmallInteger", execution_time: 0.1, has_error: false });
    expect(t.actor.getSnapshot().context.stats).toMatchObject({ timeouts: 1, late_replies: 1 });
  });

  it("drops and counts a reply with an id it never sent", () => {
    const t = setupConnection();
    t.connect();
    t.links.reply({ id: "nobody", status: "success", result: PONG, timestamp: null });
    t.links.reply({ id: null, status: "error", error: "bad", error_type: "InvalidRequest", timestamp: null });
    expect(t.actor.getSnapshot().context.stats.unknown_replies).toBe(2);
  });

  it("refuses requests over the in-flight bound with Overloaded", () => {
    const t = setupConnection({ maxInFlight: 3 });
    t.connect();
    // The link's pings are not the machine's requests: they take none of its places.
    const ids = [t.request(), t.request(), t.request(), t.request()];
    expect(ids.map((id) => t.outcomes.get(id)?.ok)).toEqual([undefined, undefined, undefined, false]);
    expect(t.outcomes.get(ids[3] ?? "")).toMatchObject({ code: "Overloaded" });
  });

  it("fails every pending request at once when the link is lost, and new ones fast while Reconnecting", () => {
    const t = setupConnection();
    t.connect();
    const ids = [t.request(), t.request()];
    t.links.down("heartbeat timeout");
    for (const id of ids) {
      expect(t.outcomes.get(id)).toMatchObject({ ok: false, code: "ImageUnavailable" });
      expect((t.outcomes.get(id) as { message: string }).message).toMatch(/heartbeat timeout/);
    }
    const late = t.request();
    expect(t.outcomes.get(late)).toMatchObject({ ok: false, code: "ImageUnavailable" });
    expect(t.actor.getSnapshot().context.pending.size).toBe(0);
    // No timer of the failed requests survives to fire later.
    t.advance(10_000);
    expect(t.actor.getSnapshot().context.stats.timeouts).toBe(0);
  });

  it("fails requests fast before the first handshake", () => {
    const t = setupConnection();
    const id = t.request();
    expect(t.outcomes.get(id)).toMatchObject({ ok: false, code: "ImageUnavailable" });
    expect(t.links.current.sent).toEqual([]);
  });
});

describe("image connection - health", () => {
  it("derives health from the link's ping round trips: Healthy, Warning, Critical", () => {
    const t = setupConnection();
    t.connect();
    expect(t.status()).toMatchObject({ connection_health: "Healthy", rtt_ms: 5 });
    t.clock.increment(1000);
    t.links.pinged(150);
    expect(t.status()).toMatchObject({
      connection_health: "Warning",
      rtt_ms: 150,
      last_seen: "1970-01-01T00:00:01.000Z",
    });
    t.links.pinged(450);
    expect(t.status().connection_health).toBe("Critical");
    expect(t.healths()).toEqual(["Healthy", "Warning", "Critical"]);
  });

  it("turns missed pings into Warning then Critical while the status stays Connected", () => {
    const t = setupConnection();
    t.connect();
    t.links.pinged(null);
    expect(t.status()).toMatchObject({ connection_health: "Warning", rtt_ms: 5 });
    t.links.pinged(null);
    expect(t.status().connection_health).toBe("Warning");
    t.links.pinged(null);
    expect(t.status()).toMatchObject({ status: "Connected", connection_health: "Critical" });
    expect(t.actor.getSnapshot().context.misses).toBe(3);
    t.links.pinged(20);
    expect(t.status().connection_health).toBe("Healthy");
    expect(t.actor.getSnapshot().context.misses).toBe(0);
    expect(t.statuses()).toEqual(["Connected"]);
  });

  it("ignores the ping results of a link it has already replaced", () => {
    const t = setupConnection();
    t.connect();
    const first = t.links.current;
    t.links.down();
    t.clock.increment(t.actor.getSnapshot().context.backoffMs);
    t.links.up();
    first.emit({ type: "LINK.PINGED", generation: first.input.generation, rttMs: 600 });
    expect(t.status().connection_health).toBe("Unknown");
  });

  it("asks the link for a ping at once on NETWORK_CHANGED while Connected", () => {
    const t = setupConnection();
    t.connect();
    expect(t.links.current.probes).toBe(0);
    t.actor.send({ type: "NETWORK_CHANGED" });
    expect(t.links.current.probes).toBe(1);
    expect(t.links.current.input).toMatchObject({ pingIntervalMs: 1000, pingTimeoutMs: 500 });
  });

  it("reports health Unknown once the link is lost", () => {
    const t = setupConnection();
    t.connect();
    t.links.down();
    expect(t.status().connection_health).toBe("Unknown");
    expect(t.healths()).toEqual(["Healthy", "Unknown"]);
  });
});

describe("image connection - reconnecting", () => {
  it("reconnects after a jittered backoff and emits each status change once", () => {
    const t = setupConnection();
    t.connect();
    t.links.down("peer closed");
    expect(t.actor.getSnapshot().value).toEqual({ Reconnecting: "backoff" });
    expect(t.actor.getSnapshot().context.backoffMs).toBe(50); // 0.5 × base 100
    t.clock.increment(49);
    expect(t.links.instances).toHaveLength(1);
    t.clock.increment(1);
    expect(t.links.instances).toHaveLength(2);
    t.links.up();
    expect(t.statuses()).toEqual(["Connected", "Reconnecting", "Connected"]);
  });

  it("doubles the backoff bound per failed attempt up to the cap", () => {
    const t = setupConnection({ maxRestarts: 100 });
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      t.links.down();
      delays.push(t.actor.getSnapshot().context.backoffMs);
      t.clock.increment(t.actor.getSnapshot().context.backoffMs);
    }
    expect(delays).toEqual([100, 200, 400, 500, 500, 500]);
  });

  it("goes Failed after more restarts than the intensity allows, and RETRY starts over", () => {
    const t = setupConnection({ maxRestarts: 3 });
    for (let i = 0; i < 4; i++) {
      t.links.down();
      t.clock.increment(t.actor.getSnapshot().context.backoffMs);
    }
    expect(t.actor.getSnapshot().value).toBe("Failed");
    expect(t.links.instances).toHaveLength(4);
    expect(t.links.current.closed).toBe(true);
    const id = t.request();
    expect(t.outcomes.get(id)).toMatchObject({ code: "ImageUnavailable" });
    t.actor.send({ type: "RETRY" });
    expect(t.actor.getSnapshot().value).toEqual({ Reconnecting: "connecting" });
    t.links.up();
    expect(t.statuses()).toEqual(["Reconnecting", "Failed", "Reconnecting", "Connected"]);
  });

  it("forgets restarts older than the window", () => {
    const t = setupConnection({ maxRestarts: 2, restartWindowMs: 10_000 });
    for (let i = 0; i < 6; i++) {
      t.links.down();
      t.clock.increment(t.actor.getSnapshot().context.backoffMs);
      t.clock.increment(6000);
    }
    expect(t.actor.getSnapshot().matches("Reconnecting")).toBe(true);
  });

  it("retries at once with the backoff reset on NETWORK_CHANGED", () => {
    const t = setupConnection({ maxRestarts: 100 });
    for (let i = 0; i < 4; i++) {
      t.links.down();
      t.clock.increment(t.actor.getSnapshot().context.backoffMs);
    }
    t.links.down();
    expect(t.actor.getSnapshot().context.attempt).toBe(5);
    const links = t.links.instances.length;
    t.actor.send({ type: "NETWORK_CHANGED" });
    expect(t.links.instances.length).toBe(links + 1);
    expect(t.actor.getSnapshot().context.attempt).toBe(0);
  });

  it("resets the link when the image sends something that is no reply", () => {
    const t = setupConnection();
    t.connect();
    t.links.fault("the image sent an undecodable reply");
    expect(t.actor.getSnapshot().matches("Reconnecting")).toBe(true);
    expect(t.actor.getSnapshot().context.stats.faults).toBe(1);
  });
});

describe("image connection - reconnect progress", () => {
  /** The status events emitted so far, data only. */
  const statusEvents = (t: ReturnType<typeof setupConnection>) =>
    t.emitted.flatMap((e) => (e.type === "status" ? [e.data] : []));
  const at = (ms: number): string => new Date(ms).toISOString();

  it("a lost Connected link reports attempt 0 and the next attempt at now + the backoff", () => {
    const t = setupConnection();
    t.connect();
    t.clock.increment(300);
    t.links.down("peer closed");
    expect(t.actor.getSnapshot().context.backoffMs).toBe(50);
    const reconnecting = { status: "Reconnecting", reconnect_attempt: 0, next_attempt_at: at(350) };
    expect(statusEvents(t).at(-1)).toMatchObject({ ...reconnecting, previous_status: "Connected" });
    expect(t.status()).toMatchObject(reconnecting);
  });

  it("the first failed handshake reports attempt 1, with the backoff bound doubled", () => {
    const t = setupConnection();
    t.clock.increment(2000);
    // 0.5 × min(cap 1000, base 100 × 2^1)
    expect(t.actor.getSnapshot().context.backoffMs).toBe(100);
    expect(statusEvents(t)).toEqual([
      expect.objectContaining({ status: "Reconnecting", reconnect_attempt: 1, next_attempt_at: at(2100) }),
    ]);
  });

  it("has no next attempt time while an attempt is under way, and counts each failed one", () => {
    const t = setupConnection();
    t.connect();
    t.links.down();
    t.clock.increment(50);
    expect(t.actor.getSnapshot().value).toEqual({ Reconnecting: "connecting" });
    expect(t.status()).toMatchObject({ status: "Reconnecting", reconnect_attempt: 0, next_attempt_at: null });
    t.clock.increment(1000);
    t.links.down();
    expect(t.actor.getSnapshot().value).toEqual({ Reconnecting: "backoff" });
    expect(t.status()).toMatchObject({ reconnect_attempt: 1, next_attempt_at: at(1050 + 100) });
    t.clock.increment(100);
    t.clock.increment(2000);
    expect(t.status()).toMatchObject({ reconnect_attempt: 2, next_attempt_at: at(3150 + 200) });
    // Staying Reconnecting is no status change: one event for the whole outage.
    expect(t.statuses()).toEqual(["Connected", "Reconnecting"]);
  });

  it("clears both once Connected again", () => {
    const t = setupConnection();
    t.connect();
    t.links.down();
    t.clock.increment(50);
    t.links.up();
    const cleared = { reconnect_attempt: null, next_attempt_at: null };
    expect(statusEvents(t).at(-1)).toMatchObject({ status: "Connected", ...cleared });
    expect(t.status()).toMatchObject({ status: "Connected", ...cleared });
  });

  it("clears both on Failed and on Disconnected, and RETRY reports attempt 0 with no wait", () => {
    const t = setupConnection({ maxRestarts: 3 });
    for (let i = 0; i < 4; i++) {
      t.links.down();
      t.clock.increment(t.actor.getSnapshot().context.backoffMs);
    }
    const cleared = { reconnect_attempt: null, next_attempt_at: null };
    expect(statusEvents(t).at(-1)).toMatchObject({ status: "Failed", ...cleared });
    expect(t.status()).toMatchObject({ status: "Failed", ...cleared });
    t.actor.send({ type: "RETRY" });
    expect(statusEvents(t).at(-1)).toMatchObject({
      status: "Reconnecting",
      reconnect_attempt: 0,
      next_attempt_at: null,
    });
    t.actor.send({ type: "DISCONNECT" });
    expect(statusEvents(t).at(-1)).toMatchObject({ status: "Disconnected", ...cleared });
    expect(t.status()).toMatchObject({ status: "Disconnected", ...cleared });
  });

  it("has neither before the first attempt ends", () => {
    const t = setupConnection();
    expect(t.status()).toMatchObject({ status: "Unknown", reconnect_attempt: null, next_attempt_at: null });
  });
});

describe("image connection - disconnecting", () => {
  it("closes the link on DISCONNECT and stays Disconnected", () => {
    const t = setupConnection();
    t.connect();
    const id = t.request();
    t.actor.send({ type: "DISCONNECT" });
    expect(t.actor.getSnapshot().value).toBe("Disconnected");
    expect(t.links.current.closed).toBe(true);
    expect(t.outcomes.get(id)).toMatchObject({ code: "ImageUnavailable" });
    for (const type of ["RETRY", "NETWORK_CHANGED"] as const) t.actor.send({ type });
    t.clock.increment(120_000);
    expect(t.actor.getSnapshot().value).toBe("Disconnected");
    expect(t.links.instances).toHaveLength(1);
  });
});
