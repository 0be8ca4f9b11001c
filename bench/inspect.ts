/**
 * `npm run bench -- inspect`: what an attached inspector costs the service. The service runs in a
 * child Node process (so that the inspector's own decoding is not counted against it) on a
 * private nats-server, with `STUI_BENCH_INSPECT_IMAGES` (5) image-sims. Rounds take turns,
 * unattached then attached, `STUI_BENCH_INSPECT_ROUNDS` (5) each:
 *
 * - API requests per second, 32 at a time: `Evaluate 3 + 4` (through the image's connection actor:
 *   an event, a request, its settling, snapshots) and `GetImageConnectionStatus`;
 * - SIGKILL of an image-sim → its `Reconnecting` status event at a subscriber.
 *
 * Attached: an inspector in its own process (as a browser page is) holds a lease on
 * `stui.inspect.bench.attach` (renewed every 2 s) and decodes every batch on
 * `stui.inspect.bench.events`, counting the records it got and those the instance dropped. The
 * ratio attached / unattached is the figure; the target is at least 0.95 of the throughput. It is
 * measured twice, each with its own service and baseline: with inspection's default share of the
 * service's time (`inspect.max_share` 0.02: beyond it records are dropped) and with no limit
 * (`max_share` 1: every record made and sent, whatever it costs). Figures only.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { StuiClient } from "../src/client.js";
import { DEFAULT_MAX_SHARE } from "../src/actors/inspect-link.js";
import { inspectSubjects } from "../src/protocol/inspect.js";
import { startImageSim, type ImageSimHandle } from "../test/helpers/image-sim.js";
import { startNatsServer } from "../test/helpers/nats-server.js";
import { spawnNode, stopAllProcesses } from "../test/helpers/processes.js";
import { fmt, percentile, printTable } from "./harness.js";
import { concurrent, EventWatch, startChild, statusIs } from "./nats-support.js";

const IMAGES = Number(process.env.STUI_BENCH_INSPECT_IMAGES ?? 5);
const ROUNDS = Number(process.env.STUI_BENCH_INSPECT_ROUNDS ?? 5);
const REQUESTS = Number(process.env.STUI_BENCH_INSPECT_N ?? 6000);
const KILLS = Number(process.env.STUI_BENCH_INSPECT_KILLS ?? 5);

interface Sample {
  evaluate: number[];
  status: number[];
  kills: number[];
}

const SELF = fileURLToPath(import.meta.url);

/**
 * An inspector attached to instance `bench`, in its own Node process (this file with
 * `--inspector`), as a real one is (a page in a browser): it renews its lease every 2 s and decodes
 * every batch, and its decoding does not hold up the client's requests in this process.
 */
async function attachInspector(natsUrl: string): Promise<{ detach: () => Promise<Received> }> {
  const child = spawnNode(["--import", "tsx", SELF, "--inspector", natsUrl]);
  try {
    await child.waitForLine(/^attached$/, { timeoutMs: 30_000 });
  } catch (error) {
    await child.stop();
    throw error;
  }
  return {
    detach: async () => {
      child.send("detach");
      const [, records, dropped, bytes] = await child.waitForLine(/^records (\d+) dropped (\d+) bytes (\d+)$/, {
        timeoutMs: 10_000,
      });
      await child.exited;
      return { records: Number(records), dropped: Number(dropped), bytes: Number(bytes) };
    },
  };
}

interface Received {
  readonly records: number;
  /** Dropped by the instance while attached (its count went up by this much). */
  readonly dropped: number;
  /** The batches' bytes. */
  readonly bytes: number;
}

/**
 * Child entry: attaches, decodes every batch; on the line `detach` detaches and prints
 * `records <n> dropped <m>`.
 */
async function inspectorChild(natsUrl: string): Promise<void> {
  const nc = await connect({ servers: natsUrl, name: "stui-bench-inspector" });
  let records = 0;
  let droppedFirst: number | null = null;
  let droppedLast = 0;
  let bytes = 0;
  const decoder = new TextDecoder();
  nc.subscribe(inspectSubjects.events("bench"), {
    callback: (_error, msg) => {
      const batch = JSON.parse(decoder.decode(msg.data)) as { records: unknown[]; dropped: number };
      records += batch.records.length;
      bytes += msg.data.length;
      droppedFirst ??= batch.dropped;
      droppedLast = batch.dropped;
    },
  });
  const attach = (): Promise<unknown> =>
    nc.request(inspectSubjects.attach("bench"), JSON.stringify({ inspector_id: "bench", lease_ms: 5000 }), {
      timeout: 5000,
    });
  await attach();
  const renew = setInterval(() => void attach().catch(() => undefined), 2000);
  console.log("attached");
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk: string) => {
    if (!chunk.includes("detach")) return;
    clearInterval(renew);
    void nc
      .request(inspectSubjects.detach("bench"), JSON.stringify({ inspector_id: "bench" }))
      .then(() => nc.flush())
      .then(() => {
        console.log(`records ${records} dropped ${droppedLast - (droppedFirst ?? droppedLast)} bytes ${bytes}`);
        return nc.close();
      })
      .finally(() => process.exit(0));
  });
}

async function waitConnected(client: StuiClient, ids: readonly string[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await client.listImages();
    if (r.type === "Images" && ids.every((id) => r.images.some((i) => i.image_id === id && i.status === "Connected")))
      return;
    if (Date.now() > deadline) throw new Error("the images never all came up Connected");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function round(client: StuiClient, sims: ImageSimHandle[], watch: EventWatch, into: Sample): Promise<void> {
  const ids = sims.map((_, n) => `img${n}`);
  let k = 0;
  into.evaluate.push(
    await concurrent(
      () => client.evaluate({ client_id: "bench", image_id: ids[k++ % ids.length] ?? "img0", code: "3 + 4" }),
      REQUESTS,
      32,
    ),
  );
  into.status.push(
    await concurrent(
      () => client.getImageConnectionStatus({ image_id: ids[k++ % ids.length] ?? "img0" }),
      REQUESTS,
      32,
    ),
  );
  for (let n = 0; n < KILLS; n++) {
    const index = n % sims.length;
    const sim = sims[index];
    if (sim === undefined) continue;
    const id = ids[index] ?? "img0";
    const arrived = watch.next(statusIs(id, "Reconnecting"));
    const t0 = performance.now();
    sim.kill("SIGKILL");
    into.kills.push((await arrived).at - t0);
    sims[index] = await startImageSim({ name: id, bind: sim.endpoint });
    await waitConnected(client, [id]);
  }
}

interface Measured {
  readonly none: Sample;
  readonly attached: Sample;
  readonly received: Received;
  readonly where: string;
  readonly problems: number;
}

/** Rounds taking turns, unattached then attached, against one service with `maxShare`. */
async function measure(maxShare: number): Promise<Measured> {
  const nats = await startNatsServer();
  const dir = await mkdtemp(path.join(tmpdir(), "stui-bench-inspect-"));
  const sims: ImageSimHandle[] = [];
  try {
    for (let n = 0; n < IMAGES; n++) sims.push(await startImageSim({ name: `img${n}` }));
    const images = sims.map((s, n) => ({ id: `img${n}`, address: s.endpoint, name: null }));
    const service = await startChild({
      instanceId: "bench",
      natsUrl: nats.url,
      dir,
      images,
      inspectMaxShare: maxShare,
    });
    const client = await StuiClient.connect({ servers: nats.url, timeoutMs: 10_000 });
    try {
      await waitConnected(
        client,
        images.map((i) => i.id),
      );
      const watch = new EventWatch(client.events({ subject: "stui.events.image.*.status" }));
      const none: Sample = { evaluate: [], status: [], kills: [] };
      const attached: Sample = { evaluate: [], status: [], kills: [] };
      let records = 0;
      let dropped = 0;
      let bytes = 0;
      // Warm-up, not counted.
      await round(client, sims, watch, { evaluate: [], status: [], kills: [] });
      for (let r = 0; r < ROUNDS; r++) {
        await round(client, sims, watch, none);
        const inspector = await attachInspector(nats.url);
        await round(client, sims, watch, attached);
        const got = await inspector.detach();
        records += got.records;
        dropped += got.dropped;
        bytes += got.bytes;
      }
      const problems = service.problems();
      await service.stop();
      return { none, attached, received: { records, dropped, bytes }, where: service.where, problems };
    } finally {
      await client.close();
    }
  } finally {
    await stopAllProcesses();
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<void> {
  const median = (xs: readonly number[]): number => percentile(xs, 50);
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const [share, label] of [
    [DEFAULT_MAX_SHARE, `max_share ${DEFAULT_MAX_SHARE} (default)`],
    [1, "max_share 1 (no limit)"],
  ] as const) {
    const m = await measure(share);
    const row = (name: string, a: readonly number[], b: readonly number[], unit: string, digits = 0): string[] => [
      `${name}, ${label}`,
      `${fmt(median(a), digits)} ${unit}`,
      `${fmt(median(b), digits)} ${unit}`,
      `${fmt(median(b) / median(a), 2)}x`,
    ];
    rows.push(
      row("Evaluate 3 + 4, requests/s", m.none.evaluate, m.attached.evaluate, "/s"),
      row("GetImageConnectionStatus, requests/s", m.none.status, m.attached.status, "/s"),
      row("SIGKILL → Reconnecting event, p50", m.none.kills, m.attached.kills, "ms", 1),
    );
    const { records, dropped, bytes } = m.received;
    notes.push(
      `${label}: service ${m.where}; the inspector decoded ${records} records, the instance dropped ` +
        `${dropped} (${fmt((100 * dropped) / Math.max(1, records + dropped), 1)}%); ` +
        `${fmt(bytes / Math.max(1, records), 0)} bytes a record; ` +
        `${m.problems} warnings or errors logged`,
    );
  }
  console.log(
    `inspect: ${IMAGES} images; ${ROUNDS} rounds each, taking turns; ${REQUESTS} requests per figure, ` +
      `32 at a time; ${KILLS} kills per round`,
  );
  for (const note of notes) console.log(note);
  printTable([["median of the rounds", "no inspector (baseline)", "inspector attached", "attached / none"], ...rows]);
}

// Last, so that everything above is initialized when the child runs.
if (process.argv[1] === SELF && process.argv[2] === "--inspector") {
  await inspectorChild(process.argv[3] ?? "");
}
