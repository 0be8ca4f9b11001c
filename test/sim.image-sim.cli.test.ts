import { afterEach, describe, expect, it } from "vitest";
import { ImageSimClient, startImageSim } from "./helpers/image-sim.js";
import { spawnStui, stopAllProcesses } from "./helpers/processes.js";

afterEach(stopAllProcesses);

describe("image-sim cli - start and stop", () => {
  it("image-sim cli - binds a free port and prints one ready line with the real endpoint", async () => {
    await using sim = await startImageSim();
    expect(sim.endpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(sim.process.lines()).toEqual([`ready ${sim.endpoint}`]);
  });

  it("image-sim cli - also takes port 0 for a free port", async () => {
    await using sim = await startImageSim({ bind: "tcp://127.0.0.1:0" });
    expect(sim.endpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/);
  });

  it.each(["SIGTERM", "SIGINT"] as const)("image-sim cli - closes and exits 0 on %s", async (signal) => {
    const sim = await startImageSim();
    using c = new ImageSimClient(sim.endpoint);
    await c.request({ id: "1", command: "ping" });
    expect(sim.kill(signal)).toBe(true);
    expect(await sim.process.exited).toEqual({ code: 0, signal: null });
  });

  it("image-sim cli - reports an address in use and exits 1", async () => {
    await using first = await startImageSim();
    const second = spawnStui(["image-sim", "--bind", first.endpoint]);
    expect((await second.exited).code).toBe(1);
    expect(second.stderr()).toContain(`cannot bind ${first.endpoint}`);
    expect(second.stderr()).toMatch(/in use/i);
    expect(second.lines()).toEqual([]);
  });
});

describe("image-sim cli - flags", () => {
  it.each([
    [["--bind"], "--bind"],
    [[], "--bind ENDPOINT is required"],
    [["--bind", "tcp://127.0.0.1:*", "--bnd", "x"], "--bnd"],
    [["--bind", "tcp://127.0.0.1:*", "--delay-ms", "soon"], "--delay-ms"],
    [["--bind", "tcp://127.0.0.1:*", "--oversized", "-1"], "--oversized"],
    [["--bind", "tcp://127.0.0.1:*", "--exit-on", "reboot"], "--exit-on"],
    [["--bind", "tcp://127.0.0.1:*", "--block-code", "1"], "--block-seconds"],
    [["--bind", "tcp://127.0.0.1:*", "--block-code", "1", "--block-seconds", "x"], "--block-seconds"],
    [["--bind", "tcp://127.0.0.1:*", "stray"], "stray"],
  ])("image-sim cli - refuses %j with exit 2, naming %s", async (args, named) => {
    const child = spawnStui(["image-sim", ...args]);
    expect((await child.exited).code).toBe(2);
    expect(child.stderr()).toContain(named);
    expect(child.stdout()).toBe("");
  });

  it("image-sim cli - prints its usage, control lines included, for --help", async () => {
    const child = spawnStui(["image-sim", "--help"]);
    expect((await child.exited).code).toBe(0);
    expect(child.stdout()).toContain("usage: stui image-sim --bind ENDPOINT");
    expect(child.stdout()).toContain("exit-on <command>|off");
    expect(child.stdout()).toContain("--peer-log");
    expect(child.stdout()).toMatch(/^ {2}peers {2,}answer "ok peers \{json\}"/m);
  });

  it("image-sim cli - is listed by stui --help", async () => {
    const child = spawnStui(["--help"]);
    expect((await child.exited).code).toBe(0);
    expect(child.stdout()).toMatch(/image-sim\s+run a simulated Smalltalk image/);
  });
});
