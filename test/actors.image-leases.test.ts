/**
 * The lease revision as a fencing token (`ImageLeases.verify`), on a real nats-server: a write for
 * an image's sessions goes ahead only while the lease store still names this instance's lease, and
 * is refused the moment another instance has taken it over, before this one's renewal notices.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImageLeases } from "../src/actors/image-leases.js";
import { KvLeaseStore } from "../src/adapters/kv-store/leases.js";
import { RequestError } from "../src/errors.js";
import type { SessionManagerActor, SessionManagerEvent } from "../src/machines/session-manager.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";

let server: NatsServerHandle | null = null;
const connections: NatsConnection[] = [];

beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  for (const nc of connections.splice(0)) await nc.close().catch(() => undefined);
  await server?.stop();
});

const quiet = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };

async function leaseStore(): Promise<KvLeaseStore> {
  const nc = await connect({ servers: server?.url ?? "" });
  connections.push(nc);
  return KvLeaseStore.open({ nc, bucketPrefix: `f${process.pid}`, logger: quiet });
}

describe("image leases - fencing", () => {
  it("image leases - verify passes while the stored lease is this instance's, and refuses once another took it over", async () => {
    const sent: SessionManagerEvent[] = [];
    // Only what ImageLeases uses of the manager: where it sends IMAGE.ADD and IMAGE.REMOVE.
    const manager = { send: (event: SessionManagerEvent) => sent.push(event) } as unknown as SessionManagerActor;
    const mine = await leaseStore();
    const leases = ImageLeases.start(
      [{ id: "dev", address: "tcp://127.0.0.1:1" }],
      { store: mine, owner: "a", ttlMs: 30_000 },
      manager,
      quiet,
    );
    try {
      await expect.poll(() => leases.holds("dev"), { timeout: 5000 }).toBe(true);
      expect(sent.map((e) => e.type)).toEqual(["IMAGE.ADD"]);
      await expect(leases.verify("dev")).resolves.toBeUndefined();
      await expect(leases.verify("not-shared")).resolves.toBeUndefined();

      // b takes the lease over behind a's back: a still trusts its lease (renewal due in 10 s).
      const other = await leaseStore();
      const current = await other.get("dev");
      await other.put("dev", "b", 30_000, current?.revision ?? 0);
      expect(leases.holds("dev")).toBe(true);
      const refused = await leases.verify("dev").then(
        () => null,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(RequestError);
      expect(refused instanceof RequestError && [refused.code, refused.message]).toEqual([
        "ImageUnavailable",
        "instance a no longer owns image dev (its lease is b's, revision 2): retry",
      ]);
      await other.close();
    } finally {
      await leases.release();
    }
  });
});
