/**
 * The service user's permissions with shared images (`store.kind: kv` and `cluster.lease_ttl_ms`),
 * as docs/security.md documents them: the block `# stui: service user, store.kind kv, cluster` is
 * read from the doc and put into a real nats-server's `authorization` with the documented API client
 * (its optional `stui.instance.*.request` line switched on), and two `stui serve` instances share
 * three images under exactly it: each image connected by exactly one of them (their own metrics),
 * requests answered through either instance's own subject (the non-owner forwards them), SIGTERM of
 * one handing its images to the other at once. The block is sufficient when neither the services'
 * output nor the server's log names a permission violation of the service user over the whole run;
 * and two of its lines are shown needed: without them, the server refuses the service.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { StuiClient } from "../src/client.js";
import {
  documentedUser,
  natsConfigWithUsers,
  permissionViolations,
  withOptionalEntry,
  withoutEntry,
  type DocumentedUser,
} from "./helpers/documented-users.js";
import { startImageSim, type ImageSimHandle } from "./helpers/image-sim.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { stopAllProcesses } from "./helpers/processes.js";
import { isolatedEnv } from "./helpers/cli.js";
import { ownership, serveShared, type ServeInstance } from "./helpers/cluster-instances.js";

const CLUSTER_SERVICE = "service user, store.kind kv, cluster";
const KV_SERVICE = "service user, store.kind kv";
const API_CLIENT = "api client";
const INSTANCE_REQUESTS = "stui.instance.*.request";
const TTL_MS = 3000;
const IMAGES = ["red", "green", "blue"] as const;

let dir: string | null = null;
let nats: NatsServerHandle | null = null;
let client: StuiClient | null = null;

afterEach(async () => {
  await client?.close().catch(() => undefined);
  client = null;
  await stopAllProcesses();
  await nats?.stop();
  nats = null;
  if (dir !== null) await rm(dir, { recursive: true, force: true });
  dir = null;
});

/** A nats-server with JetStream and exactly these users; `dir` holds its config and the services'. */
async function startNats(users: readonly DocumentedUser[]): Promise<NatsServerHandle> {
  dir = await mkdtemp(path.join(tmpdir(), "stui-clusterperms-"));
  nats = await startNatsServer({ jetstream: false, extraArgs: ["-c", await natsConfigWithUsers(dir, users)] });
  return nats;
}

type Instance = ServeInstance;

/** `stui serve` as instance `id`, sharing `sims` as the images, logged in as `service`. */
function serve(
  id: string,
  server: NatsServerHandle,
  sims: readonly ImageSimHandle[],
  service: DocumentedUser,
): Promise<Instance> {
  return serveShared({
    id,
    dir: dir ?? tmpdir(),
    urls: [server.url],
    sims,
    imageIds: IMAGES,
    ttlMs: TTL_MS,
    env: isolatedEnv({ STUI_NATS_USER: service.user, STUI_NATS_PASS: service.pass, STUI_LOG_LEVEL: "info" }),
  });
}

/** Image id → the instances that have it Connected, each from its own metrics. */
async function owners(instances: readonly Instance[]): Promise<Record<string, string[]>> {
  return Object.fromEntries(await ownership(instances));
}

/** Whether every image is Connected on exactly one of `instances`, each of which has some. */
async function sharedOut(instances: readonly Instance[]): Promise<boolean> {
  const found = await owners(instances);
  const each = IMAGES.every((image) => found[image]?.length === 1);
  return each && instances.every((i) => Object.values(found).some((o) => o.includes(i.id)));
}

/** The allow entries of a block's publish and subscribe lists (comment lines left out). */
function entries(block: string): { readonly publish: string[]; readonly subscribe: string[] } {
  const split = block.search(/^\s*subscribe:\s*\{/m);
  const quoted = (part: string): string[] =>
    part
      .split("\n")
      .filter((line) => !/^\s*(user|password):/.test(line) && !/^\s*#/.test(line))
      .flatMap((line) => [...line.matchAll(/"([^"]+)"/g)].map((m) => m[1] ?? ""));
  return { publish: quoted(block.slice(0, split)), subscribe: quoted(block.slice(split)) };
}

describe("security - the documented NATS permissions with shared images", () => {
  it("security - the cluster service block is the KV block plus lease, image list and instance subjects, none of them a whole tree", async () => {
    const { block } = await documentedUser(CLUSTER_SERVICE);
    expect(block).not.toMatch(/"\$JS\.API\.>"|"\$JS\.>"|"\$JS\.API\.\*"|"\$KV\.>"|"stui\.instance\.>"|"[>]"/);
    expect(block).not.toMatch(/allow_responses/);
    const cluster = entries(block);
    const kv = entries((await documentedUser(KV_SERVICE)).block);
    const added = (list: "publish" | "subscribe"): string[] => cluster[list].filter((e) => !kv[list].includes(e));
    expect(cluster.publish).toEqual(expect.arrayContaining(kv.publish));
    expect(cluster.subscribe).toEqual(expect.arrayContaining(kv.subscribe));
    expect(added("publish")).toEqual([
      "$JS.API.STREAM.INFO.KV_stui_leases",
      "$JS.API.STREAM.CREATE.KV_stui_leases",
      "$JS.API.STREAM.MSG.GET.KV_stui_leases",
      "$KV.stui_leases.*",
      "$JS.API.STREAM.INFO.KV_stui_images",
      "$JS.API.STREAM.CREATE.KV_stui_images",
      "$JS.API.STREAM.MSG.GET.KV_stui_images",
      "$KV.stui_images.*",
      "$JS.API.CONSUMER.CREATE.KV_stui_images.>",
      "$JS.API.CONSUMER.MSG.NEXT.KV_stui_images.*",
      "$JS.API.CONSUMER.INFO.KV_stui_images.*",
      "$JS.API.CONSUMER.DELETE.KV_stui_images.*",
      "stui.instance.*.request",
      "stui.instance.*.leaving",
    ]);
    expect(added("subscribe")).toEqual([
      "stui.instance.*.request stui",
      "stui.instance.*.leaving",
      "$KV.stui_leases.>",
    ]);
    // The API client addresses one instance only when that optional line is switched on.
    const api = await documentedUser(API_CLIENT);
    expect(entries(api.block).publish).not.toContain(INSTANCE_REQUESTS);
    expect(entries(withOptionalEntry(api, INSTANCE_REQUESTS).block).publish).toContain(INSTANCE_REQUESTS);
  });

  it(
    "security - two instances share three images under the documented cluster block: one owner each, requests forwarded both ways, SIGTERM hands over at once",
    { timeout: 120_000 },
    async () => {
      const service = await documentedUser(CLUSTER_SERVICE);
      const api = withOptionalEntry(await documentedUser(API_CLIENT), INSTANCE_REQUESTS);
      const server = await startNats([service, api]);
      const sims: ImageSimHandle[] = [];
      for (const id of IMAGES) sims.push(await startImageSim({ name: id }));
      const instances = [await serve("a", server, sims, service), await serve("b", server, sims, service)];
      await expect.poll(() => sharedOut(instances), { timeout: 30_000, interval: 250 }).toBe(true);

      const stui = await StuiClient.connect({ servers: server.url, user: api.user, pass: api.pass, timeoutMs: 10_000 });
      client = stui;
      const owner = Object.fromEntries(Object.entries(await owners(instances)).map(([image, [id]]) => [image, id]));
      const listed = await stui.listImages();
      expect(listed.type === "Images" && listed.images.map((i) => [i.image_id, i.status, i.owner])).toEqual(
        [...IMAGES].sort().map((image) => [image, "Connected", owner[image]]),
      );

      // Each image asked through each instance's own subject: the non-owner forwards to the owner.
      const asked: string[] = [];
      for (const image of IMAGES) {
        for (const { id } of instances) {
          const clientId = `client-${image}-${id}`;
          const ask = async (request: object): Promise<Record<string, unknown>> => {
            const reply = await stui.nc.request(`stui.instance.${id}.request`, JSON.stringify(request), {
              timeout: 10_000,
            });
            return reply.json<Record<string, unknown>>();
          };
          const created = await ask({ CreateSession: { image_id: image, client_id: clientId, session_name: "work" } });
          const evaluated = await ask({ Evaluate: { image_id: image, client_id: clientId, code: "3 + 4" } });
          expect(evaluated).toMatchObject({ EvaluationResult: { image_id: image, result: "7" } });
          asked.push(`${image} via ${id}: ${Object.keys(created).join()} ${Object.keys(evaluated).join()}`);
        }
      }
      expect(asked).toEqual(
        IMAGES.flatMap((image) => instances.map(({ id }) => `${image} via ${id}: SessionCreated EvaluationResult`)),
      );

      // SIGTERM the owner of the first image: the other has all three before any of its leases could
      // have lapsed (renewed every third of the TTL, a lease runs at least two thirds of it on), so
      // through the released leases, the leaving announcement and the lease watch.
      const leaving = instances.find((i) => i.id === owner[IMAGES[0]]);
      const staying = instances.find((i) => i !== leaving);
      if (leaving === undefined || staying === undefined) throw new Error(`no owner of ${IMAGES[0]}`);
      const stoppedAt = performance.now();
      leaving.child.signal("SIGTERM");
      expect((await leaving.child.exited).code).toBe(0);
      await expect.poll(() => sharedOut([staying]), { timeout: TTL_MS, interval: 50 }).toBe(true);
      expect(performance.now() - stoppedAt).toBeLessThan((2 * TTL_MS) / 3);
      const evaluated = await stui.evaluate({ image_id: IMAGES[0], client_id: "after", code: "3 + 4" });
      expect(evaluated).toMatchObject({ type: "EvaluationResult", result: "7" });
      staying.child.signal("SIGTERM");
      expect((await staying.child.exited).code).toBe(0);

      const serves = instances.map((i) => i.child);
      expect(permissionViolations(service.user, server.process(), serves)).toEqual([]);
      expect(permissionViolations(api.user, server.process(), [])).toEqual([]);
      for (const child of serves) {
        expect(`${child.stdout()}${child.stderr()}`).not.toContain(service.pass);
        expect(child.stdout()).toMatch(/"stui service started"/);
      }
    },
  );

  it.each([
    {
      list: "subscribe",
      entry: "$KV.stui_leases.>",
      server: 'Subscription Violation - User "stui-service", Subject "$KV.stui_leases.>"',
      service: 'Permissions Violation for Subscription to \\"$KV.stui_leases.>\\"',
    },
    {
      list: "publish",
      entry: "stui.instance.*.leaving",
      server: 'Publish Violation - User "stui-service", Subject "stui.instance.a.leaving"',
      service: 'Permissions Violation for Publish to \\"stui.instance.a.leaving\\"',
    },
  ] as const)(
    "security - the cluster service block without its $list line $entry: the server refuses the service",
    async ({ list, entry, server: refused, service: said }) => {
      const service = withoutEntry(await documentedUser(CLUSTER_SERVICE), list, entry);
      const server = await startNats([service]);
      const sim = await startImageSim({ name: IMAGES[0] });
      // The lease watch subscribes at start; the announcement goes out when stopping.
      const instance = await serve("a", server, [sim], service);
      instance.child.signal("SIGTERM");
      await instance.child.exited;
      expect(server.process().stderr()).toContain(refused);
      expect(instance.child.stdout()).toContain(said);
    },
    60_000,
  );
});
