import { afterEach, describe, expect, it } from "vitest";
import { decodeImageReply, type ImageReply } from "../src/protocol/index.js";
import { GARBAGE_REPLY } from "../src/sim/image-sim.js";
import { ImageSimClient, startImageSim } from "./helpers/image-sim.js";
import { stopAllProcesses } from "./helpers/processes.js";

const clients = new Set<ImageSimClient>();
function client(endpoint: string, options?: ConstructorParameters<typeof ImageSimClient>[1]): ImageSimClient {
  const c = new ImageSimClient(endpoint, options);
  clients.add(c);
  return c;
}
afterEach(async () => {
  clients.forEach((c) => c.close());
  clients.clear();
  await stopAllProcesses();
});

const ping = (id: string) => ({ id, command: "ping", parameters: {} });
const evaluate = (id: string, code: string) => ({ id, command: "evaluate", parameters: { code } });

function decoded(bytes: Buffer): ImageReply {
  const reply = decodeImageReply(bytes);
  if (!reply.ok) throw reply.error;
  return reply.value;
}

/** Resolves on the first "disconnect" event of `c`, or with `false` after `ms`. */
function disconnectWithin(c: ImageSimClient, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    c.socket.events.on("disconnect", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe("image-sim faults - slow and busy images", () => {
  it("image-sim - delays every reply by the configured time, set by flag or at run time", async () => {
    const sim = await startImageSim({ extraArgs: ["--delay-ms", "1000"] });
    const c = client(sim.endpoint);
    let started = performance.now();
    expect(decoded(await c.request(ping("a"))).status).toBe("success");
    expect(performance.now() - started).toBeGreaterThanOrEqual(900);

    await sim.control("delay 0");
    await c.request(ping("b"));
    await sim.control("delay 1500");
    started = performance.now();
    expect(decoded(await c.request(ping("c"))).id).toBe("c");
    expect(performance.now() - started).toBeGreaterThanOrEqual(1400);
  });

  it("image-sim - a blocked evaluator still answers ZMTP heartbeats", async () => {
    const sim = await startImageSim();
    const code = "(Delay forSeconds: 3) wait";
    await sim.control(`block 3 ${code}`);
    const watcher = client(sim.endpoint, { heartbeatInterval: 100, heartbeatTimeout: 500 });
    await watcher.request(ping("connected")); // the heartbeat link is up before the block starts
    let disconnects = 0;
    watcher.socket.events.on("disconnect", () => disconnects++);

    const busy = client(sim.endpoint);
    const started = performance.now();
    const blocked = busy.request(evaluate("busy", code));
    // Queued behind the blocked evaluate: the JS thread cannot answer it, only libzmq's I/O thread runs.
    const queued = watcher.request(ping("queued"));
    const reply = decoded(await blocked);
    const elapsed = performance.now() - started;

    expect(reply).toMatchObject({ id: "busy", status: "success", result: { result: "'done'" } });
    expect(elapsed).toBeGreaterThanOrEqual(2700);
    expect(decoded(await queued).id).toBe("queued");
    expect(disconnects).toBe(0);
  });

  it("image-sim - blocks from flags too, and only on exactly the configured code", async () => {
    const sim = await startImageSim({ extraArgs: ["--block-code", "Smalltalk busy", "--block-seconds", "1"] });
    const c = client(sim.endpoint);
    expect(decoded(await c.request(evaluate("x", "Smalltalk  busy"))).status).toBe("error");
    const started = performance.now();
    expect(decoded(await c.request(evaluate("y", "Smalltalk busy"))).status).toBe("success");
    expect(performance.now() - started).toBeGreaterThanOrEqual(900);
  });

  it("image-sim - a stopped process misses heartbeats, so the heartbeat check above can fail", async () => {
    const sim = await startImageSim();
    const watcher = client(sim.endpoint, { heartbeatInterval: 100, heartbeatTimeout: 500 });
    await watcher.request(ping("connected"));
    const disconnected = disconnectWithin(watcher, 15_000);
    sim.kill("SIGSTOP"); // unlike Atomics.wait, this stops libzmq's I/O thread as well
    try {
      expect(await disconnected).toBe(true);
    } finally {
      sim.kill("SIGCONT");
    }
  });
});

describe("image-sim faults - broken replies", () => {
  it("image-sim - answers with bytes that are not JSON while garbage is on", async () => {
    const sim = await startImageSim({ extraArgs: ["--garbage"] });
    const c = client(sim.endpoint);
    const body = await c.request(ping("a"));
    expect(body.toString()).toBe(GARBAGE_REPLY);
    const reply = decodeImageReply(body);
    expect(reply.ok || reply.error.kind).toBe("NotJson");

    await sim.control("garbage off");
    expect(decoded(await c.request(ping("b"))).id).toBe("b");
    await sim.control("garbage on");
    expect((await c.request(ping("c"))).toString()).toBe(GARBAGE_REPLY);
  });

  it("image-sim - answers with one frame of exactly the oversized size", async () => {
    const sim = await startImageSim({ extraArgs: ["--oversized", "2000000"] });
    const c = client(sim.endpoint);
    const body = await c.request(ping("a"));
    expect(body.length).toBe(2_000_000);
    const reply = decodeImageReply(body);
    expect(reply.ok || reply.error.kind).toBe("TooLarge");

    // Padded, not truncated: a client with a larger limit still reads a valid reply.
    await sim.control("oversized 4096");
    const padded = await c.request(ping("b"));
    expect(padded.length).toBe(4096);
    expect(decoded(padded)).toMatchObject({ id: "b", status: "success" });

    await sim.control("oversized off");
    expect((await c.request(ping("c"))).length).toBeLessThan(4096);
  });
});

describe("image-sim faults - dying images", () => {
  it("image-sim - exits with code 3 without replying on the exit-on command", async () => {
    const sim = await startImageSim({ extraArgs: ["--exit-on", "evaluate"] });
    const c = client(sim.endpoint);
    expect(decoded(await c.request(ping("a"))).id).toBe("a");
    const noReply = c.request(evaluate("b", "1 + 1")).then(
      () => "replied",
      () => "no reply",
    );
    expect(await sim.process.exited).toEqual({ code: 3, signal: null });
    c.close(); // ends the pending receive
    expect(await noReply).toBe("no reply");
  });

  it("image-sim - the exit-on switch can be set at run time", async () => {
    const sim = await startImageSim();
    const c = client(sim.endpoint);
    await c.request(ping("a"));
    await sim.control("exit-on ping");
    void c.send(ping("b"));
    expect((await sim.process.exited).code).toBe(3);
  });

  it("image-sim - refuses a bad control line, changes nothing and keeps serving", async () => {
    const sim = await startImageSim();
    await expect(sim.control("delay soon")).rejects.toThrow(/delay: expected a delay in ms/);
    await expect(sim.control("exit-on reboot")).rejects.toThrow(/exit-on: expected one of ping/);
    await expect(sim.control("explode")).rejects.toThrow(/unknown control command "explode"/);
    await expect(sim.control("block 2")).rejects.toThrow(/block: expected the code/);
    expect(decoded(await client(sim.endpoint).request(ping("a"))).id).toBe("a");
  });
});
