/**
 * `stui demo` as a user runs it (here without a terminal, so driven by stdin lines): it starts its
 * images, a private nats-server and the service, shows a killed image come back, and leaves
 * nothing running when it quits. Without nats-server it says how to install it.
 */
import { connect } from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { spawnStui, stopAllProcesses } from "./helpers/processes.js";

afterEach(stopAllProcesses);

function envWithout(name: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env[name];
  return env;
}

/** Whether something accepts TCP connections on the port. */
const listening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });

describe("stui demo", () => {
  it("runs three images, NATS and the service, shows a killed image reconnect, and cleans up on quit", async () => {
    const demo = spawnStui(["demo"], { env: envWithout("NATS_URL") });
    const [, images = "", natsUrl = ""] = await demo.waitForLine(/^stui demo: images (.*); NATS (\S+)$/, {
      timeoutMs: 30_000,
    });
    await demo.waitForLine(/^stui demo: ready/);
    const ports = [...images.matchAll(/:(\d+)/g), ...natsUrl.matchAll(/:(\d+)$/g)].map((m) => Number(m[1]));
    expect(ports).toHaveLength(4);
    await demo.waitForLine(/image\.status\.changed dev: Unknown → Connected/);

    let since = demo.lineCount();
    demo.send("kill 1");
    await demo.waitForLine(/image\.status\.changed dev: Connected → Reconnecting/, { since });
    since = demo.lineCount();
    demo.send("start 1");
    await demo.waitForLine(/image\.status\.changed dev: Reconnecting → Connected/, { since, timeoutMs: 20_000 });
    demo.send("session");
    await demo.waitForLine(/session\.created/);
    demo.send("quit");
    expect((await demo.exited).code).toBe(0);
    for (const port of ports) expect(await listening(port), `port ${port}`).toBe(false);
  });

  it("says how to install nats-server when there is none and NATS_URL is not set", async () => {
    const demo = spawnStui(["demo"], {
      env: envWithout("NATS_URL", { PATH: path.dirname(process.execPath) }),
    });
    const exit = await demo.exited;
    expect(exit.code).toBe(1);
    expect(demo.stderr()).toContain("sudo apt-get install -y nats-server");
  });
});
