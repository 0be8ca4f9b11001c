/**
 * What `stui demo` does to one of its simulated images, whichever way it is asked: a key in the
 * panel (K, P, S on the selected image) or a line without a terminal ("kill 1", "pause 1",
 * "slow 1", ...). Kill (SIGKILL) or start it again on its endpoint; pause (SIGSTOP) or resume
 * (SIGCONT) it, so that its heartbeats stop and the link goes Reconnecting; slow its replies
 * down with the sim's `delay <ms>` control line, so that its health goes Warning, then Critical.
 */
import { DEFAULT_POLICY, type ConnectionPolicy } from "../machines/connection-policy.js";
import type { ConnectionHealth, ImageConnectionStatus } from "../protocol/index.js";
import type { Child } from "./children.js";
import { toggle, type Sim } from "./demo-view.js";
import type { PanelKey } from "./panel/run.js";

/**
 * The demo's connection policy: quick reconnections that never give up, and a ping timeout long
 * enough for the Critical slow-down to be answered (and so measured) rather than missed.
 */
export const DEMO_POLICY = {
  backoffBaseMs: 100,
  backoffCapMs: 1000,
  maxRestarts: 1000,
  pingTimeoutMs: 2000,
} as const satisfies Partial<ConnectionPolicy>;

/** The policy the demo's image connections run with. */
export const demoPolicy: ConnectionPolicy = { ...DEFAULT_POLICY, ...DEMO_POLICY };
const policy = demoPolicy;
const midway = (low: number, high: number): number => Math.round((low + high) / 2);

export interface SlowStep {
  /** The health a ping answered this late shows. */
  readonly health: ConnectionHealth;
  /** The sim's reply delay. */
  readonly delayMs: number;
}

/**
 * What S cycles through: no delay, then a delay in the middle of the Warning band, then one in
 * the middle of the Critical band, and back. A reply that came after the ping timeout would be a
 * miss instead, whose health climbs Warning → Critical by the count of misses, not by the RTT: so
 * even the Critical delay stays well within the timeout.
 */
export const SLOW_STEPS: readonly SlowStep[] = [
  { health: "Healthy", delayMs: 0 },
  { health: "Warning", delayMs: midway(policy.warnRttMs, policy.criticalRttMs) },
  {
    health: "Critical",
    delayMs: midway(policy.criticalRttMs, Math.min(policy.pingTimeoutMs, policy.requestTimeoutMs)),
  },
];

/** The faults a sim process has been given; a process started again has none. */
interface SimFaults {
  paused: boolean;
  /** Index into `SLOW_STEPS`. */
  slow: number;
}
const faultsOf = new WeakMap<Child, SimFaults>();
const faults = (child: Child): SimFaults => {
  const known = faultsOf.get(child);
  if (known !== undefined) return known;
  const fresh = { paused: false, slow: 0 };
  faultsOf.set(child, fresh);
  return fresh;
};

export type SimVerb = "kill" | "start" | "toggle" | "pause" | "resume" | "pause or resume" | "slow";

/** Does `verb` to `sim`; resolves with what to tell the user. */
export async function actOnSim(sim: Sim, verb: SimVerb): Promise<string> {
  if (verb === "kill" || verb === "start" || verb === "toggle") {
    let said = "";
    await toggle(sim, verb, (text) => (said = text));
    return said;
  }
  const state = sim.state;
  if (state.kind === "busy") return `${sim.id} is still ${state.doing}: ignored`;
  if (state.kind === "down") return `${sim.id} is down: start it first`;
  const child = state.child;
  const now = faults(child);
  if (verb === "slow") {
    const next = (now.slow + 1) % SLOW_STEPS.length;
    const step = SLOW_STEPS[next] ?? { health: "Healthy", delayMs: 0 };
    if (!child.write(`delay ${step.delayMs}`)) return `${sim.id} has exited`;
    now.slow = next;
    const when = now.paused ? " once resumed" : "";
    return step.delayMs === 0
      ? `${sim.id} replies at once again: watch its health go back Healthy${when}`
      : `${sim.id} replies ${step.delayMs} ms late: watch its health go ${step.health}${when}`;
  }
  const pause = verb === "pause" || (verb === "pause or resume" && !now.paused);
  if (pause === now.paused) return `${sim.id} is already ${now.paused ? "paused" : "running"}`;
  if (!child.kill(pause ? "SIGSTOP" : "SIGCONT")) return `${sim.id} has exited`;
  now.paused = pause;
  return pause
    ? `paused ${sim.id} (SIGSTOP): watch it go Reconnecting once its heartbeats are ${policy.heartbeatTimeoutMs} ms overdue`
    : `resumed ${sim.id} (SIGCONT): watch it come back Connected`;
}

/** The panel keys, acting on the selected image's sim. */
export function simKeys(sims: readonly Sim[]): PanelKey[] {
  const on =
    (verb: SimVerb) =>
    (image: ImageConnectionStatus | null): Promise<string> => {
      if (image === null) return Promise.resolve("no image selected");
      const sim = sims.find((s) => s.id === image.image_id);
      if (sim === undefined) return Promise.resolve(`${image.image_id} is not one of the demo's simulated images`);
      return actOnSim(sim, verb);
    };
  return [
    { key: "K", help: "kill the selected image's sim (SIGKILL), or start it again", run: on("toggle") },
    { key: "P", help: "pause the selected image's sim (SIGSTOP), or resume it (SIGCONT)", run: on("pause or resume") },
    { key: "S", help: "slow the selected image's replies: health Warning, Critical, off", run: on("slow") },
  ];
}

const LINE_VERBS: ReadonlyMap<string, SimVerb> = new Map(
  (["kill", "start", "pause", "resume", "slow"] as const).map((verb) => [verb, verb]),
);

/** The lines these answer without a terminal, for the ready line. */
export const SIM_LINES = '"kill 1", "start 1", "pause 1", "resume 1", "slow 1"';

/**
 * A line without a terminal: `<verb> <n>` (n from 1), or a bare `<n>` that kills or starts sim n;
 * `null` when the line is none of these.
 */
export function simLine(sims: readonly Sim[], line: string): Promise<string> | null {
  const [word = "", arg] = line.trim().split(/\s+/);
  const verb = arg === undefined && /^\d+$/.test(word) ? "toggle" : LINE_VERBS.get(word);
  const sim = sims[Number(verb === "toggle" ? word : arg) - 1];
  if (verb === undefined || sim === undefined) return null;
  return actOnSim(sim, verb);
}
