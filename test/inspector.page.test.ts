/**
 * The inspector page in a real browser: the built dist/inspector/index.html, served from
 * 127.0.0.1 with the fixture's messages over a WebSocket, and the fixture imported as a file.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { BrowserHandle, PageServer, RequestRecorder } from "./helpers/browser.js";
import { fleetAttached, fleetBatch } from "./fixtures/inspector/fleet.js";
import { browserMissing, launchBrowser, recordRequests, screenshot, servePage } from "./helpers/browser.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const built = `${root}dist/inspector/index.html`;
const fixturePath = fileURLToPath(new URL("fixtures/inspector/capture.json", import.meta.url));
const fixture = JSON.parse(readFileSync(fixturePath, "utf8")) as { messages: unknown[] };
const missing = browserMissing();
if (missing !== null) console.warn(missing);

interface Stats {
  first_paint_ms: number | null;
  records_ingested: number;
  records_retained: number;
  actors: number;
  renders: number;
  last_render_ms: number;
  dropped: number;
}

describe.skipIf(missing !== null)("inspector page", () => {
  let browser: BrowserHandle | null = null;
  let server: PageServer | null = null;
  let page: Page | null = null;
  let requests: RequestRecorder | null = null;

  beforeAll(async () => {
    // The build takes about a second; always building keeps the page in step with its sources.
    const build = spawnSync(process.execPath, ["scripts/build-inspector.js"], { cwd: root, encoding: "utf8" });
    if (build.status !== 0) throw new Error(`build-inspector failed:\n${build.stdout}${build.stderr}`);
    browser = await launchBrowser();
  });

  afterEach(async () => {
    if (requests !== null) expect(requests.outside()).toEqual([]);
    await page?.close();
    await server?.close();
    page = null;
    server = null;
    requests = null;
  });

  afterAll(async () => {
    await browser?.close();
  });

  /** Opens the page against a fresh server; `messages` go to each socket that connects. */
  async function open(messages: readonly unknown[]): Promise<Page> {
    if (browser === null) throw new Error("no browser");
    server = await servePage(built, {
      onSocket: (socket) => {
        for (const message of messages) socket.send(JSON.stringify(message));
      },
    });
    page = await browser.browser.newPage({ viewport: { width: 1600, height: 1000 } });
    requests = recordRequests(page);
    page.on("pageerror", (error) => console.error("page error:", error));
    await page.goto(server.url);
    return page;
  }

  const row = (page: Page, name: string) => page.locator(`[data-testid=actor-row][data-name="${name}"]`);

  async function stats(page: Page): Promise<Stats> {
    return page.evaluate(() => (globalThis as unknown as { stuiInspector: { stats(): Stats } }).stuiInspector.stats());
  }

  it("inspector page - live: the fixture over the WebSocket shows the tree with each actor's state", async () => {
    const page = await open([
      { type: "hello", version: 1 },
      { type: "instances", instances: ["test"] },
      ...fixture.messages,
    ]);
    await expect.poll(() => page.getByTestId("status").textContent()).toContain("live");
    await expect.poll(() => page.getByTestId("actor-row").count()).toBe(10);
    expect(await row(page, "alpha").getAttribute("data-state")).toBe("Connected.pinging");
    expect(await row(page, "alpha").getAttribute("data-machine")).toBe("image");
    expect(await row(page, "alpha").getAttribute("data-actor-id")).toBe("x:1");
    expect(await row(page, "alpha").getAttribute("data-instance")).toBe("test");
    expect(await row(page, "beta").getAttribute("data-state")).toBe("Connected.pinging");
    expect(await row(page, "x:0").getAttribute("data-state")).toBe("running");
    await screenshot(page, "live");
    console.log("inspector page stats (fixture, live):", await stats(page));
  });

  it("inspector page - the status says when the bridge is gone and reconnects", async () => {
    const page = await open([{ type: "hello", version: 1 }]);
    await expect.poll(() => page.getByTestId("status").textContent()).toContain("live");
    const reconnected = server?.nextSocket();
    for (const socket of server?.sockets ?? []) socket.close(1001, "bridge restarting");
    await expect.poll(() => page.getByTestId("status").textContent()).toContain("disconnected");
    await reconnected;
    await expect.poll(() => page.getByTestId("status").textContent()).toContain("live");
  });

  it("inspector page - import: tree, chart, scrubbing, filters and export", async () => {
    const page = await open([{ type: "hello", version: 1 }]);
    await page.getByTestId("import").setInputFiles(fixturePath);
    await expect.poll(() => page.getByTestId("status").textContent()).toContain("recording");
    await expect.poll(() => page.getByTestId("actor-row").count()).toBe(10);

    // selecting alpha draws the image chart with its active states
    await row(page, "alpha").click();
    await expect.poll(() => row(page, "alpha").getAttribute("aria-selected")).toBe("true");
    const connected = page.locator('[data-testid=chart] [data-state-id="image.Connected"]');
    await expect.poll(() => connected.getAttribute("class")).toContain("active");
    expect(
      await page.locator('[data-testid=chart] [data-state-id="image.Connected.pinging"]').getAttribute("class"),
    ).toContain("active");
    expect(
      await page.locator('[data-testid=chart] [data-state-id="image.Reconnecting"]').getAttribute("class"),
    ).not.toContain("active");
    expect(await page.getByTestId("snapshot").textContent()).toContain("pingSeq");
    await screenshot(page, "imported");

    // scrub back to where beta is reconnecting: tree, chart and snapshot follow
    await row(page, "beta").click();
    const scrubber = page.getByTestId("scrubber");
    const max = Number(await scrubber.getAttribute("max"));
    expect(max).toBeGreaterThan(1000);
    await seekUntil(
      page,
      max,
      async () => (await row(page, "beta").getAttribute("data-state"))?.startsWith("Reconnecting") ?? false,
    );
    expect(await page.getByTestId("cursor").textContent()).not.toContain("live");
    await expect
      .poll(() => page.locator('[data-testid=chart] [data-state-id="image.Reconnecting"]').getAttribute("class"))
      .toContain("active");
    expect(await page.locator("[data-testid=snapshot] .changed").count()).toBeGreaterThan(0);
    await screenshot(page, "scrubbed");
    await page.getByTestId("live").click();
    await expect.poll(() => page.getByTestId("cursor").textContent()).toContain("live");
    await expect.poll(() => row(page, "beta").getAttribute("data-state")).toBe("Connected.pinging");

    // filters narrow the log
    await page.getByTestId("filter-actor").fill("alpha");
    // renders are throttled: wait for the filtered rows rather than the first ones seen
    const onlyAlpha = async () => {
      const paths = await logPaths(page);
      return paths.length > 0 && paths.every((path) => path.includes("alpha"));
    };
    await expect.poll(onlyAlpha).toBe(true);
    await page.getByTestId("filter-type").fill("LINK.UP");
    await page.getByTestId("filter-actor").fill("");
    await expect
      .poll(async () => (await attributes(page, "data-event-type")).every((type) => type.includes("LINK.UP")))
      .toBe(true);
    await page.getByTestId("filter-type").fill("");
    await page.getByTestId("filter-text").fill("ping-alpha-9");
    const fewRows = async () => {
      const count = await page.getByTestId("log-row").count();
      return count > 0 && count < 20;
    };
    await expect.poll(fewRows).toBe(true);
    await page.getByTestId("filter-text").fill("");
    expect(await page.getByTestId("log-row").count()).toBeLessThanOrEqual(300);

    // pause stops the log from changing
    await page.getByTestId("pause").click();
    const before = await logPaths(page);
    await page.getByTestId("filter-actor").fill("gamma");
    await page.waitForTimeout(300);
    expect(await logPaths(page)).toEqual(before);
    await page.getByTestId("pause").click();
    await expect.poll(async () => (await logPaths(page)).every((path) => path.includes("gamma"))).toBe(true);

    // export downloads a recording that rebuilds the same history
    const download = page.waitForEvent("download");
    await page.getByTestId("export").click();
    const path = await (await download).path();
    const exported = JSON.parse(readFileSync(path, "utf8")) as { format: string; version: number; messages: unknown[] };
    expect(exported.format).toBe("stui-inspector-recording");
    expect(exported.version).toBe(1);
    const records = (messages: unknown[]) =>
      messages.reduce<number>((sum, message) => {
        const body = (message as { type: string; body?: { records?: unknown[] } }).body;
        return sum + (body?.records?.length ?? 0);
      }, 0);
    expect(records(exported.messages)).toBe(records(fixture.messages));
    console.log("inspector page stats (fixture, imported):", await stats(page));
  });

  it("inspector page - scale: 50 images, then 1 000 records/s and a burst past the history cap", async () => {
    const images = 50;
    const page = await open([
      { type: "hello", version: 1 },
      { type: "instances", instances: ["fleet"] },
      fleetAttached(images),
    ]);
    await expect.poll(() => page.getByTestId("actor-row").count()).toBe(images * 3 + 1);
    const painted = await stats(page);
    console.log(`inspector page stats (${images} images, first paint):`, painted);
    const socket = server?.sockets[0];
    if (socket === undefined) throw new Error("the page did not connect");
    await row(page, "image-7").click();

    // 3 s at 1 000 records/s, in batches every 50 ms, as the bridge forwards them
    let seq = 1;
    for (let tick = 0; tick < 60; tick++) {
      socket.send(JSON.stringify(fleetBatch(images, seq, 50)));
      seq += 50;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await expect.poll(async () => (await stats(page)).records_ingested, { timeout: 20_000 }).toBe(seq - 1);
    const streamed = await stats(page);
    console.log("inspector page stats (after 3 s at 1 000 records/s):", streamed);

    // a burst past the 10 000-record cap: the history stays bounded, the oldest folded away
    for (let batch = 0; batch < 11; batch++) {
      socket.send(JSON.stringify(fleetBatch(images, seq, 1000)));
      seq += 1000;
    }
    await expect.poll(async () => (await stats(page)).records_ingested, { timeout: 20_000 }).toBe(seq - 1);
    const burst = await stats(page);
    console.log("inspector page stats (after a burst of 11 000 records):", burst);
    expect(burst.records_retained).toBeGreaterThanOrEqual(10_000);
    expect(burst.records_retained).toBeLessThanOrEqual(10_500);
    expect(await page.getByTestId("log-row").count()).toBeLessThanOrEqual(300);
    expect(await page.getByTestId("actor-row").count()).toBe(images * 3 + 1);

    // seeking into the retained history still works
    const scrubber = page.getByTestId("scrubber");
    await scrubber.fill(String(Number(await scrubber.getAttribute("min")) + 10));
    await expect.poll(() => page.getByTestId("cursor").textContent()).not.toContain("live");
    await screenshot(page, "fleet");
  });
});

async function logPaths(page: Page): Promise<string[]> {
  return attributes(page, "data-actor-path");
}

async function attributes(page: Page, name: string): Promise<string[]> {
  return page
    .getByTestId("log-row")
    .evaluateAll(
      (rows: { getAttribute(name: string): string | null }[], attribute: string) =>
        rows.map((row) => row.getAttribute(attribute) ?? ""),
      name,
    );
}

/** Moves the scrubber by bisection-free stepping (from the end back) until `done` holds. */
async function seekUntil(page: Page, max: number, done: () => Promise<boolean>): Promise<void> {
  const scrubber = page.getByTestId("scrubber");
  for (let value = max; value >= 0; value -= 25) {
    await scrubber.fill(String(value));
    if (await done()) return;
  }
  throw new Error("no scrubber position satisfied the condition");
}
