/**
 * Model-based coverage of the image connection machine: shortest paths from `xstate/graph` to every
 * reachable state, replayed on a running actor (simulated clock, fake link); then every event in
 * every such state, checking that together they take every transition the machine defines.
 */
import { describe, expect, it } from "vitest";
import { createActor, SimulatedClock, type AnyStateNode, type SnapshotFrom } from "xstate";
import { getShortestPaths } from "xstate/graph";
import {
  imageConnectionMachine,
  type ImageConnectionEvent,
  type ImageConnectionInput,
} from "../src/machines/image-connection.js";
import { imageRequest } from "../src/protocol/index.js";
import { FakeLinks, SYSTEM_INFO } from "./helpers/fake-link.js";

const links = new FakeLinks();
const machine = imageConnectionMachine.provide({ actors: { link: links.logic } });
type Snapshot = SnapshotFrom<typeof machine>;

const input: ImageConnectionInput = {
  imageId: "dev",
  address: "tcp://127.0.0.1:5555",
  policy: { maxRestarts: 2, maxInFlight: 1, criticalMisses: 2 },
  now: () => 0,
  random: () => 0.5,
};

/** Every event the machine could be sent in `snapshot`, with the values that make it matter. */
function eventsIn(snapshot: Snapshot): ImageConnectionEvent[] {
  const { generation, pending } = snapshot.context;
  const events: ImageConnectionEvent[] = [
    { type: "LINK.UP", generation },
    { type: "LINK.UP", generation: generation - 1 },
    { type: "LINK.DOWN", generation, reason: "peer closed" },
    { type: "LINK.FAULT", generation, reason: "garbage" },
    { type: "LINK.AUTH_FAILED", generation, reason: "AuthFailed: CURVE key refused" },
    { type: "LINK.SEND_FAILED", generation, id: "x", reason: "EAGAIN" },
    { type: "REQUEST", request: imageRequest("client-1", "evaluate", { code: "1" }) },
    { type: "DISCONNECT" },
    { type: "RETRY" },
    { type: "NETWORK_CHANGED" },
    { type: "LINK.PINGED", generation, rttMs: 1 },
    { type: "LINK.PINGED", generation, rttMs: null },
  ];
  for (const [id, { command }] of pending) {
    const result =
      command === "system_info"
        ? SYSTEM_INFO
        : { result: "1", result_type: "SmallInteger", execution_time: 0, has_error: false };
    events.push({ type: "LINK.REPLY", generation, reply: { id, status: "success", result, timestamp: null } });
  }
  if (pending.size > 0) events.push({ type: "REQUEST.DEADLINE" });
  for (const node of snapshot._nodes) {
    for (const delayed of node.after) events.push({ type: delayed.eventType } as unknown as ImageConnectionEvent);
  }
  return events;
}

const serializeState = (snapshot: Snapshot): string => {
  const c = snapshot.context;
  // Ids and counters grow with every request; what matters is which kinds of request are pending.
  const pending = [...c.pending.values()].map((p) => p.origin).sort();
  return JSON.stringify([snapshot.value, c.restarts.length, pending, c.image.connection_health, Math.min(c.misses, 2)]);
};

function allTransitions(node: AnyStateNode): unknown[] {
  const own = [...node.transitions.values()].flat();
  return [...own, ...Object.values(node.states).flatMap((child) => allTransitions(child))];
}

describe("image connection - model-based paths", () => {
  const paths = getShortestPaths(machine, { input, events: eventsIn, serializeState });

  it("reaches every state of the machine", () => {
    const reached = new Set(paths.flatMap((p) => p.state._nodes.map((n) => n.id)));
    const defined = new Set<string>();
    const walk = (node: AnyStateNode): void => {
      defined.add(node.id);
      Object.values(node.states).forEach(walk);
    };
    walk(machine.root);
    expect([...defined].filter((id) => !reached.has(id))).toEqual([]);
  });

  it("takes every transition the machine defines from some reachable state", () => {
    const taken = new Set<unknown>();
    for (const path of paths) {
      for (const event of eventsIn(path.state)) {
        for (const transition of machine.getTransitionData(path.state, event)) taken.add(transition);
      }
    }
    const defined = allTransitions(machine.root);
    expect(defined.length).toBeGreaterThan(30);
    const untaken = defined.filter((t) => !taken.has(t));
    expect(
      untaken.map((t) => `${(t as { source: AnyStateNode }).source.id} on ${(t as { eventType: string }).eventType}`),
    ).toEqual([]);
  });

  it.each(paths.map((p) => [serializeState(p.state), p] as const))(
    "replays the path to %s on a running actor",
    (_name, path) => {
      const actor = createActor(machine, { input, clock: new SimulatedClock() });
      actor.start();
      for (const step of path.steps.slice(1)) actor.send(step.event);
      expect(serializeState(actor.getSnapshot())).toBe(serializeState(path.state));
      actor.stop();
    },
  );
});
