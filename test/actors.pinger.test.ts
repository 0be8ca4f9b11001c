/**
 * The link's pinger by itself: when it pings, what it reports for an answer and for silence, that
 * one ping waits at a time, and which replies it takes.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Pinger } from "../src/actors/pinger.js";
import { decodeImageRequest, type ImageReply } from "../src/protocol/index.js";

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

function pinger(intervalMs = 1000, timeoutMs = 500) {
  const written: string[] = [];
  const reports: (number | null)[] = [];
  const p = new Pinger(
    "ping-dev-",
    { intervalMs, timeoutMs },
    (id, frame) => {
      const decoded = decodeImageRequest(frame);
      if (!decoded.ok || decoded.value.id !== id || decoded.value.command !== "ping") throw new Error(frame);
      written.push(id);
    },
    (rtt) => reports.push(rtt),
    () => Date.now(),
  );
  return { pinger: p, written, reports };
}

const pong = (id: string): ImageReply => ({
  id,
  status: "success",
  result: { message: "pong", status: "ready", uptime: 1 },
  timestamp: null,
});

describe("pinger", () => {
  it("pings at start and every interval, and reports each round trip", () => {
    const t = pinger();
    t.pinger.start();
    expect(t.written).toEqual(["ping-dev-1"]);
    vi.advanceTimersByTime(30);
    expect(t.pinger.settle(pong("ping-dev-1"))).toBe(true);
    expect(t.reports).toEqual([30]);
    vi.advanceTimersByTime(970);
    expect(t.written).toEqual(["ping-dev-1", "ping-dev-2"]);
    t.pinger.start(); // a second handshake of the same link: no second ticker
    vi.advanceTimersByTime(1000);
    expect(t.written).toEqual(["ping-dev-1", "ping-dev-2", "ping-dev-3"]);
  });

  it("reports a ping unanswered within the timeout as missed, and drops its late answer", () => {
    const t = pinger();
    t.pinger.start();
    vi.advanceTimersByTime(499);
    expect(t.reports).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(t.reports).toEqual([null]);
    expect(t.pinger.settle(pong("ping-dev-1"))).toBe(true);
    expect(t.reports).toEqual([null]);
  });

  it("keeps one ping waiting at a time: ticks and probes while it waits send nothing", () => {
    const t = pinger(100, 1000);
    t.pinger.start();
    vi.advanceTimersByTime(950);
    t.pinger.ping();
    expect(t.written).toEqual(["ping-dev-1"]);
    vi.advanceTimersByTime(50);
    expect(t.reports).toEqual([null]);
    t.pinger.ping(); // a probe once nothing waits
    expect(t.written).toEqual(["ping-dev-1", "ping-dev-2"]);
  });

  it("counts an image error as an answer, and leaves every other reply to the link", () => {
    const t = pinger();
    t.pinger.start();
    expect(t.pinger.settle(pong("client-7"))).toBe(false);
    expect(
      t.pinger.settle({ id: null, status: "error", error: "bad", error_type: "InvalidRequest", timestamp: null }),
    ).toBe(false);
    const error: ImageReply = {
      id: "ping-dev-1",
      status: "error",
      error: "busy",
      error_type: "RuntimeError",
      timestamp: null,
    };
    expect(t.pinger.settle(error)).toBe(true);
    expect(t.reports).toEqual([0]);
  });

  it("sends and reports nothing once stopped", () => {
    const t = pinger();
    t.pinger.start();
    t.pinger.stop();
    vi.advanceTimersByTime(5000);
    t.pinger.ping();
    expect(t.written).toEqual(["ping-dev-1"]);
    expect(t.reports).toEqual([]);
  });
});
