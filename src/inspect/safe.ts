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
  // A request as written to the image (`SEND`'s `frame`): its code is in there, as text.
  "frame",
]);

/** The answers for the field names seen so far (a few hundred in practice; bounded all the same). */
const redactedKnown = new Map<string, boolean>();

/** Whether a field of this name is never shown. */
export const isRedacted = (key: string): boolean => {
  let known = redactedKnown.get(key);
  if (known === undefined) {
    known = REDACTED.has(key.toLowerCase().replace(/[_-]/g, ""));
    if (redactedKnown.size < 4096) redactedKnown.set(key, known);
  }
  return known;
};

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

/** One `toSafeJsonText` call's budget and path (module functions, not closures: nothing made per call). */
interface Walk {
  readonly limits: SafeLimits;
  /** The objects being written, outermost first: at most `maxDepth` of them, so a scan is cheap. */
  readonly path: object[];
  nodes: number;
}

/**
 * `JSON.stringify(toSafeJson(value, limits))`, in one pass and without the copy: the same text,
 * value for value and budget for budget, for what is sent rather than kept.
 */
export function toSafeJsonText(value: unknown, limits: SafeLimits = DEFAULT_LIMITS): string {
  return textOf({ limits, path: [], nodes: 0 }, value, 0);
}

function textOf(w: Walk, v: unknown, depth: number): string {
  if (v === null || v === undefined) return "null";
  if (++w.nodes > w.limits.maxNodes) return '"[cut: too large]"';
  switch (typeof v) {
    case "string":
      return JSON.stringify(
        v.length <= w.limits.maxString
          ? v
          : `${v.slice(0, w.limits.maxString)}…[+${v.length - w.limits.maxString} chars]`,
      );
    case "number":
      return Number.isFinite(v) ? String(v) : `"${String(v)}"`;
    case "boolean":
      return v ? "true" : "false";
    case "bigint":
      return `"${v.toString()}"`;
    case "function":
      return '"[function]"';
    case "symbol":
      return JSON.stringify(v.toString());
    case "object":
      break;
    default:
      return "null";
  }
  const actor = actorIdOf(v);
  if (actor !== null) return `{"$actor":${JSON.stringify(actor)}}`;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? '"Invalid Date"' : `"${v.toISOString()}"`;
  if (v instanceof Error) {
    const message = textOf(w, v.message, depth + 1);
    const name = JSON.stringify(v.name) as string | undefined;
    return name === undefined ? `{"message":${message}}` : `{"$error":${name},"message":${message}}`;
  }
  if (w.path.includes(v)) return '"[circular]"';
  if (depth >= w.limits.maxDepth) return '"[deeper]"';
  w.path.push(v);
  try {
    if (Array.isArray(v)) return itemsText(w, v, depth);
    if (v instanceof Set) return itemsText(w, [...(v as Set<unknown>)], depth);
    if (v instanceof Map) return mapText(w, v as Map<unknown, unknown>, depth);
    if (ArrayBuffer.isView(v)) return `"[${v.byteLength} bytes]"`;
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      const toJSON = (v as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === "function") return textOf(w, toJSON.call(v), depth + 1);
      return JSON.stringify(`[${(v as { constructor?: { name?: string } }).constructor?.name ?? "object"}]`);
    }
    return objectText(w, v as Record<string, unknown>, depth);
  } finally {
    w.path.pop();
  }
}

function itemsText(w: Walk, list: readonly unknown[], depth: number): string {
  const kept = Math.min(list.length, w.limits.maxItems);
  let out = "[";
  for (let i = 0; i < kept; i++) out += (i === 0 ? "" : ",") + textOf(w, list[i], depth + 1);
  if (list.length > w.limits.maxItems) out += `${kept === 0 ? "" : ","}"…[+${list.length - w.limits.maxItems} items]"`;
  return `${out}]`;
}

function objectText(w: Walk, v: Record<string, unknown>, depth: number): string {
  const keys = Object.keys(v);
  const cut = keys.length > w.limits.maxItems ? `"[+${keys.length - w.limits.maxItems} entries]"` : null;
  const kept = Math.min(keys.length, w.limits.maxItems);
  let out = "{";
  let first = true;
  let marked = false;
  for (let i = 0; i < kept; i++) {
    const key = keys[i] as string;
    const text = isRedacted(key) ? '"[redacted]"' : textOf(w, v[key], depth + 1);
    // As the copy: `__proto__` is an assignment there, not a field; a "…" field gives its place to the cut marker.
    if (key === "__proto__") continue;
    if (key === "…" && cut !== null) marked = true;
    out += `${first ? "" : ","}${JSON.stringify(key)}:${key === "…" && cut !== null ? cut : text}`;
    first = false;
  }
  if (cut !== null && !marked) out += `${first ? "" : ","}"…":${cut}`;
  return `${out}}`;
}

/** A map as the copy makes it: its keys as strings, a later duplicate taking an earlier one's place. */
function mapText(w: Walk, v: Map<unknown, unknown>, depth: number): string {
  const fields: Record<string, string> = {};
  let n = 0;
  for (const [k, x] of v) {
    if (n++ >= w.limits.maxItems) break;
    const key = String(k);
    fields[key] = isRedacted(key) ? '"[redacted]"' : textOf(w, x, depth + 1);
  }
  if (v.size > w.limits.maxItems) fields["…"] = `"[+${v.size - w.limits.maxItems} entries]"`;
  let out = "{";
  let first = true;
  for (const key of Object.keys(fields)) {
    out += `${first ? "" : ","}${JSON.stringify(key)}:${fields[key] as string}`;
    first = false;
  }
  return `${out}}`;
}
