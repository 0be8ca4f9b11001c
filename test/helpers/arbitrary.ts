/**
 * fast-check arbitraries derived from the protocol's own zod schemas, so the property tests cover
 * every variant and every field without a hand-written generator per message.
 */
import fc from "fast-check";
import { z } from "zod";

/** JSON values without the keys the decoder refuses (those are tested on their own). */
// Normalized through JSON: fast-check may produce -0, which JSON cannot carry (it reads back as 0).
export const safeJson: fc.Arbitrary<unknown> = fc
  .jsonValue({ maxDepth: 3 })
  .filter((v) => !hasForbiddenKey(v))
  .map((v) => JSON.parse(JSON.stringify(v)) as unknown);

function hasForbiddenKey(value: unknown): boolean {
  if (value === null || typeof value !== "object") return false;
  if (Array.isArray(value)) return value.some(hasForbiddenKey);
  return Object.entries(value).some(
    ([k, v]) => k === "__proto__" || k === "constructor" || k === "prototype" || hasForbiddenKey(v),
  );
}

const tokenChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-".split(""));
const isoTimestamp = fc
  .date({ min: new Date("1990-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true })
  .map((d) => d.toISOString());
/** Finite doubles that survive a JSON round trip unchanged (no -0). */
const jsonDouble = (min: number, max: number) =>
  fc.double({ min, max, noNaN: true, noDefaultInfinity: true }).map((x) => (x === 0 ? 0 : x));

/** An arbitrary producing values that `schema` accepts (its output side). */
export function arbitraryOf(schema: z.ZodType): fc.Arbitrary<unknown> {
  if (schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault)
    return arbitraryOf(schema.unwrap() as z.ZodType);
  if (schema instanceof z.ZodNullable) return fc.option(arbitraryOf(schema.unwrap() as z.ZodType), { nil: null });
  if (schema instanceof z.ZodStringFormat && schema.format === "datetime") return isoTimestamp;
  if (schema instanceof z.ZodString) {
    const min = schema.minLength ?? 0;
    const max = Math.min(schema.maxLength ?? 40, Math.max(min, 40));
    // The protocol's only patterned strings are subject tokens (image ids).
    if (schema.format === "regex") return fc.string({ unit: tokenChar, minLength: Math.max(min, 1), maxLength: max });
    return fc.string({ minLength: min, maxLength: max });
  }
  if (schema instanceof z.ZodNumber) {
    const min = schema.minValue ?? -1e9;
    const max = Math.min(schema.maxValue ?? 1e9, 1e9);
    return schema.isInt ? fc.integer({ min: Math.max(min, -1e9), max }) : jsonDouble(Math.max(min, -1e9), max);
  }
  if (schema instanceof z.ZodBoolean) return fc.boolean();
  if (schema instanceof z.ZodLiteral) return fc.constant(schema.value);
  if (schema instanceof z.ZodEnum) return fc.constantFrom(...(schema.options as string[]));
  if (schema instanceof z.ZodArray) return fc.array(arbitraryOf(schema.element as z.ZodType), { maxLength: 3 });
  if (schema instanceof z.ZodRecord) {
    return fc.dictionary(fc.string({ unit: tokenChar, maxLength: 8 }), arbitraryOf(schema.valueType as z.ZodType), {
      maxKeys: 3,
      noNullPrototype: true,
    });
  }
  if (schema instanceof z.ZodObject) {
    const shape = schema.shape as Record<string, z.ZodType>;
    const fields: Record<string, fc.Arbitrary<unknown>> = {};
    for (const [key, field] of Object.entries(shape)) fields[key] = arbitraryOf(field);
    return fc.record(fields);
  }
  if (schema instanceof z.ZodUnknown) return safeJson;
  throw new Error(`no arbitrary for ${schema.constructor.name}`);
}
