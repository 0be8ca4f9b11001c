/**
 * The request lane of one link: a client's request to an image written to the link's socket and
 * its reply settled right there, beside the connection machine rather than through it. Two XState
 * events per request (the request and its reply) were most of what the connection actor added to
 * a round trip (bench/image), and a request needs nothing of the machine while it is Connected.
 *
 * The machine stays the one that decides: requests take the lane only while it says Connected (on
 * the link that owns the lane); otherwise, and for its own pings and probes, they go through the
 * machine as before. A lane lives and dies with its link: when the machine closes the link (lost,
 * faulty, disconnected, replaced), every request still in the lane fails `ImageUnavailable`.
 * Each request has its own deadline (`Timeout`), and at most `maxInFlight` are in a lane
 * (`Overloaded`). A reply whose id the lane does not know goes to the machine, which counts it.
 */
import { outcomeOf, refusals, TIMED_OUT_MEMORY, type RequestOutcome } from "../machines/image-connection-logic.js";
import type { ImageCommand, ImageReply } from "../protocol/index.js";

interface LaneRequest {
  readonly command: ImageCommand;
  readonly settle: (outcome: RequestOutcome) => void;
  readonly timer: NodeJS.Timeout;
}

/** What the lane has done, beside the machine's own `stats`. */
export interface LaneStats {
  sent: number;
  replies: number;
  late_replies: number;
  timeouts: number;
  overloaded: number;
}

export class RequestLane {
  private readonly pending = new Map<string, LaneRequest>();
  private readonly timedOut: string[] = [];
  private closedBecause: string | null = null;
  readonly stats: LaneStats = { sent: 0, replies: 0, late_replies: 0, timeouts: 0, overloaded: 0 };

  constructor(
    private readonly imageId: string,
    private readonly maxInFlight: number,
    /** Queues a frame on the link's socket. */
    private readonly write: (id: string, frame: string) => void,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** Sends `frame` (the request `id`) and settles it by its reply, its deadline or the link's end. */
  request(
    id: string,
    command: ImageCommand,
    frame: string,
    timeoutMs: number,
    settle: (o: RequestOutcome) => void,
  ): void {
    if (this.closedBecause !== null) return settle(refusals.linkLost(this.imageId, this.closedBecause));
    if (this.pending.has(id)) return settle(refusals.duplicate(id));
    if (this.pending.size >= this.maxInFlight) {
      this.stats.overloaded += 1;
      return settle(refusals.overloaded(this.imageId, this.maxInFlight));
    }
    const timer = setTimeout(() => this.expire(id), timeoutMs);
    this.pending.set(id, { command, settle, timer });
    this.stats.sent += 1;
    this.write(id, frame);
  }

  /** Settles the request `reply` answers; `false` when it is none of the lane's (the machine's, or unknown). */
  settle(reply: ImageReply): boolean {
    const id = reply.id;
    if (id === null) return false;
    const request = this.pending.get(id);
    if (request === undefined) {
      if (!this.timedOut.includes(id)) return false;
      this.stats.late_replies += 1;
      return true;
    }
    this.pending.delete(id);
    clearTimeout(request.timer);
    this.stats.replies += 1;
    request.settle(outcomeOf(request.command, reply, this.imageId));
    return true;
  }

  /** The link is gone: every request still in the lane fails, and later ones are refused. */
  close(reason: string): void {
    if (this.closedBecause !== null) return;
    this.closedBecause = reason;
    const outcome = refusals.linkLost(this.imageId, reason);
    const requests = [...this.pending.values()];
    this.pending.clear();
    for (const request of requests) {
      clearTimeout(request.timer);
      request.settle(outcome);
    }
  }

  private expire(id: string): void {
    const request = this.pending.get(id);
    if (request === undefined) return;
    this.pending.delete(id);
    if (this.timedOut.push(id) > TIMED_OUT_MEMORY) this.timedOut.shift();
    this.stats.timeouts += 1;
    request.settle(refusals.timeout(this.imageId, request.command));
  }
}
