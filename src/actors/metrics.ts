/**
 * Prometheus metrics of a running service, served on 127.0.0.1 only: images by status and health,
 * sessions, requests and errors by endpoint, events published, buffered and dropped, and the NATS
 * link. Gauges are read from the service when scraped; request counters count as answers go out.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Registry } from "prom-client";
import { isActive, isOrphaned } from "../machines/session-registry.js";
import { CONNECTION_HEALTHS, CONNECTION_STATUSES, type Response } from "../protocol/index.js";
import type { StuiService } from "../service.js";

export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"endpoint">;
  private readonly errors: Counter<"endpoint" | "code">;

  constructor(private readonly service: () => StuiService | null) {
    const registers = [this.registry];
    const state = () => this.service()?.manager.actor.getSnapshot().context ?? null;
    const statusOf = () => {
      const s = this.service();
      return s === null ? [] : [...s.manager.imageStatuses()];
    };
    new Gauge({
      name: "stui_images",
      help: "Images by connection status",
      labelNames: ["status"],
      registers,
      collect() {
        const images = statusOf();
        for (const status of CONNECTION_STATUSES)
          this.set({ status }, images.filter((i) => i.status === status).length);
      },
    });
    new Gauge({
      name: "stui_images_by_health",
      help: "Images by connection health",
      labelNames: ["health"],
      registers,
      collect() {
        const images = statusOf();
        for (const health of CONNECTION_HEALTHS) {
          this.set({ health }, images.filter((i) => i.connection_health === health).length);
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
  }

  /** Counts one answered request. */
  answered(endpoint: string, response: Response): void {
    this.requests.inc({ endpoint });
    if (response.type === "Error") this.errors.inc({ endpoint, code: response.code });
  }

  /** Serves `/metrics` on 127.0.0.1:`port` (0: any free port); resolves with the port bound. */
  async listen(port: number): Promise<{ server: Server; port: number }> {
    const server = createServer((req, res) => {
      if (req.url !== "/metrics") {
        res.writeHead(404).end("not found: try /metrics\n");
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": this.registry.contentType }).end(text),
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    return { server, port: (server.address() as AddressInfo).port };
  }
}
