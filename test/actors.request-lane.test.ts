/**
 * The request lane by itself: what it writes, how each request settles (reply, deadline, link
 * lost, too many in flight), and which replies it leaves to the machine.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RequestLane } from "../src/actors/request-lane.js";
import type { RequestOutcome } from "../src/machines/image-connection-logic.js";
import type { ImageSuccess } from "../src/protocol/index.js";

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

function lane(maxInFlight = 4) {
  const written: string[] = [];
  const outcomes = new Map<string, RequestOutcome>();
  const l = new RequestLane("dev", maxInFlight, (id) => written.push(id));
  const send = (id: string, timeoutMs = 1000): void =>
    l.request(id, "evaluate", `{"id":"${id}"}`, timeoutMs, (o) => outcomes.set(id, o));
  return { lane: l, written, outcomes, send };
}

const answer = (id: string): ImageSuccess => ({
  id,
  status: "success",
  result: { result: "7", result_type: "SmallInteger", execution_time: 0, has_error: false },
  timestamp: null,
});

describe("request lane", () => {
  it("writes each request and settles it by its reply, typed by its command", () => {
    const t = lane();
    t.send("a");
    t.send("b");
    expect(t.written).toEqual(["a", "b"]);
    expect(t.lane.settle(answer("b"))).toBe(true);
    expect(t.outcomes.get("b")).toMatchObject({ ok: true, result: { result: "7" } });
    expect(t.outcomes.has("a")).toBe(false);
    expect(t.lane.settle({ ...answer("a"), result: { nonsense: true } })).toBe(true);
    expect(t.outcomes.get("a")).toMatchObject({ ok: false, code: "ImageError" });
    expect(t.lane.stats).toMatchObject({ sent: 2, replies: 2 });
  });

  it("times each request out at its own deadline, and drops its late reply; a reply it never sent is the machine's", () => {
    const t = lane();
    t.send("slow", 500);
    t.send("slower", 800);
    vi.advanceTimersByTime(499);
    expect(t.outcomes.size).toBe(0);
    vi.advanceTimersByTime(1);
    expect(t.outcomes.get("slow")).toMatchObject({ ok: false, code: "Timeout" });
    vi.advanceTimersByTime(300);
    expect(t.outcomes.get("slower")).toMatchObject({ ok: false, code: "Timeout" });
    expect(t.lane.settle(answer("slow"))).toBe(true); // late: dropped here
    expect(t.lane.settle(answer("ping-dev-1"))).toBe(false); // not the lane's
    expect(t.lane.stats).toMatchObject({ timeouts: 2, late_replies: 1 });
  });

  it("refuses more than maxInFlight with Overloaded, and a duplicate id", () => {
    const t = lane(2);
    t.send("a");
    t.send("a");
    t.send("b");
    t.send("c");
    expect(t.written).toEqual(["a", "b"]);
    expect(t.outcomes.get("a")).toMatchObject({ ok: false, code: "InvalidRequest" });
    expect(t.outcomes.get("c")).toMatchObject({ ok: false, code: "Overloaded" });
  });

  it("fails every request in flight when its link closes, naming why, and every later one at once", () => {
    const t = lane();
    t.send("a");
    t.send("b");
    t.lane.close("heartbeats stopped");
    for (const id of ["a", "b"]) {
      expect(t.outcomes.get(id)).toMatchObject({
        ok: false,
        code: "ImageUnavailable",
        message: "link to image dev lost: heartbeats stopped",
      });
    }
    t.send("c");
    expect(t.written).toEqual(["a", "b"]);
    expect(t.outcomes.get("c")).toMatchObject({ ok: false, code: "ImageUnavailable" });
    vi.advanceTimersByTime(5_000); // no deadline left to fire
    expect(t.lane.stats.timeouts).toBe(0);
  });
});
