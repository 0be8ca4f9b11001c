/**
 * The entry for services that only talk to STUI over NATS (`stui-session-service/client`): the
 * typed client, the protocol and the NATS options. It loads neither zeromq (a native addon) nor
 * xstate: nothing here may import the image connection, the machines or the service, even
 * transitively (`test/package.client-entry.test.ts` checks it on the built package).
 */
export * from "./protocol/index.js";
export {
  ServiceUnavailableError,
  StuiClient,
  type ClientOptions,
  type EventFeed,
  type ReplayedEvent,
  type ReplayOptions,
  type RequestBody,
} from "./client.js";
export type { NatsOptions, NatsTlsOptions } from "./actors/nats-link.js";
export * from "./errors.js";
