/**
 * The client commands, each talking to a running service over NATS: `stui images`, `stui sessions`,
 * `stui switch`, `stui cleanup`, `stui events`. Readable tables by default, `--json` for scripts.
 * Exit codes: 0 done, 1 the service answered an error, 2 bad usage, 3 no NATS or no service.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ServiceUnavailableError, StuiClient } from "../client.js";
import { DEFAULT_NATS_URL, NatsConnectError, serversOf } from "../actors/nats-link.js";
import type { Response, StuiEvent } from "../protocol/index.js";
import { table } from "./table.js";

const COMMON = `common options:
  --nats-url URL     the NATS server the service uses (env NATS_URL; default ${DEFAULT_NATS_URL})
  --timeout-ms N     how long to wait for an answer (default 5000)
  --json             machine-readable output
  -h, --help         this text`;

const COMMON_OPTIONS = {
  "nats-url": { type: "string" },
  "timeout-ms": { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const satisfies ParseArgsConfig["options"];

type Values = Record<string, string | boolean | undefined>;

class UsageError extends Error {}

/** A command's body; resolves with the exit code. */
type Body = (client: StuiClient, values: Values, json: boolean) => Promise<number>;

async function runClientCommand(
  argv: string[],
  usage: string,
  options: ParseArgsConfig["options"],
  body: Body,
): Promise<number> {
  let values: Values;
  try {
    values = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, strict: true }).values;
  } catch (error) {
    console.error(`stui: ${error instanceof Error ? error.message : String(error)}\n\n${usage}\n\n${COMMON}`);
    return 2;
  }
  if (values["help"] === true) {
    console.log(`${usage}\n\n${COMMON}`);
    return 0;
  }
  const url = str(values, "nats-url") ?? process.env["NATS_URL"] ?? DEFAULT_NATS_URL;
  const timeoutMs = Number(str(values, "timeout-ms") ?? 5000);
  let client: StuiClient;
  try {
    client = await StuiClient.connect({ servers: url, timeoutMs, connectTimeoutMs: timeoutMs });
  } catch (error) {
    console.error(`stui: ${error instanceof NatsConnectError ? error.message : String(error)}`);
    return 3;
  }
  try {
    return await body(client, values, values["json"] === true);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`stui: ${error.message}\n\n${usage}`);
      return 2;
    }
    if (error instanceof ServiceUnavailableError) {
      const shown = serversOf({ servers: url }).join(", ");
      console.error(`stui: ${error.message} (is \`stui serve\` running and connected to ${shown}?)`);
      return 3;
    }
    throw error;
  } finally {
    await client.close().catch(() => undefined);
  }
}

const str = (values: Values, key: string): string | undefined => {
  const value = values[key];
  return typeof value === "string" ? value : undefined;
};

function required(values: Values, key: string): string {
  const value = str(values, key);
  if (value === undefined || value === "") throw new UsageError(`--${key} is required`);
  return value;
}

/** Prints an answer: JSON, or the table for a success, or the error on stderr (exit 1). */
function show(response: Response, json: boolean, render: (response: Response) => string): number {
  if (json) {
    console.log(JSON.stringify(response, null, 2));
    return response.type === "Error" ? 1 : 0;
  }
  if (response.type === "Error") {
    console.error(`stui: ${response.code}: ${response.message}`);
    return 1;
  }
  console.log(render(response));
  return 0;
}

const dash = (value: string | number | null | undefined): string =>
  value === null || value === undefined ? "-" : String(value);

// The commands ---------------------------------------------------------------------------------

export const images = (argv: string[]): Promise<number> =>
  runClientCommand(
    argv,
    "usage: stui images [--json]\n\nThe images and their connection status.",
    {},
    async (c, _v, json) =>
      show(await c.listImages(), json, (r) =>
        r.type !== "Images"
          ? ""
          : table(
              ["IMAGE", "NAME", "ADDRESS", "STATUS", "HEALTH", "RTT ms", "SESSIONS", "VERSION"],
              r.images.map((i) => [
                i.image_id,
                dash(i.name),
                i.address,
                i.status,
                i.connection_health,
                i.rtt_ms === null ? "-" : i.rtt_ms.toFixed(1),
                String(i.session_count),
                dash(i.image_version),
              ]),
            ),
      ),
  );

export const sessions = (argv: string[]): Promise<number> =>
  runClientCommand(
    argv,
    "usage: stui sessions [--image ID] [--connected] [--json]\n\nStored sessions (of one image); --connected: only those on connected images.",
    { image: { type: "string" }, connected: { type: "boolean", default: false } },
    async (c, v, json) =>
      show(
        await c.listImageSessions({ image_id: str(v, "image") ?? null, include_disconnected: v["connected"] !== true }),
        json,
        (r) =>
          r.type !== "ImageSessions"
            ? ""
            : table(
                ["SESSION", "CLIENT", "IMAGE", "IMAGE STATUS", "ACTIVE", "ORPHANED", "LAST ACTIVITY"],
                r.sessions.map((s) => [
                  s.session_id,
                  s.client_id,
                  s.image_id,
                  s.connection_status,
                  s.is_active ? "yes" : "no",
                  s.orphaned_at === null ? "-" : s.orphaned_at,
                  s.last_activity,
                ]),
              ),
      ),
  );

export const switchContext = (argv: string[]): Promise<number> =>
  runClientCommand(
    argv,
    "usage: stui switch --client C --to ID [--from ID] [--close-sessions] [--json]\n\n" +
      "Switches a client's current image. --from: refuse unless the client is there now;\n" +
      "--close-sessions: close the client's sessions on the image it leaves.",
    {
      client: { type: "string" },
      to: { type: "string" },
      from: { type: "string" },
      "close-sessions": { type: "boolean" },
    },
    async (c, v, json) =>
      show(
        await c.switchImageContext({
          client_id: required(v, "client"),
          to_image_id: required(v, "to"),
          from_image_id: str(v, "from") ?? null,
          preserve_context: v["close-sessions"] !== true,
        }),
        json,
        (r) =>
          r.type !== "ContextSwitched" ? "" : `${r.client_id}: ${r.from_image_id ?? "(none)"} → ${r.to_image_id}`,
      ),
  );

export const cleanup = (argv: string[]): Promise<number> =>
  runClientCommand(
    argv,
    "usage: stui cleanup --image ID [--force] [--include-active] [--max-age-hours N] [--json]\n\n" +
      "Removes the image's orphaned sessions; --force: any session; active ones only with --include-active.",
    {
      image: { type: "string" },
      force: { type: "boolean", default: false },
      "include-active": { type: "boolean", default: false },
      "max-age-hours": { type: "string" },
    },
    async (c, v, json) => {
      const age = str(v, "max-age-hours");
      if (age !== undefined && !(Number(age) >= 0)) throw new UsageError(`--max-age-hours: not a number: ${age}`);
      return show(
        await c.cleanupImageSessions({
          image_id: required(v, "image"),
          force: v["force"] === true,
          preserve_active: v["include-active"] !== true,
          max_age_hours: age === undefined ? null : Number(age),
        }),
        json,
        (r) =>
          r.type !== "CleanupResult"
            ? ""
            : `${r.image_id}: removed ${r.removed_session_ids.length} session(s), ${r.remaining_sessions} remain` +
              r.removed_session_ids.map((id) => `\n  ${id}`).join(""),
      );
    },
  );

export const events = (argv: string[]): Promise<number> =>
  runClientCommand(
    argv,
    "usage: stui events [--subject S] [--since TIME] [--json]\n\n" +
      "Follows events live (Ctrl-C stops). --since: first replays the stream from TIME\n" +
      "(ISO 8601, or a duration back from now: 30s, 10m, 2h, 1d). --subject: a filter, e.g. stui.events.image.>",
    { subject: { type: "string" }, since: { type: "string" } },
    async (c, v, json) => {
      const subject = str(v, "subject") ?? "stui.events.>";
      const since = str(v, "since");
      const feed = since === undefined ? c.events({ subject }) : await replayFeed(c, subject, since);
      const stop = (): void => void feed.close();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      if (!json) console.error(`following ${subject}${since === undefined ? "" : ` since ${since}`} (Ctrl-C stops)`);
      for await (const event of feed) console.log(json ? JSON.stringify(event) : describeEvent(event));
      return 0;
    },
  );

async function replayFeed(c: StuiClient, subject: string, since: string) {
  const replay = await c.replay({ subject, since: parseSince(since) });
  return {
    close: () => replay.close(),
    async *[Symbol.asyncIterator]() {
      for await (const r of replay) yield r.event;
    },
  };
}

/** `2026-11-25T09:00:00Z`, or `30s` / `10m` / `2h` / `1d` back from now. */
export function parseSince(text: string): Date {
  const relative = /^(\d+)(s|m|h|d)$/.exec(text);
  if (relative !== null) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as "s" | "m" | "h" | "d"];
    return new Date(Date.now() - Number(relative[1]) * unit);
  }
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new UsageError(`--since: not a time or a duration: ${text}`);
  return date;
}

/** One readable line per event. */
export function describeEvent(event: StuiEvent): string {
  const head = `${event.time} #${event.sequence} ${event.type.replace(/^io\.stui\./, "")}`;
  switch (event.type) {
    case "io.stui.image.status.changed":
      return `${head} ${event.data.image_id}: ${event.data.previous_status} → ${event.data.status}${event.data.reason === null ? "" : ` (${event.data.reason})`}`;
    case "io.stui.image.health.changed":
      return `${head} ${event.data.image_id}: ${event.data.previous_health} → ${event.data.health}${event.data.rtt_ms === null ? "" : ` (${event.data.rtt_ms.toFixed(1)} ms)`}`;
    case "io.stui.context.switched":
      return `${head} ${event.data.client_id}: ${event.data.from_image_id ?? "(none)"} → ${event.data.to_image_id}`;
    case "io.stui.session.created":
    case "io.stui.session.closed":
    case "io.stui.session.orphaned":
    case "io.stui.session.cleaned":
      return `${head} ${event.data.image_id}/${event.data.session_id} (client ${event.data.client_id})${event.data.reason === null ? "" : `: ${event.data.reason}`}`;
    case "io.stui.instance.started":
    case "io.stui.instance.stopped":
      return `${head} ${event.data.instance_id}`;
  }
}
