/**
 * A real nats-server cluster on loopback, for `stui demo --cluster` and the tests
 * (test/helpers/nats-cluster.ts): three processes (by default), each with its own free client and
 * cluster port, `server_name`, routes to the others and JetStream in a directory of its own under
 * one temp directory. `startNatsCluster()` resolves once JetStream has a meta leader (an account
 * info request is answered). Nodes are stopped, killed and restarted by pid; the current leader of
 * a stream can be found and killed. `cleanup()` (or `await using`) stops every process and removes
 * the temp directory, also after a failed start. Never the system's server on 4222.
 *
 * How a node's process is started and ended is the caller's (`NodeProcesses`): the demo uses
 * children.ts (`childProcesses`), whose sweep on every way out ends them too; the tests their own
 * process handles, which keep the output for assertions.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { startChild, type Child } from "./children.js";

/** How the nodes' processes are run: `P` a running process, `E` what its end resolves with. */
export interface NodeProcesses<P, E> {
  /**
   * Runs `binary ...args` and resolves once it printed `READY_LINE` (on stderr); on a failure it
   * rejects leaving nothing running.
   */
  start(binary: string, args: readonly string[]): Promise<P>;
  /** Whether it has not exited yet. */
  running(process: P): boolean;
  /** SIGKILL, as a crashed host; resolves once it has exited. */
  kill(process: P): Promise<E>;
  /** SIGTERM (SIGKILL after a grace period); resolves once it has exited. */
  stop(process: P): Promise<E>;
}

/** What nats-server prints (on stderr) once it accepts clients. */
export const READY_LINE = /Server is ready/;

export interface ClusterNode<P, E> {
  /** `n1`, `n2`, `n3`: the `server_name`, which stream info reports as `cluster.leader`. */
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly clusterPort: number;
  readonly storeDir: string;
  /** The running process, or `null` while it is down. */
  process(): P | null;
  running(): boolean;
  /** SIGKILL: no shutdown, as a crashed host. `null` if it was never started. */
  kill(): Promise<E | null>;
  /** SIGTERM (SIGKILL after a grace period). `null` if it was never started. */
  stop(): Promise<E | null>;
  /** Starts it again on the same ports and store directory (stopping it first if running). */
  restart(): Promise<void>;
}

export interface NatsCluster<P, E> extends AsyncDisposable {
  readonly nodes: readonly ClusterNode<P, E>[];
  /** Every node's client URL, in node order. */
  readonly urls: readonly string[];
  node(name: string): ClusterNode<P, E>;
  /** Waits until JetStream answers (it has a meta leader) through a node still running. */
  waitForJetStream(timeoutMs?: number): Promise<void>;
  /** The node leading `stream` now (from `$JS.API.STREAM.INFO.<stream>`'s `cluster.leader`). */
  streamLeader(stream: string, timeoutMs?: number): Promise<ClusterNode<P, E>>;
  /** SIGKILLs the node leading `stream`; resolves with it. */
  killStreamLeader(stream: string): Promise<ClusterNode<P, E>>;
  /** Stops every node and removes the temp directory; idempotent. */
  cleanup(): Promise<void>;
}

export interface NatsClusterOptions<P, E> {
  /** The nats-server executable (see `findNatsServer`). */
  readonly binary: string;
  readonly processes: NodeProcesses<P, E>;
  /** @default 3 */
  readonly size?: number;
  /** How long start-up, and each wait for a leader, may take. @default 20000 */
  readonly readyTimeoutMs?: number;
  /** The cluster's `name`. @default "stui" */
  readonly clusterName?: string;
  /** Where the cluster's temp directory is made. @default the system's temp directory */
  readonly parentDir?: string;
}

/** A port the kernel just handed out: free now (a small race with other programs is accepted). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A node's configuration file: its name, ports, JetStream directory and routes to the others. */
function nodeConfig(layout: NodeLayout, clusterName: string, routes: readonly string[]): string {
  return [
    `server_name: ${layout.name}`,
    `listen: 127.0.0.1:${layout.port}`,
    `jetstream { store_dir: ${JSON.stringify(layout.storeDir)}, max_memory_store: 64MB, max_file_store: 1GB }`,
    `cluster { name: ${clusterName}, listen: 127.0.0.1:${layout.clusterPort}, routes: [${routes.join(", ")}] }`,
    "",
  ].join("\n");
}

export async function startNatsCluster<P, E>(options: NatsClusterOptions<P, E>): Promise<NatsCluster<P, E>> {
  const { binary, processes } = options;
  const size = options.size ?? 3;
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  const root = await mkdtemp(path.join(options.parentDir ?? tmpdir(), "stui-nats-cluster-"));
  const nodes: ClusterNode<P, E>[] = [];
  let cleaned = false;

  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    await Promise.all(nodes.map((node) => node.stop()));
    await rm(root, { recursive: true, force: true });
  };

  // A port handed out free can be taken by another program before the node binds it: then the
  // nodes start over on new ports (a few times), instead of the whole cluster failing.
  for (let attempt = 1; ; attempt++) {
    try {
      for (const { layout, routes } of await layOut(root, size)) {
        await writeFile(layout.configFile, nodeConfig(layout, options.clusterName ?? "stui", routes));
        nodes.push(clusterNode(processes, binary, layout));
      }
      // Every start is waited for, so that none is still starting when they are stopped.
      const started = await Promise.allSettled(nodes.map((node) => node.restart()));
      const failed = started.find((result) => result.status === "rejected");
      if (failed !== undefined) throw failed.reason;
      break;
    } catch (error) {
      if (attempt >= PORT_ATTEMPTS || !/address already in use/.test(String(error))) {
        await cleanup();
        throw error;
      }
      await Promise.all(nodes.map((node) => node.stop()));
      await Promise.all(nodes.map((node) => rm(node.storeDir, { recursive: true, force: true })));
      nodes.length = 0;
    }
  }

  const withClient = async <T>(run: (nc: NatsConnection) => Promise<T>): Promise<T> => {
    const servers = nodes.filter((n) => n.running()).map((n) => n.url);
    const nc = await connect({ servers, timeout: 2000, maxReconnectAttempts: 0 });
    try {
      return await run(nc);
    } finally {
      await nc.close();
    }
  };

  const cluster: NatsCluster<P, E> = {
    nodes,
    urls: nodes.map((n) => n.url),
    node(name) {
      const found = nodes.find((n) => n.name === name);
      if (found === undefined) throw new Error(`no cluster node ${name}`);
      return found;
    },
    async waitForJetStream(timeoutMs = readyTimeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let last: unknown = null;
      while (Date.now() < deadline) {
        try {
          await withClient(async (nc) => {
            const jsm = await jetstreamManager(nc, { timeout: 2000 });
            await jsm.getAccountInfo();
          });
          return;
        } catch (error) {
          last = error;
          await sleep(200);
        }
      }
      throw new Error(`JetStream has no meta leader after ${timeoutMs} ms: ${String(last)}`);
    },
    async streamLeader(stream, timeoutMs = readyTimeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let last: unknown = null;
      while (Date.now() < deadline) {
        try {
          const leader = await withClient(async (nc) => {
            const jsm = await jetstreamManager(nc, { timeout: 2000, checkAPI: false });
            return (await jsm.streams.info(stream)).cluster?.leader;
          });
          const node = nodes.find((n) => n.name === leader && n.running());
          if (node !== undefined) return node;
          last = `leader ${leader ?? "none"}`;
        } catch (error) {
          last = error;
        }
        await sleep(200);
      }
      throw new Error(`stream ${stream} has no leader after ${timeoutMs} ms: ${String(last)}`);
    },
    async killStreamLeader(stream) {
      const leader = await cluster.streamLeader(stream);
      await leader.kill();
      return leader;
    },
    cleanup,
    [Symbol.asyncDispose]: cleanup,
  };

  try {
    await cluster.waitForJetStream();
  } catch (error) {
    await cleanup();
    throw error;
  }
  return cluster;
}

/** How many times the nodes are started on new ports when one was taken meanwhile. */
const PORT_ATTEMPTS = 3;

/** Free ports for `size` nodes: each node's layout under `root`, and its routes to the others. */
async function layOut(root: string, size: number): Promise<Array<{ layout: NodeLayout; routes: string[] }>> {
  const ports: Array<{ client: number; cluster: number }> = [];
  for (let i = 0; i < size; i++) ports.push({ client: await freePort(), cluster: await freePort() });
  return ports.map(({ client, cluster }, i) => {
    const name = `n${i + 1}`;
    return {
      layout: {
        name,
        configFile: path.join(root, `${name}.conf`),
        storeDir: path.join(root, name),
        port: client,
        clusterPort: cluster,
      },
      routes: ports.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p.cluster}`),
    };
  });
}

interface NodeLayout {
  readonly name: string;
  readonly configFile: string;
  readonly storeDir: string;
  readonly port: number;
  readonly clusterPort: number;
}

function clusterNode<P, E>(processes: NodeProcesses<P, E>, binary: string, layout: NodeLayout): ClusterNode<P, E> {
  let child: P | null = null;
  const running = (): boolean => child !== null && processes.running(child);
  const node: ClusterNode<P, E> = {
    name: layout.name,
    url: `nats://127.0.0.1:${layout.port}`,
    port: layout.port,
    clusterPort: layout.clusterPort,
    storeDir: layout.storeDir,
    process: () => (running() ? child : null),
    running,
    kill: async () => (child === null ? null : processes.kill(child)),
    stop: async () => (child === null ? null : processes.stop(child)),
    async restart() {
      await node.stop();
      child = await processes.start(binary, ["-c", layout.configFile]);
    },
  };
  return node;
}

/** Nodes as children.ts children: ended by pid, and by its sweep on every way out of the demo. */
export function childProcesses(timeoutMs = 15_000): NodeProcesses<Child, void> {
  const exited = new WeakSet<Child>();
  return {
    async start(binary, args) {
      const child = await startChild(binary, args, READY_LINE, "stderr", timeoutMs);
      void child.exited.then(() => exited.add(child));
      return child;
    },
    running: (child) => !exited.has(child),
    async kill(child) {
      child.kill("SIGKILL");
      await child.exited;
    },
    stop: (child) => child.stop(),
  };
}
