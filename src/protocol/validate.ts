/**
 * Running a zod schema over an untrusted value and turning its first complaint into a
 * `DecodeError` whose message names the path, serde-style: `to_image_id: expected string, got number`.
 */
import type { z } from "zod";
import { DecodeError, fail, joinPath, ok, type Decoded } from "./errors.js";

/** The JSON type of a value, as messages name it. */
export function jsonTypeOf(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/** A short rendering of a scalar for messages; containers by type only. */
function show(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return jsonTypeOf(value);
}

const EXPECTED_NAMES: Record<string, string> = { int: "integer", record: "object" };

/** One issue's reason, serde-style, without its path. */
export function reasonOf(issue: z.core.$ZodIssue): string {
  const input = issue.input;
  switch (issue.code) {
    case "invalid_type": {
      const expected = EXPECTED_NAMES[issue.expected] ?? issue.expected;
      if (input === undefined) return `missing field, expected ${expected}`;
      const got = issue.expected === "int" && typeof input === "number" ? String(input) : jsonTypeOf(input);
      return `expected ${expected}, got ${got}`;
    }
    case "invalid_value":
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(" | ")}, got ${show(input)}`;
    case "invalid_format":
      if (issue.format === "datetime") return `expected an ISO 8601 timestamp, got ${show(input)}`;
      return `${issue.message}, got ${show(input)}`;
    case "too_small":
      return `expected ${boundText(issue.origin, issue.inclusive === false ? ">" : ">=", issue.minimum)}, got ${sizeOf(issue.origin, input)}`;
    case "too_big":
      return `expected ${boundText(issue.origin, issue.inclusive === false ? "<" : "<=", issue.maximum)}, got ${sizeOf(issue.origin, input)}`;
    default:
      return issue.message;
  }
}

function boundText(origin: string, op: string, bound: number | bigint): string {
  switch (origin) {
    case "string":
      return `a string of length ${op} ${bound}`;
    case "array":
      return `an array of length ${op} ${bound}`;
    default:
      return `a number ${op} ${bound}`;
  }
}

function sizeOf(origin: string, input: unknown): string {
  if ((origin === "string" || origin === "array") && (typeof input === "string" || Array.isArray(input))) {
    return `length ${input.length}`;
  }
  return show(input);
}

/** Validates `value` against `schema`; errors are reported under `path`. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, path: string): Decoded<z.output<S>> {
  const result = schema.safeParse(value);
  if (result.success) return ok(result.data);
  return fail(describeFailure(schema, value, path));
}

/** Runs the schema again, asking for the offending inputs: only bad input pays for that. */
function describeFailure(schema: z.ZodType, value: unknown, path: string): DecodeError {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return new DecodeError("Invalid", path, "invalid value");
  const issue = result.error.issues[0];
  if (issue === undefined) return new DecodeError("Invalid", path, "invalid value");
  let at = path;
  for (const segment of issue.path) at = joinPath(at, typeof segment === "number" ? segment : String(segment));
  const more = result.error.issues.length - 1;
  const reason = more > 0 ? `${reasonOf(issue)} (and ${more} more problem${more === 1 ? "" : "s"})` : reasonOf(issue);
  return new DecodeError("Invalid", at, reason);
}
