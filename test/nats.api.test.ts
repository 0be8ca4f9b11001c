/**
 * The request API over a real nats-server: discovery through `$SRV.*`, every endpoint through the
 * typed client against real image-sims, the tagged envelope endpoint, and bad bodies.
 */
import { Svcm, ServiceError } from "@nats-io/services";
import { describe, expect, it } from "vitest";
import { ServiceUnavailableError, StuiClient } from "../src/client.js";
import { apiSubject, decodeResponse, endpointName, REQUEST_TYPES, type Response } from "../src/protocol/index.js";
import { startImageSim } from "./helpers/image-sim.js";
import { natsServerPerTest } from "./helpers/per-test.js";
import { startService } from "./helpers/service.js";

const nats = natsServerPerTest();

/** Narrows a response to its success variant or fails the test with the error. */
function success<R extends Response>(response: R): Exclude<R, { type: "Error" }> {
  if (response.type === "Error") throw new Error(`${response.code}: ${response.message}`);
  return response as Exclude<R, { type: "Error" }>;
}

async function twoImages() {
  const dev = await startImageSim({ name: "Dev" });
  const staging = await startImageSim({ name: "Staging" });
  const h = await startService({
    nats: { servers: nats().url },
    images: [
      { id: "dev", address: dev.endpoint, name: "Dev image" },
      { id: "staging", address: staging.endpoint },
    ],
  });
  await expect
    .poll(async () => success(await h.client.getConnectionHealthSummary()).by_status.Connected, { timeout: 15_000 })
    .toBe(2);
  return { h, dev, staging };
}

describe("NATS API - the stui micro service", () => {
  it("is discoverable through $SRV.PING, $SRV.INFO and $SRV.STATS with one endpoint per request", async () => {
    const h = await startService({ nats: { servers: nats().url }, instanceId: "a" });
    const svc = new Svcm(h.client.nc).client();
    const pings = [];
    for await (const p of await svc.ping("stui")) pings.push(p);
    expect(pings).toHaveLength(1);
    expect(pings[0]).toMatchObject({ name: "stui", metadata: { instance_id: "a" } });
    const infos = [];
    for await (const i of await svc.info("stui")) infos.push(i);
    const subjects = infos[0]?.endpoints.map((e) => e.subject).sort();
    expect(subjects).toEqual([...REQUEST_TYPES.map(apiSubject), "stui.api.request"].sort());
    expect(infos[0]?.endpoints.every((e) => e.queue_group === "stui")).toBe(true);
    success(await h.client.listImages());
    const stats = [];
    for await (const s of await svc.stats("stui")) stats.push(s);
    const listImages = stats[0]?.endpoints?.find((e) => e.name === endpointName("ListImages"));
    expect(listImages?.num_requests).toBe(1);
  });

  it("serves every request through the typed client against real images", async () => {
    const { h } = await twoImages();
    const c = h.client;
    expect(success(await c.listImages()).images.map((i) => i.image_id)).toEqual(["dev", "staging"]);
    expect(success(await c.getImageConnectionStatus({ image_id: "dev" }))).toMatchObject({ status: "Connected" });
    const { session } = success(await c.createSession({ image_id: "dev", client_id: "alice" }));
    expect(success(await c.listImageSessions({ image_id: "dev" })).sessions.map((s) => s.session_id)).toEqual([
      session.session_id,
    ]);
    expect(success(await c.getImageSessionStats({ image_id: "dev" }))).toMatchObject({ total_sessions: 1 });
    expect(success(await c.switchImageContext({ client_id: "alice", to_image_id: "dev" }))).toMatchObject({
      from_image_id: null,
      to_image_id: "dev",
    });
    expect(success(await c.evaluate({ client_id: "alice", code: "6 * 7" }))).toMatchObject({ result: "42" });
    expect(success(await c.closeSession({ session_id: session.session_id, save_state: false }))).toMatchObject({
      saved: false,
    });
    const extra = await startImageSim();
    expect(success(await c.connectImage({ image_id: "build", address: extra.endpoint }))).toMatchObject({
      status: "Connected",
    });
    expect(success(await c.disconnectImage({ image_id: "build" }))).toEqual({
      type: "ImageDisconnected",
      image_id: "build",
    });
    expect(
      success(await c.cleanupImageSessions({ image_id: "dev", force: true, preserve_active: false })),
    ).toMatchObject({ remaining_sessions: 0 });
    const summary = success(await c.getConnectionHealthSummary());
    expect(summary.nats).toMatchObject({ status: "Connected", buffered_events: 0, dropped_events: 0 });
    expect(summary.nats?.server).toContain(String(nats().port));
  });

  it("answers the externally tagged envelope on stui.api.request", async () => {
    const { h } = await twoImages();
    const reply = await h.client.nc.request(
      "stui.api.request",
      JSON.stringify({ GetImageConnectionStatus: { image_id: "staging" } }),
    );
    const decoded = decodeResponse(reply.data);
    expect(decoded.ok && decoded.value).toMatchObject({ type: "ImageConnectionStatus", image_id: "staging" });
    expect(JSON.parse(reply.string())).toHaveProperty("ImageConnectionStatus.status", "Connected");
  });

  it("answers errors as protocol Error responses with the service error headers", async () => {
    const h = await startService({ nats: { servers: nats().url } });
    const reply = await h.client.nc.request(apiSubject("GetImageSessionStats"), JSON.stringify({ image_id: "nope" }));
    expect(ServiceError.toServiceError(reply)).toMatchObject({ code: 404 });
    expect(JSON.parse(reply.string())).toMatchObject({ Error: { code: "ImageNotFound" } });

    const bad = await h.client.nc.request(
      apiSubject("SwitchImageContext"),
      JSON.stringify({ client_id: "a", to_image_id: 7 }),
    );
    expect(ServiceError.toServiceError(bad)?.code).toBe(400);
    const error = JSON.parse(bad.string()) as { Error: { code: string; message: string } };
    expect(error.Error.code).toBe("InvalidRequest");
    expect(error.Error.message).toContain("to_image_id");

    const junk = await h.client.nc.request("stui.api.request", "{not json");
    expect(JSON.parse(junk.string())).toMatchObject({ Error: { code: "InvalidRequest" } });
    const empty = decodeResponse((await h.client.nc.request(apiSubject("ListImages"), "")).data);
    expect(empty.ok && empty.value.type).toBe("Images");
  });

  it("refuses a body over the configured limit and keeps serving", async () => {
    const h = await startService({ nats: { servers: nats().url }, maxBodyBytes: 1024 });
    const big = JSON.stringify({ client_id: "a", code: "1 + ".repeat(1000) + "1" });
    const reply = await h.client.nc.request(apiSubject("Evaluate"), big);
    const error = JSON.parse(reply.string()) as { Error: { code: string; message: string } };
    expect(error.Error).toMatchObject({ code: "InvalidRequest" });
    expect(error.Error.message).toMatch(/exceeds 1024 bytes/);
    expect(success(await h.client.listImages()).images).toEqual([]);
  });

  it("shares requests between instances in the queue group", async () => {
    const a = await startService({ nats: { servers: nats().url }, instanceId: "a" });
    const b = await startService({ nats: { servers: nats().url }, instanceId: "b" });
    for (let i = 0; i < 40; i++) success(await a.client.listImages());
    const svc = new Svcm(a.client.nc).client();
    const served: Record<string, number> = {};
    for await (const s of await svc.stats("stui")) {
      served[String(s.metadata?.["instance_id"])] =
        s.endpoints?.find((e) => e.name === "list_images")?.num_requests ?? 0;
    }
    expect(Object.keys(served).sort()).toEqual(["a", "b"]);
    expect((served["a"] ?? 0) + (served["b"] ?? 0)).toBe(40);
    expect(served["a"]).toBeGreaterThan(0);
    expect(served["b"]).toBeGreaterThan(0);
    await b.stop();
  });

  it("tells a client clearly when no service answers", async () => {
    const client = await StuiClient.connect({ servers: nats().url, timeoutMs: 2000 });
    try {
      await expect(client.listImages()).rejects.toThrow(ServiceUnavailableError);
      await expect(client.listImages()).rejects.toThrow("no stui service answers on stui.api.list_images");
    } finally {
      await client.close();
    }
  });
});
