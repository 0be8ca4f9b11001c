/**
 * `stui serve`: the service from a configuration file. SIGTERM, SIGINT or SIGHUP stops it cleanly
 * (requests stop being taken, final statuses and `instance.<id>.stopped` are published, NATS and
 * the store are flushed, every socket closed, exit 0; 1 if some event could not be published); a
 * second signal forces the exit. Exit 2: a bad configuration, or a NATS server without JetStream.
 */
import type { Server } from "node:http";
import { parseArgs } from "node:util";
import { pino, type Logger as Pino } from "pino";
import { FileSessionStore } from "../adapters/file-store/store.js";
import { KvImageCatalog } from "../adapters/kv-store/catalog.js";
import { KvLeaseStore } from "../adapters/kv-store/leases.js";
import { KvSessionStore } from "../adapters/kv-store/store.js";
import { ServiceMetrics } from "../actors/metrics.js";
import {
  ApiStartError,
  ConfigError,
  DuplicateInstanceError,
  JetStreamMissingError,
  NatsConnectError,
  NatsPermissionError,
  StoreFormatError,
  StoreLockedError,
} from "../errors.js";
import {
  apiOptionsOf,
  defaultInstanceId,
  eventOptionsOf,
  managerPolicyOf,
  networkOptionsOf,
  natsOptionsOf,
  readConfig,
  type LoadedConfig,
  type ServeConfig,
} from "../config.js";
import { openInspector, type Inspector } from "../inspect/inspector.js";
import { LocalInspectSource } from "../inspect/local-source.js";
import type { Logger } from "../logger.js";
import type { ImageConfig } from "../machines/session-manager.js";
import { zmqSocketLimit } from "../actors/image-link.js";
import { capacityProblem, openFilesLimit } from "../limits.js";
import { StuiService } from "../service.js";
import { InspectFlagError, inspectFlag, parsePort } from "./inspect-flag.js";

const USAGE = `usage: stui serve [--config FILE] [options]

Runs the multi-image session service: connects the configured images, publishes their events on
NATS and answers requests on stui.api.*. Configuration: a JSON or YAML file (see README.md),
overridden by STUI_* / NATS_URL environment variables, overridden by these flags.

options:
  -c, --config FILE        configuration file (.json, .yaml or .yml)
  --nats-url URL           NATS server (env NATS_URL; default nats://127.0.0.1:4222)
  --instance-id ID         this instance's id in events (env STUI_INSTANCE_ID; default the host name)
  --store PATH             session store directory (env STUI_STORE_PATH; default ./stui-data)
  --log-level LEVEL        fatal, error, warn, info, debug, trace (env STUI_LOG_LEVEL; default info)
  --metrics-port PORT      Prometheus metrics on 127.0.0.1:PORT/metrics (env STUI_METRICS_PORT)
  --inspect [PORT]         the web inspector of this instance on 127.0.0.1:PORT (default a free
                           port); its URL, with its token, is logged as "inspector: <url>"
  -h, --help               this text`;

/** How long a clean stop may take before the process exits anyway. */
const STOP_DEADLINE_MS = 15_000;

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: inspectFlag(argv),
      options: {
        config: { type: "string", short: "c" },
        inspect: { type: "string" },
        "nats-url": { type: "string" },
        "instance-id": { type: "string" },
        store: { type: "string" },
        "log-level": { type: "string" },
        "metrics-port": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    console.error(`stui serve: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  let inspectPort: number | null;
  try {
    inspectPort = values.inspect === undefined ? null : parsePort(values.inspect, "--inspect");
  } catch (error) {
    if (!(error instanceof InspectFlagError)) throw error;
    console.error(`stui serve: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  let loaded: LoadedConfig;
  try {
    loaded = await readConfig(values.config ?? null, process.env, {
      ...(values["nats-url"] === undefined ? {} : { natsUrl: values["nats-url"] }),
      ...(values["instance-id"] === undefined ? {} : { instanceId: values["instance-id"] }),
      ...(values.store === undefined ? {} : { storePath: values.store }),
      ...(values["log-level"] === undefined ? {} : { logLevel: values["log-level"] }),
      ...(values["metrics-port"] === undefined ? {} : { metricsPort: values["metrics-port"] }),
    });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.problems.map((problem) => `stui serve: ${problem}`).join("\n"));
      return 2;
    }
    throw error;
  }
  const tooMany = capacityProblem(loaded.images.length, {
    openFiles: openFilesLimit(),
    zmqMaxSockets: zmqSocketLimit(),
  });
  if (tooMany !== null) {
    console.error(`stui serve: ${tooMany}`);
    return 2;
  }
  const code = await serve(loaded, inspectPort);
  // Whatever might still hold the event loop (a stuck socket, a log transport) must not keep a
  // stopped service alive.
  setTimeout(() => process.exit(code), 2000).unref();
  return code;
}

/** pino: JSON lines when not on a terminal, readable lines on one. */
export function makeLogger(level: string): Pino {
  const pretty = process.stdout.isTTY === true;
  return pino({
    level,
    base: { pid: process.pid },
    redact: { paths: ["*.pass", "*.token", "*.nkeySeed", "*.nkey_seed"], censor: "[redacted]" },
    ...(pretty ? { transport: { target: "pino-pretty", options: { colorize: true } } } : {}),
  });
}

/** pino's methods take (object, message): exactly the service's `Logger`. */
const asLogger = (log: Pino): Logger => ({
  error: (obj, msg) => log.error(obj, msg),
  warn: (obj, msg) => log.warn(obj, msg),
  info: (obj, msg) => log.info(obj, msg),
  debug: (obj, msg) => log.debug(obj, msg),
});

async function serve({ config, images, warnings }: LoadedConfig, inspectPort: number | null): Promise<number> {
  const log = makeLogger(config.log_level);
  for (const warning of warnings) log.warn(warning);
  const logger = asLogger(log);
  const instanceId = config.instance_id ?? defaultInstanceId();
  let service: StuiService | null = null;
  const metrics = new ServiceMetrics(() => service);
  // Bound before anything is announced: a busy port is one clear line, not a crash after
  // `instance.started`. Until the service runs, /readyz says it is starting.
  let metricsServer: { server: Server; port: number } | null = null;
  if (config.metrics_port !== null) {
    try {
      metricsServer = await metrics.listen(config.metrics_port);
    } catch (error) {
      log.fatal(
        { metrics_port: config.metrics_port },
        `cannot serve metrics on 127.0.0.1:${config.metrics_port}: ${listenFailure(error)}`,
      );
      return 1;
    }
  }
  const started = await startService(config, images, instanceId, logger, metrics);
  if (typeof started === "number") {
    metricsServer?.server.close();
    return started;
  }
  service = started;
  let inspector: Inspector | null = null;
  if (inspectPort !== null) {
    try {
      inspector = await openInspector({
        source: new LocalInspectSource(started.inspection, instanceId),
        logger,
        port: inspectPort,
        bridge: { only: [instanceId] },
      });
    } catch (error) {
      log.fatal(
        { inspect_port: inspectPort },
        `cannot serve the inspector on 127.0.0.1:${inspectPort}: ${listenFailure(error, "--inspect")}`,
      );
      await started.stop();
      metricsServer?.server.close();
      return 1;
    }
  }
  const listening = {
    instance_id: instanceId,
    nats: natsOptionsOf(config).servers,
    api: "stui.api.*",
    events: "stui.events.>",
    store:
      config.store.kind === "file"
        ? config.store.path
        : `JetStream KV ${config.store.bucket_prefix}_sessions, ${config.store.bucket_prefix}_contexts (R${config.store.replicas})`,
    metrics: metricsServer === null ? null : `http://127.0.0.1:${metricsServer.port}/metrics`,
  };
  log.info(listening, "stui serve: listening");
  if (inspector !== null) log.info({ inspector: inspector.url }, `inspector: ${inspector.url}`);

  const running = service;
  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals += 1;
      if (signals > 1) {
        log.warn({ signal }, "second signal: exiting now");
        process.exit(1);
      }
      log.info({ signal }, "stopping");
      const deadline = setTimeout(() => {
        log.error({ deadline_ms: STOP_DEADLINE_MS }, "stopping took too long: exiting");
        process.exit(1);
      }, STOP_DEADLINE_MS);
      void (async () => {
        try {
          await inspector?.close();
          const unpublished = await running.stop();
          metricsServer?.server.close();
          if (unpublished > 0) log.error({ unpublished_events: unpublished }, "stopped without publishing every event");
          resolve(unpublished > 0 ? 1 : 0);
        } catch (error) {
          log.error({ err: error }, "stopping failed");
          resolve(1);
        } finally {
          clearTimeout(deadline);
        }
      })();
    };
    // SIGHUP too: a closed terminal or a `kill -HUP` stops the service as cleanly as SIGTERM.
    for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  });
}

const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP"];

/** The store, then the service on NATS; an exit code when either cannot start (logged in one line). */
async function startService(
  config: ServeConfig,
  images: readonly ImageConfig[],
  instanceId: string,
  logger: Logger,
  metrics: ServiceMetrics,
): Promise<StuiService | number> {
  // The file store is opened here (a lock held by another stui is refused before NATS is
  // reached); the KV store on the service's own NATS connection, once that is up.
  let store: FileSessionStore | null = null;
  if (config.store.kind === "file") {
    try {
      store = await FileSessionStore.open({ dir: config.store.path, logger });
    } catch (error) {
      // A lock held by another stui, or files it cannot use, say what to do; an I/O error needs its detail.
      if (error instanceof StoreLockedError || error instanceof StoreFormatError) {
        logger.error({ store: config.store.path }, error.message);
      } else logger.error({ err: error, store: config.store.path }, "cannot open the session store");
      return 1;
    }
  }
  const { replicas, bucket_prefix: bucketPrefix } = config.store;
  try {
    return await StuiService.start({
      instanceId,
      nats: natsOptionsOf(config),
      store: store ?? ((nc) => KvSessionStore.open({ nc, replicas, bucketPrefix, logger })),
      ...(config.cluster === undefined
        ? {}
        : {
            leases: {
              ttlMs: config.cluster.lease_ttl_ms,
              open: async (nc) => ({
                store: await KvLeaseStore.open({ nc, replicas, bucketPrefix, logger }),
                catalog: await KvImageCatalog.open({ nc, replicas, bucketPrefix, logger }),
              }),
            },
          }),
      images,
      policy: managerPolicyOf(config),
      network: networkOptionsOf(config),
      events: eventOptionsOf(config),
      ...(config.inspect === undefined ? {} : { inspect: { maxShare: config.inspect.max_share } }),
      ...(config.limits?.max_body_bytes === undefined ? {} : { maxBodyBytes: config.limits.max_body_bytes }),
      logger,
      onAnswer: (endpoint, response, seconds) => metrics.answered(endpoint, response, seconds),
      onRefused: (reason) => metrics.refusedRequest(reason),
      ...apiOptionsOf(config),
    });
  } catch (error) {
    await store?.close();
    // These say what to do in their message; a stack would only hide it.
    if (error instanceof JetStreamMissingError || error instanceof DuplicateInstanceError) {
      logger.error({}, error.message);
      return 2;
    }
    if (error instanceof NatsConnectError || error instanceof ApiStartError || error instanceof NatsPermissionError) {
      logger.error({}, error.message);
      return 1;
    }
    logger.error({ err: error }, `cannot start: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

function listenFailure(error: unknown, setting = "metrics_port"): string {
  const code = error instanceof Error && "code" in error ? error.code : null;
  if (code === "EADDRINUSE") return `the port is in use (set ${setting} to another port, or 0 for any free one)`;
  if (code === "EACCES") return "permission denied (ports below 1024 need privileges)";
  return error instanceof Error ? error.message : String(error);
}
