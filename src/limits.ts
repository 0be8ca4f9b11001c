/**
 * What a fleet of images needs of the process, checked before anything starts: file descriptors
 * (each image connection holds about four: its TCP socket, and libzmq's signalling descriptors for
 * the socket and for its event monitor) and libzmq's socket limit. Too low, and the service would
 * fail image by image later with `EMFILE` or "Too many open files"; here it is one clear line
 * naming the limit to raise. (Node.js raises its soft open files limit to the hard one as it
 * starts, so the hard limit is what counts.)
 */
import { readFileSync } from "node:fs";

/** File descriptors an image connection holds (measured: 4.0 per connected image). */
export const FDS_PER_IMAGE = 4;
/** File descriptors the rest of the service needs: NATS, the store, logs, metrics, the inspector. */
export const FDS_RESERVE = 256;

/** The soft and hard limits on open files, from `/proc/self/limits`; `null` where it cannot be read. */
export function openFilesLimit(read = (): string => readFileSync("/proc/self/limits", "utf8")): {
  soft: number;
  hard: number;
} | null {
  let text: string;
  try {
    text = read();
  } catch {
    return null;
  }
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (match === null) return null;
  const value = (s: string | undefined): number => (s === "unlimited" ? Number.POSITIVE_INFINITY : Number(s));
  return { soft: value(match[1]), hard: value(match[2]) };
}

/**
 * What stops `images` connections from running here, or `null`: the open files limit, or libzmq's
 * socket limit (`maxSockets`, one socket per image and a few of the service's own).
 */
export function capacityProblem(
  images: number,
  limits: { readonly openFiles: { soft: number; hard: number } | null; readonly zmqMaxSockets: number },
): string | null {
  const needed = images * FDS_PER_IMAGE + FDS_RESERVE;
  const files = limits.openFiles;
  if (files !== null && files.soft < needed) {
    const raise =
      files.hard >= needed
        ? `raise it to ${needed} or more (ulimit -n ${needed}; its hard limit, ${files.hard}, allows it)`
        : `raise it to ${needed} or more (LimitNOFILE=${needed} in the systemd unit, nofile in /etc/security/limits.conf, or ulimit -Hn ${needed} as root)`;
    return (
      `${images} images need about ${needed} open files (${FDS_PER_IMAGE} per image, ${FDS_RESERVE} for the rest), ` +
      `and this process may open ${files.soft} (its open files limit, ulimit -n): ${raise}`
    );
  }
  if (images + 16 > limits.zmqMaxSockets) {
    return (
      `${images} images need ${images + 16} ZeroMQ sockets and libzmq allows ${limits.zmqMaxSockets} ` +
      "(ZMQ_MAX_SOCKETS): run fewer images per instance, or several instances as one service (docs/cluster.md)"
    );
  }
  return null;
}
