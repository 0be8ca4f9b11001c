/**
 * What an inspector may see of a value: plain JSON. Maps and sets become objects and arrays,
 * actor refs `{ "$actor": id }`, functions and other non-data a short tag; strings, arrays and
 * objects beyond a bound are cut with a marker saying how much was left out; and the fields that
 * carry credentials or a session's payload (code, results, workspaces) are replaced by
 * `"[redacted]"`: an inspector sees ids and states, never what a client evaluates.
 */
/** Plain JSON. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface SafeLimits {
  /** Characters kept of a string. @default 512 */
  readonly maxString: number;
  /** Items kept of an array, entries of an object or a map. @default 64 */
  readonly maxItems: number;
  /** Levels of nesting kept. @default 8 */
  readonly maxDepth: number;
  /** Values copied in all; the rest is cut. @default 5000 */
  readonly maxNodes: number;
}

export const DEFAULT_LIMITS: SafeLimits = { maxString: 512, maxItems: 64, maxDepth: 8, maxNodes: 5000 };

/** Field names whose values are never shown (compared in lower case, `_` and `-` ignored). */
const REDACTED = new Set([
  "code",
  "result",
  "workspacecontext",
  "variables",
  "inputhistory",
  "password",
  "pass",
  "token",
  "secret",
  "secretkey",
  "credentials",
  "creds",
  "nkey",
  "seed",
  "authorization",
  "description",
]);

/** Whether a field of this name is never shown. */
export const isRedacted = (key: string): boolean => REDACTED.has(key.toLowerCase().replace(/[_-]/g, ""));

/** Whether `value` is an actor ref (what xstate puts in snapshots and events). */
const actorIdOf = (value: object): string | null => {
  const ref = value as { sessionId?: unknown; send?: unknown; getSnapshot?: unknown };
  return typeof ref.sessionId === "string" && typeof ref.send === "function" && typeof ref.getSnapshot === "function"
    ? ref.sessionId
    : null;
};

/** `value` as plain JSON within `limits`. */
export function toSafeJson(value: unknown, limits: SafeLimits = DEFAULT_LIMITS): JsonValue {
  const seen = new WeakSet<object>();
  let nodes = 0;
  const walk = (v: unknown, depth: number): JsonValue => {
    if (v === null || v === undefined) return null;
    if (++nodes > limits.maxNodes) return "[cut: too large]";
    switch (typeof v) {
      case "string":
        return v.length <= limits.maxString
          ? v
          : `${v.slice(0, limits.maxString)}…[+${v.length - limits.maxString} chars]`;
      case "number":
        return Number.isFinite(v) ? v : String(v);
      case "boolean":
        return v;
      case "bigint":
        return v.toString();
      case "function":
        return "[function]";
      case "symbol":
        return v.toString();
      case "object":
        break;
      default:
        return null;
    }
    const actor = actorIdOf(v);
    if (actor !== null) return { $actor: actor };
    if (v instanceof Date) return Number.isNaN(v.getTime()) ? "Invalid Date" : v.toISOString();
    if (v instanceof Error) return { $error: v.name, message: walk(v.message, depth + 1) };
    if (seen.has(v)) return "[circular]";
    if (depth >= limits.maxDepth) return "[deeper]";
    seen.add(v);
    try {
      if (Array.isArray(v) || v instanceof Set) return items([...(v as Iterable<unknown>)], depth);
      if (v instanceof Map)
        return entries(
          [...v.entries()].map(([k, x]) => [String(k), x] as const),
          depth,
        );
      if (ArrayBuffer.isView(v)) return `[${v.byteLength} bytes]`;
      const proto: unknown = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        const toJSON = (v as { toJSON?: unknown }).toJSON;
        if (typeof toJSON === "function") return walk(toJSON.call(v), depth + 1);
        return `[${(v as { constructor?: { name?: string } }).constructor?.name ?? "object"}]`;
      }
      return entries(Object.entries(v), depth);
    } finally {
      seen.delete(v);
    }
  };
  const items = (list: readonly unknown[], depth: number): JsonValue[] => {
    const kept = list.slice(0, limits.maxItems).map((x) => walk(x, depth + 1));
    return list.length > limits.maxItems ? [...kept, `…[+${list.length - limits.maxItems} items]`] : kept;
  };
  const entries = (list: ReadonlyArray<readonly [string, unknown]>, depth: number): { [key: string]: JsonValue } => {
    const out: { [key: string]: JsonValue } = {};
    for (const [key, x] of list.slice(0, limits.maxItems))
      out[key] = isRedacted(key) ? "[redacted]" : walk(x, depth + 1);
    if (list.length > limits.maxItems) out["…"] = `[+${list.length - limits.maxItems} entries]`;
    return out;
  };
  return walk(value, 0);
}
