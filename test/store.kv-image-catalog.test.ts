/**
 * The shared image list in JetStream KV (`KvImageCatalog`) on a real nats-server: adding (the
 * first adder of an id wins, a second reads what won), listing, removing, every instance hearing
 * every change in order, and an entry that does not decode left out.
 */
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvImageCatalog } from "../src/adapters/kv-store/catalog.js";
import type { CatalogChange } from "../src/ports.js";
import { kvTestbed } from "./helpers/kv.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";

let server: NatsServerHandle | null = null;
const { freshPrefix, connectTo, keep } = kvTestbed("c");

beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server?.stop();
});

async function open(
  bucketPrefix: string,
  errors: string[] = [],
): Promise<{ catalog: KvImageCatalog; nc: NatsConnection }> {
  const nc = await connectTo(server?.url ?? "");
  const catalog = await KvImageCatalog.open({
    nc,
    bucketPrefix,
    logger: { error: (_f: object, message?: string) => errors.push(message ?? ""), warn: () => 0, info: () => 0 },
  });
  return { catalog: keep(catalog), nc };
}

describe("kv image catalog", () => {
  it("kv image catalog - add, list, remove; a second add of an id answers what is listed", async () => {
    const prefix = freshPrefix();
    const { catalog } = await open(prefix);
    expect(await catalog.list()).toEqual([]);
    const dev = { id: "dev", address: "tcp://127.0.0.1:5555", name: "Dev" };
    expect(await catalog.add(dev)).toEqual(dev);
    expect(await catalog.add({ id: "dev", address: "tcp://127.0.0.1:6666", name: null })).toEqual(dev);
    await catalog.add({ id: "build", address: "tcp://127.0.0.1:5557", name: null });
    expect((await catalog.list()).map((c) => c.id).sort()).toEqual(["build", "dev"]);
    expect(await catalog.remove("dev")).toBe(true);
    expect(await catalog.remove("dev")).toBe(false);
    expect((await catalog.list()).map((c) => c.id)).toEqual(["build"]);
    // Removed, the id may be added again, with another address.
    expect(await catalog.add({ id: "dev", address: "tcp://127.0.0.1:6666", name: null })).toMatchObject({
      address: "tcp://127.0.0.1:6666",
    });
  });

  it("kv image catalog - every instance hears every change, its own and the others', in order", async () => {
    const prefix = freshPrefix();
    const a = await open(prefix);
    const b = await open(prefix);
    const heard: { a: CatalogChange[]; b: CatalogChange[] } = { a: [], b: [] };
    a.catalog.watch((c) => heard.a.push(c));
    b.catalog.watch((c) => heard.b.push(c));
    await a.catalog.add({ id: "dev", address: "tcp://127.0.0.1:5555", name: null });
    await b.catalog.add({ id: "build", address: "tcp://127.0.0.1:5557", name: "Build" });
    await a.catalog.remove("build");
    const expected: CatalogChange[] = [
      { kind: "added", config: { id: "dev", address: "tcp://127.0.0.1:5555", name: null } },
      { kind: "added", config: { id: "build", address: "tcp://127.0.0.1:5557", name: "Build" } },
      { kind: "removed", imageId: "build" },
    ];
    await expect.poll(() => heard.a, { timeout: 5000 }).toEqual(expected);
    await expect.poll(() => heard.b, { timeout: 5000 }).toEqual(expected);
  });

  it("kv image catalog - an entry that does not decode is logged and left out", async () => {
    const prefix = freshPrefix();
    const errors: string[] = [];
    const { catalog, nc } = await open(prefix, errors);
    await catalog.add({ id: "dev", address: "tcp://127.0.0.1:5555", name: null });
    await jetstream(nc).publish(`$KV.${prefix}_images.bad`, "{not json");
    expect((await catalog.list()).map((c) => c.id)).toEqual(["dev"]);
    expect(errors.some((e) => e.includes("the entry of bad is not an image"))).toBe(true);
  });
});
