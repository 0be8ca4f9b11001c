/**
 * Network changes and sleep, for real: `stui serve` (a child process) SIGSTOPped for longer than
 * its sleep threshold, then SIGCONT, as a laptop that slept. It notices (a timer fired far too
 * late), logs and publishes why, probes its Connected image at once and brings a Failed image back
 * to Connected without anyone asking and without waiting out a backoff (a Failed image never tries
 * again by itself). And the watch itself: interfaces that change, a clock that jumps.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { NetworkInterfaceInfo } from "node:os";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { addressesOf, describeChange, watchNetwork } from "../src/actors/network-watch.js";
import { StuiClient } from "../src/client.js";
import type { StuiEvent } from "../src/protocol/index.js";
import { isolatedEnv } from "./helpers/cli.js";
import { startImageSim } from "./helpers/image-sim.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { freePort } from "../src/cli/nats-cluster.js";
import { spawnStui, stopAllProcesses } from "./helpers/processes.js";

let nats: NatsServerHandle | null = null;
let dir = "";
afterEach(async () => {
  await stopAllProcesses();
  await nats?.stop();
  nats = null;
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const iface = (address: string, cidr: string): NetworkInterfaceInfo => ({
  address,
  cidr,
  netmask: "255.255.255.0",
  family: "IPv4",
  mac: "00:00:00:00:00:01",
  internal: false,
});

describe("network watch", () => {
  it("tells an interface that came or went, and a timer that fired far too late", async () => {
    let interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = { eth0: [iface("192.168.1.4", "192.168.1.4/24")] };
    let wall = 1_000_000;
    const told: string[] = [];
    const watch = watchNetwork({
      pollMs: 20,
      sleepThresholdMs: 5000,
      interfaces: () => interfaces,
      now: () => (wall += 20),
      onChange: (reason) => told.push(reason),
    });
    try {
      await sleep(100);
      expect(told).toEqual([]);
      interfaces = { wlan0: [iface("10.0.0.7", "10.0.0.7/24")] };
      await expect.poll(() => told).toEqual(["network interfaces changed: +wlan0 10.0.0.7/24, -eth0 192.168.1.4/24"]);
      wall += 60_000;
      await expect.poll(() => told.length).toBe(2);
      expect(told[1]).toMatch(
        /^resumed: a 20 ms timer fired 6\d{4} ms late \(the host slept or the process was stopped\)$/,
      );
      await sleep(100);
      expect(told).toHaveLength(2);
    } finally {
      watch.stop();
    }
    expect(addressesOf({ lo: [{ ...iface("127.0.0.1", "127.0.0.1/8"), internal: true }] })).toEqual([]);
    expect(describeChange(["a 1"], ["a 1"])).toBe("");
  });
});

describe("stui serve - sleep and resume (SIGSTOP, SIGCONT)", () => {
  it("probes the Connected image at once and brings a Failed image back without waiting", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "stui-serve-sleep-"));
    nats = await startNatsServer();
    const up = await startImageSim({ name: "up", peerLog: true });
    const downAddress = `tcp://127.0.0.1:${await freePort()}`;
    const config = path.join(dir, "stui.json");
    await writeFile(
      config,
      JSON.stringify({
        instance_id: "laptop",
        nats: { url: nats.url },
        store: { path: path.join(dir, "store") },
        images: [
          { id: "up", address: up.endpoint },
          { id: "down", address: downAddress },
        ],
        // Heartbeats that outlast the pause, and pings only at Connected and on a probe: a ping
        // after the resume is the probe.
        heartbeat: { interval_ms: 200, timeout_ms: 20_000 },
        ping: { interval_ms: 600_000 },
        // Failed after two quick attempts, and never again by itself.
        limits: { connect_timeout_ms: 300 },
        backoff: { base_ms: 50, cap_ms: 100, max_restarts: 2, restart_window_ms: 600_000 },
        network: { poll_interval_ms: 200, sleep_threshold_ms: 1500 },
      }),
    );
    const client = await StuiClient.connect({ servers: nats.url, timeoutMs: 10_000 });
    const events: StuiEvent[] = [];
    try {
      void (async () => {
        for await (const event of client.events({ subject: "stui.events.>" })) events.push(event);
      })().catch(() => undefined);
      const serve = spawnStui(["serve", "--config", config], { env: isolatedEnv() });
      await serve.waitForLine(/"stui serve: listening"/, { timeoutMs: 30_000 });
      const statuses = async (): Promise<string[]> => {
        const r = await client.listImages();
        return r.type === "Images" ? r.images.map((i) => `${i.image_id} ${i.status}`) : [];
      };
      await expect.poll(statuses, { timeout: 15_000 }).toEqual(["up Connected", "down Failed"]);
      // The image comes up; a Failed image does not notice by itself.
      const down = await startImageSim({ name: "down", bind: downAddress });
      await sleep(1000);
      expect(await statuses()).toEqual(["up Connected", "down Failed"]);
      const pings = (): number => up.peerLog().filter((e) => e.event === "request" && e.command === "ping").length;
      const pingsBefore = pings();

      serve.signal("SIGSTOP");
      await sleep(2500);
      serve.signal("SIGCONT");

      await expect.poll(statuses, { timeout: 5000 }).toEqual(["up Connected", "down Connected"]);
      await expect.poll(pings, { timeout: 5000 }).toBeGreaterThan(pingsBefore);
      const told = events.find((e) => e.type === "io.stui.instance.network_changed");
      expect(told?.subject).toBe("laptop");
      expect(told?.data).toMatchObject({ instance_id: "laptop", images: 2 });
      expect((told?.data as { reason: string }).reason).toMatch(/^resumed: a 200 ms timer fired \d+ ms late/);
      await expect
        .poll(() => serve.stdout())
        .toMatch(/"msg":"resumed: a 200 ms timer fired \d+ ms late .*: every image link probes or tries again now"/);
      const back = events.filter((e) => e.type === "io.stui.image.status.changed" && e.subject === "down").at(-1);
      expect(back?.data).toMatchObject({ status: "Connected" });
      await serve.stop();
      await down.stop();
    } finally {
      await client.close();
    }
  });
});
