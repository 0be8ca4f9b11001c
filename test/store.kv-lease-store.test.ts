import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvLeaseStore, type KvLeaseStoreOptions } from "../src/adapters/kv-store/leases.js";
import { UNREVISIONED, type StoreLogger } from "../src/ports.js";
import { RevisionConflictError } from "../src/errors.js";
import { kvTestbed } from "./helpers/kv.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { startNatsCluster, type NatsCluster } from "./helpers/nats-cluster.js";

interface Logged {
  readonly errors: string[];
  readonly logger: StoreLogger;
}

function logged(): Logged {
  const errors: string[] = [];
  return {
    errors,
    logger: { error: (_fields: object, message?: string) => errors.push(message ?? ""), warn: () => 0, info: () => 0 },
  };
}

const { freshPrefix, connectTo, keep } = kvTestbed("l");

const openStore = async (options: KvLeaseStoreOptions): Promise<KvLeaseStore> =>
  keep(await KvLeaseStore.open({ logger: logged().logger, ...options }));

describe("kv lease store - one nats-server", () => {
  let server: NatsServerHandle | null = null;
  const url = (): string => server?.url ?? "";

  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("kv lease store - the bucket is <prefix>_leases, without direct gets, with the given replicas", async () => {
    const bucketPrefix = freshPrefix();
    const nc = await connectTo(url());
    await openStore({ nc, bucketPrefix });
    const info = await (await jetstreamManager(nc)).streams.info(`KV_${bucketPrefix}_leases`);
    expect(info.config.allow_direct).toBe(false);
    expect(info.config.num_replicas).toBe(1);
    expect(info.config.subjects).toEqual([`$KV.${bucketPrefix}_leases.>`]);
  });

  it("kv lease store - take an absent lease, a second taker conflicts, renew moves the revision, a stale revision conflicts", async () => {
    const bucketPrefix = freshPrefix();
    let clock = 1_700_000_000_000;
    const a = await openStore({ nc: await connectTo(url()), bucketPrefix, now: () => clock });
    const b = await openStore({ nc: await connectTo(url()), bucketPrefix, now: () => clock });

    expect(await a.get("img-1")).toBeNull();
    const taken = await a.put("img-1", "inst-a", 5000, UNREVISIONED);
    expect(taken).toEqual({
      imageId: "img-1",
      owner: "inst-a",
      expiresAt: clock + 5000,
      ttlMs: 5000,
      revision: taken.revision,
    });
    expect(taken.revision).toBeGreaterThan(0);
    expect(await a.get("img-1")).toEqual(taken);
    expect(await b.get("img-1")).toEqual(taken);

    const second = b.put("img-1", "inst-b", 5000, UNREVISIONED);
    await expect(second).rejects.toBeInstanceOf(RevisionConflictError);
    await expect(second).rejects.toMatchObject({ expectedRevision: UNREVISIONED, actualRevision: taken.revision });

    clock += 2000;
    const renewed = await a.put("img-1", "inst-a", 5000, taken.revision);
    expect(renewed.revision).toBeGreaterThan(taken.revision);
    expect(renewed.expiresAt).toBe(clock + 5000);
    expect(await b.get("img-1")).toEqual(renewed);

    await expect(a.put("img-1", "inst-a", 5000, taken.revision)).rejects.toBeInstanceOf(RevisionConflictError);
    expect(await a.get("img-1")).toEqual(renewed);
  });

  it("kv lease store - the value is JSON {owner, expires_at, ttl_ms, acquired_at}; a renewal keeps acquired_at", async () => {
    const bucketPrefix = freshPrefix();
    const nc = await connectTo(url());
    let clock = Date.parse("2025-01-02T03:04:05.000Z");
    const a = await openStore({ nc, bucketPrefix, now: () => clock });
    const jsm = await jetstreamManager(nc);
    const value = async (): Promise<unknown> =>
      (
        await jsm.streams.getMessage(`KV_${bucketPrefix}_leases`, { last_by_subj: `$KV.${bucketPrefix}_leases.img` })
      )?.json();

    const taken = await a.put("img", "inst-a", 3000, UNREVISIONED);
    expect(await value()).toEqual({
      owner: "inst-a",
      expires_at: "2025-01-02T03:04:08.000Z",
      ttl_ms: 3000,
      acquired_at: "2025-01-02T03:04:05.000Z",
    });
    clock += 1000;
    await a.put("img", "inst-a", 3000, taken.revision);
    expect(await value()).toEqual({
      owner: "inst-a",
      expires_at: "2025-01-02T03:04:09.000Z",
      ttl_ms: 3000,
      acquired_at: "2025-01-02T03:04:05.000Z",
    });
  });

  it("kv lease store - takeover: B puts naming A's revision and owns it; A's renew with its old revision is fenced off", async () => {
    const bucketPrefix = freshPrefix();
    const a = await openStore({ nc: await connectTo(url()), bucketPrefix });
    const b = await openStore({ nc: await connectTo(url()), bucketPrefix });

    const mine = await a.put("img", "inst-a", 1000, UNREVISIONED);
    const seen = await b.get("img");
    expect(seen?.owner).toBe("inst-a");
    const theirs = await b.put("img", "inst-b", 1000, seen?.revision ?? -1);
    expect(theirs.owner).toBe("inst-b");
    expect(theirs.revision).toBeGreaterThan(mine.revision);

    await expect(a.put("img", "inst-a", 1000, mine.revision)).rejects.toMatchObject({
      name: "RevisionConflictError",
      expectedRevision: mine.revision,
      actualRevision: theirs.revision,
    });
    expect(await a.get("img")).toEqual(theirs);
  });

  it("kv lease store - release: gone, anyone takes it with UNREVISIONED (not the released revision); a release after a takeover undoes nothing", async () => {
    const bucketPrefix = freshPrefix();
    const a = await openStore({ nc: await connectTo(url()), bucketPrefix });
    const b = await openStore({ nc: await connectTo(url()), bucketPrefix });

    const first = await a.put("img", "inst-a", 1000, UNREVISIONED);
    await a.release(first);
    expect(await a.get("img")).toBeNull();
    expect(await b.get("img")).toBeNull();
    // A released key counts as none stored: naming the released lease's revision conflicts.
    await expect(b.put("img", "inst-b", 1000, first.revision)).rejects.toMatchObject({
      name: "RevisionConflictError",
      actualRevision: UNREVISIONED,
    });
    const taken = await b.put("img", "inst-b", 1000, UNREVISIONED);
    expect(taken.owner).toBe("inst-b");
    // Releasing again (already released, then taken): resolves, and B keeps it.
    await a.release(first);
    expect(await a.get("img")).toEqual(taken);

    // A takes it over from B; B's release of its old lease resolves without undoing A's.
    const back = await a.put("img", "inst-a", 1000, taken.revision);
    await b.release(taken);
    expect(await b.get("img")).toEqual(back);
    // Released twice by its owner: the second resolves quietly too.
    await a.release(back);
    await a.release(back);
    expect(await b.get("img")).toBeNull();
  });

  it("kv lease store - list returns every live lease, not released ones", async () => {
    const bucketPrefix = freshPrefix();
    const a = await openStore({ nc: await connectTo(url()), bucketPrefix });
    const b = await openStore({ nc: await connectTo(url()), bucketPrefix });
    expect(await a.list()).toEqual([]);

    const one = await a.put("img-1", "inst-a", 1000, UNREVISIONED);
    const two = await b.put("img-2", "inst-b", 2000, UNREVISIONED);
    const three = await a.put("img-3", "inst-a", 3000, UNREVISIONED);
    const twoRenewed = await b.put("img-2", "inst-b", 2000, two.revision);
    await a.release(three);

    expect(await b.list()).toEqual([one, twoRenewed]);
  });

  it("kv lease store - a value that does not decode reads as none (logged) and a put with UNREVISIONED replaces it, once", async () => {
    const bucketPrefix = freshPrefix();
    const nc = await connectTo(url());
    const log = logged();
    const a = await openStore({ nc, bucketPrefix, logger: log.logger });
    const b = await openStore({ nc: await connectTo(url()), bucketPrefix, logger: logged().logger });
    const subject = `$KV.${bucketPrefix}_leases.`;
    const js = jetstream(nc);
    const bad = (await js.publish(`${subject}img`, "not json")).seq;
    await js.publish(`${subject}partial`, JSON.stringify({ owner: "x", ttl_ms: 5 }));

    expect(await a.get("img")).toBeNull();
    expect(await a.get("partial")).toBeNull();
    expect(await a.list()).toEqual([]);
    expect(log.errors.some((m) => m.includes(`${subject}img`) && m.includes("not a lease"))).toBe(true);

    // Both try to replace it: exactly one wins.
    const results = await Promise.allSettled([
      a.put("img", "inst-a", 1000, UNREVISIONED),
      b.put("img", "inst-b", 1000, UNREVISIONED),
    ]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.status === "rejected" ? lost[0].reason : null).toBeInstanceOf(RevisionConflictError);
    expect((await a.get("img"))?.revision).toBeGreaterThan(bad);

    // Naming the bad value's revision replaces it as well.
    const partial = await a.get("partial");
    expect(partial).toBeNull();
    const info = await (
      await jetstreamManager(nc)
    ).streams.getMessage(`KV_${bucketPrefix}_leases`, {
      last_by_subj: `${subject}partial`,
    });
    const replaced = await b.put("partial", "inst-b", 1000, info?.seq ?? -1);
    expect(replaced.owner).toBe("inst-b");
  });

  it("kv lease store - bad arguments and a closed store reject", async () => {
    const a = await openStore({ nc: await connectTo(url()), bucketPrefix: freshPrefix() });
    await expect(a.put("not a token", "x", 1000, UNREVISIONED)).rejects.toMatchObject({ name: "InvalidRecordError" });
    await expect(a.put("img", "", 1000, UNREVISIONED)).rejects.toMatchObject({ name: "InvalidRecordError" });
    await expect(a.put("img", "x", 0, UNREVISIONED)).rejects.toMatchObject({ name: "InvalidRecordError" });
    await expect(a.put("img", "x", 1000, -1)).rejects.toMatchObject({ name: "InvalidRecordError" });
    await expect(KvLeaseStore.open({ nc: await connectTo(url()), bucketPrefix: "a.b" })).rejects.toMatchObject({
      name: "InvalidRecordError",
    });
    await a.close();
    await expect(a.get("img")).rejects.toMatchObject({ name: "StoreClosedError" });
    await expect(a.put("img", "x", 1000, UNREVISIONED)).rejects.toMatchObject({ name: "StoreClosedError" });
  });
});

describe("kv lease store - 3-node cluster, replicas 3", () => {
  let cluster: NatsCluster | null = null;
  const nodes = (): NatsCluster => {
    if (cluster === null) throw new Error("no cluster");
    return cluster;
  };

  beforeAll(async () => {
    cluster = await startNatsCluster();
  }, 60_000);
  afterAll(async () => {
    await cluster?.cleanup();
  });

  it("kv lease store - two stores on different nodes race for the same absent lease: exactly one winner, 100 rounds", async () => {
    const bucketPrefix = freshPrefix();
    const [n1, n2] = nodes().nodes;
    if (n1 === undefined || n2 === undefined) throw new Error("the cluster has fewer than 2 nodes");
    const a = await openStore({ nc: await connectTo(n1.url), bucketPrefix, replicas: 3 });
    const b = await openStore({ nc: await connectTo(n2.url), bucketPrefix, replicas: 3 });
    const info = await (await jetstreamManager(await connectTo(n1.url))).streams.info(`KV_${bucketPrefix}_leases`);
    expect(info.config.num_replicas).toBe(3);
    expect(info.config.allow_direct).toBe(false);

    const outcomes: string[] = [];
    for (let round = 0; round < 100; round++) {
      const imageId = `img-${round}`;
      const results = await Promise.allSettled([
        a.put(imageId, "inst-a", 10_000, UNREVISIONED),
        b.put(imageId, "inst-b", 10_000, UNREVISIONED),
      ]);
      const winners = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
      const losers = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
      const winner = winners[0];
      if (winners.length !== 1 || winner === undefined || !(losers[0] instanceof RevisionConflictError)) {
        outcomes.push(`round ${round}: ${winners.length} winners, ${String(losers[0])}`);
        continue;
      }
      const [fromA, fromB] = await Promise.all([a.get(imageId), b.get(imageId)]);
      if (fromA?.owner !== winner.owner || fromB?.revision !== winner.revision) {
        outcomes.push(
          `round ${round}: won by ${winner.owner} r${winner.revision}, read ${fromA?.owner} r${fromB?.revision}`,
        );
      }
    }
    expect(outcomes).toEqual([]);
    expect(await a.list()).toHaveLength(100);
  }, 120_000);
});
