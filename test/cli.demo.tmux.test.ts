/**
 * `stui demo` as a user runs it in a terminal: the real binary in a tmux pane (120×30), with its
 * own nats-server and simulated images, shows the panel; the demo's keys act on the selected
 * image's sim: P pauses it (Reconnecting) and resumes it (Connected), S slows its replies (health
 * Warning), K kills it (Reconnecting) and starts it again (Connected). `q` ends the demo with exit
 * code 0, every child process it ever started gone and its temp directory removed.
 */
import { existsSync, readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { SLOW_STEPS } from "../src/cli/demo-keys.js";
import { childPidsOf, isAlive, REPO_ROOT, waitUntilGone } from "./helpers/processes.js";
import { hasTmux, openPane, type TmuxPane } from "./helpers/tmux.js";

const IDS = ["build", "dev", "staging"] as const;

let pane: TmuxPane | null = null;
/** Every pid the demo was seen to start: killed here should the test fail before they are gone. */
const seen = new Set<number>();
afterEach(async () => {
  // A closed terminal (SIGHUP) is one of the demo's ways out: it stops its children itself.
  pane?.close();
  pane = null;
  const left = await waitUntilGone([...seen], 5000);
  for (const pid of left) process.kill(pid, "SIGKILL");
  seen.clear();
});

/**
 * The image's row: the last one on the screen. The panel's redraws sometimes land a line lower
 * than the frame before, leaving that frame's lines above the current ones (seen with `stui
 * panel` too): the lowest row is the current one.
 */
const rowOf = (lines: readonly string[], id: string): string =>
  lines.findLast((l) => new RegExp(`^[› ] ${id}\\s`).test(l)) ?? "";
const shows = (id: string, text: string) => (lines: string[]) => rowOf(lines, id).includes(text);

/** The RTT column of a row (the number after ACT/ORPH/ALL), `NaN` when it shows none. */
const rttOf = (row: string): number => Number(row.match(/\d+\/\d+\/\d+\s+(\d+(\.\d+)?)\s/)?.[1] ?? NaN);

/** The command line of a process, its arguments joined by spaces. */
const commandOf = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
};

/** The `--name` of an image-sim command line, else `null`. */
const simName = (command: string): string | null => command.match(/image-sim .*--name (\S+)/)?.[1] ?? null;

/** The demo's children now (nats-server and the sims), remembered for the clean-up checks. */
function childrenOf(demoPid: number): number[] {
  const pids = childPidsOf(demoPid);
  for (const pid of pids) seen.add(pid);
  return pids;
}

async function until<T>(get: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`never saw ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface DemoPane {
  readonly screen: TmuxPane;
  readonly demoPid: number;
  /** Its children once every image showed Connected: nats-server and the three sims. */
  readonly children: readonly number[];
  readonly tempDir: string;
}

/** Starts `stui demo` in a 120×30 pane and waits for the panel to show every image Connected. */
async function startDemoPane(): Promise<DemoPane> {
  const screen = openPane("env -u NATS_URL node bin/stui.js demo", { cwd: REPO_ROOT, width: 120, height: 30 });
  pane = screen;
  const demoPid = await until(() => childPidsOf(screen.shellPid)[0], "the demo's process");
  const first = await screen.until((l) => IDS.every((id) => shows(id, "● Connected")(l)), "every image Connected");
  for (const line of first) expect(line.length).toBeLessThanOrEqual(120);
  const children = childrenOf(demoPid);
  const commands = children.map(commandOf);
  expect(commands.filter((c) => c.includes("nats-server"))).toHaveLength(1);
  expect(
    commands
      .map(simName)
      .filter((n) => n !== null)
      .sort(),
  ).toEqual([...IDS]);
  // Its images serve CURVE, and let in only the service's key.
  for (const command of commands.filter((c) => simName(c) !== null)) {
    expect(command).toMatch(/--curve-secret-key \S+image-key\.json --curve-client-key=\S{40}/);
  }
  const tempDir = commands.join(" ").match(/-sd (\S+)\/jetstream/)?.[1] ?? "";
  expect(tempDir).toMatch(/stui-demo-/);
  expect(existsSync(tempDir)).toBe(true);
  return { screen, demoPid, children, tempDir };
}

/** `q`: the pane's command exits 0, no process the demo started is left, its temp dir is gone. */
async function quitClean({ screen, demoPid, tempDir }: DemoPane): Promise<void> {
  screen.keys("q");
  expect(await screen.exitCode()).toBe(0);
  expect(await waitUntilGone([demoPid, ...seen])).toEqual([]);
  expect(existsSync(tempDir), tempDir).toBe(false);
}

describe.skipIf(!hasTmux)("stui demo - in a terminal (tmux)", () => {
  it("shows the panel with dev, staging and build Connected; q exits 0, every child stopped, the temp dir removed", async () => {
    const demo = await startDemoPane();
    expect(demo.screen.lines()[0]).toMatch(/nats:\/\/127\.0\.0\.1:\d+/);
    await quitClean(demo);
  }, 40_000);

  it("P pauses and resumes, S slows, K kills and restarts the selected image's sim; q stops every child", async () => {
    const demo = await startDemoPane();
    const { screen, demoPid, children } = demo;
    const devPid = children.find((pid) => simName(commandOf(pid)) === "dev") ?? 0;

    // build is the first row; j selects dev.
    screen.keys("j");
    await screen.until((l) => rowOf(l, "dev").startsWith("› "), "dev selected");

    screen.keys("P");
    const paused = await screen.until(shows("dev", "Reconnecting"), "dev Reconnecting once paused");
    expect(paused.join("\n")).toContain("paused dev (SIGSTOP)");
    expect(readFileSync(`/proc/${devPid}/stat`, "utf8")).toMatch(/^\d+ \(.*\) T /);
    screen.keys("P");
    await screen.until(shows("dev", "● Connected"), "dev Connected once resumed");

    screen.keys("S");
    const warning = SLOW_STEPS[1]?.delayMs ?? Infinity;
    const slowed = await screen.until(
      (l) => shows("dev", "Warning")(l) && rttOf(rowOf(l, "dev")) >= warning,
      `dev's health Warning with an RTT of at least ${warning} ms once slowed`,
    );
    expect(rowOf(slowed, "dev")).toContain("● Connected");
    expect(slowed.join("\n")).toContain(`dev replies ${warning} ms late`);

    screen.keys("K");
    await screen.until(shows("dev", "Reconnecting"), "dev Reconnecting once killed");
    // The kill's action ends once the process is reaped: a press before that would be ignored.
    await until(() => (!isAlive(devPid) && childrenOf(demoPid).length === 3 ? true : undefined), "dev's sim gone");
    await new Promise((resolve) => setTimeout(resolve, 300));
    screen.keys("K");
    await screen.until(shows("dev", "● Connected"), "dev Connected once started again");
    const restarted = childrenOf(demoPid).filter((pid) => !children.includes(pid));
    expect(restarted.map(commandOf).map(simName)).toEqual(["dev"]);
    // A process started again has no slow-down: its health is back to Healthy.
    await screen.until(shows("dev", "Healthy"), "the new dev Healthy");
    await quitClean(demo);
  }, 40_000);
});
