/**
 * Turning untrusted bytes into a plain JSON value, within stated limits, before any schema sees it.
 */
import { DecodeError, fail, joinPath, ok, type Decoded } from "./errors.js";

export interface DecodeLimits {
  /**
   * Largest accepted input, in bytes of UTF-8.
   * @default 1048576 (1 MiB)
   */
  readonly maxBytes: number;
  /**
   * Deepest accepted nesting of arrays and objects (the top-level value is depth 1).
   * @default 32
   */
  readonly maxDepth: number;
}

export const DEFAULT_LIMITS: DecodeLimits = { maxBytes: 1024 * 1024, maxDepth: 32 };

/**
 * Keys that could reach an object's prototype when a decoded value is copied or merged later.
 * `JSON.parse` itself defines them as plain own properties, so refusing them here is a guarantee
 * for everything downstream rather than a repair of the parser.
 */
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Input a decoder accepts: text, bytes (a NATS payload, a ZeroMQ frame), or an already parsed value. */
export type WireInput = string | Uint8Array;

/** Parses text or bytes as JSON, enforcing size, depth and key limits. */
export function parseJson(input: WireInput, limits: DecodeLimits = DEFAULT_LIMITS): Decoded<unknown> {
  let text: string;
  if (typeof input === "string") {
    // A UTF-16 unit is 1 to 3 UTF-8 bytes, so the exact count is only needed when the bounds disagree.
    if (input.length > limits.maxBytes) return tooLarge(Buffer.byteLength(input, "utf8"), limits);
    if (input.length * 3 > limits.maxBytes) {
      const bytes = Buffer.byteLength(input, "utf8");
      if (bytes > limits.maxBytes) return tooLarge(bytes, limits);
    }
    text = input;
  } else {
    if (input.byteLength > limits.maxBytes) return tooLarge(input.byteLength, limits);
    try {
      text = utf8.decode(input);
    } catch (cause) {
      return fail(new DecodeError("NotUtf8", "", "not valid UTF-8", { cause }));
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    return fail(new DecodeError("NotJson", "", `not JSON (${detail})`, { cause }));
  }
  const problem = checkStructure(value, limits.maxDepth);
  return problem === undefined ? ok(value) : fail(problem);
}

function tooLarge(bytes: number, limits: DecodeLimits): Decoded<never> {
  return fail(new DecodeError("TooLarge", "", `${bytes} bytes exceeds the limit of ${limits.maxBytes} bytes`));
}

/**
 * Reports the first value nested deeper than `maxDepth` or the first forbidden key. Recursion is
 * safe here because it stops at `maxDepth`, whatever the input. Also the guard for values that did
 * not come from `JSON.parse` (a record read back from a store), where the depth bound stops cycles.
 * The path is only built on the way back up from a problem, so good input allocates nothing.
 */
export function checkStructure(root: unknown, maxDepth: number): DecodeError | undefined {
  const problem = findProblem(root, 1, maxDepth);
  if (problem === undefined) return undefined;
  let path = "";
  for (let i = problem.segments.length - 1; i >= 0; i--) path = joinPath(path, problem.segments[i] ?? "");
  return problem.key === undefined
    ? new DecodeError("TooDeep", path, `nested deeper than the limit of ${maxDepth}`)
    : new DecodeError("ForbiddenKey", path, `the key "${problem.key}" is not allowed`);
}

interface Problem {
  /** The forbidden key, or undefined for a depth problem. */
  readonly key: string | undefined;
  /** Path segments, innermost first. */
  readonly segments: (string | number)[];
}

function findProblem(value: unknown, depth: number, maxDepth: number): Problem | undefined {
  if (value === null || typeof value !== "object") return undefined;
  if (depth > maxDepth) return { key: undefined, segments: [] };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = findProblem(value[i], depth + 1, maxDepth);
      if (problem !== undefined) {
        problem.segments.push(i);
        return problem;
      }
    }
    return undefined;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    if (FORBIDDEN_KEYS.has(key)) return { key, segments: [key] };
    const problem = findProblem((value as Record<string, unknown>)[key], depth + 1, maxDepth);
    if (problem !== undefined) {
      problem.segments.push(key);
      return problem;
    }
  }
  return undefined;
}
