/**
 * `stui demo`: the whole product on one machine. Three simulated images, a private nats-server
 * (unless NATS_URL names one), the service, and a live view of statuses and events. Keys 1, 2, 3
 * kill a simulated image, or bring it back if it is down, so you watch Reconnecting → Connected;
 * `s` creates a session; `q` quits and cleans everything up.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { FileSessionStore } from "../actors/file-session-store.js";
import type { Logger } from "../logger.js";
import { StuiService } from "../service.js";
import { StuiClient, type EventFeed } from "../client.js";
import type { StuiEvent } from "../protocol/index.js";
import { onPath, startChild, type Child } from "./children.js";
import { describeEvent } from "./client-commands.js";
import { table } from "./table.js";

const USAGE = `usage: stui demo

Starts three simulated images (dev, staging, build), a private nats-server on a free port (or uses
the one NATS_URL names), and the service; then shows the images' statuses and the events live.

keys: 1 2 3  kill that image, or start it again if it is down
      s      create a session on a connected image
      q      quit (Ctrl-C too)
Without a terminal, the same as lines on stdin: "kill 1", "start 1", "session", "quit".`;

const STUI_BIN = fileURLToPath(new URL("../../../bin/stui.js", import.meta.url));
const IMAGES = ["dev", "staging", "build"] as const;
const INSTALL_HINT =
  "stui demo needs a NATS server: install one with `sudo apt-get install -y nats-server` (Debian/Ubuntu),\n" +
  "or set NATS_URL to a server that runs with JetStream enabled.";

interface Sim {
  readonly id: string;
  endpoint: string;
  child: Child | null;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { help: { type: "boolean", short: "h" } }, strict: true });
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  const dir = await mkdtemp(path.join(tmpdir(), "stui-demo-"));
  const cleanups: Array<() => Promise<void>> = [() => rm(dir, { recursive: true, force: true })];
  const cleanup = async (): Promise<void> => {
    for (const step of cleanups.splice(0).reverse()) await step().catch(() => undefined);
  };
  try {
    const natsUrl = process.env["NATS_URL"] ?? (await privateNats(dir, cleanups));
    if (natsUrl === null) {
      console.error(INSTALL_HINT);
      return 1;
    }
    const sims: Sim[] = [];
    for (const id of IMAGES) {
      const child = await startSim(id, "tcp://127.0.0.1:*");
      sims.push({ id, endpoint: child.ready[1] ?? "", child });
    }
    cleanups.push(async () => {
      for (const sim of sims) await sim.child?.stop();
    });
    const log: string[] = [];
    const logger: Logger = {
      error: (_obj, msg) => void log.push(`error: ${msg}`),
      warn: (_obj, msg) => void log.push(`warn: ${msg}`),
      info: () => undefined,
      debug: () => undefined,
    };
    const startedAt = new Date();
    const store = await FileSessionStore.open({ dir: path.join(dir, "store"), logger });
    const service = await StuiService.start({
      instanceId: "demo",
      nats: { servers: natsUrl },
      store,
      images: sims.map((s) => ({ id: s.id, address: s.endpoint, name: `${s.id} (simulated)` })),
      policy: { connection: { backoffBaseMs: 100, backoffCapMs: 1000, maxRestarts: 1000 } },
      logger,
    });
    cleanups.push(async () => void (await service.stop(2000)));
    const client = await StuiClient.connect({ servers: natsUrl });
    cleanups.push(() => client.close());
    // From the stream, so that the view starts with the service's first events.
    const replay = await client.replay({ since: startedAt });
    const feed = {
      close: () => replay.close(),
      async *[Symbol.asyncIterator]() {
        for await (const r of replay) yield r.event;
      },
    };
    await liveView(service, client, feed, sims, natsUrl);
    return 0;
  } catch (error) {
    console.error(`stui demo: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await cleanup();
  }
}

/** A nats-server of the demo's own on a free port, or `null` when none is installed. */
async function privateNats(dir: string, cleanups: Array<() => Promise<void>>): Promise<string | null> {
  const binary = onPath("nats-server");
  if (binary === null) return null;
  const server = await startChild(
    binary,
    ["-a", "127.0.0.1", "-p", "-1", "-js", "-sd", path.join(dir, "jetstream")],
    /Listening for client connections on [^\s]+:(\d+)/,
    "stderr",
  );
  cleanups.push(() => server.stop());
  return `nats://127.0.0.1:${server.ready[1] ?? ""}`;
}

const startSim = (id: string, bind: string): Promise<Child> =>
  startChild(process.execPath, [STUI_BIN, "image-sim", "--bind", bind, "--name", id], /^ready (\S+)$/, "stdout");

async function liveView(
  service: StuiService,
  client: StuiClient,
  feed: EventFeed<StuiEvent>,
  sims: Sim[],
  natsUrl: string,
): Promise<void> {
  const tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const events: string[] = [];
  void (async () => {
    for await (const event of feed) {
      events.push(describeEvent(event));
      if (events.length > 12) events.shift();
      if (!tty) console.log(events.at(-1));
    }
  })();
  let notice = "";
  const draw = (): void => {
    if (!tty) return;
    const images = service.manager.imageStatuses();
    const rows = images.map((i, n) => [
      String(n + 1),
      i.image_id,
      i.status,
      i.connection_health,
      i.rtt_ms === null ? "-" : i.rtt_ms.toFixed(1),
      String(i.session_count),
      i.address,
    ]);
    process.stdout.write(
      "\x1b[2J\x1b[H" +
        `stui demo — NATS ${natsUrl}, service instance "demo"\n\n` +
        table(["KEY", "IMAGE", "STATUS", "HEALTH", "RTT ms", "SESSIONS", "ADDRESS"], rows) +
        `\n\nevents (stui.events.>):\n${events.map((e) => `  ${e}`).join("\n")}\n\n` +
        `keys: 1 2 3 kill / restart an image · s new session · q quit${notice === "" ? "" : `\n${notice}`}\n`,
    );
  };
  const act = async (command: string): Promise<boolean> => {
    const [verb, arg] = command.trim().split(/\s+/);
    const index = Number(verb === "kill" || verb === "start" ? arg : verb) - 1;
    const sim = sims[index];
    if (verb === "q" || verb === "quit") return false;
    if (verb === "s" || verb === "session") {
      const target = service.manager.imageStatuses().find((i) => i.status === "Connected");
      const answer =
        target === undefined ? null : await client.createSession({ image_id: target.image_id, client_id: "demo-user" });
      notice =
        answer === null
          ? "no image is connected"
          : answer.type === "SessionCreated"
            ? `created a session on ${answer.session.image_id}`
            : answer.message;
    } else if (sim !== undefined) {
      if (sim.child !== null && verb !== "start") {
        sim.child.kill("SIGKILL");
        sim.child = null;
        notice = `killed ${sim.id}: watch it go Reconnecting`;
      } else if (sim.child === null && verb !== "kill") {
        sim.child = await startSim(sim.id, sim.endpoint);
        notice = `started ${sim.id} again on ${sim.endpoint}: watch it come back Connected`;
      }
    }
    if (!tty && notice !== "") console.log(notice);
    draw();
    return true;
  };
  await new Promise<void>((resolve) => {
    const timer = setInterval(draw, 500);
    const done = (): void => {
      clearInterval(timer);
      void feed.close();
      if (tty) process.stdin.setRawMode(false);
      process.stdin.pause();
      resolve();
    };
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
    if (tty) {
      process.stdin.setRawMode(true);
      process.stdin.setEncoding("utf8");
      process.stdin.on("data", (key: string) => {
        if (key === "\u0003") return done();
        void act(key).then((goOn) => goOn || done());
      });
    } else {
      console.log(`stui demo: images ${sims.map((s) => `${s.id}=${s.endpoint}`).join(", ")}; NATS ${natsUrl}`);
      console.log('stui demo: ready (lines: "kill 1", "start 1", "session", "quit")');
      createInterface({ input: process.stdin }).on("line", (line) => {
        void act(line).then((goOn) => goOn || done());
      });
    }
    draw();
  });
}
