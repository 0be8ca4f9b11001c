/**
 * `stui demo` as a user runs it (here without a terminal, so driven by stdin lines): it starts its
 * images, a private nats-server and the service, shows a killed image come back, and leaves
 * nothing running on every way out: `quit`, the end of stdin, SIGHUP (a closed terminal), SIGTERM.
 * Without nats-server it says how to install it; nats-server in /usr/sbin (Debian) is found
 * without being on the PATH. `stui demo --cluster`: three instances on a 3-node NATS cluster share
 * six images; a killed instance's images are Connected under the others within the TTL + 5 s.
 */
import { existsSync } from "node:fs";
import { connect } from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findNatsServer } from "../src/cli/children.js";
import { demoPolicy, SLOW_STEPS } from "../src/cli/demo-keys.js";
import { healthFromRtt } from "../src/machines/connection-policy.js";
import {
  childPidsOf,
  isAlive,
  spawnStui,
  stopAllProcesses,
  waitUntilGone,
  type ProcessHandle,
} from "./helpers/processes.js";

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

const SBIN = ["/usr/local/sbin", "/usr/sbin"];
const natsServer = findNatsServer();
/** Debian's nats-server is in /usr/sbin: then the demo runs with a PATH that lacks it. */
const demoEnv = (): NodeJS.ProcessEnv =>
  natsServer !== null && SBIN.includes(path.dirname(natsServer))
    ? envWithout("NATS_URL", { PATH: path.dirname(process.execPath) })
    : envWithout("NATS_URL");

interface Started {
  readonly demo: ProcessHandle;
  /** Every child pid the demo printed (nats-server and the three images). */
  readonly pids: number[];
  readonly tempDir: string;
  readonly ports: number[];
}

/** Starts the demo and waits until its images are connected; checks its printed pids against /proc. */
async function startDemo(): Promise<Started> {
  const demo = spawnStui(["demo"], { env: demoEnv() });
  const [, images = "", natsUrl = ""] = await demo.waitForLine(/^stui demo: images (.*); NATS (\S+)$/, {
    timeoutMs: 30_000,
  });
  const [, pidList = "", tempDir = ""] = await demo.waitForLine(/^stui demo: pids (.*); temp dir (\S+)$/);
  await demo.waitForLine(/^stui demo: ready/);
  const pids = [...pidList.matchAll(/=(\d+)/g)].map((m) => Number(m[1]));
  expect(pidList).toMatch(/^nats-server=\d+ dev=\d+ staging=\d+ build=\d+$/);
  expect(childPidsOf(demo.pid).sort()).toEqual([...pids].sort());
  expect(existsSync(tempDir)).toBe(true);
  const ports = [...images.matchAll(/:(\d+)/g), ...natsUrl.matchAll(/:(\d+)$/g)].map((m) => Number(m[1]));
  expect(ports).toHaveLength(4);
  await demo.waitForLine(/image\.status\.changed build: Unknown → Connected/);
  return { demo, pids, tempDir, ports };
}

/** Nothing the demo started is left: no process, no temp dir, no listening port. */
async function expectAllGone({ pids, tempDir, ports }: Started, restarted: number[] = []): Promise<void> {
  expect(await waitUntilGone([...pids, ...restarted])).toEqual([]);
  expect(existsSync(tempDir), tempDir).toBe(false);
  for (const port of ports) expect(await listening(port), `port ${port}`).toBe(false);
}

describe("stui demo", () => {
  it("runs three images, NATS and the service, shows a killed image reconnect, and cleans up on quit", async () => {
    const started = await startDemo();
    const { demo } = started;
    let since = demo.lineCount();
    demo.send("kill 1");
    await demo.waitForLine(/image\.status\.changed dev: Connected → Reconnecting/, { since });
    // Until the killed process is reaped, a press for dev is ignored (its action is still running).
    await demo.waitForLine(/^killed dev/, { since });
    since = demo.lineCount();
    demo.send("start 1");
    const [, restarted = ""] = await demo.waitForLine(/^started dev again on \S+ \(pid (\d+)\)/, { since });
    await demo.waitForLine(/image\.status\.changed dev: Reconnecting → Connected/, { since, timeoutMs: 20_000 });
    demo.send("session");
    await demo.waitForLine(/session\.created/);
    demo.send("quit");
    expect((await demo.exited).code).toBe(0);
    await expectAllGone(started, [Number(restarted)]);
  });

  const waysOut: Array<[string, (demo: ProcessHandle) => void, number]> = [
    ["SIGHUP (a closed terminal)", (demo) => demo.signal("SIGHUP"), 129],
    ["SIGTERM", (demo) => demo.signal("SIGTERM"), 143],
    ["the end of standard input", (demo) => demo.child.stdin.end(), 0],
  ];
  it.each(waysOut)("stops every child by pid and removes its temp dir on %s", async (_name, leave, code) => {
    const started = await startDemo();
    leave(started.demo);
    expect((await started.demo.exited).code).toBe(code);
    await expectAllGone(started);
  });

  it("keeps running and answering when a key is pressed again while its image restarts", async () => {
    const started = await startDemo();
    const { demo } = started;
    const since = demo.lineCount();
    // `1` toggles dev: kill, then start; the presses that land while it is busy are ignored.
    for (let i = 0; i < 6; i++) demo.send("1");
    demo.send("kill 2");
    demo.send("2");
    demo.send("start 2");
    await demo.waitForLine(/is still (stopping|starting): ignored/, { since });
    // Whatever state the presses left, bring both back and see them connected and answering.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    demo.send("start 1");
    demo.send("start 2");
    await demo.waitForLine(/image\.status\.changed dev: Reconnecting → Connected/, { since, timeoutMs: 20_000 });
    await demo.waitForLine(/image\.status\.changed staging: Reconnecting → Connected/, { since, timeoutMs: 20_000 });
    expect(demo.exit()).toBeUndefined();
    const sessionSince = demo.lineCount();
    demo.send("session");
    await demo.waitForLine(/^created a session on /, { since: sessionSince });
    const restarted = demo
      .lines()
      .flatMap((line) => [...line.matchAll(/^started \w+ again on \S+ \(pid (\d+)\)/g)].map((m) => Number(m[1])));
    demo.send("quit");
    expect((await demo.exited).code).toBe(0);
    await expectAllGone(started, restarted);
  });

  it("pause 1 takes dev Reconnecting and resume 1 back Connected; slow 2 steps staging's health Warning, Critical, Healthy", async () => {
    const started = await startDemo();
    const { demo } = started;
    let since = demo.lineCount();
    demo.send("pause 1");
    await demo.waitForLine(/^paused dev \(SIGSTOP\)/, { since });
    await demo.waitForLine(/image\.status\.changed dev: Connected → Reconnecting/, { since });
    demo.send("pause 1");
    await demo.waitForLine(/^dev is already paused$/, { since });
    since = demo.lineCount();
    demo.send("resume 1");
    await demo.waitForLine(/^resumed dev \(SIGCONT\)/, { since });
    await demo.waitForLine(/image\.status\.changed dev: Reconnecting → Connected/, { since, timeoutMs: 20_000 });

    for (const step of SLOW_STEPS.slice(1)) {
      since = demo.lineCount();
      demo.send("slow 2");
      await demo.waitForLine(new RegExp(`^staging replies ${step.delayMs} ms late`), { since });
      await demo.waitForLine(new RegExp(`image\\.health\\.changed staging: \\w+ → ${step.health} \\(`), { since });
    }
    since = demo.lineCount();
    demo.send("slow 2");
    await demo.waitForLine(/^staging replies at once again/, { since });
    await demo.waitForLine(/image\.health\.changed staging: Critical → Healthy \(/, { since });
    // The slow image kept its link: the RTT is measured, not missed.
    expect(demo.lines().slice(since).join("\n")).not.toMatch(/staging: Connected → Reconnecting/);
    demo.send("quit");
    expect((await demo.exited).code).toBe(0);
    await expectAllGone(started);
  });

  it("quits at once with a paused image: every child stopped by pid, exit 0", async () => {
    const started = await startDemo();
    const { demo } = started;
    const since = demo.lineCount();
    demo.send("pause 3");
    await demo.waitForLine(/^paused build \(SIGSTOP\)/, { since });
    const quitAt = performance.now();
    demo.send("quit");
    expect((await demo.exited).code).toBe(0);
    // A stopped process acts on SIGTERM only once continued: the demo sends SIGCONT too, so the
    // way out does not wait for the SIGKILL after the grace period.
    expect(performance.now() - quitAt).toBeLessThan(2500);
    await expectAllGone(started);
  });

  it("says how to install nats-server when there is none and NATS_URL is not set", async () => {
    const demo = spawnStui(["demo"], {
      env: envWithout("NATS_URL", {
        PATH: path.dirname(process.execPath),
        STUI_NATS_SERVER: "/nonexistent/nats-server",
      }),
    });
    const exit = await demo.exited;
    expect(exit.code).toBe(1);
    expect(demo.stderr()).toContain("sudo apt-get install -y nats-server");
  });
});

const TTL_MS = 3000;
const CLUSTER_IMAGES = ["dev", "staging", "build", "test", "docs", "perf"] as const;

/** The summary line the cluster demo prints on every change: every image Connected, owned by one of `owners`. */
const allConnected = (owners: string): RegExp =>
  new RegExp(`^images: ${CLUSTER_IMAGES.map((id) => `${id}=Connected@([${owners}])`).join(" ")}$`);

/** Starts `stui demo --cluster`; checks its printed pids (3 nodes, 6 images, 3 instances) against /proc. */
async function startClusterDemo(): Promise<Started & { readonly pidOf: ReadonlyMap<string, number> }> {
  const demo = spawnStui(["demo", "--cluster"], { env: demoEnv() });
  const [, images = "", urls = ""] = await demo.waitForLine(/^stui demo: images (.*); NATS (\S+)$/, {
    timeoutMs: 60_000,
  });
  const [, pidList = "", tempDir = ""] = await demo.waitForLine(/^stui demo: pids (.*); temp dir (\S+)$/);
  await demo.waitForLine(/^stui demo: ready/);
  expect(pidList).toMatch(
    /^n1=\d+ n2=\d+ n3=\d+ dev=\d+ staging=\d+ build=\d+ test=\d+ docs=\d+ perf=\d+ a=\d+ b=\d+ c=\d+$/,
  );
  const pidOf = new Map([...pidList.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1] ?? "", Number(m[2])]));
  const pids = [...pidOf.values()];
  expect(childPidsOf(demo.pid).sort()).toEqual([...pids].sort());
  expect(existsSync(tempDir)).toBe(true);
  // The images' ports and the nodes' client ports.
  const ports = [...images.matchAll(/:(\d+)/g), ...urls.matchAll(/:(\d+)/g)].map((m) => Number(m[1]));
  expect(ports).toHaveLength(9);
  return { demo, pids, tempDir, ports, pidOf };
}

describe("stui demo --cluster", () => {
  it("runs three instances on a 3-node NATS cluster; a killed instance's images are Connected under the others within the TTL + 5 s; quit stops every child", async () => {
    const started = await startClusterDemo();
    const { demo, pidOf } = started;
    // Every image Connected, each by its owner; the instance owning the most is killed.
    const owners = (await demo.waitForLine(allConnected("abc"), { timeoutMs: 30_000 })).slice(1);
    const count = (id: string): number => owners.filter((owner) => owner === id).length;
    const victim = ["a", "b", "c"].reduce((best, id) => (count(id) > count(best) ? id : best));
    const others = ["a", "b", "c"].filter((id) => id !== victim).join("");
    let since = demo.lineCount();
    const killedAt = performance.now();
    demo.send(`kill ${victim}`);
    await demo.waitForLine(new RegExp(`^killed ${victim} \\(pid ${pidOf.get(victim)}, SIGKILL\\)`), { since });
    expect(isAlive(pidOf.get(victim) ?? 0)).toBe(false);
    await demo.waitForLine(allConnected(others), {
      since,
      timeoutMs: Math.max(0, TTL_MS + 5000 - (performance.now() - killedAt)),
    });

    // The same key starts it again; quit stops that process too.
    since = demo.lineCount();
    demo.send(`start ${victim}`);
    const [, restarted = ""] = await demo.waitForLine(new RegExp(`^started ${victim} again \\(pid (\\d+)\\)`), {
      since,
      timeoutMs: 30_000,
    });
    demo.send("quit");
    expect((await demo.exited).code).toBe(0);
    await expectAllGone(started, [Number(restarted)]);
  }, 120_000);
});

describe("stui demo - keys", () => {
  it("each slow step's delay falls in its health's RTT band and is answered well before the ping timeout", () => {
    expect(SLOW_STEPS.map((s) => s.health)).toEqual(["Healthy", "Warning", "Critical"]);
    for (const step of SLOW_STEPS) {
      expect(healthFromRtt(step.delayMs, demoPolicy)).toBe(step.health);
      expect(step.delayMs + 250).toBeLessThan(Math.min(demoPolicy.pingTimeoutMs, demoPolicy.requestTimeoutMs));
    }
    // A little extra RTT (a loaded machine) must not change the band either.
    for (const step of SLOW_STEPS.slice(1)) expect(healthFromRtt(step.delayMs + 200, demoPolicy)).toBe(step.health);
  });
});

describe("findNatsServer", () => {
  it.runIf(existsSync("/usr/sbin/nats-server"))("finds Debian's /usr/sbin/nats-server off the PATH", () => {
    expect(findNatsServer({ PATH: "/nonexistent" })).toMatch(/^\/usr(\/local)?\/sbin\/nats-server$/);
  });

  it("takes STUI_NATS_SERVER, and gives null when that is not an executable", () => {
    expect(findNatsServer({ PATH: "/nonexistent", STUI_NATS_SERVER: process.execPath })).toBe(process.execPath);
    expect(findNatsServer({ STUI_NATS_SERVER: "/nonexistent/nats-server" })).toBeNull();
  });
});
