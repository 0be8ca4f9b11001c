/**
 * `stui events`: events live, or replayed from the `STUI_EVENTS` stream `--since` a time and then
 * live. A bad subject is refused before anything is sent (nats-server would only answer it
 * asynchronously, and the subscription would wait forever).
 */
import type { StuiClient } from "../client.js";
import { EVENTS_WILDCARD, type StuiEvent } from "../protocol/index.js";
import { runClientCommand, str, UsageError } from "./client-run.js";

/** Why `subject` is not a valid NATS subscription subject, or `null` when it is. */
export function subjectProblem(subject: string): string | null {
  if (subject === "") return "empty";
  if (/\s/.test(subject)) return "contains white space";
  const tokens = subject.split(".");
  for (const [i, token] of tokens.entries()) {
    if (token === "") return "has an empty token (a leading, trailing or doubled '.')";
    if ((token.includes("*") || token.includes(">")) && token.length > 1) {
      return `'${token}': the wildcards * and > stand for whole tokens`;
    }
    if (token === ">" && i !== tokens.length - 1) return "'>' may only be the last token";
  }
  return null;
}

export const events = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage:
      "usage: stui events [--subject S] [--since TIME] [--json]\n\n" +
      "Follows events live (Ctrl-C stops). --since: first replays the stream from TIME\n" +
      "(ISO 8601, or a duration back from now: 30s, 10m, 2h, 1d). --subject: a filter, e.g. stui.events.image.>",
    options: { subject: { type: "string" }, since: { type: "string" } },
    check: (values) => {
      const subject = str(values, "subject") ?? EVENTS_WILDCARD;
      const problem = subjectProblem(subject);
      if (problem !== null) {
        throw new UsageError(`--subject ${JSON.stringify(subject)}: not a valid subject: ${problem}`);
      }
      const since = str(values, "since");
      if (since !== undefined) parseSince(since);
    },
    run: async ({ client, values, json }) => {
      const subject = str(values, "subject") ?? EVENTS_WILDCARD;
      const since = str(values, "since");
      const from = since === undefined ? null : parseSince(since);
      const feed = from === null ? client.events({ subject }) : await replayFeed(client, subject, from);
      const stop = (): void => void feed.close();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      if (!json) console.error(`following ${subject}${since === undefined ? "" : ` since ${since}`} (Ctrl-C stops)`);
      try {
        for await (const event of feed) console.log(json ? JSON.stringify(event) : describeEvent(event));
      } finally {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
      }
      return 0;
    },
  });

async function replayFeed(c: StuiClient, subject: string, since: Date) {
  const replay = await c.replay({ subject, since });
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
    case "io.stui.instance.network_changed":
      return `${head} ${event.data.instance_id}: ${event.data.reason}; ${event.data.images} images told`;
  }
}
