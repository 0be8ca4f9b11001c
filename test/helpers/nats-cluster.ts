/**
 * A real 3-node nats-server cluster for integration tests: three processes on loopback, each with
 * its own free client and cluster port, `server_name`, routes to the two others and JetStream in
 * a temp directory of its own. `startNatsCluster()` resolves once JetStream has a meta leader (an
 * account info request is answered). Nodes are stopped, killed and restarted by pid; the current
 * leader of a stream can be found and killed. `cleanup()` (or `await using`) stops every process
 * and removes every temp directory, also after a failed start. Never the system's server on 4222.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { findNatsServer } from "../../src/cli/children.js";
import { spawnProcess, type Exit, type ProcessHandle } from "./processes.js";

export interface ClusterNode {
  /** `n1`, `n2`, `n3`: the `server_name`, which stream info reports as `cluster.leader`. */
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly clusterPort: number;
  readonly storeDir: string;
  /** The running process, or `null` while it is down. */
  process(): ProcessHandle | null;
  running(): boolean;
  /** SIGKILL: no shutdown, as a crashed host. */
  kill(): Promise<Exit | null>;
  /** SIGTERM (SIGKILL after a grace period). */
  stop(): Promise<Exit | null>;
  /** Starts it again on the same ports and store directory (stopping it first if running). */
  restart(): Promise<void>;
}

export interface NatsCluster extends AsyncDisposable {
  readonly nodes: readonly ClusterNode[];
  /** Every node's client URL, in node order. */
  readonly urls: readonly string[];
  node(name: string): ClusterNode;
  /** Waits until JetStream answers (it has a meta leader) through a node still running. */
  waitForJetStream(timeoutMs?: number): Promise<void>;
  /** The node leading `stream` now (from `$JS.API.STREAM.INFO.<stream>`'s `cluster.leader`). */
  streamLeader(stream: string, timeoutMs?: number): Promise<ClusterNode>;
  /** SIGKILLs the node leading `stream`; resolves with it. */
  killStreamLeader(stream: string): Promise<ClusterNode>;
  /** Stops every node and removes the temp directories; idempotent. */
  cleanup(): Promise<void>;
}

export interface NatsClusterOptions {
  /** @default 3 */
  readonly size?: number;
  /** @default 20000 */
  readonly readyTimeoutMs?: number;
}

const READY = /Server is ready/;

/** A port the kernel just handed out: free now (a small race with other programs is accepted). */
async function freePort(): Promise<number> {
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

export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const size = options.size ?? 3;
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  const binary = findNatsServer();
  if (binary === null) throw new Error("nats-server not found on the PATH, in /usr/local/sbin or /usr/sbin");
  const root = await mkdtemp(path.join(tmpdir(), "stui-nats-cluster-"));
  const nodes: ClusterNode[] = [];
  let cleaned = false;

  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    await Promise.all(nodes.map((node) => node.stop()));
    await rm(root, { recursive: true, force: true });
  };

  try {
    const ports: Array<{ client: number; cluster: number }> = [];
    for (let i = 0; i < size; i++) ports.push({ client: await freePort(), cluster: await freePort() });
    for (const [i, { client, cluster }] of ports.entries()) {
      const name = `n${i + 1}`;
      const storeDir = path.join(root, name);
      const configFile = path.join(root, `${name}.conf`);
      const routes = ports
        .filter((_, j) => j !== i)
        .map((p) => `nats-route://127.0.0.1:${p.cluster}`)
        .join(", ");
      await writeFile(
        configFile,
        [
          `server_name: ${name}`,
          `listen: 127.0.0.1:${client}`,
          `jetstream { store_dir: ${JSON.stringify(storeDir)}, max_memory_store: 64MB, max_file_store: 1GB }`,
          `cluster { name: stui-test, listen: 127.0.0.1:${cluster}, routes: [${routes}] }`,
          "",
        ].join("\n"),
      );
      nodes.push(clusterNode(binary, name, configFile, storeDir, client, cluster));
    }
    await Promise.all(nodes.map((node) => node.restart()));
  } catch (error) {
    await cleanup();
    throw error;
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

  const cluster: NatsCluster = {
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

function clusterNode(
  binary: string,
  name: string,
  configFile: string,
  storeDir: string,
  port: number,
  clusterPort: number,
): ClusterNode {
  let child: ProcessHandle | null = null;
  const running = (): boolean => child !== null && child.exit() === undefined;
  const node: ClusterNode = {
    name,
    url: `nats://127.0.0.1:${port}`,
    port,
    clusterPort,
    storeDir,
    process: () => (running() ? child : null),
    running,
    async kill() {
      if (child === null) return null;
      child.signal("SIGKILL");
      return child.exited;
    },
    async stop() {
      if (child === null) return null;
      return child.stop();
    },
    async restart() {
      await node.stop();
      const started = spawnProcess(binary, ["-c", configFile], { linesFrom: "stderr" });
      child = started;
      try {
        await started.waitForLine(READY);
      } catch (error) {
        await started.stop();
        throw error;
      }
    },
  };
  return node;
}
