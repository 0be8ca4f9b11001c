/**
 * The configuration's value checks (ZeroMQ endpoints, NATS URLs, subject prefixes) and the
 * rendering of its problems: one line each, naming the key and the file, variable or flag it came
 * from.
 */
import { z } from "zod";
import { inboxPrefixProblem } from "./actors/nats-link.js";
import { joinPath } from "./protocol/errors.js";
import { jsonTypeOf, reasonOf } from "./protocol/validate.js";

const quoted = (value: string): string => JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
/** A URL as messages show it: never with its credentials. */
export const withoutCredentials = (url: string): string => url.replace(/\/\/[^@/]*@/, "//[redacted]@");

/** Why `value` is not an endpoint the service can connect to across processes, or `null`. */
function zmqEndpointProblem(value: string): string | null {
  const expected = `expected a ZeroMQ endpoint tcp://host:port or ipc://path, got ${quoted(value)}`;
  if (value.startsWith("inproc://")) return `inproc:// only reaches sockets inside one process; ${expected}`;
  if (value.startsWith("ipc://")) return value.length > "ipc://".length ? null : expected;
  const tcp = /^tcp:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(value);
  const port = Number(tcp?.[2]);
  return tcp !== null && port >= 1 && port <= 65535 ? null : expected;
}

export const hasScheme = (url: string): boolean => /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url);

/** Why `value` is not a NATS server URL, or `null`. `host:port` (as nats.js takes it) is `nats://`. */
function natsUrlProblem(value: string): string | null {
  const expected = `expected a NATS URL nats://host:port or tls://host:port, got ${quoted(withoutCredentials(value))}`;
  let url: URL;
  try {
    url = new URL(hasScheme(value) ? value : `nats://${value}`);
  } catch {
    return expected;
  }
  const bare = url.pathname === "" || url.pathname === "/";
  const ok = (url.protocol === "nats:" || url.protocol === "tls:") && url.hostname !== "" && bare && url.search === "";
  return ok && url.hash === "" ? null : expected;
}

const refined = (problem: (value: string) => string | null) =>
  z
    .string()
    .min(1)
    .superRefine((value, ctx) => {
      const why = problem(value);
      if (why !== null) ctx.addIssue({ code: "custom", message: why, input: value });
    });

export const NatsUrl = refined(natsUrlProblem).transform((url) => (hasScheme(url) ? url : `nats://${url}`));
export const ZmqEndpoint = refined(zmqEndpointProblem);
/** A subject prefix such as `_INBOX.` or `_INBOX.panel.`: tokens, each followed by a dot. */
export const ReplyPrefix = z
  .string()
  .regex(/^([^\s.*>]+\.)+$/, 'expected a NATS subject prefix ending in "." (e.g. "_INBOX."), without wildcards');

/** A connection's inbox prefix such as `_INBOX_alice`: no wildcards, no trailing dot. */
export const InboxPrefix = refined(inboxPrefixProblem);

const SHAPES: Readonly<Record<string, string>> = { string: "a string", array: "a list" };

/** Lines for one zod issue under `prefix`; a bad override is blamed on its variable or flag. */
export function describeIssue(
  issue: z.core.$ZodIssue,
  prefix: readonly PropertyKey[],
  where: string,
  origins: ReadonlyMap<string, string>,
): string[] {
  const at = [...prefix, ...issue.path];
  const line = (keys: readonly PropertyKey[], reason: string): string => {
    const key = keys.reduce<string>((p, k) => joinPath(p, typeof k === "number" ? k : String(k)), "");
    const origin = [...origins].find(([o]) => key === o || key.startsWith(`${o}.`) || key.startsWith(`${o}[`));
    if (origin !== undefined) return `${origin[1]}: ${reason}`;
    return `${where}: ${key === "" ? "" : `${key}: `}${reason}`;
  };
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((k) => line([...at, k], "unknown key"));
    case "invalid_union": {
      // The branch of the value's shape (a string, or a list) tells what is wrong inside it; a value
      // of neither shape gets the shapes named.
      const wrongShape = (branch: readonly z.core.$ZodIssue[]): boolean =>
        branch.every((i) => i.code === "invalid_type" && i.path.length === 0);
      const [inside, ...others] = issue.errors.filter((branch) => !wrongShape(branch));
      if (inside !== undefined && others.length === 0)
        return inside.flatMap((i) => describeIssue(i, at, where, origins));
      const shapes = issue.errors
        .flat()
        .flatMap((i) => (i.code === "invalid_type" ? [SHAPES[i.expected] ?? i.expected] : []));
      return [line(at, `expected ${shapes.join(" or ") || "another value"}, got ${jsonTypeOf(issue.input)}`)];
    }
    default:
      return [line(at, reasonOf(issue))];
  }
}
