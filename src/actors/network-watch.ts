/**
 * Watches the host for what makes every image link suspect at once: a change of its network
 * interfaces (a laptop on another network, a VPN up or down, a cable pulled) and a resume from
 * sleep, seen as a timer that fires far later than it was set for (the host slept, or the
 * process was stopped). Either one is told, with why, to `onChange`; the service then sends
 * `NETWORK_CHANGED` to every image connection. No machine here: timers and `os` only.
 */
import { networkInterfaces, type NetworkInterfaceInfo } from "node:os";
import { performance } from "node:perf_hooks";

/** How often the interfaces are read (and the clock checked), unless configured. */
export const DEFAULT_POLL_MS = 2000;
/** A tick this much later than the poll interval is a resume from sleep, unless configured. */
export const DEFAULT_SLEEP_THRESHOLD_MS = 10_000;

export interface NetworkWatchOptions {
  /** How often the interfaces are read (and the clock checked). @default DEFAULT_POLL_MS */
  readonly pollMs?: number;
  /** A tick this much later than `pollMs` is a resume from sleep. @default DEFAULT_SLEEP_THRESHOLD_MS */
  readonly sleepThresholdMs?: number;
  /** Called with why, once per change. */
  readonly onChange: (reason: string) => void;
  /** The host's interfaces. @default os.networkInterfaces */
  readonly interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** Wall-clock ms (it runs on through a suspend, which the monotonic clock does not). @default Date.now */
  readonly now?: () => number;
}

export interface NetworkWatch {
  stop(): void;
}

/** The host's addresses, one `name address` each, loopback left out, sorted. */
export function addressesOf(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): string[] {
  const out: string[] = [];
  for (const [name, infos] of Object.entries(interfaces)) {
    for (const info of infos ?? []) if (!info.internal) out.push(`${name} ${info.cidr ?? info.address}`);
  }
  return out.sort();
}

/** What changed between two address lists, e.g. `+wlan0 10.0.0.7/24, -eth0 192.168.1.4/24`. */
export function describeChange(before: readonly string[], after: readonly string[]): string {
  const was = new Set(before);
  const is = new Set(after);
  const added = after.filter((a) => !was.has(a)).map((a) => `+${a}`);
  const removed = before.filter((a) => !is.has(a)).map((a) => `-${a}`);
  return [...added, ...removed].join(", ");
}

export function watchNetwork(options: NetworkWatchOptions): NetworkWatch {
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  const threshold = options.sleepThresholdMs ?? DEFAULT_SLEEP_THRESHOLD_MS;
  const read = options.interfaces ?? networkInterfaces;
  const now = options.now ?? Date.now;
  let addresses = addressesOf(read());
  let lastWall = now();
  let lastMono = performance.now();
  const timer = setInterval(() => {
    const wall = now();
    const mono = performance.now();
    // Whichever clock says more: the wall clock runs on through a suspend, and both through SIGSTOP.
    const late = Math.max(wall - lastWall, mono - lastMono) - pollMs;
    lastWall = wall;
    lastMono = mono;
    const current = addressesOf(read());
    const changed = describeChange(addresses, current);
    addresses = current;
    if (late > threshold) {
      options.onChange(
        `resumed: a ${pollMs} ms timer fired ${Math.round(late)} ms late (the host slept or the process was stopped)` +
          (changed === "" ? "" : `; network interfaces changed: ${changed}`),
      );
    } else if (changed !== "") options.onChange(`network interfaces changed: ${changed}`);
  }, pollMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
