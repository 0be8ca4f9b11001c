/**
 * `npm run bench -- cluster`: several `stui serve` instances sharing images through KV leases.
 *
 * 1. Takeover: a real 3-node nats-server cluster on loopback, three `stui serve` child processes
 *    (`store.kind: kv` R3, `cluster.lease_ttl_ms`), one `stui image-sim` per image. The owner of an
 *    image is killed by pid (SIGKILL, then SIGTERM in a second series); the figure is the time from
 *    the signal until the image's `Connected` status event from another instance arrives on
 *    `stui.events.image.<id>.status`. The killed instance is started again between trials.
 * 2. and 3. (bench/cluster-store.ts): `CreateSession` with the KV store against the file store,
 *    and loading 100 000 sessions from KV against the file store's load of the same records.
 * 4. API latency through a non-owner (forwarded to the owner) against the owner itself, on the
 *    per-instance subject `stui.instance.<id>.request`; "forwarding not available" while no
 *    instance answers there.
 *
 * About two and a half minutes. `STUI_BENCH_CLUSTER_TRIALS` (10), `_TTL_MS` (3000), `_FORWARD_N`
 * (200), `_CREATE_N` (500), `_LOAD_N` (100 000) and `_PUT_N` (5 000) scale it.
 */
import { performance } from "node:perf_hooks";
import { NoRespondersError, RequestError, TimeoutError, type NatsConnection } from "@nats-io/nats-core";
import { StuiClient } from "../src/client.js";
import { decodeResponse } from "../src/protocol/index.js";
import { startImageSim, type ImageSimHandle } from "../test/helpers/image-sim.js";
import { startNatsCluster } from "../test/helpers/nats-cluster.js";
import { stopAllProcesses } from "../test/helpers/processes.js";
import { storeFigures } from "./cluster-store.js";
import { Cleanups, ServeInstance, settledOwners, sleep } from "./cluster-support.js";
import { fmt, percentile, printTable, SUMMARY_HEADER, summaryRow } from "./harness.js";
import { EventWatch, LATENCY_HEADER, latencyRow, ratio, roundRobin, statusIs, type Call } from "./nats-support.js";
import { makeTempRoot, removeDir } from "./sessions-support.js";

const TRIALS = Number(process.env["STUI_BENCH_CLUSTER_TRIALS"] ?? 10);
const TTL_MS = Number(process.env["STUI_BENCH_CLUSTER_TTL_MS"] ?? 3000);
const FORWARD_N = Number(process.env["STUI_BENCH_CLUSTER_FORWARD_N"] ?? 200);
const INSTANCE_IDS = ["a", "b", "c"] as const;
const IMAGES = ["i0", "i1", "i2"] as const;

interface Takeovers {
  /** Signal → the trial's image Connected on another instance (ms). */
  readonly image: number[];
  /** Signal → every image the killed instance owned Connected elsewhere (ms). */
  readonly all: number[];
  /** Spawn → "listening" of the instance started again after the trial (ms). */
  readonly restart: number[];
  /** How many images the killed instance owned, per trial. */
  readonly owned: number[];
  /** Exits other than the signal's expected one (SIGKILL: killed; SIGTERM: code 0). */
  readonly oddExits: string[];
}

/**
 * `TRIALS` times: the owner of one image (each image in turn) gets `signal`; waits until each of
 * its images is Connected on another instance, then starts it again.
 */
async function takeovers(
  signal: "SIGKILL" | "SIGTERM",
  instances: readonly ServeInstance[],
  watch: EventWatch,
): Promise<Takeovers> {
  const out: Takeovers = { image: [], all: [], restart: [], owned: [], oddExits: [] };
  for (let trial = 0; trial < TRIALS; trial += 1) {
    const owners = await settledOwners(instances, IMAGES);
    const image = IMAGES[trial % IMAGES.length] ?? "i0";
    const victim = owners.get(image);
    if (victim === undefined) throw new Error(`no owner of ${image}`);
    const owned = IMAGES.filter((id) => owners.get(id) === victim);
    // Renewals come every third of the TTL: a kill at a random moment of that period, not always
    // just after one, samples the whole range a crash can fall into.
    await sleep(Math.random() * (TTL_MS / 3));
    const elsewhere = owned.map((id) =>
      watch.next((e) => statusIs(id, "Connected")(e) && e.source !== victim.source, TTL_MS + 30_000),
    );
    const t0 = performance.now();
    victim.signal(signal);
    const arrivals = await Promise.all(elsewhere);
    out.image.push((arrivals[owned.indexOf(image)]?.at ?? Number.NaN) - t0);
    out.all.push(Math.max(...arrivals.map((a) => a.at)) - t0);
    out.owned.push(owned.length);
    const exit = await victim.exited();
    const expected = signal === "SIGKILL" ? exit?.signal === "SIGKILL" : exit?.code === 0;
    if (!expected) out.oddExits.push(`${victim.id}: ${JSON.stringify(exit)}`);
    process.stdout.write(".");
    out.restart.push(await victim.start());
  }
  return out;
}

function printTakeovers(kill: Takeovers, term: Takeovers): void {
  console.log(
    `\n\ncluster: takeover of an image whose owner is killed, ${TRIALS} trials each, lease_ttl_ms ${TTL_MS} ` +
      `(renewed every ${fmt(TTL_MS / 3, 0)} ms); signal sent → its Connected status event from another instance`,
  );
  const owned = (t: Takeovers): string => `${fmt(t.owned.reduce((a, b) => a + b, 0) / t.owned.length, 1)} images`;
  printTable([
    SUMMARY_HEADER,
    summaryRow("SIGKILL of the owner → the image Connected elsewhere", kill.image, 0),
    summaryRow(`SIGKILL: every image it owned (${owned(kill)} on average)`, kill.all, 0),
    summaryRow("SIGTERM of the owner → the image Connected elsewhere", term.image, 0),
    summaryRow(`SIGTERM: every image it owned (${owned(term)} on average)`, term.all, 0),
    summaryRow("restart of the killed instance: spawn → listening", [...kill.restart, ...term.restart], 0),
  ]);
  const share = (p: number): string => `${fmt(percentile(kill.image, p) / TTL_MS, 2)}x`;
  console.log(
    `SIGKILL takeover / TTL: p50 ${share(50)}, p99 ${share(99)}, max ${fmt(Math.max(...kill.image) / TTL_MS, 2)}x`,
  );
  const odd = [...kill.oddExits, ...term.oddExits];
  if (odd.length > 0) console.log(`(unexpected exits: ${odd.join("; ")})`);
}

// Forwarding ---------------------------------------------------------------------------------

/** The per-instance request subject (the tagged `Request`, as `stui.api.request` takes it). */
const instanceSubject = (instance: ServeInstance): string => `stui.instance.${instance.id}.request`;

/** Whether `subject` has a responder: one probe request; no responders or no answer is `false`. */
async function answers(nc: NatsConnection, subject: string, body: string): Promise<boolean> {
  try {
    await nc.request(subject, body, { timeout: 2000 });
    return true;
  } catch (error) {
    if (error instanceof RequestError && error.isNoResponders()) return false;
    if (error instanceof NoRespondersError || error instanceof TimeoutError) return false;
    throw error;
  }
}

/**
 * API latency through a non-owner (which forwards owner-bound requests to the owner) against the
 * owner answering itself: `GetImageConnectionStatus` and `Evaluate` on the per-instance subjects,
 * `FORWARD_N` of each, taking turns. Prints "forwarding not available" while the service does not
 * answer on `stui.instance.<id>.request`.
 */
async function forwardedLatency(nc: NatsConnection, instances: readonly ServeInstance[]): Promise<void> {
  const owners = await settledOwners(instances, IMAGES);
  const image = IMAGES[0];
  const owner = owners.get(image);
  const other = instances.find((i) => i !== owner);
  if (owner === undefined || other === undefined) throw new Error(`no owner and non-owner of ${image}`);
  const status = JSON.stringify({ GetImageConnectionStatus: { image_id: image } });
  const evaluate = JSON.stringify({ Evaluate: { client_id: "bench-forward", image_id: image, code: "3 + 4" } });
  console.log(
    `\ncluster: API latency through a non-owner (${other.id}, forwarding) vs the owner (${owner.id}) of ${image}, ` +
      `raw nc.request on stui.instance.<id>.request, ${FORWARD_N} sequential each, taking turns`,
  );
  const silent = [];
  for (const instance of [owner, other]) {
    if (!(await answers(nc, instanceSubject(instance), status))) silent.push(instanceSubject(instance));
  }
  if (silent.length > 0) {
    console.log(`forwarding not available (no responders on ${silent.join(", ")})`);
    return;
  }
  const errors = new Map<string, number>();
  const call =
    (instance: ServeInstance, body: string): Call =>
    async () => {
      const decoded = decodeResponse((await nc.request(instanceSubject(instance), body, { timeout: 10_000 })).data);
      const kind = !decoded.ok ? "malformed" : decoded.value.type === "Error" ? decoded.value.code : null;
      const key = `${kind ?? ""} from ${instance.id}`;
      if (kind !== null) errors.set(key, (errors.get(key) ?? 0) + 1);
    };
  const calls = [call(owner, status), call(other, status), call(owner, evaluate), call(other, evaluate)];
  await roundRobin(calls, 20); // warm-up
  errors.clear();
  const [ownStatus = [], fwdStatus = [], ownEval = [], fwdEval = []] = await roundRobin(calls, FORWARD_N);
  printTable([
    LATENCY_HEADER,
    latencyRow("GetImageConnectionStatus, the owner (baseline)", ownStatus, "µs"),
    latencyRow("GetImageConnectionStatus, a non-owner", fwdStatus, "µs"),
    latencyRow("Evaluate 3 + 4, the owner (baseline)", ownEval, "µs"),
    latencyRow("Evaluate 3 + 4, a non-owner", fwdEval, "µs"),
  ]);
  console.log(
    `p50 non-owner / owner: GetImageConnectionStatus ${ratio(fwdStatus, ownStatus)}, Evaluate ${ratio(fwdEval, ownEval)}`,
  );
  if (errors.size > 0) console.log(`(answered Error: ${[...errors].map(([k, v]) => `${v} ${k}`).join(", ")})`);
}

// The run ------------------------------------------------------------------------------------

export async function run(): Promise<void> {
  const cleanups = new Cleanups();
  // Ctrl-C reaches the whole process group more than once: clean up once, then exit.
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    void cleanups
      .run()
      .then(stopAllProcesses)
      .finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const started = performance.now();
  try {
    const root = await makeTempRoot("cluster");
    cleanups.add(() => removeDir(root));
    const cluster = await startNatsCluster();
    cleanups.add(() => cluster.cleanup());
    const images: { id: string; sim: ImageSimHandle }[] = [];
    for (const id of IMAGES) {
      const sim = await startImageSim({ name: id });
      cleanups.add(async () => void (await sim.stop()));
      images.push({ id, sim });
    }
    const instances = INSTANCE_IDS.map(
      (id) => new ServeInstance({ id, dir: root, natsUrls: cluster.urls, ttlMs: TTL_MS, images }),
    );
    for (const instance of instances) {
      cleanups.add(() => instance.stop());
      await instance.start();
    }
    const client = await StuiClient.connect({ servers: [...cluster.urls], timeoutMs: 10_000 });
    cleanups.add(() => client.close());
    const watch = new EventWatch(client.events({ subject: "stui.events.image.*.status" }));
    await client.nc.flush();
    const owners = await settledOwners(instances, IMAGES);
    console.log(
      `cluster: nats-server cluster ${cluster.urls.join(", ")}; instances ${instances.map((i) => `${i.id} (pid ${i.pid})`).join(", ")}; ` +
        `images ${IMAGES.map((id) => `${id} on ${owners.get(id)?.id ?? "?"}`).join(", ")}; temp dir ${root}`,
    );

    const kill = await takeovers("SIGKILL", instances, watch);
    const term = await takeovers("SIGTERM", instances, watch);
    printTakeovers(kill, term);

    await forwardedLatency(client.nc, instances);

    // The store figures run without the instances: their lease renewals would share the cluster.
    await Promise.all(instances.map((i) => i.stop()));
    await storeFigures(root, cluster.urls, cleanups);
    console.log(`\n(the cluster bench took ${fmt((performance.now() - started) / 1000, 0)} s)`);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await cleanups.run();
    await stopAllProcesses();
  }
}
