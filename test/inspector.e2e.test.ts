/**
 * The web inspector end to end, in Debian's Chromium: a real nats-server, a real service with
 * three image-sims, `stui inspect` as a child process, the page it serves. The page makes no
 * request that leaves 127.0.0.1; it shows the three images; an image-sim killed turns its
 * connection actor to Reconnecting on screen, then Connected when it is back; scrubbing back shows
 * it Connected before the kill; the log filter narrows to one image; an exported recording,
 * imported, shows the same view. And at scale: 50 images, about 1 000 inspection records a second,
 * the page's first paint and its memory reported, its retained history and DOM bounded. A
 * screenshot of each step goes to test/artifacts/inspector/.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Page } from "playwright-core";
import { afterEach, describe, expect, it } from "vitest";
import { startImageSim, type ImageSimHandle } from "./helpers/image-sim.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { spawnStui, stopAllProcesses } from "./helpers/processes.js";
import { isolatedEnv, runStui } from "./helpers/cli.js";
import { startFleet, startService, stopServices } from "./helpers/service.js";
import { browserMissing, launchBrowser, recordRequests, screenshot, type BrowserHandle } from "./helpers/browser.js";

let nats: NatsServerHandle | null = null;
let browser: BrowserHandle | null = null;
afterEach(async () => {
  await browser?.close();
  browser = null;
  await stopServices();
  await stopAllProcesses();
  await nats?.stop();
  nats = null;
});

/** `stui inspect` on this NATS; resolves with the URL it printed. */
async function inspector(natsUrl: string): Promise<string> {
  const child = spawnStui(["inspect", "--port", "0", "--nats-url", natsUrl], { env: isolatedEnv() });
  return (await child.waitForLine(/^inspector: (\S+)$/, { timeoutMs: 20_000 }))[1] ?? "";
}

/** The image connection actors on screen: name → state text. */
async function imageStates(page: Page): Promise<Record<string, string>> {
  // A string, evaluated in the page: the tests' TypeScript has no DOM types.
  return page.evaluate<Record<string, string>>(`Object.fromEntries(
    [...document.querySelectorAll('[data-testid=tree] [data-testid=actor-row][data-machine="image"]')]
      .map((r) => [r.getAttribute("data-name") ?? "", r.getAttribute("data-state") ?? ""]))`);
}

const stateOf = async (page: Page, name: string): Promise<string> => (await imageStates(page))[name] ?? "";

/** Moves the scrubber (input and change events, as a hand would), then lets the page draw. */
async function scrubTo(page: Page, position: number): Promise<void> {
  await page.locator("[data-testid=scrubber]").fill(String(position));
  await page.waitForTimeout(150);
}

const scrubberEnd = async (page: Page): Promise<number> =>
  Number(await page.locator("[data-testid=scrubber]").getAttribute("max"));

const missing = browserMissing();
if (missing !== null) console.warn(missing);

describe.skipIf(missing !== null)("inspector - the page in Chromium, against a real service", () => {
  it(
    "shows three images live, a kill and the recovery, scrubs back, filters the log, exports and imports",
    { timeout: 120_000 },
    async () => {
      nats = await startNatsServer();
      const names = ["alpha", "beta", "gamma"];
      const sims: ImageSimHandle[] = [];
      for (const name of names) sims.push(await startImageSim({ name }));
      await startService({
        nats: { servers: nats.url },
        images: names.map((id, n) => ({ id, address: sims[n]?.endpoint ?? "", name: null })),
      });
      const url = await inspector(nats.url);
      browser = await launchBrowser();
      const page = await browser.browser.newPage();
      const requests = recordRequests(page);
      await page.goto(url);

      await expect.poll(() => page.textContent("[data-testid=status]"), { timeout: 10_000 }).toMatch(/live/);
      await expect.poll(async () => Object.keys(await imageStates(page)).sort(), { timeout: 10_000 }).toEqual(names);
      await expect
        .poll(async () => Object.values(await imageStates(page)).every((s) => s.startsWith("Connected")))
        .toBe(true);
      await page.locator('[data-testid=actor-row][data-name="beta"]').click();
      await expect.poll(() => page.locator("[data-testid=chart] [data-state-id].active").count()).toBeGreaterThan(0);
      await screenshot(page, "1-three-images");

      const beforeKill = await scrubberEnd(page);
      const killedAt = performance.now();
      sims[1]?.kill("SIGKILL");
      await expect.poll(() => stateOf(page, "beta"), { timeout: 2000, interval: 20 }).toMatch(/^Reconnecting/);
      const shownAfterMs = performance.now() - killedAt;
      console.log(`inspector e2e: beta killed → Reconnecting on screen after ${shownAfterMs.toFixed(0)} ms`);
      expect(
        await page.locator('[data-testid=chart] [data-state-id="image.Reconnecting"]').getAttribute("class"),
      ).toMatch(/active/);
      await screenshot(page, "2-beta-reconnecting");
      sims[1] = await startImageSim({ name: "beta", bind: sims[1]?.endpoint ?? "" });
      await expect.poll(() => stateOf(page, "beta"), { timeout: 10_000 }).toMatch(/^Connected/);
      await screenshot(page, "3-beta-connected-again");

      // Back before the kill: beta was Connected; the cursor says it is not live.
      await scrubTo(page, beforeKill);
      await expect.poll(() => stateOf(page, "beta")).toMatch(/^Connected/);
      expect(await page.textContent("[data-testid=cursor]")).not.toMatch(/live/);
      const reconnecting = await findPosition(page, beforeKill, async () =>
        (await stateOf(page, "beta")).startsWith("Reconnecting"),
      );
      expect(reconnecting).toBeGreaterThan(beforeKill);
      await screenshot(page, "4-scrubbed-to-the-kill");
      await page.locator("[data-testid=live]").click();
      await expect.poll(() => page.textContent("[data-testid=cursor]")).toMatch(/live/);

      // The log filter narrows to one image (the image's actor and its children).
      await page.locator("[data-testid=filter-actor]").fill("gamma");
      await expect.poll(() => page.locator("[data-testid=log-row]").count()).toBeGreaterThan(0);
      // Renders are throttled: the rows are filtered on the next one.
      const paths = (): Promise<string[]> =>
        page.evaluate<string[]>(
          `[...document.querySelectorAll("[data-testid=log-row]")].map((r) => r.getAttribute("data-actor-path") ?? "")`,
        );
      await expect.poll(async () => (await paths()).every((p) => p.includes("gamma"))).toBe(true);
      expect((await paths()).length).toBeGreaterThan(0);
      await screenshot(page, "5-log-filtered-to-gamma");
      await page.locator("[data-testid=filter-actor]").fill("");

      // Export, then import into a fresh page: the same images in the same states.
      await page.locator("[data-testid=pause]").click();
      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.locator("[data-testid=export]").click(),
      ]);
      const file = await download.path();
      const recording = JSON.parse(await readFile(file, "utf8")) as { format: string; messages: unknown[] };
      expect(recording.format).toBe("stui-inspector-recording");
      const exported = await imageStates(page);
      const viewer = await browser.browser.newPage();
      const viewerRequests = recordRequests(viewer);
      await viewer.goto(url);
      await viewer.locator("[data-testid=import]").setInputFiles(file);
      await expect.poll(() => viewer.textContent("[data-testid=status]")).toMatch(/recording/);
      await expect.poll(() => imageStates(viewer)).toEqual(exported);
      await screenshot(viewer, "6-imported-recording");

      expect(requests.outside()).toEqual([]);
      expect(viewerRequests.outside()).toEqual([]);
    },
  );

  it(
    "stui serve --inspect serves the page of its own instance, from inside the process",
    { timeout: 90_000 },
    async () => {
      const bad = await runStui(["serve", "--inspect", "99999"], { env: isolatedEnv() });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("--inspect: not a port (0 to 65535): 99999");

      nats = await startNatsServer();
      const sims = [await startImageSim({ name: "left" }), await startImageSim({ name: "right" })];
      const dir = await mkdtemp(path.join(tmpdir(), "stui-serve-inspect-"));
      const config = path.join(dir, "stui.json");
      await writeFile(
        config,
        JSON.stringify({
          instance_id: "solo",
          nats: { url: nats.url },
          store: { path: path.join(dir, "store") },
          images: sims.map((sim, n) => ({ id: n === 0 ? "left" : "right", address: sim.endpoint })),
        }),
      );
      const serve = spawnStui(["serve", "--config", config, "--inspect"], { env: isolatedEnv() });
      const [, url = ""] = await serve.waitForLine(/"msg":"inspector: (http:\/\/127\.0\.0\.1:\d+\/\?token=[^"]+)"/, {
        timeoutMs: 30_000,
      });
      browser = await launchBrowser();
      const page = await browser.browser.newPage();
      const requests = recordRequests(page);
      await page.goto(url);
      await expect
        .poll(
          async () => Object.entries(await imageStates(page)).map(([name, state]) => `${name} ${state.split(".")[0]}`),
          {
            timeout: 15_000,
          },
        )
        .toEqual(["left Connected", "right Connected"]);
      sims[1]?.kill("SIGKILL");
      await expect.poll(() => stateOf(page, "right"), { timeout: 5_000 }).toMatch(/^Reconnecting/);
      await screenshot(page, "8-serve-inspect");
      expect(requests.outside()).toEqual([]);
      // Without its token the page is refused.
      expect((await fetch(url.replace(/\?token=.*/, ""))).status).toBe(403);
      await serve.stop();
      await rm(dir, { recursive: true, force: true });
    },
  );

  it(
    "keeps up with 50 images and about 1 000 records a second, with bounded history and DOM",
    { timeout: 120_000 },
    async () => {
      nats = await startNatsServer();
      // Pings every 100 ms: 500 a second through the machines, about 1 000 records a second.
      await startFleet(nats.url, 50, 100);
      const url = await inspector(nats.url);
      browser = await launchBrowser();
      const page = await browser.browser.newPage();
      await page.goto(url);
      await expect.poll(async () => Object.keys(await imageStates(page)).length, { timeout: 15_000 }).toBe(50);
      const first = await stats(page);
      await new Promise((resolve) => setTimeout(resolve, 10_000));
      const after = await stats(page);
      const rate = (after.records_ingested - first.records_ingested) / 10;
      console.log(
        `inspector e2e, 50 images: first paint ${first.first_paint_ms.toFixed(0)} ms; ` +
          `${rate.toFixed(0)} records/s ingested; retained ${after.records_retained}; ` +
          `${after.renders - first.renders} renders in 10 s (last ${after.last_render_ms.toFixed(1)} ms); ` +
          `JS heap ${(after.heap / 1e6).toFixed(1)} MB; ${after.nodes} DOM nodes`,
      );
      expect(rate).toBeGreaterThan(500);
      expect(after.records_retained).toBeLessThanOrEqual(Math.max(20_000, after.records_retained_cap));
      expect(after.nodes).toBeLessThan(50_000);
      await screenshot(page, "7-fifty-images");
    },
  );
});

interface Stats {
  first_paint_ms: number;
  records_ingested: number;
  records_retained: number;
  records_retained_cap: number;
  renders: number;
  last_render_ms: number;
  heap: number;
  nodes: number;
}

async function stats(page: Page): Promise<Stats> {
  return page.evaluate<Stats>(`(() => {
    const s = window.stuiInspector.stats();
    return {
      first_paint_ms: s.first_paint_ms ?? NaN,
      records_ingested: s.records_ingested ?? 0,
      records_retained: s.records_retained ?? 0,
      records_retained_cap: s.records_retained_cap ?? 0,
      renders: s.renders ?? 0,
      last_render_ms: s.last_render_ms ?? NaN,
      heap: performance.memory?.usedJSHeapSize ?? NaN,
      nodes: document.getElementsByTagName("*").length,
    };
  })()`);
}

/** The first position after `from` at which `test` holds, by bisection-free stepping (coarse, then fine). */
async function findPosition(page: Page, from: number, test: () => Promise<boolean>): Promise<number> {
  const end = await scrubberEnd(page);
  const step = Math.max(1, Math.floor((end - from) / 40));
  for (let at = from; at <= end; at += step) {
    await scrubTo(page, at);
    if (await test()) {
      for (let back = Math.max(from, at - step + 1); back <= at; back++) {
        await scrubTo(page, back);
        if (await test()) return back;
      }
      return at;
    }
  }
  return -1;
}
