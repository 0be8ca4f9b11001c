/**
 * The live instances, as one instance sees them: every `everyMs` it pings the micro service
 * (`$SRV.PING.stui`) and keeps the `instance_id`s that answered. What the images are spread over
 * (see src/machines/balance.ts); a failed ping keeps the last answer. An instance that stops says
 * so first on `stui.instance.<id>.leaving`, before it hands its images over: the others drop it at
 * once, so that they take its images at once rather than leave them to it as the least loaded.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "../logger.js";
import { pingInstances } from "./instances.js";

export class Membership {
  private live: ReadonlySet<string>;
  private readonly timer: NodeJS.Timeout;
  private readonly leaving: Subscription;
  /** Instances that said they are leaving, left out of the pings' answers for a while. */
  private readonly gone = new Map<string, number>();
  private pinging = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly self: string,
    private readonly logger: Logger,
    private readonly everyMs = 2000,
  ) {
    this.live = new Set([self]);
    this.leaving = nc.subscribe(leavingSubject("*"), {
      callback: (error, msg) => {
        // A refused subscription calls back with an error and no message.
        if (error !== null) return;
        const id = msg.subject.split(".")[2] ?? "";
        if (id === self) return;
        this.gone.set(id, performance.now());
        this.live = new Set([...this.live].filter((member) => member !== id));
        logger.info({ instance_id: id }, `instance ${id} is leaving`);
      },
    });
    this.timer = setInterval(() => void this.ping(), everyMs);
    this.timer.unref();
    void this.ping();
  }

  members(): ReadonlySet<string> {
    return this.live;
  }

  /** Tells the others this instance is about to hand its images over. */
  announceLeaving(): void {
    if (!this.nc.isClosed()) this.nc.publish(leavingSubject(this.self));
  }

  stop(): void {
    clearInterval(this.timer);
    this.leaving.unsubscribe();
  }

  private async ping(): Promise<void> {
    if (this.pinging || this.nc.isClosed()) return;
    this.pinging = true;
    try {
      const now = performance.now();
      for (const [id, at] of this.gone) if (now - at > this.everyMs) this.gone.delete(id);
      const found = new Set(
        (await pingInstances(this.nc)).map((i) => i.instance_id).filter((id) => !this.gone.has(id)),
      );
      const changed = found.size !== this.live.size || [...found].some((id) => !this.live.has(id));
      if (changed)
        this.logger.info({ instances: [...found].sort() }, `live instances: ${[...found].sort().join(", ")}`);
      this.live = found;
    } catch (error) {
      this.logger.debug({ err: error }, "pinging the instances failed; keeping the last answer");
    } finally {
      this.pinging = false;
    }
  }
}

const leavingSubject = (instanceId: string): string => `stui.instance.${instanceId}.leaving`;
