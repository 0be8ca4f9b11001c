/**
 * What the KV store tests share: a bucket prefix of their own per test (so tests on one nats-server
 * never meet), connections that reconnect quickly, and the stores and connections a test opened
 * closed after it, also when it fails.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach } from "vitest";

export interface KvTestbed {
  /** A bucket prefix no other test uses. */
  readonly freshPrefix: () => string;
  /** A connection to `servers` (in this order), closed after the test. */
  readonly connectTo: (servers: string | readonly string[]) => Promise<NatsConnection>;
  /** Closes `store` after the test, before the connections. */
  readonly keep: <T extends { close(): Promise<void> }>(store: T) => T;
}

/** Registers the clean-up with the calling test file; `letter` starts its bucket prefixes. */
export function kvTestbed(letter: string): KvTestbed {
  let prefixes = 0;
  const connections: NatsConnection[] = [];
  const stores: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close().catch(() => undefined);
    for (const nc of connections.splice(0)) await nc.close().catch(() => undefined);
  });
  return {
    freshPrefix: () => `${letter}${process.pid}_${(prefixes += 1)}`,
    connectTo: async (servers) => {
      const nc = await connect({
        servers: typeof servers === "string" ? servers : [...servers],
        noRandomize: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 100,
      });
      connections.push(nc);
      return nc;
    },
    keep: (store) => {
      stores.push(store);
      return store;
    },
  };
}
