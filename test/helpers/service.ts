/**
 * A whole service in-process — session manager, events and API — over a real nats-server, a real
 * file store and the images given, with its log recorded; and a typed client on the same server.
 */
import { FileSessionStore } from "../../src/adapters/file-store/store.js";
import type { EventPublisherOptions } from "../../src/actors/event-publisher.js";
import type { NatsOptions } from "../../src/actors/nats-link.js";
import { StuiClient } from "../../src/client.js";
import type { ImageConfig, ManagerPolicy } from "../../src/machines/session-manager.js";
import { StuiService, type ServiceOptions } from "../../src/service.js";
import { startImageSim } from "./image-sim.js";
import { makeStoreDir, recordingLogger, TEST_CONNECTION, type LogEntry } from "./manager.js";

export interface ServiceHarness extends AsyncDisposable {
  readonly service: StuiService;
  readonly client: StuiClient;
  readonly dir: string;
  readonly logged: LogEntry[];
  /** Every log entry as one JSON text, to search for what must never be logged. */
  logText(): string;
  stop(): Promise<void>;
}

const running = new Set<ServiceHarness>();

export async function startService(options: {
  nats: NatsOptions;
  images?: readonly ImageConfig[];
  instanceId?: string;
  dir?: string;
  policy?: Partial<ManagerPolicy>;
  events?: Omit<EventPublisherOptions, "instanceId">;
  maxBodyBytes?: number;
  replyPrefixes?: ServiceOptions["replyPrefixes"];
  onRefused?: ServiceOptions["onRefused"];
}): Promise<ServiceHarness> {
  const dir = options.dir ?? (await makeStoreDir());
  const { logged, logger } = recordingLogger();
  const store = await FileSessionStore.open({ dir, logger });
  const service = await StuiService.start({
    instanceId: options.instanceId ?? "test",
    nats: options.nats,
    store,
    images: options.images ?? [],
    policy: { ...options.policy, connection: { ...TEST_CONNECTION, ...options.policy?.connection } },
    ...(options.events === undefined ? {} : { events: options.events }),
    ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
    ...(options.replyPrefixes === undefined ? {} : { replyPrefixes: options.replyPrefixes }),
    ...(options.onRefused === undefined ? {} : { onRefused: options.onRefused }),
    logger,
  });
  const client = await StuiClient.connect({ ...options.nats, timeoutMs: 10_000 });
  const stop = async (): Promise<void> => {
    if (!running.delete(harness)) return;
    await client.close().catch(() => undefined);
    await service.stop(2000);
  };
  const harness: ServiceHarness = {
    service,
    client,
    dir,
    logged,
    logText: () => logged.map((e) => JSON.stringify({ ...e.obj, msg: e.msg }, errorsAsText)).join("\n"),
    stop,
    [Symbol.asyncDispose]: stop,
  };
  running.add(harness);
  return harness;
}

/**
 * A service with `count` images (`img00`…) on one image-sim, resolved once every one is
 * Connected; `pingIntervalMs` sets how busy each connection's machine is (the test policy's 200 ms
 * when left out).
 */
export async function startFleet(natsUrl: string, count: number, pingIntervalMs?: number): Promise<ServiceHarness> {
  const sim = await startImageSim({ name: "fleet" });
  const images = Array.from({ length: count }, (_, n) => ({
    id: `img${String(n).padStart(2, "0")}`,
    address: sim.endpoint,
    name: null,
  }));
  const connection = pingIntervalMs === undefined ? {} : { pingIntervalMs };
  const h = await startService({ nats: { servers: natsUrl }, images, policy: { connection } });
  for (let waited = 0; ; waited += 100) {
    const r = await h.client.listImages();
    if (r.type === "Images" && r.images.filter((i) => i.status === "Connected").length === count) return h;
    if (waited > 30_000) throw new Error(`the fleet of ${count} images is not all Connected after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** For `afterEach`: stops every service still running. */
export async function stopServices(): Promise<void> {
  await Promise.all([...running].map((h) => h.stop()));
}

function errorsAsText(_key: string, value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message, cause: value.cause } : value;
}
