/**
 * The application ping of one link: a `ping` written to the link's socket every `intervalMs` from
 * the handshake on (and at once on a probe), its answer timed right there, beside the connection
 * machine. The machine is told each result in one event, the round trip or `null` for a ping not
 * answered within `timeoutMs`, and decides the health from it: the pinger measures, the machine
 * judges. A timer tick, the request, its reply and its deadline each went through the machine
 * before, and at a thousand images that was most of the service's own CPU (bench/image).
 *
 * One ping at a time: a busy image is not sent a queue of pings to answer afterwards. Any answer
 * counts, an image error too: it proves the image answers. The reply to a ping that already timed
 * out is recognised (the last few ids are remembered) and dropped.
 */
import { encodeImageRequest, imageRequest, type ImageReply } from "../protocol/index.js";

/** Timed-out ping ids remembered, to drop their late answers. */
const LATE_MEMORY = 8;

export interface PingTiming {
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

export class Pinger {
  private outstanding: { readonly id: string; readonly sentAt: number; readonly deadline: NodeJS.Timeout } | null =
    null;
  private readonly timedOut: string[] = [];
  private seq = 0;
  private ticker: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    /** Every ping's id starts with it; the rest is a sequence number. */
    private readonly idPrefix: string,
    private readonly timing: PingTiming,
    /** Queues a frame on the link's socket. */
    private readonly write: (id: string, frame: string) => void,
    /** A ping's round trip in ms, or `null`: not answered in time. */
    private readonly report: (rttMs: number | null) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Pings now and then every `intervalMs`, until `stop`. */
  start(): void {
    if (this.stopped || this.ticker !== null) return;
    this.ticker = setInterval(() => this.ping(), this.timing.intervalMs);
    this.ping();
  }

  /** Pings now, unless a ping is already waiting for its answer. */
  ping(): void {
    if (this.stopped || this.outstanding !== null) return;
    this.seq += 1;
    const id = `${this.idPrefix}${this.seq}`;
    const deadline = setTimeout(() => this.missed(), this.timing.timeoutMs);
    this.outstanding = { id, sentAt: this.now(), deadline };
    this.write(id, encodeImageRequest(imageRequest(id, "ping", {})));
  }

  /** Takes `reply` if it answers a ping (`true`); anything else is left to the link (`false`). */
  settle(reply: ImageReply): boolean {
    const id = reply.id;
    const waiting = this.outstanding;
    if (waiting !== null && id === waiting.id) {
      clearTimeout(waiting.deadline);
      this.outstanding = null;
      this.report(Math.max(0, this.now() - waiting.sentAt));
      return true;
    }
    return id !== null && this.timedOut.includes(id);
  }

  stop(): void {
    this.stopped = true;
    if (this.ticker !== null) clearInterval(this.ticker);
    if (this.outstanding !== null) clearTimeout(this.outstanding.deadline);
    this.ticker = null;
    this.outstanding = null;
  }

  private missed(): void {
    const waiting = this.outstanding;
    if (waiting === null) return;
    this.outstanding = null;
    if (this.timedOut.push(waiting.id) > LATE_MEMORY) this.timedOut.shift();
    this.report(null);
  }
}
