/**
 * `stui demo`: the whole product on one machine. Three simulated images, a private nats-server
 * (unless NATS_URL names one), the service, and in a terminal the panel (`stui panel`'s, reading
 * the service over NATS) with the demo's own keys on the selected image's sim (demo-keys.ts): K
 * kills it or starts it again (Reconnecting → Connected), P pauses or resumes it (Reconnecting
 * once its heartbeats are overdue), S slows its replies (health Warning, Critical, back to
 * Healthy); `q` quits and cleans everything up. Without a terminal, the same as lines on stdin,
 * and every event and notice printed as a line.
 *
 * `stui demo --cluster` (demo-cluster.ts) runs three `stui serve` instances on a 3-node NATS
 * cluster instead. Both share their life and ways out (demo-run.ts): every way out stops every
 * child process by its pid and removes the temp directory, also during start-up.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { FileSessionStore } from "../adapters/file-store/store.js";
import type { Logger } from "../logger.js";
import { StuiService } from "../service.js";
import { StuiClient, type EventFeed, type ReplayedEvent } from "../client.js";
import { findNatsServer, startChild } from "./children.js";
import { describeEvent } from "./client-commands.js";
import { startClusterDemo } from "./demo-cluster.js";
import { DEMO_POLICY, demoPolicy, SIM_LINES, SLOW_STEPS, simKeys, simLine } from "./demo-keys.js";
import { demoInspector, runDemo, type Cleanups, type DemoContext, type Exits } from "./demo-run.js";
import { inspectFlag, parsePort } from "./inspect-flag.js";
import { demoCurve, demoKeys, describeError, isQuit, openScreen, startedSim, type Sim } from "./demo-view.js";
import { wantsColor } from "./panel/command.js";
import { runPanel } from "./panel/run.js";

const slowSteps = SLOW_STEPS.filter((s) => s.delayMs > 0)
  .map((s) => `${s.delayMs} ms (${s.health})`)
  .join(", ");
const USAGE = `usage: stui demo [--cluster] [--inspect [PORT]]

Starts three simulated images (dev, staging, build), a private nats-server on a free port (or uses
the one NATS_URL names), and the service; then opens the panel (as \`stui panel\` does, over NATS)
on the images' statuses and the events, live. NO_COLOR: no colors.

The panel's keys (? lists them), and the demo's own, on the selected image's simulated image:
      K      kill it (SIGKILL), or start it again on its endpoint if it is down:
             Reconnecting, then Connected
      P      pause it (SIGSTOP), or resume it (SIGCONT): Reconnecting after
             ${demoPolicy.heartbeatTimeoutMs} ms without heartbeats, then Connected
      S      slow its replies: ${slowSteps}, then none (Healthy)
      q      quit (Ctrl-C too)
Without a terminal, lines on stdin instead (n is 1, 2 or 3 for dev, staging, build): "kill n",
"start n", "n" (kill or start), "pause n", "resume n", "slow n", "session" (create a session on a
connected image), "quit"; every event and notice is printed as a line.

--inspect [PORT]: the web inspector of the demo's instances too, on 127.0.0.1:PORT (default a free
port); its URL (with its token) is printed first: "inspector: http://127.0.0.1:…/?token=…".

--cluster: three nats-servers in a cluster (JetStream, free loopback ports), three \`stui serve\`
instances a, b and c sharing six simulated images (store kind kv with 3 replicas, leases with a
3 s TTL), and a view of each image's status and owner. NATS_URL is not used.

keys: a b c  kill that instance (SIGKILL): its images move to the others once its leases lapse;
             again: start it again (it takes its share of the images back)
      q      quit (Ctrl-C too)
Without a terminal: "kill a", "start a", "quit".

Every way out stops every process it started and removes its temp directory: q or the end of
standard input (exit 0), SIGINT, SIGTERM or SIGHUP (exit 128 + the signal's number).
nats-server is looked for on the PATH, then in /usr/local/sbin and /usr/sbin (STUI_NATS_SERVER
names another).`;

const IMAGES = ["dev", "staging", "build"] as const;
const INSTALL_HINT =
  "stui demo needs a NATS server: install one with `sudo apt-get install -y nats-server` (Debian/Ubuntu),\n" +
  "or set NATS_URL to a server that runs with JetStream enabled.";
const CLUSTER_INSTALL_HINT =
  "stui demo --cluster needs nats-server: install it with `sudo apt-get install -y nats-server` (Debian/Ubuntu),\n" +
  "or name it with STUI_NATS_SERVER=/path/to/nats-server.";

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: inspectFlag(argv),
    options: { help: { type: "boolean", short: "h" }, cluster: { type: "boolean" }, inspect: { type: "string" } },
    strict: true,
  });
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  const inspectPort = values.inspect === undefined ? null : parsePort(values.inspect, "--inspect");
  return values.cluster === true
    ? runDemo(startClusterDemo, CLUSTER_INSTALL_HINT, inspectPort)
    : runDemo(start, INSTALL_HINT, inspectPort);
}

/** Starts everything and the view; resolves once the view is up (or there is no nats-server). */
async function start(context: DemoContext): Promise<"running" | "no nats-server"> {
  const { dir, cleanups, exits, tty } = context;
  const nats = process.env["NATS_URL"] === undefined ? await privateNats(dir, cleanups) : null;
  const natsUrl = process.env["NATS_URL"] ?? nats?.url;
  if (natsUrl === undefined) return "no nats-server";
  const sims: Sim[] = [];
  await cleanups.add(async () => {
    for (const sim of sims) if (sim.state.kind === "up") await sim.state.child.stop();
  });
  const keys = await demoKeys(dir);
  for (const id of IMAGES) sims.push(await startedSim(id, keys));
  const log: string[] = [];
  const logger: Logger = {
    error: (_obj, msg) => void log.push(`error: ${msg}`),
    warn: (_obj, msg) => void log.push(`warn: ${msg}`),
    info: () => undefined,
    debug: () => undefined,
  };
  const startedAt = new Date();
  const store = await FileSessionStore.open({ dir: path.join(dir, "store"), logger });
  await cleanups.add(() => store.close());
  const service = await StuiService.start({
    instanceId: "demo",
    nats: { servers: natsUrl },
    store,
    images: sims.map((s) => ({ id: s.id, address: s.endpoint, name: `${s.id} (simulated)`, curve: demoCurve(keys) })),
    policy: { connection: DEMO_POLICY },
    logger,
  });
  await cleanups.add(async () => void (await service.stop(2000)));
  const client = await StuiClient.connect({ servers: natsUrl });
  await cleanups.add(() => client.close());
  await demoInspector(context, client.nc, logger);
  if (exits.stopping()) return "running";
  if (tty) {
    await openPanel(client, natsUrl, sims, exits, cleanups);
    return "running";
  }
  // From the stream, so that the lines start with the service's first events.
  const replay = await client.replay({ since: startedAt });
  await cleanups.add(() => replay.close());
  if (exits.stopping()) return "running";
  const named = [
    ...(nats === null ? [] : [`nats-server=${nats.pid}`]),
    ...sims.flatMap((s) => (s.state.kind === "up" ? [`${s.id}=${s.state.child.pid}`] : [])),
  ];
  console.log(`stui demo: images ${sims.map((s) => `${s.id}=${s.endpoint}`).join(", ")}; NATS ${natsUrl}`);
  console.log(`stui demo: pids ${named.join(" ")}; temp dir ${dir}`);
  const view = lineView({ service, client, events: replay, sims, quit: () => exits.stop("quit") });
  await cleanups.add(() => Promise.resolve(view.close()));
  exits.onInput(view.input);
  return "running";
}

/**
 * The panel (`stui panel`'s, over NATS) with the demo's keys on the selected image; leaving it
 * (`q`, Ctrl-C) is the demo's `quit`.
 */
async function openPanel(
  client: StuiClient,
  natsUrl: string,
  sims: readonly Sim[],
  exits: Exits,
  cleanups: Cleanups,
): Promise<void> {
  const ended = new AbortController();
  // Any way out (a signal too) takes the panel down first, restoring the terminal.
  await cleanups.add(() => Promise.resolve(ended.abort()));
  const panel = runPanel({
    signal: ended.signal,
    client,
    server: natsUrl,
    color: wantsColor(false, process.env),
    clientId: "demo-user",
    title: "stui demo",
    extraKeys: simKeys(sims),
  });
  void panel.then(
    () => exits.stop("quit"),
    (error: unknown) => {
      console.error(`stui demo: the panel failed: ${describeError(error)}`);
      exits.stop("view failed");
    },
  );
}

/** A nats-server of the demo's own on a free port, or `null` when none is installed. */
async function privateNats(dir: string, cleanups: Cleanups): Promise<{ url: string; pid: number } | null> {
  const binary = findNatsServer();
  if (binary === null) return null;
  const server = await startChild(
    binary,
    ["-a", "127.0.0.1", "-p", "-1", "-js", "-sd", path.join(dir, "jetstream")],
    /Listening for client connections on [^\s]+:(\d+)/,
    "stderr",
  );
  await cleanups.add(() => server.stop());
  return { url: `nats://127.0.0.1:${server.ready[1] ?? ""}`, pid: server.pid };
}

// Without a terminal ---------------------------------------------------------------------------

interface LineViewOptions {
  readonly service: StuiService;
  readonly client: StuiClient;
  readonly events: EventFeed<ReplayedEvent>;
  readonly sims: readonly Sim[];
  readonly quit: () => void;
}

/** Prints every event and notice as a line, and acts on input lines. */
function lineView(o: LineViewOptions): { input: (text: string) => void; close: () => void } {
  const createSession = async (): Promise<void> => {
    const target = o.service.manager.imageStatuses().find((i) => i.status === "Connected");
    if (target === undefined) return screen.say("no image is connected");
    const answer = await o.client.createSession({ image_id: target.image_id, client_id: "demo-user" });
    screen.say(answer.type === "SessionCreated" ? `created a session on ${answer.session.image_id}` : answer.message);
  };

  const act = async (command: string): Promise<void> => {
    const [verb = ""] = command.trim().split(/\s+/);
    if (isQuit(verb)) return o.quit();
    if (verb === "s" || verb === "session") return createSession();
    const done = simLine(o.sims, command);
    if (done !== null) screen.say(await done);
  };

  const screen = openScreen({ tty: false, act, commands: `${SIM_LINES}, "session", "quit"` });
  void (async () => {
    for await (const replayed of o.events) screen.log(describeEvent(replayed.event));
  })().catch(() => undefined);
  return {
    input: screen.input,
    close: () => {
      screen.close();
      void o.events.close();
    },
  };
}
