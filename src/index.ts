/** Public entry point of the STUI session service package. */
// What a client needs (the protocol, the errors, the typed client): also `./client`, without zeromq.
export * from "./client-entry.js";
export {
  requestImage,
  startImageConnection,
  waitForStatus,
  type ImageConnection,
  type RequestOptions,
} from "./actors/image-connection.js";
export { DEFAULT_POLICY, type ConnectionPolicy } from "./machines/connection-policy.js";
export type { ImageConnectionInput, ImageConnectionEmitted } from "./machines/image-connection.js";
export { SessionManager, type SessionManagerOptions } from "./actors/session-manager.js";
export { FileSessionStore, type FileSessionStoreOptions } from "./adapters/file-store/store.js";
export { UNREVISIONED, type LoadResult, type SessionStore, type StoredSession, type StoreProblem } from "./ports.js";
export {
  DEFAULT_MANAGER_POLICY,
  type ImageConfig,
  type ManagerPolicy,
  type SessionManagerEmitted,
  type SessionNotice,
} from "./machines/session-manager.js";
export type { Logger } from "./logger.js";
export { StuiService, SERVICE_VERSION, type ServiceOptions } from "./service.js";
export {
  DEFAULT_STREAM,
  type EventPublisherOptions,
  type EventStreamOptions,
  type PublisherCounts,
} from "./actors/event-publisher.js";
export { SERVICE_ERROR_CODES } from "./actors/nats-api.js";
