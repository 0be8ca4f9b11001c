/**
 * The one error every decoder returns. Decoders never throw anything else: a bad frame from an
 * image, a malformed request or a corrupt record all end up here, with the offending path named.
 */

/** What kind of badness was found; lets callers map it (a `TooLarge` body is refused, etc.). */
export type DecodeErrorKind =
  "NotJson" | "NotUtf8" | "TooLarge" | "TooDeep" | "ForbiddenKey" | "UnknownVariant" | "Invalid";

export class DecodeError extends Error {
  override readonly name = "DecodeError";
  readonly kind: DecodeErrorKind;
  /** Dotted path to the offending value, e.g. `SwitchImageContext.to_image_id`; empty at the root. */
  readonly path: string;
  /** The reason without the path, e.g. `expected string, got number`. */
  readonly reason: string;

  constructor(kind: DecodeErrorKind, path: string, reason: string, options?: ErrorOptions) {
    super(path === "" ? reason : `${path}: ${reason}`, options);
    this.kind = kind;
    this.path = path;
    this.reason = reason;
  }
}

/** A decoder's answer: the value, or the typed decode error. */
export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: DecodeError };

export const ok = <T>(value: T): Decoded<T> => ({ ok: true, value });
export const fail = <T = never>(error: DecodeError): Decoded<T> => ({ ok: false, error });

/** Unwraps a decoder's answer, throwing its `DecodeError` (for callers that prefer exceptions). */
export function unwrap<T>(decoded: Decoded<T>): T {
  if (decoded.ok) return decoded.value;
  throw decoded.error;
}

/** Joins a path prefix and a segment the way messages show them: `a.b`, `a[3]`. */
export function joinPath(prefix: string, segment: string | number): string {
  if (typeof segment === "number") return `${prefix}[${segment}]`;
  return prefix === "" ? segment : `${prefix}.${segment}`;
}
