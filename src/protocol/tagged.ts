/**
 * Tagged unions in both shapes the wire uses:
 *
 * - externally tagged, as serde writes Rust enums: `{"SwitchImageContext": {...}}`, or the bare
 *   string `"ListImages"` for a variant without fields;
 * - internally tagged by a field: image requests by `command`, CloudEvents by `type`.
 *
 * In memory both are discriminated unions. One variant table drives decoding, encoding and the
 * JSON Schemas, so the three cannot drift apart.
 */
import { z } from "zod";
import { DecodeError, fail, ok, type Decoded } from "./errors.js";
import { jsonTypeOf, validate } from "./validate.js";

export type VariantTable = Record<string, z.ZodObject>;

/** The in-memory form of an externally tagged union: the variant name in `type`, then its fields. */
export type TaggedUnion<V extends VariantTable> = {
  [K in keyof V & string]: { readonly type: K } & z.output<V[K]>;
}[keyof V & string];

/** One variant of a tagged union, by name. */
export type VariantOf<U, K> = Extract<U, { readonly type: K }>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Turns anything a schema library throws into a decode error: decoders never throw. */
function guarded<T>(path: string, run: () => Decoded<T>): Decoded<T> {
  try {
    return run();
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    return fail(new DecodeError("Invalid", path, `could not be decoded (${detail})`, { cause }));
  }
}

export class ExternallyTagged<V extends VariantTable> {
  readonly names: readonly (keyof V & string)[];

  constructor(
    /** The union's name, the root of every error path (`Request`, `Response`). */
    readonly name: string,
    readonly variants: V,
  ) {
    this.names = Object.keys(variants);
  }

  has(variant: string): variant is keyof V & string {
    return Object.hasOwn(this.variants, variant);
  }

  /** A variant has no required fields, so serde would also write it as a bare string. */
  isUnitLike(variant: keyof V & string): boolean {
    return this.variants[variant]?.safeParse({}).success === true;
  }

  /** Decodes the wire form (a parsed JSON value). */
  decode(value: unknown): Decoded<TaggedUnion<V>> {
    return guarded(this.name, () => {
      if (typeof value === "string") {
        if (!this.has(value)) return fail(this.unknownVariant(value));
        if (!this.isUnitLike(value)) {
          return fail(
            new DecodeError("Invalid", this.name, `variant "${value}" has fields: write {"${value}": {...}}`),
          );
        }
        return this.decodeBody(value, {});
      }
      if (!isPlainObject(value)) {
        return fail(
          new DecodeError("Invalid", this.name, `expected an object with one variant key, got ${jsonTypeOf(value)}`),
        );
      }
      const keys = Object.keys(value);
      const [variant] = keys;
      if (variant === undefined || keys.length !== 1) {
        const found = keys.length === 0 ? "none" : `${keys.length} (${keys.slice(0, 5).join(", ")})`;
        return fail(new DecodeError("Invalid", this.name, `expected exactly one variant key, got ${found}`));
      }
      if (!this.has(variant)) return fail(this.unknownVariant(variant));
      return this.decodeBody(variant, value[variant]);
    });
  }

  /** Decodes just the fields of a known variant (the body of a per-endpoint API call). */
  decodeBody<K extends keyof V & string>(variant: K, body: unknown): Decoded<VariantOf<TaggedUnion<V>, K>> {
    return guarded(variant, () => {
      const schema = this.variants[variant];
      if (schema === undefined) return fail(this.unknownVariant(variant));
      if (!isPlainObject(body)) {
        return fail(new DecodeError("Invalid", variant, `expected an object, got ${jsonTypeOf(body)}`));
      }
      const fields = validate(schema, body, variant);
      if (!fields.ok) return fields;
      return ok({ type: variant, ...(fields.value as object) } as VariantOf<TaggedUnion<V>, K>);
    });
  }

  /** The wire form: `{"<variant>": {fields}}`. */
  encode(value: TaggedUnion<V>): Record<string, unknown> {
    const { type, ...fields } = value as { type: string } & Record<string, unknown>;
    return { [type]: fields };
  }

  /** JSON Schema of one variant's wire form. */
  variantJsonSchema(variant: keyof V & string): Record<string, unknown> {
    const schema = this.variants[variant];
    if (schema === undefined) throw new Error(`unknown variant ${variant}`);
    const body = bodySchema(schema);
    const tagged = {
      type: "object",
      properties: { [variant]: body },
      required: [variant],
      additionalProperties: false,
    };
    return this.isUnitLike(variant) ? { oneOf: [tagged, { type: "string", const: variant }] } : tagged;
  }

  /** JSON Schema of the whole union's wire form. */
  jsonSchema(): Record<string, unknown> {
    return { title: this.name, oneOf: this.names.map((n) => ({ title: n, ...this.variantJsonSchema(n) })) };
  }

  private unknownVariant(variant: string): DecodeError {
    return new DecodeError(
      "UnknownVariant",
      this.name,
      `unknown variant ${JSON.stringify(variant.slice(0, 64))}, expected one of ${this.names.join(", ")}`,
    );
  }
}

/**
 * A union tagged by one of its own fields (`command`, `type`, `status`). Memory form = wire form.
 */
export class FieldTagged<Tag extends string, V extends VariantTable> {
  readonly names: readonly (keyof V & string)[];

  constructor(
    readonly name: string,
    readonly tag: Tag,
    readonly variants: V,
  ) {
    this.names = Object.keys(variants);
  }

  decode(value: unknown): Decoded<z.output<V[keyof V]>> {
    return guarded(this.name, () => {
      if (!isPlainObject(value)) {
        return fail(new DecodeError("Invalid", this.name, `expected an object, got ${jsonTypeOf(value)}`));
      }
      const tagValue = value[this.tag];
      const path = `${this.name}.${this.tag}`;
      if (typeof tagValue !== "string") {
        const got =
          tagValue === undefined ? "missing field, expected string" : `expected string, got ${jsonTypeOf(tagValue)}`;
        return fail(new DecodeError("Invalid", path, got));
      }
      const schema = Object.hasOwn(this.variants, tagValue) ? this.variants[tagValue] : undefined;
      if (schema === undefined) {
        return fail(
          new DecodeError(
            "UnknownVariant",
            path,
            `unknown ${this.tag} ${JSON.stringify(tagValue.slice(0, 64))}, expected one of ${this.names.join(", ")}`,
          ),
        );
      }
      return validate(schema, value, tagValue) as Decoded<z.output<V[keyof V]>>;
    });
  }

  variantJsonSchema(variant: keyof V & string): Record<string, unknown> {
    const schema = this.variants[variant];
    if (schema === undefined) throw new Error(`unknown variant ${variant}`);
    return bodySchema(schema);
  }

  jsonSchema(): Record<string, unknown> {
    return { title: this.name, oneOf: this.names.map((n) => ({ title: n, ...this.variantJsonSchema(n) })) };
  }
}

/** JSON Schema of a zod schema's input (wire) side, without the `$schema` line (added per file). */
export function bodySchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
  return rest;
}
