/**
 * The usual frame of a NATS test file: a nats-server of its own for each test (it starts in
 * milliseconds, and no stream state leaks between tests), and after each test every service,
 * manager, process and server it started stopped.
 */
import { afterEach, beforeEach } from "vitest";
import { cleanupManagers } from "./manager.js";
import { startNatsServer, type NatsServerHandle } from "./nats-server.js";
import { stopAllProcesses } from "./processes.js";
import { stopServices } from "./service.js";

/** Call at the top of a test file; the returned function gives the current test's server. */
export function natsServerPerTest(): () => NatsServerHandle {
  let nats: NatsServerHandle | null = null;
  beforeEach(async () => {
    nats = await startNatsServer();
  });
  afterEach(async () => {
    await stopServices();
    await cleanupManagers();
    await stopAllProcesses();
    await nats?.stop();
    nats = null;
  });
  return () => {
    if (nats === null) throw new Error("no nats-server: natsServerPerTest() runs one per test only");
    return nats;
  };
}
