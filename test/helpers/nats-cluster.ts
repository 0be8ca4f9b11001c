/**
 * A real 3-node nats-server cluster for integration tests: three processes on loopback, each with
 * its own free client and cluster port, `server_name`, routes to the two others and JetStream in
 * a temp directory of its own. `startNatsCluster()` resolves once JetStream has a meta leader (an
 * account info request is answered). Nodes are stopped, killed and restarted by pid; the current
 * leader of a stream can be found and killed. `cleanup()` (or `await using`) stops every process
 * and removes every temp directory, also after a failed start. Never the system's server on 4222.
 *
 * The cluster itself is src/cli/nats-cluster.ts (which `stui demo --cluster` runs too); here its
 * nodes are test process handles, so a test can read a node's output.
 */
import { findNatsServer } from "../../src/cli/children.js";
import {
  READY_LINE,
  startNatsCluster as startCluster,
  type ClusterNode as Node,
  type NatsCluster as Cluster,
  type NodeProcesses,
} from "../../src/cli/nats-cluster.js";
import { spawnProcess, type Exit, type ProcessHandle } from "./processes.js";

export type ClusterNode = Node<ProcessHandle, Exit>;
export type NatsCluster = Cluster<ProcessHandle, Exit>;

export interface NatsClusterOptions {
  /** @default 3 */
  readonly size?: number;
  /** @default 20000 */
  readonly readyTimeoutMs?: number;
}

const processes: NodeProcesses<ProcessHandle, Exit> = {
  async start(binary, args) {
    const started = spawnProcess(binary, args, { linesFrom: "stderr" });
    try {
      await started.waitForLine(READY_LINE);
    } catch (error) {
      await started.stop();
      throw error;
    }
    return started;
  },
  running: (child) => child.exit() === undefined,
  kill(child) {
    child.signal("SIGKILL");
    return child.exited;
  },
  stop: (child) => child.stop(),
};

export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const binary = findNatsServer();
  if (binary === null) throw new Error("nats-server not found on the PATH, in /usr/local/sbin or /usr/sbin");
  return startCluster({ ...options, binary, processes, clusterName: "stui-test" });
}
