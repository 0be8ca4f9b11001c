/**
 * `stui serve` configuration: a JSON or YAML file, then `STUI_*` / `NATS_URL` environment
 * variables, then flags, each overriding the one before. Validated eagerly: every problem is listed,
 * one per line, each naming its key and where it came from (the file, the variable or the flag).
 * Keys are snake_case, as on the wire; every one but the image list has a default.
 */
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { EventPublisherOptions } from "./actors/event-publisher.js";
import { DEFAULT_NATS_URL, type NatsOptions } from "./actors/nats-link.js";
import { DEFAULT_MAX_SHARE } from "./actors/inspect-link.js";
import { DEFAULT_POLL_MS, DEFAULT_SLEEP_THRESHOLD_MS } from "./actors/network-watch.js";
import { CurveClient, KeyFileError, readKeyFile, Z85Key } from "./curve.js";
import type { ConnectionPolicy } from "./machines/connection-policy.js";
import type { ImageConfig, ManagerPolicy } from "./machines/session-manager.js";
import { ImageId } from "./protocol/primitives.js";
import { describeIssue, InboxPrefix, NatsUrl, ReplyPrefix, withoutCredentials, ZmqEndpoint } from "./config-values.js";
import { ConfigError } from "./errors.js";

const Ms = z.number().int().nonnegative();
const PositiveInt = z.number().int().positive();

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;

/** Where the API's replies may go: clients' inboxes. @default ["_INBOX."] */
export const DEFAULT_REPLY_PREFIXES: readonly string[] = ["_INBOX."];

export const ServeConfig = z
  .object({
    /** Names this instance in events; a subject token. @default the host name */
    instance_id: ImageId.optional(),
    nats: z
      .object({
        url: z.union([NatsUrl, z.array(NatsUrl).min(1)]).default(DEFAULT_NATS_URL),
        name: z.string().optional(),
        user: z.string().optional(),
        pass: z.string().optional(),
        token: z.string().optional(),
        nkey_seed: z.string().optional(),
        creds_file: z.string().optional(),
        tls: z
          .object({ ca_file: z.string().optional(), cert_file: z.string().optional(), key_file: z.string().optional() })
          .strict()
          .optional(),
        reconnect_time_wait_ms: Ms.optional(),
        /** The service's own reply inboxes (JetStream API answers, publish acks). @default "_INBOX" */
        inbox_prefix: InboxPrefix.optional(),
      })
      .strict()
      .default({ url: DEFAULT_NATS_URL }),
    store: z
      .object({
        /** `file`: the embedded store in `path` (one instance); `kv`: JetStream KV buckets on the NATS. */
        kind: z.enum(["file", "kv"]).default("file"),
        path: z.string().min(1).default("./stui-data"),
        /** Replicas of the KV buckets when stui creates them (3 on a 3-node cluster). @default 1 */
        replicas: z.number().int().min(1).max(5).default(1),
        /** The KV buckets are `<bucket_prefix>_sessions` and `<bucket_prefix>_contexts`. @default "stui" */
        bucket_prefix: z
          .string()
          .regex(/^[A-Za-z0-9_-]+$/, "letters, digits, _ and - only")
          .default("stui"),
      })
      .strict()
      .default({ kind: "file", path: "./stui-data", replicas: 1, bucket_prefix: "stui" }),
    images: z
      .array(
        z
          .object({
            id: ImageId,
            address: ZmqEndpoint,
            name: z.string().nullable().default(null),
            /** A CURVE-secured link: the image's public key (pinned) and this service's key file. */
            curve: z
              .object({ server_public_key: Z85Key, client_key_file: z.string().min(1, "expected a file path") })
              .strict()
              .optional(),
          })
          .strict(),
      )
      .default([])
      .refine((images) => new Set(images.map((i) => i.id)).size === images.length, "image ids must be unique"),
    heartbeat: z
      .object({ interval_ms: PositiveInt.optional(), timeout_ms: PositiveInt.optional() })
      .strict()
      .optional(),
    ping: z.object({ interval_ms: PositiveInt.optional(), timeout_ms: PositiveInt.optional() }).strict().optional(),
    backoff: z
      .object({
        base_ms: PositiveInt.optional(),
        cap_ms: PositiveInt.optional(),
        max_restarts: PositiveInt.optional(),
        restart_window_ms: PositiveInt.optional(),
      })
      .strict()
      .optional(),
    limits: z
      .object({
        connect_timeout_ms: PositiveInt.optional(),
        request_timeout_ms: PositiveInt.optional(),
        max_in_flight: PositiveInt.optional(),
        max_message_bytes: PositiveInt.optional(),
        max_body_bytes: PositiveInt.optional(),
      })
      .strict()
      .optional(),
    sessions: z
      .object({
        failed_grace_ms: Ms.optional(),
        orphan_max_age_ms: Ms.nullable().optional(),
        sweep_interval_ms: PositiveInt.optional(),
      })
      .strict()
      .optional(),
    events: z
      .object({
        stream_max_age_ms: PositiveInt.optional(),
        stream_max_bytes: PositiveInt.optional(),
        buffer_limit: PositiveInt.optional(),
        health_debounce_ms: Ms.optional(),
      })
      .strict()
      .optional(),
    api: z
      .object({
        reply_prefixes: z
          .array(ReplyPrefix)
          .min(1)
          .default(() => [...DEFAULT_REPLY_PREFIXES]),
      })
      .strict()
      .default(() => ({ reply_prefixes: [...DEFAULT_REPLY_PREFIXES] })),
    /** Shared ownership of the images by several instances (needs `store.kind: kv`). */
    cluster: z
      .object({
        /** How long an image's lease runs unless renewed (renewed every third of it). @default 15000 */
        lease_ttl_ms: z.number().int().min(1000).default(15_000),
      })
      .strict()
      .optional(),
    /** What inspection (`stui inspect`, `stui serve --inspect`) may cost this instance. */
    inspect: z
      .object({
        /**
         * The most of the instance's time inspection may take, over about a second: beyond it,
         * records are dropped and counted until it is back under. 1: no limit. @default 0.02
         */
        max_share: z.number().gt(0).max(1).default(DEFAULT_MAX_SHARE),
      })
      .strict()
      .optional(),
    /** Watching the host's network and for a resume from sleep (every image link then tries again). */
    network: z
      .object({
        /** `false`: not watched (a server whose interfaces never change). @default true */
        watch: z.boolean().default(true),
        /** How often the interfaces are read. @default 2000 */
        poll_interval_ms: PositiveInt.default(DEFAULT_POLL_MS),
        /** A timer this much late is a resume from sleep. @default 10000 */
        sleep_threshold_ms: PositiveInt.default(DEFAULT_SLEEP_THRESHOLD_MS),
      })
      .strict()
      .optional(),
    log_level: z.enum(LOG_LEVELS).default("info"),
    /** Prometheus metrics on 127.0.0.1:<port>/metrics; `null`: none. @default null */
    metrics_port: z.number().int().min(0).max(65535).nullable().default(null),
  })
  .strict()
  .refine((c) => c.cluster === undefined || c.store.kind === "kv", {
    path: ["cluster"],
    message: "shared ownership needs the sessions where every instance sees them: set store.kind: kv",
  });
export type ServeConfig = z.output<typeof ServeConfig>;

/** Flags given on the command line (already parsed). */
export interface ConfigFlags {
  readonly instanceId?: string;
  readonly natsUrl?: string;
  readonly storePath?: string;
  readonly logLevel?: string;
  readonly metricsPort?: string;
}

/** A usable configuration, and what is worth a warning in it (`stui serve` logs them). */
export interface LoadedConfig {
  readonly config: ServeConfig;
  /** The configured images, with their CURVE keys read from their key files. */
  readonly images: readonly ImageConfig[];
  readonly warnings: readonly string[];
}

/** Reads, overrides and validates: file (if any) < environment < flags. Throws `ConfigError`. */
export async function loadConfig(
  file: string | null,
  env: NodeJS.ProcessEnv = process.env,
  flags: ConfigFlags = {},
): Promise<ServeConfig> {
  return (await readConfig(file, env, flags)).config;
}

/** `loadConfig`, with the warnings. */
export async function readConfig(
  file: string | null,
  env: NodeJS.ProcessEnv = process.env,
  flags: ConfigFlags = {},
): Promise<LoadedConfig> {
  const raw = file === null ? {} : await readConfigFile(file);
  const { merged, origins, problems } = applyOverrides(raw, env, flags);
  const parsed = ServeConfig.safeParse(merged, { reportInput: true });
  if (!parsed.success) {
    const where = file ?? "configuration";
    for (const issue of parsed.error.issues) problems.push(...describeIssue(issue, [], where, origins));
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  const config = file === null ? parsed.data : relativeToFile(parsed.data, raw, file, origins);
  const warnings =
    config.images.length === 0
      ? ["no images configured: the service runs with none until a ConnectImage request adds one"]
      : [];
  return { config, images: await imagesOf(config), warnings };
}

const EXTENSIONS: Readonly<Record<string, "JSON" | "YAML">> = { ".json": "JSON", ".yaml": "YAML", ".yml": "YAML" };

async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  const kind = EXTENSIONS[path.extname(file)];
  if (kind === undefined) {
    const ext = path.extname(file) === "" ? "no extension" : `unknown extension "${path.extname(file)}"`;
    throw new ConfigError([`${file}: ${ext}: expected a .json, .yaml or .yml file`]);
  }
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ConfigError([`${file}: cannot read it: ${error instanceof Error ? error.message : String(error)}`]);
  }
  let value: unknown;
  try {
    value = kind === "JSON" ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ConfigError([`${file}: not valid ${kind}: ${error instanceof Error ? error.message : String(error)}`]);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new ConfigError([`${file}: expected a mapping of keys`]);
  return value as Record<string, unknown>;
}

type Kind = "string" | "integer";
const ENV_KEYS: ReadonlyArray<readonly [string, readonly string[], Kind]> = [
  ["NATS_URL", ["nats", "url"], "string"],
  ["STUI_NATS_URL", ["nats", "url"], "string"],
  ["STUI_NATS_USER", ["nats", "user"], "string"],
  ["STUI_NATS_PASS", ["nats", "pass"], "string"],
  ["STUI_NATS_TOKEN", ["nats", "token"], "string"],
  ["STUI_NATS_NKEY_SEED", ["nats", "nkey_seed"], "string"],
  ["STUI_NATS_CREDS_FILE", ["nats", "creds_file"], "string"],
  ["STUI_NATS_INBOX_PREFIX", ["nats", "inbox_prefix"], "string"],
  ["STUI_INSTANCE_ID", ["instance_id"], "string"],
  ["STUI_STORE_PATH", ["store", "path"], "string"],
  ["STUI_LOG_LEVEL", ["log_level"], "string"],
  ["STUI_METRICS_PORT", ["metrics_port"], "integer"],
];
const FLAG_KEYS: ReadonlyArray<readonly [keyof ConfigFlags, string, readonly string[], Kind]> = [
  ["natsUrl", "--nats-url", ["nats", "url"], "string"],
  ["instanceId", "--instance-id", ["instance_id"], "string"],
  ["storePath", "--store", ["store", "path"], "string"],
  ["logLevel", "--log-level", ["log_level"], "string"],
  ["metricsPort", "--metrics-port", ["metrics_port"], "integer"],
];
const SECRET_KEYS = new Set(["nats.pass", "nats.token", "nats.nkey_seed"]);

interface Merged {
  readonly merged: Record<string, unknown>;
  /** Dotted key → the variable or flag that set it, as messages show it (`STUI_METRICS_PORT=abc`). */
  readonly origins: Map<string, string>;
  readonly problems: string[];
}

function applyOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv, flags: ConfigFlags): Merged {
  const merged = structuredClone(raw);
  const origins = new Map<string, string>();
  // Keyed by the dotted key: an override that a later one replaces is not a problem.
  const bad = new Map<string, string>();
  const override = (value: string, keys: readonly string[], kind: Kind, label: (shown: string) => string): void => {
    const key = keys.join(".");
    const shown = SECRET_KEYS.has(key) ? "[redacted]" : key === "nats.url" ? withoutCredentials(value) : value;
    origins.set(key, label(shown));
    bad.delete(key);
    if (kind === "integer" && !/^\d+$/.test(value.trim())) bad.set(key, `${label(shown)}: expected an integer`);
    else setKey(merged, keys, kind === "integer" ? Number(value) : value);
  };
  for (const [name, keys, kind] of ENV_KEYS) {
    const value = env[name];
    if (value !== undefined && value !== "") override(value, keys, kind, (shown) => `${name}=${shown}`);
  }
  for (const [field, flag, keys, kind] of FLAG_KEYS) {
    const value = flags[field];
    if (value !== undefined) override(value, keys, kind, (shown) => `${flag} ${shown === "" ? '""' : shown}`);
  }
  return { merged, origins, problems: [...bad.values()] };
}

function setKey(config: Record<string, unknown>, keys: readonly string[], value: unknown): void {
  let node = config;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys.at(-1) as string] = value;
}

function getKey(config: Record<string, unknown>, keys: readonly string[]): unknown {
  let node: unknown = config;
  for (const key of keys)
    node = typeof node === "object" && node !== null ? (node as Record<string, unknown>)[key] : undefined;
  return node;
}

/**
 * Paths written in the file are relative to the file's directory, wherever the service is started
 * from; a path from a variable or flag (or the default) stays relative to the working directory.
 */
function relativeToFile(
  config: ServeConfig,
  raw: Record<string, unknown>,
  file: string,
  origins: ReadonlyMap<string, string>,
): ServeConfig {
  const dir = path.dirname(path.resolve(file));
  const fromFile = (keys: readonly string[]): boolean =>
    typeof getKey(raw, keys) === "string" && !origins.has(keys.join("."));
  const resolve = (keys: readonly string[], value: string): string =>
    fromFile(keys) ? path.resolve(dir, value) : value;
  const tls = config.nats.tls;
  const resolveTls = (key: "ca_file" | "cert_file" | "key_file"): string | undefined =>
    tls?.[key] === undefined ? undefined : resolve(["nats", "tls", key], tls[key]);
  return {
    ...config,
    store: { ...config.store, path: resolve(["store", "path"], config.store.path) },
    images: config.images.map((image) =>
      image.curve === undefined
        ? image
        : { ...image, curve: { ...image.curve, client_key_file: path.resolve(dir, image.curve.client_key_file) } },
    ),
    nats: {
      ...config.nats,
      ...(config.nats.creds_file === undefined
        ? {}
        : { creds_file: resolve(["nats", "creds_file"], config.nats.creds_file) }),
      ...(tls === undefined
        ? {}
        : {
            tls: dropUndefined({
              ca_file: resolveTls("ca_file"),
              cert_file: resolveTls("cert_file"),
              key_file: resolveTls("key_file"),
            }),
          }),
    },
  };
}

/** A subject token made of the host name, the default instance id. */
export const defaultInstanceId = (): string =>
  hostname()
    .replace(/[^A-Za-z0-9_-]/g, "-")
    .slice(0, 64) || "stui";

// What the parts take ------------------------------------------------------------------------------

export function natsOptionsOf(config: ServeConfig): NatsOptions {
  const n = config.nats;
  const tls =
    n.tls === undefined ? undefined : { caFile: n.tls.ca_file, certFile: n.tls.cert_file, keyFile: n.tls.key_file };
  return dropUndefined({
    servers: n.url,
    name: n.name ?? `stui-${config.instance_id ?? defaultInstanceId()}`,
    user: n.user,
    pass: n.pass,
    token: n.token,
    nkeySeed: n.nkey_seed,
    credsFile: n.creds_file,
    tls: tls === undefined ? undefined : dropUndefined(tls),
    reconnectTimeWaitMs: n.reconnect_time_wait_ms,
    inboxPrefix: n.inbox_prefix,
  });
}

/** The configured images, each CURVE key file read and checked; a `ConfigError` names every one that is not usable. */
export async function imagesOf(config: ServeConfig): Promise<ImageConfig[]> {
  const problems: string[] = [];
  const images = await Promise.all(
    config.images.map(async (i, n): Promise<ImageConfig> => {
      const image = { id: i.id, address: i.address, name: i.name };
      if (i.curve === undefined) return image;
      try {
        const pair = await readKeyFile(i.curve.client_key_file);
        return { ...image, curve: new CurveClient(i.curve.server_public_key, pair, i.curve.client_key_file) };
      } catch (error) {
        if (!(error instanceof KeyFileError)) throw error;
        problems.push(`images[${n}] (${i.id}).curve.client_key_file: ${error.message}`);
        return image;
      }
    }),
  );
  if (problems.length > 0) throw new ConfigError(problems);
  return images;
}

export function managerPolicyOf(config: ServeConfig): Partial<ManagerPolicy> {
  const connection: Partial<ConnectionPolicy> = dropUndefined({
    heartbeatIntervalMs: config.heartbeat?.interval_ms,
    heartbeatTimeoutMs: config.heartbeat?.timeout_ms,
    pingIntervalMs: config.ping?.interval_ms,
    pingTimeoutMs: config.ping?.timeout_ms,
    backoffBaseMs: config.backoff?.base_ms,
    backoffCapMs: config.backoff?.cap_ms,
    maxRestarts: config.backoff?.max_restarts,
    restartWindowMs: config.backoff?.restart_window_ms,
    connectTimeoutMs: config.limits?.connect_timeout_ms,
    requestTimeoutMs: config.limits?.request_timeout_ms,
    maxInFlight: config.limits?.max_in_flight,
    maxMessageBytes: config.limits?.max_message_bytes,
  });
  return dropUndefined({
    failedGraceMs: config.sessions?.failed_grace_ms,
    orphanMaxAgeMs: config.sessions?.orphan_max_age_ms,
    sweepIntervalMs: config.sessions?.sweep_interval_ms,
    connection,
  });
}

/** What the network watch takes from the configuration (`ServiceOptions.network`). */
export function networkOptionsOf(config: ServeConfig): { pollMs?: number; sleepThresholdMs?: number } | false {
  const n = config.network;
  if (n === undefined) return {};
  return n.watch ? { pollMs: n.poll_interval_ms, sleepThresholdMs: n.sleep_threshold_ms } : false;
}

/** What the API takes from the configuration. */
export function apiOptionsOf(config: ServeConfig): { replyPrefixes: string[] } {
  return { replyPrefixes: [...config.api.reply_prefixes] };
}

export function eventOptionsOf(config: ServeConfig): Omit<EventPublisherOptions, "instanceId"> {
  const e = config.events;
  return dropUndefined({
    bufferLimit: e?.buffer_limit,
    healthDebounceMs: e?.health_debounce_ms,
    stream: dropUndefined({
      maxAgeMs: e?.stream_max_age_ms,
      maxBytes: e?.stream_max_bytes,
      // With the KV store on a cluster, the events are kept as safely as the sessions.
      replicas: config.store.kind === "kv" ? config.store.replicas : undefined,
    }),
  });
}

/** `exactOptionalPropertyTypes`-friendly: leaves out the keys whose value is undefined. */
function dropUndefined<T extends Record<string, unknown>>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}
