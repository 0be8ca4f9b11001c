/**
 * The API answers with the service's own NATS permissions, to whatever reply subject a request
 * names. Unchecked, a user allowed to publish on one `stui.api.*` subject could make the service
 * publish its answer on `stui.events.…` (a fake event in the stream) or on
 * `$JS.API.STREAM.PURGE.STUI_EVENTS` (the service purging its own history): a confused deputy.
 *
 * So the micro service is handed a connection whose subscriptions only deliver requests whose
 * reply subject starts with an accepted inbox prefix (default `_INBOX.`). Every endpoint and the
 * framework's own `$SRV.PING/INFO/STATS` handlers subscribe through it, so none of them can be
 * turned; what is refused is counted and logged (rate-limited), never answered.
 */
import type { Msg, NatsConnection, SubscriptionOptions } from "@nats-io/transport-node";
import type { Logger } from "../logger.js";
import { systemClock } from "../clock.js";

/** Why a request was not answered. */
export type RefusalReason = "no_reply" | "reply_prefix";

export interface ReplyGuardOptions {
  /** Accepted reply subject prefixes, each ending in `.`. @default ["_INBOX."] */
  readonly replyPrefixes?: readonly string[];
  /** Told of every refused request (for metrics). */
  readonly onRefused?: (reason: RefusalReason, subject: string) => void;
  /** At most one warning per this many milliseconds; the others are counted into it. @default 10000 */
  readonly warnIntervalMs?: number;
}

export const DEFAULT_REPLY_PREFIXES: readonly string[] = ["_INBOX."];

/** What is wrong with a reply subject, or `null` when the request may be answered. */
export function refusalOf(reply: string | undefined, prefixes: readonly string[]): RefusalReason | null {
  if (reply === undefined || reply === "") return "no_reply";
  // A prefix match must also leave a token after it: `_INBOX.` alone is not an inbox.
  return prefixes.some((p) => reply.length > p.length && reply.startsWith(p)) ? null : "reply_prefix";
}

/**
 * `nc` as the micro service must see it: the same connection, except that `subscribe` drops the
 * requests whose reply subject is not accepted before any handler sees them.
 */
export function guardReplies(nc: NatsConnection, options: ReplyGuardOptions, logger: Logger): NatsConnection {
  const prefixes = options.replyPrefixes ?? DEFAULT_REPLY_PREFIXES;
  const warnIntervalMs = options.warnIntervalMs ?? 10_000;
  let lastWarn = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  const refuse = (reason: RefusalReason, msg: Msg): void => {
    options.onRefused?.(reason, msg.subject);
    const now = systemClock.monotonic();
    if (now - lastWarn < warnIntervalMs) {
      suppressed += 1;
      return;
    }
    lastWarn = now;
    logger.warn(
      {
        reason,
        subject: msg.subject,
        reply: msg.reply ?? null,
        accepted_prefixes: prefixes,
        refused_since_last_warning: suppressed,
      },
      reason === "no_reply"
        ? `refused a request on ${msg.subject}: it names no reply subject`
        : `refused a request on ${msg.subject}: its reply subject is not under ${prefixes.join(", ")}`,
    );
    suppressed = 0;
  };
  const subscribe: NatsConnection["subscribe"] = (subject, opts?: SubscriptionOptions) => {
    const callback = opts?.callback;
    if (callback === undefined) return nc.subscribe(subject, opts);
    return nc.subscribe(subject, {
      ...opts,
      callback: (error, msg) => {
        const reason = error === null ? refusalOf(msg.reply, prefixes) : null;
        if (reason === null) return callback(error, msg);
        refuse(reason, msg);
      },
    });
  };
  return new Proxy(nc, {
    get(target, property) {
      if (property === "subscribe") return subscribe;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
