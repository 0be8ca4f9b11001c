/**
 * No internals in answers: a fault the service did not expect becomes an `Internal` answer with a
 * short message and an error id, never the fault's path, stack or system text; the log carries
 * the detail under the same id. Over a real image-sim and a real file store whose `putContext`
 * fails the way a broken adapter would (a plain `Error` quoting a server path).
 */
import { afterEach, describe, expect, it } from "vitest";
import { FileSessionStore } from "../src/adapters/file-store/store.js";
import { SessionManager } from "../src/actors/session-manager.js";
import type { SessionStore } from "../src/ports.js";
import { startImageSim } from "./helpers/image-sim.js";
import { cleanupManagers, makeStoreDir, recordingLogger, TEST_CONNECTION } from "./helpers/manager.js";
import { stopAllProcesses } from "./helpers/processes.js";

let manager: SessionManager | null = null;
afterEach(async () => {
  await manager?.stop();
  manager = null;
  await stopAllProcesses();
  await cleanupManagers();
});

const SECRET_PATH = "/srv/stui/private/contexts/YWxpY2U.json";

/** The file store, except that context writes fail with an unexpected error. */
function failingContexts(store: FileSessionStore): SessionStore {
  return {
    load: () => store.load(),
    put: (session, expected) => store.put(session, expected),
    delete: (id, expected) => store.delete(id, expected),
    putContext: () => Promise.reject(new Error(`EACCES: permission denied, open '${SECRET_PATH}'`)),
    watch: (listener) => store.watch(listener),
    status: () => store.status(),
    ensureWritable: () => store.ensureWritable(),
    close: () => store.close(),
  };
}

describe("session manager - errors", () => {
  it("session manager - an unexpected fault answers Internal with an error id; the detail is only in the log", async () => {
    const sim = await startImageSim({ name: "dev" });
    const { logged, logger } = recordingLogger();
    const store = await FileSessionStore.open({ dir: await makeStoreDir(), logger });
    manager = await SessionManager.start({
      store: failingContexts(store),
      images: [{ id: "dev", address: sim.endpoint, name: null }],
      logger,
      policy: { connection: TEST_CONNECTION },
    });
    const answer = await manager.handle({
      type: "SwitchImageContext",
      client_id: "alice",
      from_image_id: null,
      to_image_id: "dev",
      preserve_context: true,
    });
    expect(answer.type).toBe("Error");
    if (answer.type !== "Error") return;
    expect(answer.code).toBe("Internal");
    const id = String(answer.details?.["error_id"]);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(answer.message).toBe(`SwitchImageContext failed in the service (error id ${id})`);
    expect(JSON.stringify(answer)).not.toMatch(/EACCES|\/srv\/|permission denied|\n\s+at /);

    const entry = logged.find((e) => (e.obj as Record<string, unknown>)["error_id"] === id);
    expect(entry?.level).toBe("error");
    expect(String((entry?.obj as { err?: unknown }).err)).toContain(SECRET_PATH);
    // Nothing was switched: the registry agrees with the store, which never took the context.
    const context = await manager.handle({ type: "GetClientContext", client_id: "alice" });
    expect(context).toEqual({ type: "ClientContext", client_id: "alice", image_id: null });
  });
});
