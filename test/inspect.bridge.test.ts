/**
 * The inspector's bridge and web server, with a real nats-server, real services and image-sims:
 * a page gets hello, the instances, each instance's actors, then the records that follow; a page
 * that opens late gets a fresh view and only what follows it; a stopped instance is `gone` and
 * its recording stops on detach; the server wants the token, its own host and origin, and tells
 * the browser (CSP) to reach nothing else; the Stately forwarder speaks `@statelyai/inspect`'s
 * format to a relay.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { InspectBridge, type PageMessage } from "../src/inspect/bridge.js";
import { NatsInspectSource } from "../src/inspect/nats-source.js";
import { startInspectorServer, type InspectorServer } from "../src/inspect/server.js";
import { forwardToStately, type StatelyEvent } from "../src/inspect/stately.js";
import { startImageSim, type ImageSimHandle } from "./helpers/image-sim.js";
import { recordingLogger } from "./helpers/manager.js";
import { natsServerPerTest } from "./helpers/per-test.js";
import { startService } from "./helpers/service.js";

const nats = natsServerPerTest();
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A page that keeps what it is sent, parsed from the text as a browser would. */
function page(): {
  messages: PageMessage[];
  of: <T extends PageMessage["type"]>(type: T) => Extract<PageMessage, { type: T }>[];
} {
  const messages: PageMessage[] = [];
  return {
    messages,
    of: <T extends PageMessage["type"]>(type: T) =>
      messages.filter((m): m is Extract<PageMessage, { type: T }> => m.type === type),
  };
}

async function bridgeOn(servers: string): Promise<{ bridge: InspectBridge; logged: () => string }> {
  // A connection of its own, as `stui inspect` has.
  const nc = await connect({ servers });
  cleanups.push(() => nc.close());
  const { logger, logged } = recordingLogger();
  const bridge = new InspectBridge(new NatsInspectSource(nc, logger), logger, {
    discoverMs: 300,
    renewMs: 1000,
    leaseMs: 3000,
  });
  cleanups.push(() => bridge.stop());
  return { bridge, logged: () => JSON.stringify(logged) };
}

/** The instance `east` with the image `alpha` on an image-sim; resolves with the sim. */
async function eastWithAlpha(): Promise<ImageSimHandle> {
  const sim = await startImageSim({ name: "alpha" });
  await startService({
    nats: { servers: nats().url },
    instanceId: "east",
    images: [{ id: "alpha", address: sim.endpoint, name: null }],
  });
  return sim;
}

const stateOf = (messages: readonly PageMessage[], name: string): string[] =>
  messages.flatMap((m) => {
    if (m.type === "attached") {
      return m.body.actors.filter((a) => a.id === name).map((a) => JSON.stringify(a.snapshot.value));
    }
    if (m.type !== "batch") return [];
    const ids = new Set(
      messages.flatMap((x) =>
        x.type === "attached" ? x.body.actors.filter((a) => a.id === name).map((a) => a.actor_id) : [],
      ),
    );
    return m.body.records.flatMap((r) => {
      if (!ids.has(r.actor_id)) return [];
      if (r.kind === "snapshot") return [JSON.stringify(r.snapshot.value)];
      return r.kind === "change" ? [JSON.stringify(r.value)] : [];
    });
  });

describe("inspector - the bridge over NATS", () => {
  it("gives a page the instances, their actors, then what follows; a late page only what follows its view", async () => {
    const sim = await eastWithAlpha();
    const { bridge } = await bridgeOn(nats().url);
    const first = page();
    bridge.addPage({ send: (_m, text) => void first.messages.push(JSON.parse(text()) as PageMessage) });
    await expect
      .poll(
        () =>
          first
            .of("attached")
            .map((m) => m.body.instance_id)
            .sort(),
        { timeout: 10_000 },
      )
      .toEqual(["east"]);
    expect(first.messages[0]).toEqual({ type: "hello", version: 1 });
    expect(first.of("instances").at(-1)?.instances).toEqual(["east"]);
    await expect.poll(() => stateOf(first.messages, "alpha").at(-1)).toMatch(/Connected/);

    sim.kill("SIGKILL");
    await expect.poll(() => stateOf(first.messages, "alpha").at(-1), { timeout: 10_000 }).toMatch(/Reconnecting/);

    const late = page();
    bridge.addPage({ send: (_m, text) => void late.messages.push(JSON.parse(text()) as PageMessage) });
    await expect
      .poll(() => late.of("attached").some((m) => m.body.instance_id === "east"), { timeout: 5000 })
      .toBe(true);
    const view = late.of("attached").find((m) => m.body.instance_id === "east");
    expect(JSON.stringify(view?.body.actors.find((a) => a.id === "alpha")?.snapshot.value)).toMatch(/Reconnecting/);
    await startImageSim({ name: "alpha", bind: sim.endpoint });
    await expect.poll(() => stateOf(late.messages, "alpha").at(-1), { timeout: 10_000 }).toMatch(/Connected/);
    const seqs = late
      .of("batch")
      .filter((m) => m.body.instance_id === "east")
      .flatMap((m) => m.body.records.map((r) => r.seq));
    expect(Math.min(...seqs)).toBeGreaterThan(view?.body.sequence ?? Infinity);
    // The first page saw the same records without a second view of east (it followed).
    expect(first.of("attached").filter((m) => m.body.instance_id === "east")).toHaveLength(1);
  });

  it("marks an instance that stopped as gone, and detaches when it stops so recording ends at once", async () => {
    const east = await startService({ nats: { servers: nats().url }, instanceId: "east" });
    const { bridge } = await bridgeOn(nats().url);
    const seen = page();
    bridge.addPage({ send: (m) => void seen.messages.push(m) });
    await expect.poll(() => east.service.inspection.attached, { timeout: 10_000 }).toBe(1);
    expect(bridge.attached).toEqual(["east"]);
    await east.stop();
    await expect.poll(() => seen.of("gone").map((m) => m.instance_id), { timeout: 10_000 }).toEqual(["east"]);
    expect(seen.of("instances").at(-1)?.instances).toEqual([]);
    const other = (await startService({ nats: { servers: nats().url }, instanceId: "west" })).service.inspection;
    await expect.poll(() => other.attached, { timeout: 10_000 }).toBe(1);
    await bridge.stop();
    expect(other.attached).toBe(0);
  });
});

describe("inspector - the web server", () => {
  async function serverWith(bridge: InspectBridge): Promise<InspectorServer> {
    const dir = await mkdtemp(join(tmpdir(), "stui-page-"));
    const pageFile = join(dir, "index.html");
    await writeFile(pageFile, "<!doctype html><title>stui inspector</title>");
    const { logger } = recordingLogger();
    const server = await startInspectorServer({ bridge, logger, pageFile });
    cleanups.push(() => server.close());
    return server;
  }

  it("serves the page on 127.0.0.1 with its token only, with a policy that lets it reach nothing else", async () => {
    const { bridge } = await bridgeOn(nats().url);
    const server = await serverWith(bridge);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{32}$/);
    const ok = await fetch(server.url);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("stui inspector");
    const csp = ok.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`connect-src ws://127.0.0.1:${server.port}`);
    expect(csp).not.toMatch(/https?:/);

    const base = `http://127.0.0.1:${server.port}/`;
    expect((await fetch(base)).status).toBe(403);
    expect(await (await fetch(`${base}?token=wrong`)).text()).toMatch(/token is missing or wrong/);
    expect((await fetch(`${base}other?token=x`)).status).toBe(404);
    // Another name for this address (DNS rebinding) is refused.
    const rebound = await rawRequest(server.port, "GET / HTTP/1.1\r\nHost: evil.example:80\r\n\r\n");
    expect(rebound).toMatch(/^HTTP\/1\.1 421/);
  });

  it("opens the WebSocket with the token and this origin only, and sends the bridge's messages", async () => {
    await startService({ nats: { servers: nats().url }, instanceId: "east" });
    const { bridge } = await bridgeOn(nats().url);
    const server = await serverWith(bridge);
    const ws = (query: string, origin?: string): WebSocket =>
      new WebSocket(`ws://127.0.0.1:${server.port}/ws${query}`, origin === undefined ? {} : { origin });
    const refused = (socket: WebSocket): Promise<string> =>
      new Promise((resolve) => socket.on("error", (error) => resolve(error.message)));
    const token = new URL(server.url).searchParams.get("token") ?? "";
    expect(await refused(ws("?token=nope"))).toMatch(/403/);
    expect(await refused(ws(`?token=${token}`, "http://evil.example"))).toMatch(/403/);

    const socket = ws(`?token=${token}`, `http://127.0.0.1:${server.port}`);
    const got: PageMessage[] = [];
    socket.on("message", (data: Buffer) => void got.push(JSON.parse(data.toString("utf8")) as PageMessage));
    cleanups.push(() => socket.close());
    await expect
      .poll(() => got.some((m) => m.type === "attached" && m.body.instance_id === "east"), { timeout: 10_000 })
      .toBe(true);
    expect(got[0]).toEqual({ type: "hello", version: 1 });
    expect(server.pages).toBe(1);
  });
});

describe("inspector - forwarding to a Stately relay", () => {
  it("sends @xstate.actor, @xstate.event and @xstate.snapshot events, ids unique across instances", async () => {
    const relay = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    cleanups.push(() => new Promise<void>((resolve) => relay.close(() => resolve())));
    await new Promise((resolve) => relay.once("listening", resolve));
    const events: StatelyEvent[] = [];
    relay.on("connection", (socket) =>
      socket.on("message", (data: Buffer) => void events.push(JSON.parse(data.toString("utf8")) as StatelyEvent)),
    );
    const sim = await eastWithAlpha();
    const { bridge } = await bridgeOn(nats().url);
    const { logger } = recordingLogger();
    const address = relay.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    const forwarder = forwardToStately(`ws://127.0.0.1:${port}`, logger);
    cleanups.push(() => forwarder.close());
    bridge.addPage(forwarder);
    await expect
      .poll(() => events.some((e) => e.type === "@xstate.actor" && e.name === "alpha"), { timeout: 10_000 })
      .toBe(true);
    const alpha = events.find((e) => e.type === "@xstate.actor" && e.name === "alpha");
    expect(alpha?.sessionId).toMatch(/^east\/x:\d+$/);
    expect(alpha?.type === "@xstate.actor" ? alpha.parentId : null).toMatch(/^east\/x:\d+$/);
    const root = events.find((e) => e.type === "@xstate.actor" && e.sessionId === alpha?.rootId);
    expect(root?.rootId).toBe(alpha?.rootId);
    expect((root as { parentId?: string } | undefined)?.parentId).toBeUndefined();
    expect(JSON.parse((alpha as { definition: string }).definition)).toMatchObject({ id: "image" });
    sim.kill("SIGKILL");
    await expect
      .poll(
        () =>
          events.some(
            (e) =>
              e.type === "@xstate.snapshot" &&
              e.sessionId === alpha?.sessionId &&
              JSON.stringify(e.snapshot.value).includes("Reconnecting"),
          ),
        { timeout: 10_000 },
      )
      .toBe(true);
    expect(events.some((e) => e.type === "@xstate.event" && e.sessionId === alpha?.sessionId)).toBe(true);
    // Each snapshot whole, as Stately's format has it, though the stream said only what changed.
    const reconnecting = events.find(
      (e) =>
        e.type === "@xstate.snapshot" &&
        e.sessionId === alpha?.sessionId &&
        JSON.stringify(e.snapshot.value).includes("Reconnecting"),
    );
    const context = reconnecting?.type === "@xstate.snapshot" ? reconnecting.snapshot.context : null;
    expect(context).toMatchObject({ image: { image_id: "alpha", status: "Reconnecting" } });
    expect(context).toHaveProperty("policy.requestTimeoutMs");
    expect(new Set(events.map((e) => e._version))).toEqual(new Set(["0.4.0"]));
  });
});

async function rawRequest(port: number, text: string): Promise<string> {
  const { connect } = await import("node:net");
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(text));
    let got = "";
    socket.on("data", (data) => {
      got += data.toString("utf8");
      socket.end();
    });
    socket.on("end", () => resolve(got));
    socket.on("error", reject);
  });
}

describe("inspector - its flags", () => {
  it("reads --inspect with or without a port, and refuses what is not a port", async () => {
    const { inspectFlag, parsePort } = await import("../src/cli/inspect-flag.js");
    expect(inspectFlag(["--inspect"])).toEqual(["--inspect=0"]);
    expect(inspectFlag(["--inspect", "--cluster"])).toEqual(["--inspect=0", "--cluster"]);
    expect(inspectFlag(["--inspect", "8090", "-c", "x.yaml"])).toEqual(["--inspect", "8090", "-c", "x.yaml"]);
    expect(parsePort("8090", "--inspect")).toBe(8090);
    expect(() => parsePort("80x", "--inspect")).toThrow("--inspect: not a port (0 to 65535): 80x");
    expect(() => parsePort("70000", "--port")).toThrow(/--port: not a port/);
  });
});
