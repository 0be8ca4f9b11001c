/** Public entry point of the STUI session service package. */
export * from "./protocol/index.js";
export {
  ImageRequestError,
  requestImage,
  startImageConnection,
  waitForStatus,
  type ImageConnection,
  type RequestOptions,
} from "./actors/image-connection.js";
export { DEFAULT_POLICY, type ConnectionPolicy } from "./machines/connection-policy.js";
export type { ImageConnectionInput, ImageConnectionEmitted } from "./machines/image-connection.js";
