/**
 * Prometheus metrics of a running service, served on 127.0.0.1 only, with the probes an
 * orchestrator asks: `/healthz` (the process answers) and `/readyz` (NATS connected and the store
 * writable). Per-image series carry an `image_id` label; gauges are read from the service when
 * scraped, request counters and the latency histogram count as answers go out. Node's default
 * process metrics (CPU, memory, event loop lag, handles) come along.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { RefusalReason } from "./reply-guard.js";
import { isActive, isOrphaned } from "../machines/session-registry.js";
import {
  CONNECTION_HEALTHS,
  CONNECTION_STATUSES,
  type ImageConnectionStatus,
  type Response,
} from "../protocol/index.js";
import type { StuiService } from "../service.js";

/** Request latency buckets, in seconds: from a cached answer to an evaluation that takes seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** What `/readyz` finds: ready, or the reasons it is not. */
export interface Readiness {
  readonly ready: boolean;
  readonly reasons: readonly string[];
}

export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"endpoint">;
  private readonly errors: Counter<"endpoint" | "code">;
  private readonly latency: Histogram<"endpoint">;
  private readonly refused: Counter<"reason">;

  constructor(private readonly service: () => StuiService | null) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const state = () => this.service()?.manager.actor.getSnapshot().context ?? null;
    const images = (): ImageConnectionStatus[] => this.service()?.manager.imageStatuses() ?? [];
    new Gauge({
      name: "stui_images",
      help: "Images by connection status",
      labelNames: ["status"],
      registers,
      collect() {
        const all = images();
        for (const status of CONNECTION_STATUSES) this.set({ status }, all.filter((i) => i.status === status).length);
      },
    });
    new Gauge({
      name: "stui_images_by_health",
      help: "Images by connection health",
      labelNames: ["health"],
      registers,
      collect() {
        const all = images();
        for (const health of CONNECTION_HEALTHS) {
          this.set({ health }, all.filter((i) => i.connection_health === health).length);
        }
      },
    });
    /** One series per image and value, 1 on the image's current one. */
    const perImage = <V extends string>(
      name: string,
      help: string,
      label: string,
      values: readonly V[],
      current: (image: ImageConnectionStatus) => V,
    ): void => {
      new Gauge({
        name,
        help,
        labelNames: ["image_id", label],
        registers,
        collect() {
          this.reset(); // an image removed at run time leaves no stale series
          for (const image of images()) {
            for (const value of values)
              this.set({ image_id: image.image_id, [label]: value }, current(image) === value ? 1 : 0);
          }
        },
      });
    };
    perImage(
      "stui_image_status",
      "Each image's connection status: 1 for the current one",
      "status",
      CONNECTION_STATUSES,
      (i) => i.status,
    );
    perImage(
      "stui_image_health",
      "Each image's connection health: 1 for the current one",
      "health",
      CONNECTION_HEALTHS,
      (i) => i.connection_health,
    );
    new Gauge({
      name: "stui_image_rtt_seconds",
      help: "Each image's last application ping round trip (absent until one is measured)",
      labelNames: ["image_id"],
      registers,
      collect() {
        this.reset();
        for (const image of images()) {
          if (image.rtt_ms !== null) this.set({ image_id: image.image_id }, image.rtt_ms / 1000);
        }
      },
    });
    new Gauge({
      name: "stui_sessions",
      help: "Stored sessions: all, active, orphaned",
      labelNames: ["state"],
      registers,
      collect() {
        const sessions = state()?.registry.sessionsOf(null) ?? [];
        this.set({ state: "total" }, sessions.length);
        this.set({ state: "active" }, sessions.filter(isActive).length);
        this.set({ state: "orphaned" }, sessions.filter(isOrphaned).length);
      },
    });
    this.requests = new Counter({
      name: "stui_requests_total",
      help: "API requests answered, by endpoint",
      labelNames: ["endpoint"],
      registers,
    });
    this.errors = new Counter({
      name: "stui_request_errors_total",
      help: "API requests answered with an Error, by endpoint and error code",
      labelNames: ["endpoint", "code"],
      registers,
    });
    this.latency = new Histogram({
      name: "stui_request_duration_seconds",
      help: "Time from a request's arrival to its answer, by endpoint",
      labelNames: ["endpoint"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.refused = new Counter({
      name: "stui_api_refused_total",
      help: "API requests not answered, by reason (reply_prefix: a reply subject outside the accepted inboxes)",
      labelNames: ["reason"],
      registers,
    });
    const counts = () => this.service()?.publisher.counts ?? { published: 0, buffered: 0, dropped: 0 };
    new Counter({
      name: "stui_events_published_total",
      help: "Events published to NATS",
      registers,
      collect() {
        this.reset();
        this.inc(counts().published);
      },
    });
    new Counter({
      name: "stui_events_dropped_total",
      help: "Events dropped: the outage buffer was full, or the event failed its schema",
      registers,
      collect() {
        this.reset();
        this.inc(counts().dropped);
      },
    });
    new Gauge({
      name: "stui_events_buffered",
      help: "Events waiting for the NATS link",
      registers,
      collect() {
        this.set(counts().buffered);
      },
    });
    const linkStatus = () => this.service()?.link.status ?? "Unknown";
    new Gauge({
      name: "stui_nats_link",
      help: "The NATS link: 1 for the current status",
      labelNames: ["status"],
      registers,
      collect() {
        const current = linkStatus();
        for (const status of CONNECTION_STATUSES) this.set({ status }, status === current ? 1 : 0);
      },
    });
    const storeWritable = () => this.service()?.manager.storeStatus().writable ?? false;
    new Gauge({
      name: "stui_store_writable",
      help: "1 while the session store takes writes; 0 while degraded (a write failed, no probe has succeeded since)",
      registers,
      collect() {
        this.set(storeWritable() ? 1 : 0);
      },
    });
  }

  /** Counts one answered request. */
  answered(endpoint: string, response: Response, seconds: number): void {
    this.requests.inc({ endpoint });
    this.latency.observe({ endpoint }, seconds);
    if (response.type === "Error") this.errors.inc({ endpoint, code: response.code });
  }

  /** Counts one request that was not answered. */
  refusedRequest(reason: RefusalReason): void {
    this.refused.inc({ reason });
  }

  /** Ready: the service has started, its NATS link is up and its store writable. */
  readiness(): Readiness {
    const service = this.service();
    if (service === null) return { ready: false, reasons: ["the service is starting"] };
    const reasons: string[] = [];
    if (service.link.status !== "Connected") reasons.push(`the NATS link is ${service.link.status}`);
    const store = service.manager.storeStatus();
    if (!store.writable) reasons.push(`the session store cannot write (${store.reason ?? "unknown"})`);
    return { ready: reasons.length === 0, reasons };
  }

  /**
   * Serves `/metrics`, `/healthz` and `/readyz` on 127.0.0.1:`port` (0: any free port); resolves
   * with the port bound, or rejects (e.g. `EADDRINUSE`) without having served anything.
   */
  async listen(port: number): Promise<{ server: Server; port: number }> {
    const server = createServer((req, res) => {
      switch (req.url) {
        case "/metrics":
          this.registry.metrics().then(
            (text) => res.writeHead(200, { "content-type": this.registry.contentType }).end(text),
            (error: unknown) => res.writeHead(500).end(String(error)),
          );
          return;
        case "/healthz":
          res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
          return;
        case "/readyz": {
          const readiness = this.readiness();
          res
            .writeHead(readiness.ready ? 200 : 503, { "content-type": "application/json" })
            .end(`${JSON.stringify(readiness)}\n`);
          return;
        }
        default:
          res.writeHead(404).end("not found: try /metrics, /healthz or /readyz\n");
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    return { server, port: (server.address() as AddressInfo).port };
  }
}
