/**
 * The live `stui serve` instances on a NATS: each answers the micro service's `$SRV.PING.stui`
 * and `$SRV.STATS.stui` with its `instance_id` in the metadata. Used to refuse a second instance
 * with the same id at start (its events would share a source and their sequences would collide),
 * and by `stui instances`.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { z } from "zod";
import { SERVICE_NAME } from "../protocol/index.js";

/** How long the first reply is waited for (none at all: "no responders" ends it at once); after each reply, 100 ms more. */
export const INSTANCE_WAIT_MS = 300;

const Identity = z.object({
  id: z.string(),
  version: z.string(),
  metadata: z.record(z.string(), z.string()).nullable().optional(),
});

const Stats = Identity.extend({
  started: z.string().optional(),
  endpoints: z
    .array(z.object({ num_requests: z.number(), num_errors: z.number() }))
    .nullable()
    .optional(),
});

export interface LiveInstance {
  readonly instance_id: string;
  /** The micro service's own id (a new one each run). */
  readonly service_id: string;
  readonly version: string;
  /** When this run started; `null` when only pinged. */
  readonly started: string | null;
  /** Requests answered and errors, over every endpoint, this run. */
  readonly requests: number | null;
  readonly errors: number | null;
}

async function collect<T>(
  nc: NatsConnection,
  verb: "PING" | "STATS",
  schema: z.ZodType<T>,
  waitMs: number,
): Promise<T[]> {
  const replies = await nc.requestMany(`$SRV.${verb}.${SERVICE_NAME}`, "", {
    strategy: "stall",
    maxWait: waitMs,
    stall: 100,
  });
  const found: T[] = [];
  try {
    for await (const reply of replies) {
      const parsed = schema.safeParse(safeJson(reply.string()));
      if (parsed.success) found.push(parsed.data);
    }
  } catch (error) {
    // No instance at all answers "no responders": that is an empty list, not a failure.
    if (!(error instanceof Error && /no responders/i.test(error.message))) throw error;
  }
  return found;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The instances that answer a ping (ids and versions only). */
export async function pingInstances(nc: NatsConnection, waitMs = INSTANCE_WAIT_MS): Promise<LiveInstance[]> {
  return (await collect(nc, "PING", Identity, waitMs)).map((i) => ({
    instance_id: i.metadata?.["instance_id"] ?? "(unknown)",
    service_id: i.id,
    version: i.version,
    started: null,
    requests: null,
    errors: null,
  }));
}

/** The instances with their start time and request counts, sorted by instance id. */
export async function instanceStats(nc: NatsConnection, waitMs = INSTANCE_WAIT_MS): Promise<LiveInstance[]> {
  const stats = await collect(nc, "STATS", Stats, waitMs);
  return stats
    .map((s) => ({
      instance_id: s.metadata?.["instance_id"] ?? "(unknown)",
      service_id: s.id,
      version: s.version,
      started: s.started ?? null,
      requests: (s.endpoints ?? []).reduce((sum, e) => sum + e.num_requests, 0),
      errors: (s.endpoints ?? []).reduce((sum, e) => sum + e.num_errors, 0),
    }))
    .sort((a, b) => a.instance_id.localeCompare(b.instance_id));
}
