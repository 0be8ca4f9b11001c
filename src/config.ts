/**
 * `stui serve` configuration: a JSON or YAML file, then `STUI_*` / `NATS_URL` environment
 * variables, then flags, each overriding the one before. Validated eagerly; an error names the key.
 * Keys are snake_case, as on the wire; every one but the image list has a default.
 */
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { EventPublisherOptions } from "./actors/event-publisher.js";
import { DEFAULT_NATS_URL, type NatsOptions } from "./actors/nats-link.js";
import type { ConnectionPolicy } from "./machines/connection-policy.js";
import type { ImageConfig, ManagerPolicy } from "./machines/session-manager.js";
import { ImageId } from "./protocol/primitives.js";
import { validate } from "./protocol/validate.js";

const Ms = z.number().int().nonnegative();
const PositiveInt = z.number().int().positive();

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;

export const ServeConfig = z
  .object({
    /** Names this instance in events; a subject token. @default the host name */
    instance_id: ImageId.optional(),
    nats: z
      .object({
        url: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).default(DEFAULT_NATS_URL),
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
      })
      .strict()
      .default({ url: DEFAULT_NATS_URL }),
    store: z
      .object({ path: z.string().min(1).default("./stui-data") })
      .strict()
      .default({ path: "./stui-data" }),
    images: z
      .array(z.object({ id: ImageId, address: z.string().min(1), name: z.string().nullable().default(null) }).strict())
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
    log_level: z.enum(LOG_LEVELS).default("info"),
    /** Prometheus metrics on 127.0.0.1:<port>/metrics; `null`: none. @default null */
    metrics_port: z.number().int().min(0).max(65535).nullable().default(null),
  })
  .strict();
export type ServeConfig = z.output<typeof ServeConfig>;

/** A configuration that cannot be used; the message names the file and the key. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Flags given on the command line (already parsed). */
export interface ConfigFlags {
  readonly instanceId?: string;
  readonly natsUrl?: string;
  readonly storePath?: string;
  readonly logLevel?: string;
  readonly metricsPort?: string;
}

/** Reads, overrides and validates: file (if any) < environment < flags. */
export async function loadConfig(
  file: string | null,
  env: NodeJS.ProcessEnv = process.env,
  flags: ConfigFlags = {},
): Promise<ServeConfig> {
  const raw = file === null ? {} : await readConfigFile(file);
  const merged = applyOverrides(raw, env, flags);
  const where = file === null ? "configuration" : file;
  const decoded = validate(ServeConfig, merged, "");
  if (!decoded.ok) {
    const key = decoded.error.path === "" ? "" : `${decoded.error.path}: `;
    throw new ConfigError(`${where}: ${key}${decoded.error.reason}`);
  }
  return decoded.value;
}

async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ConfigError(`${file}: cannot read it: ${error instanceof Error ? error.message : String(error)}`);
  }
  let value: unknown;
  try {
    value = path.extname(file) === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    const kind = path.extname(file) === ".json" ? "JSON" : "YAML";
    throw new ConfigError(`${file}: not valid ${kind}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new ConfigError(`${file}: expected a mapping of keys`);
  return value as Record<string, unknown>;
}

const ENV_KEYS: ReadonlyArray<readonly [string, readonly string[], "string" | "number"]> = [
  ["NATS_URL", ["nats", "url"], "string"],
  ["STUI_NATS_URL", ["nats", "url"], "string"],
  ["STUI_NATS_USER", ["nats", "user"], "string"],
  ["STUI_NATS_PASS", ["nats", "pass"], "string"],
  ["STUI_NATS_TOKEN", ["nats", "token"], "string"],
  ["STUI_NATS_NKEY_SEED", ["nats", "nkey_seed"], "string"],
  ["STUI_NATS_CREDS_FILE", ["nats", "creds_file"], "string"],
  ["STUI_INSTANCE_ID", ["instance_id"], "string"],
  ["STUI_STORE_PATH", ["store", "path"], "string"],
  ["STUI_LOG_LEVEL", ["log_level"], "string"],
  ["STUI_METRICS_PORT", ["metrics_port"], "number"],
];

function applyOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv, flags: ConfigFlags): unknown {
  const config = structuredClone(raw);
  for (const [name, keys, kind] of ENV_KEYS) {
    const value = env[name];
    if (value !== undefined && value !== "") setKey(config, keys, kind === "number" ? Number(value) : value);
  }
  if (flags.natsUrl !== undefined) setKey(config, ["nats", "url"], flags.natsUrl);
  if (flags.instanceId !== undefined) setKey(config, ["instance_id"], flags.instanceId);
  if (flags.storePath !== undefined) setKey(config, ["store", "path"], flags.storePath);
  if (flags.logLevel !== undefined) setKey(config, ["log_level"], flags.logLevel);
  if (flags.metricsPort !== undefined) setKey(config, ["metrics_port"], Number(flags.metricsPort));
  return config;
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
  });
}

export function imagesOf(config: ServeConfig): ImageConfig[] {
  return config.images.map((i) => ({ id: i.id, address: i.address, name: i.name }));
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

export function eventOptionsOf(config: ServeConfig): Omit<EventPublisherOptions, "instanceId"> {
  const e = config.events;
  return dropUndefined({
    bufferLimit: e?.buffer_limit,
    healthDebounceMs: e?.health_debounce_ms,
    stream: dropUndefined({ maxAgeMs: e?.stream_max_age_ms, maxBytes: e?.stream_max_bytes }),
  });
}

/** `exactOptionalPropertyTypes`-friendly: leaves out the keys whose value is undefined. */
function dropUndefined<T extends Record<string, unknown>>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}
