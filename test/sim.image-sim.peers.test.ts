import { afterEach, describe, expect, it } from "vitest";
import { decodeImageReply, encodeImageRequest, type ImageReply, type ImageRequest } from "../src/protocol/index.js";
import { ImageSimClient, startImageSim, type PeerLogEntry } from "./helpers/image-sim.js";
import { stopAllProcesses } from "./helpers/processes.js";

const clients = new Set<ImageSimClient>();
function client(endpoint: string): ImageSimClient {
  const c = new ImageSimClient(endpoint);
  clients.add(c);
  return c;
}
afterEach(async () => {
  clients.forEach((c) => c.close());
  clients.clear();
  await stopAllProcesses();
});

const ping = (id: string): string => encodeImageRequest({ id, command: "ping", parameters: {} });
const systemInfo = (id: string): string => encodeImageRequest({ id, command: "system_info", parameters: {} });
const evaluate = (id: string, code: string): string =>
  encodeImageRequest({ id, command: "evaluate", parameters: { code } } satisfies ImageRequest);

function decoded(bytes: Buffer): ImageReply {
  const reply = decodeImageReply(bytes);
  if (!reply.ok) throw reply.error;
  return reply.value;
}

type RequestEntry = Extract<PeerLogEntry, { event: "request" }>;
const isRequest = (entry: PeerLogEntry): entry is RequestEntry => entry.event === "request";
const connection =
  (event: "accepted" | "disconnected", connected: number) =>
  (entry: PeerLogEntry): boolean =>
    entry.event === event && entry.connected === connected;

describe("image-sim peers - who is connected and what each sent", () => {
  it("image-sim peers - logs two DEALERs as two peers, each request under its own, connected 1, 2, then 1", async () => {
    await using sim = await startImageSim({ peerLog: true });
    const startedAt = Date.now();
    const a = client(sim.endpoint);
    await sim.waitForPeerEvent(connection("accepted", 1));
    expect(decoded(await a.request(ping("a-1"))).id).toBe("a-1");

    const b = client(sim.endpoint);
    await sim.waitForPeerEvent(connection("accepted", 2));
    expect(decoded(await b.request(systemInfo("b-1"))).id).toBe("b-1");
    expect(decoded(await a.request(evaluate("a-2", "3 + 4"))).id).toBe("a-2");
    expect(decoded(await b.request(ping("b-2"))).id).toBe("b-2");

    a.close();
    await sim.waitForPeerEvent(connection("disconnected", 1));
    const log = sim.peerLog();
    expect(log.map((e) => [e.event, e.connected])).toEqual([
      ["accepted", 1],
      ["request", 1],
      ["accepted", 2],
      ["request", 2],
      ["request", 2],
      ["request", 2],
      ["disconnected", 1],
    ]);
    expect(log.filter((e) => e.event !== "request").map((e) => e.peer)).toEqual([null, null, null]);
    const ats = log.map((e) => e.at);
    expect(ats).toEqual([...ats].sort((x, y) => x - y));
    expect(ats[0]).toBeGreaterThanOrEqual(startedAt);
    expect(ats.at(-1)).toBeLessThanOrEqual(Date.now());

    const requests = log.filter(isRequest);
    const peerA = requests[0]?.peer;
    const peerB = requests[1]?.peer;
    expect(peerA).toMatch(/^[0-9a-f]{2,}$/);
    expect(peerB).toMatch(/^[0-9a-f]{2,}$/);
    expect(peerB).not.toBe(peerA);
    expect(requests.map((r) => [r.peer, r.command])).toEqual([
      [peerA, "ping"],
      [peerB, "system_info"],
      [peerA, "evaluate"],
      [peerB, "ping"],
    ]);

    expect(await sim.peers()).toEqual({
      connected: 1,
      peers: [
        { peer: peerA, requests: 2, last_command: "evaluate", last_at: requests[2]?.at },
        { peer: peerB, requests: 2, last_command: "ping", last_at: requests[3]?.at },
      ],
    });

    b.close();
    await sim.waitForPeerEvent(connection("disconnected", 0));
    const report = await sim.peers();
    expect(report.connected).toBe(0);
    expect(report.peers.map((p) => p.requests)).toEqual([2, 2]);
  });

  it("image-sim peers - a reconnected DEALER is a new peer", async () => {
    await using sim = await startImageSim({ peerLog: true });
    const first = client(sim.endpoint);
    await first.request(ping("first"));
    first.close();
    await sim.waitForPeerEvent(connection("disconnected", 0));
    await client(sim.endpoint).request(ping("second"));
    const [one, two, ...rest] = sim.peerLog().filter(isRequest);
    expect(rest).toEqual([]);
    expect(one?.peer).not.toBe(two?.peer);
    expect((await sim.peers()).peers.map((p) => p.requests)).toEqual([1, 1]);
  });

  it("image-sim peers - without --peer-log prints no peer lines, and the peers line still counts", async () => {
    await using sim = await startImageSim();
    const c = client(sim.endpoint);
    await c.request(ping("a"));
    await c.request(evaluate("b", "1 + 1"));
    // The connection count comes from socket events, which arrive apart from the requests.
    await expect.poll(async () => (await sim.peers()).connected).toBe(1);
    const { peers } = await sim.peers();
    expect(peers).toEqual([
      {
        peer: expect.stringMatching(/^[0-9a-f]+$/) as string,
        requests: 2,
        last_command: "evaluate",
        last_at: expect.any(Number) as number,
      },
    ]);
    expect(sim.peerLog()).toEqual([]);
    expect(sim.process.lines().filter((line) => line.startsWith("peer "))).toEqual([]);
  });

  it("image-sim peers - logs an undecodable request with command null, and the exit-on request before exiting", async () => {
    await using sim = await startImageSim({ peerLog: true, extraArgs: ["--exit-on", "evaluate"] });
    const c = client(sim.endpoint);
    expect(decoded(await c.request("not json")).status).toBe("error");
    void c.send(evaluate("last", "1 + 1"));
    expect((await sim.process.exited).code).toBe(3);
    expect(
      sim
        .peerLog()
        .filter(isRequest)
        .map((r) => r.command),
    ).toEqual([null, "evaluate"]);
  });

  it("image-sim peers - refuses peers with arguments, and names peers among the control words", async () => {
    await using sim = await startImageSim();
    await expect(sim.control("peers now")).rejects.toThrow(/peers: takes no arguments/);
    await expect(sim.control("explode")).rejects.toThrow(/expected delay, block, garbage, oversized, exit-on or peers/);
    await sim.control("peers");
    await sim.control("delay 0");
  });
});

describe("image-sim peers - the ROUTER socket keeps REP semantics", () => {
  it("image-sim peers - answers peers one request at a time, in arrival order, a delay holding up both", async () => {
    await using sim = await startImageSim({ peerLog: true, extraArgs: ["--delay-ms", "600"] });
    const a = client(sim.endpoint);
    const b = client(sim.endpoint);
    await sim.waitForPeerEvent(connection("accepted", 2));
    const started = performance.now();
    const first = a.request(ping("a"));
    await sim.waitForPeerEvent((e) => e.event === "request");
    const second = b.request(ping("b")).then((body) => ({ body, elapsed: performance.now() - started }));
    expect(decoded(await first).id).toBe("a");
    const { body, elapsed } = await second;
    expect(decoded(body).id).toBe("b");
    // b's request waited for a's delayed reply before its own delay began.
    expect(elapsed).toBeGreaterThanOrEqual(1100);
    const [ra, rb] = sim.peerLog().filter(isRequest);
    expect(ra?.peer).not.toBe(rb?.peer);
    expect((rb?.at ?? 0) - (ra?.at ?? 0)).toBeGreaterThanOrEqual(500);
  });

  it("image-sim peers - drops a message without the empty delimiter, as REP does, and answers the next", async () => {
    await using sim = await startImageSim({ peerLog: true });
    const c = client(sim.endpoint);
    await c.socket.send(ping("no-delimiter"));
    await c.socket.send([ping("delimiter-last"), ""]);
    expect(decoded(await c.request(ping("next"))).id).toBe("next");
    expect(sim.peerLog().filter(isRequest)).toHaveLength(1);
    expect((await sim.peers()).peers.map((p) => p.requests)).toEqual([1]);
  });

  it("image-sim peers - sends back the envelope frames before the delimiter, as REP does", async () => {
    await using sim = await startImageSim();
    const c = client(sim.endpoint);
    await c.socket.send(["hop-1", "hop-2", "", ping("via")]);
    const [hop1, hop2, delimiter, body, ...rest] = await c.socket.receive();
    expect([hop1?.toString(), hop2?.toString(), delimiter?.length, rest.length]).toEqual(["hop-1", "hop-2", 0, 0]);
    expect(body !== undefined && decoded(body).id).toBe("via");
  });
});
