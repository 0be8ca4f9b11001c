/** The STUI protocol: wire types, their runtime schemas, the codec and the NATS subjects. */
export * from "./codec.js";
export * from "./errors.js";
export * from "./events.js";
export * from "./image.js";
export { DEFAULT_LIMITS, type DecodeLimits, type WireInput } from "./json.js";
export * from "./model.js";
export * from "./primitives.js";
export * from "./requests.js";
export * from "./responses.js";
export * from "./subjects.js";
export type { TaggedUnion, VariantOf } from "./tagged.js";
