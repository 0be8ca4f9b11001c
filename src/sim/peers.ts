/**
 * Who talks to the simulated image: the connections its socket has open (from the socket's
 * `accept` / `disconnect` events) and, per peer, what it sent. A cluster test reads this to prove
 * that two service instances never send to one image at the same time.
 *
 * A peer is one ZMTP connection, named by its ROUTER routing id: a DEALER that reconnects is a
 * new peer. The socket events only carry the listening endpoint (libzmq reports the fd, which
 * zeromq.js does not pass on), so `accepted` and `disconnected` cannot name the peer.
 */
import { systemClock, type Clock } from "../clock.js";
import type { ImageCommand } from "../protocol/index.js";

/** One line of `stui image-sim --peer-log`, printed as `peer <json>`. */
export type PeerLogEntry =
  | {
      /** Wall-clock ms since the epoch. */
      readonly at: number;
      readonly event: "accepted" | "disconnected";
      readonly peer: null;
      /** Connections open after this event. */
      readonly connected: number;
    }
  | {
      readonly at: number;
      readonly event: "request";
      readonly peer: string;
      /** `null` for a request that did not decode (it is still answered, with `InvalidRequest`). */
      readonly command: ImageCommand | null;
      readonly connected: number;
    };

export type PeerEvent = PeerLogEntry["event"];

/** What one peer sent. */
export interface PeerStats {
  readonly peer: string;
  readonly requests: number;
  readonly last_command: ImageCommand | null;
  /** Wall-clock ms of its last request. */
  readonly last_at: number;
}

/** The answer to the `peers` control line. */
export interface PeerReport {
  readonly connected: number;
  /** Every peer that sent a request (connected or not), first seen first. */
  readonly peers: readonly PeerStats[];
}

/** A client that churns through connections must not grow the sim without bound. */
export const MAX_TRACKED_PEERS = 1024;

/** The short, stable name of a peer: its routing id in hex (libzmq's are 5 bytes: 10 digits). */
export const peerId = (routingId: Buffer): string => routingId.toString("hex");

export class PeerBook {
  private connected = 0;
  private readonly stats = new Map<string, PeerStats>();

  constructor(private readonly clock: Pick<Clock, "now"> = systemClock) {}

  accepted(): PeerLogEntry {
    this.connected += 1;
    return { at: this.clock.now(), event: "accepted", peer: null, connected: this.connected };
  }

  disconnected(): PeerLogEntry {
    // Never below zero, whatever order the monitor delivers its events in.
    this.connected = Math.max(0, this.connected - 1);
    return { at: this.clock.now(), event: "disconnected", peer: null, connected: this.connected };
  }

  request(peer: string, command: ImageCommand | null): PeerLogEntry {
    const at = this.clock.now();
    const before = this.stats.get(peer);
    this.stats.set(peer, { peer, requests: (before?.requests ?? 0) + 1, last_command: command, last_at: at });
    if (before === undefined && this.stats.size > MAX_TRACKED_PEERS) {
      const oldest = this.stats.keys().next();
      if (oldest.done !== true) this.stats.delete(oldest.value);
    }
    return { at, event: "request", peer, command, connected: this.connected };
  }

  report(): PeerReport {
    return { connected: this.connected, peers: [...this.stats.values()] };
  }
}
