/**
 * An in-process session manager over a real file store in a temp directory, with every emitted
 * status and session notice recorded, stopped (and its directory removed) after each test.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { FileSessionStore } from "../../src/adapters/file-store/store.js";
import { SessionManager } from "../../src/actors/session-manager.js";
import type { Logger } from "../../src/logger.js";
import type { ConnectionPolicy } from "../../src/machines/connection-policy.js";
import type { ImageConfig, ManagerPolicy, SessionNotice } from "../../src/machines/session-manager.js";
import type { ImageStatusChanged } from "../../src/protocol/index.js";

/** Fast, generous-enough connection settings for tests on a shared machine. */
export const TEST_CONNECTION: Partial<ConnectionPolicy> = {
  heartbeatIntervalMs: 100,
  heartbeatTimeoutMs: 500,
  connectTimeoutMs: 1000,
  pingIntervalMs: 200,
  pingTimeoutMs: 500,
  backoffBaseMs: 50,
  backoffCapMs: 300,
  maxRestarts: 50,
  restartWindowMs: 60_000,
  requestTimeoutMs: 10_000,
};

export interface ManagerHarness extends AsyncDisposable {
  readonly manager: SessionManager;
  readonly dir: string;
  readonly statuses: ImageStatusChanged[];
  readonly notices: SessionNotice[];
  readonly logged: LogEntry[];
  /** Stops the manager (keeping the directory), e.g. to start another over the same store. */
  stop(): Promise<void>;
}

export interface LogEntry {
  readonly level: string;
  readonly msg: string;
  readonly obj: object;
}

/** A logger that keeps every entry, for tests to look at. */
export function recordingLogger(): { readonly logged: LogEntry[]; readonly logger: Logger } {
  const logged: LogEntry[] = [];
  const logger: Logger = {
    error: (obj, msg) => logged.push({ level: "error", msg, obj }),
    warn: (obj, msg) => logged.push({ level: "warn", msg, obj }),
    info: (obj, msg) => logged.push({ level: "info", msg, obj }),
    debug: (obj, msg) => logged.push({ level: "debug", msg, obj }),
  };
  return { logged, logger };
}

const dirs = new Set<string>();
const running = new Set<SessionManager>();

export async function makeStoreDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "stui-manager-"));
  dirs.add(dir);
  return dir;
}

export async function startManager(
  options: {
    images: readonly ImageConfig[];
    dir?: string;
    policy?: Partial<Omit<ManagerPolicy, "connection">> & { connection?: Partial<ConnectionPolicy> };
  } = { images: [] },
): Promise<ManagerHarness> {
  const dir = options.dir ?? (await makeStoreDir());
  const { logged, logger } = recordingLogger();
  const store = await FileSessionStore.open({ dir, logger });
  const manager = await SessionManager.start({
    store,
    images: options.images,
    logger,
    policy: { ...options.policy, connection: { ...TEST_CONNECTION, ...options.policy?.connection } },
  });
  running.add(manager);
  const statuses: ImageStatusChanged[] = [];
  const notices: SessionNotice[] = [];
  manager.actor.on("status", ({ data }) => statuses.push(data));
  manager.actor.on("session", ({ notice }) => notices.push(notice));
  const stop = async (): Promise<void> => {
    running.delete(manager);
    await manager.stop();
  };
  return { manager, dir, statuses, notices, logged, stop, [Symbol.asyncDispose]: stop };
}

/** For `afterEach`: stops every manager still running and removes the temp directories. */
export async function cleanupManagers(): Promise<void> {
  await Promise.all([...running].map((m) => m.stop()));
  running.clear();
  await Promise.all([...dirs].map((d) => rm(d, { recursive: true, force: true })));
  dirs.clear();
}
