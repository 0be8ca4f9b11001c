/** Public entry point of the STUI session service package. */
export * from "./protocol/index.js";
