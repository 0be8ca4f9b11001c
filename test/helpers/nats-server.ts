/**
 * A real `nats-server` for integration tests: a free port, JetStream in a temp directory, stopped
 * by pid. `restart()` brings it back on the same port and directory, as an operator restarting
 * the server would. Never the system's server on 4222.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { findNatsServer } from "../../src/cli/children.js";
import { spawnProcess, type ProcessHandle } from "./processes.js";

export interface NatsServerOptions {
  /** @default true */
  readonly jetstream?: boolean;
  /** More flags, e.g. `["--user", "u", "--pass", "p"]` or `["-c", file]`. */
  readonly extraArgs?: readonly string[];
}

export interface NatsServerHandle extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** The running process (a new one after each restart). */
  process(): ProcessHandle;
  /** SIGTERM (SIGKILL after a grace period), then the same server again on the same port. */
  restart(options?: { downMs?: number }): Promise<void>;
  /** Stops it (if running) and removes its store directory. */
  stop(): Promise<void>;
}

const READY = /Server is ready/;
const LISTENING = /Listening for client connections on [^\s]+:(\d+)/;

/** nats-server on the PATH, or where Debian installs it (/usr/sbin): see `findNatsServer`. */
function natsServerBinary(): string {
  const binary = findNatsServer();
  if (binary === null)
    throw new Error("nats-server not found on the PATH, in /usr/local/sbin or /usr/sbin: apt-get install nats-server");
  return binary;
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const binary = natsServerBinary();
  const storeDir = await mkdtemp(path.join(tmpdir(), "stui-nats-"));
  const base = [...((options.jetstream ?? true) ? ["-js", "-sd", storeDir] : []), ...(options.extraArgs ?? [])];
  const launch = async (port: number): Promise<{ child: ProcessHandle; port: number }> => {
    const child = spawnProcess(binary, ["-a", "127.0.0.1", "-p", String(port), ...base], {
      linesFrom: "stderr",
    });
    try {
      const [, bound = ""] = await child.waitForLine(LISTENING);
      await child.waitForLine(READY);
      return { child, port: Number(bound) };
    } catch (error) {
      await child.stop();
      throw error;
    }
  };
  let { child, port } = await launch(-1);
  const handle: NatsServerHandle = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    process: () => child,
    async restart({ downMs = 0 } = {}) {
      await child.stop();
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      ({ child, port } = await launch(port));
    },
    async stop() {
      await child.stop();
      await rm(storeDir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]: () => handle.stop(),
  };
  return handle;
}
