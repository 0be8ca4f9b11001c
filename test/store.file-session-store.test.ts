import { spawn, type ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileSessionStore, fileKey } from "../src/adapters/file-store/store.js";
import { encodeStoredSession } from "../src/adapters/file-store/envelope.js";
import { encodeHeader } from "../src/adapters/file-store/journal.js";
import { UNREVISIONED, type StoreLogger } from "../src/ports.js";
import { RevisionConflictError, StoreLockedError } from "../src/errors.js";
import { DEFAULT_IMAGE_ADDRESS, DEFAULT_IMAGE_ID, type SessionStateData } from "../src/protocol/index.js";
import { writerSession } from "./fixtures/store-writer.js";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const WRITER = fileURLToPath(new URL("./fixtures/store-writer.ts", import.meta.url));

function session(id: string, imageId = "dev"): SessionStateData {
  const now = new Date().toISOString();
  return {
    session_id: id,
    client_id: "client-1",
    session_name: `name of ${id}`,
    description: null,
    created_at: now,
    last_activity: now,
    is_active: true,
    orphaned_at: null,
    workspace_context: { current_workspace: "Workspace 1", input_history: ["3 + 4"], variables: { x: "7" } },
    image_id: imageId,
    image_address: "tcp://127.0.0.1:6000",
    image_name: "dev",
    image_version: "Pharo-12.0.0",
    image_metadata: {},
  };
}

interface Logged {
  readonly level: "error" | "warn" | "info";
  readonly obj: object;
  readonly msg: string;
}

function recordingLogger(): { logger: StoreLogger; entries: Logged[] } {
  const entries: Logged[] = [];
  return {
    entries,
    logger: {
      error: (obj, msg) => entries.push({ level: "error", obj, msg }),
      warn: (obj, msg) => entries.push({ level: "warn", obj, msg }),
      info: (obj, msg) => entries.push({ level: "info", obj, msg }),
    },
  };
}

const modeOf = async (file: string): Promise<number> => (await fs.stat(file)).mode & 0o777;
/** Where the layout before store format 3 kept a session. */
const legacyPath = (dir: string, id: string): string => path.join(dir, "sessions", `${fileKey(id)}.json`);
const snapshotOf = (dir: string): string => path.join(dir, "snapshot.jsonl");
const logOf = (dir: string): string => path.join(dir, "log.jsonl");

/** The lines of a store file, parsed, its header first. */
async function linesOf(file: string): Promise<Array<Record<string, unknown>>> {
  const text = await fs.readFile(file, "utf8");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

let dir = "";
let children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "stui-store-"));
});

afterEach(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined)
      process.kill(child.pid, "SIGKILL");
  }
  children = [];
  await fs.rm(dir, { recursive: true, force: true });
});

describe("session store - records", () => {
  it("session store - a put session loads back equal, and a deleted one is gone", async () => {
    const store = await FileSessionStore.open({ dir });
    const a = session("session-a");
    const b = session("session/b with spaces and ünïcode");
    await store.put(a, null);
    await store.put(b, null);
    await store.putContext("client-1", "dev", null);
    await store.close();

    const reopened = await FileSessionStore.open({ dir });
    const loaded = await reopened.load();
    expect(loaded.problems).toEqual([]);
    expect(loaded.records.map((r) => r.session).sort((x, y) => x.session_id.localeCompare(y.session_id))).toEqual([
      a,
      b,
    ]);
    expect([...loaded.contexts]).toEqual([["client-1", { imageId: "dev", revision: 1 }]]);

    await reopened.delete(a.session_id, 1);
    await reopened.putContext("client-1", null, 1);
    const after = await reopened.load();
    expect(after.records.map((r) => r.session.session_id)).toEqual([b.session_id]);
    expect(after.contexts.size).toBe(0);
    await reopened.close();
  });

  it("session store - each put returns a higher revision, and load reports it", async () => {
    const store = await FileSessionStore.open({ dir });
    const first = await store.put(session("s1"), null);
    const second = await store.put({ ...session("s1"), is_active: false }, first);
    const third = await store.put(session("s1"), second);
    expect(first).toBe(1);
    expect(second).toBeGreaterThan(first);
    expect(third).toBeGreaterThan(second);
    const loaded = await store.load();
    expect(loaded.records.map((r) => [r.revision, r.schemaVersion])).toEqual([[third, 2]]);
    await store.close();
  });

  it("session store - a put or delete naming a stale revision rejects with RevisionConflictError and writes nothing", async () => {
    const store = await FileSessionStore.open({ dir });
    const r1 = await store.put(session("s1"), 0);
    await store.put({ ...session("s1"), session_name: "newer" }, r1);

    const stale = store.put({ ...session("s1"), session_name: "lost" }, r1);
    await expect(stale).rejects.toBeInstanceOf(RevisionConflictError);
    await expect(stale).rejects.toMatchObject({
      name: "RevisionConflictError",
      expectedRevision: 1,
      actualRevision: 2,
    });
    await expect(store.put(session("s1"), 0)).rejects.toBeInstanceOf(RevisionConflictError);
    await expect(store.delete("s1", r1)).rejects.toBeInstanceOf(RevisionConflictError);
    await expect(store.put(session("absent"), 3)).rejects.toBeInstanceOf(RevisionConflictError);

    const loaded = await store.load();
    expect(loaded.records.map((r) => [r.session.session_name, r.revision])).toEqual([["newer", 2]]);
    await store.close();
  });

  it("session store - a session that does not validate is refused before anything is written", async () => {
    const store = await FileSessionStore.open({ dir });
    await expect(store.put({ ...session("s1"), image_id: "not a subject token" }, null)).rejects.toMatchObject({
      name: "InvalidRecordError",
    });
    await expect(store.putContext("client-1", "bad id!", null)).rejects.toMatchObject({ name: "InvalidRecordError" });
    expect(await linesOf(logOf(dir))).toEqual([{ stui_store: 3, generation: 1 }]);
    await store.close();
  });
});

describe("session store - change feed and context revisions", () => {
  it("session store - watchers hear every durable change before the write resolves, and not a refused one", async () => {
    const store = await FileSessionStore.open({ dir });
    const heard: string[] = [];
    const unwatch = store.watch((change) =>
      heard.push(
        change.kind === "session"
          ? `session ${change.sessionId} ${change.stored === null ? "removed" : `r${change.stored.revision}`}`
          : `context ${change.clientId} ${change.context === null ? "cleared" : `${change.context.imageId} r${change.context.revision}`}`,
      ),
    );
    const s = session("s1");
    await store.put(s, UNREVISIONED);
    expect(heard).toEqual(["session s1 r1"]);
    await store.put({ ...s, is_active: false }, 1);
    await expect(store.put(s, 1)).rejects.toBeInstanceOf(RevisionConflictError);
    await store.putContext("alice", "dev", UNREVISIONED);
    await store.putContext("alice", "staging", 1);
    await expect(store.putContext("alice", "dev", 1)).rejects.toBeInstanceOf(RevisionConflictError);
    await store.putContext("alice", null, 2);
    await store.delete("s1", 2);
    unwatch();
    await store.put(session("s2"), UNREVISIONED);
    expect(heard).toEqual([
      "session s1 r1",
      "session s1 r2",
      "context alice dev r1",
      "context alice staging r2",
      "context alice cleared",
      "session s1 removed",
    ]);
    await store.close();
  });

  it("session store - a context written before contexts had revisions loads at revision 0", async () => {
    await fs.mkdir(path.join(dir, "contexts"));
    const file = path.join(dir, "contexts", `${fileKey("old")}.json`);
    await fs.writeFile(file, JSON.stringify({ schema_version: 2, client_id: "old", image_id: "dev" }), { mode: 0o600 });
    const reopened = await FileSessionStore.open({ dir, logger: recordingLogger().logger });
    expect((await reopened.load()).contexts.get("old")).toEqual({ imageId: "dev", revision: 0 });
    expect(await reopened.putContext("old", "staging", 0)).toBe(1);
    await reopened.close();
  });
});

describe("session store - one process per directory", () => {
  it("session store - a second store on a directory in use is refused by name; after close, or once its holder is gone, it opens", async () => {
    const first = await FileSessionStore.open({ dir });
    const refused = await FileSessionStore.open({ dir }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(StoreLockedError);
    expect((refused as Error).message).toContain(`in use by another stui (pid ${process.pid} on ${os.hostname()}`);
    await first.close();
    const second = await FileSessionStore.open({ dir });
    await second.close();

    // The lock of a process that is gone is taken over.
    const gone = spawn(process.execPath, ["-e", ""]);
    await new Promise((resolve) => gone.once("exit", resolve));
    const stale = { pid: gone.pid, host: os.hostname(), since: new Date().toISOString() };
    await fs.writeFile(path.join(dir, ".lock"), JSON.stringify(stale));
    const { logger, entries } = recordingLogger();
    const third = await FileSessionStore.open({ dir, logger });
    expect(entries.some((e) => e.msg.includes("taking over the lock"))).toBe(true);
    await third.close();
    await expect(fs.stat(path.join(dir, ".lock"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("session store - permissions", () => {
  it("session store - the directory is created 0700 and record files are written 0600", async () => {
    const root = path.join(dir, "store");
    const store = await FileSessionStore.open({ dir: root });
    await store.put(session("s1"), null);
    await store.putContext("client-1", "dev", null);
    await store.close();
    expect(await modeOf(root)).toBe(0o700);
    expect(await modeOf(snapshotOf(root))).toBe(0o600);
    expect(await modeOf(logOf(root))).toBe(0o600);
    expect((await fs.readdir(root)).sort()).toEqual(["log.jsonl", "snapshot.jsonl"]);
  });

  it("session store - a pre-existing 0755 directory and 0644 store files are tightened to 0700 and 0600", async () => {
    await fs.chmod(dir, 0o755);
    for (const [file, text] of [
      [snapshotOf(dir), `${encodeHeader(1)}${encodeStoredSession(4, session("s1"))}`],
      [logOf(dir), encodeHeader(1)],
    ] as const) {
      await fs.writeFile(file, text, { mode: 0o644 });
      await fs.chmod(file, 0o644);
    }
    const { logger, entries } = recordingLogger();
    const store = await FileSessionStore.open({ dir, logger });
    expect(await modeOf(dir)).toBe(0o700);
    expect(await modeOf(snapshotOf(dir))).toBe(0o600);
    expect(await modeOf(logOf(dir))).toBe(0o600);
    expect(entries.filter((e) => e.msg.includes("tightened"))).toHaveLength(2);
    expect(await store.put(session("s1"), 4)).toBe(5);
    await store.close();
  });
});

describe("session store - migration", () => {
  const legacy = {
    session_id: "old-1",
    client_id: "client-9",
    session_name: null,
    description: null,
    created_at: "2024-03-01T10:00:00Z",
    last_activity: "2024-03-01T11:00:00Z",
    is_active: true,
    workspace_context: { current_workspace: null, input_history: [], variables: {} },
  };

  it("session store - migration: a bare legacy record without image fields loads onto the default image at revision 0", async () => {
    await fs.mkdir(path.join(dir, "sessions"), { recursive: true });
    await fs.writeFile(legacyPath(dir, "old-1"), JSON.stringify(legacy));
    const store = await FileSessionStore.open({ dir, logger: recordingLogger().logger });
    const loaded = await store.load();
    expect(loaded.problems).toEqual([]);
    expect(loaded.records).toHaveLength(1);
    const [record] = loaded.records;
    expect(record?.revision).toBe(0);
    expect(record?.schemaVersion).toBe(1);
    expect(record?.session.image_id).toBe(DEFAULT_IMAGE_ID);
    expect(record?.session.image_address).toBe(DEFAULT_IMAGE_ADDRESS);
    expect(record?.session.orphaned_at).toBeNull();

    // Rewriting it (compare-and-set on revision 0) stores it as version 2, revision 1.
    expect(await store.put(record!.session, 0)).toBe(1);
    expect((await linesOf(logOf(dir))).at(-1)).toMatchObject({
      schema_version: 2,
      revision: 1,
      session: { image_id: DEFAULT_IMAGE_ID },
    });
    await store.close();
  });

  it("session store - migration: a version-1 envelope loads onto the default image at revision 0", async () => {
    await fs.mkdir(path.join(dir, "sessions"), { recursive: true });
    await fs.writeFile(legacyPath(dir, "old-1"), JSON.stringify({ schema_version: 1, session: legacy }));
    const store = await FileSessionStore.open({ dir, logger: recordingLogger().logger });
    const loaded = await store.load();
    expect(loaded.problems).toEqual([]);
    expect(loaded.records.map((r) => [r.revision, r.session.image_id])).toEqual([[0, DEFAULT_IMAGE_ID]]);
    await store.close();
  });
});

describe("session store - migration of the one-file-per-record layout", () => {
  it("session store - migration: every record and context is carried over, corrupt files reported, and the old layout moved aside whole", async () => {
    await fs.mkdir(path.join(dir, "sessions"));
    await fs.mkdir(path.join(dir, "contexts"));
    await fs.writeFile(legacyPath(dir, "s1"), encodeStoredSession(7, session("s1")));
    await fs.writeFile(legacyPath(dir, "s2"), encodeStoredSession(1, session("s2")));
    await fs.writeFile(legacyPath(dir, "bad"), '{"schema_version": 2, "revis');
    await fs.writeFile(legacyPath(dir, "elsewhere"), encodeStoredSession(1, session("not-elsewhere")));
    const context = { schema_version: 2, client_id: "alice", image_id: "dev", revision: 3 };
    await fs.writeFile(path.join(dir, "contexts", `${fileKey("alice")}.json`), JSON.stringify(context));

    const { logger, entries } = recordingLogger();
    const store = await FileSessionStore.open({ dir, logger });
    const loaded = await store.load();
    expect(loaded.records.map((r) => [r.session.session_id, r.revision]).sort()).toEqual([
      ["s1", 7],
      ["s2", 1],
    ]);
    expect([...loaded.contexts]).toEqual([["alice", { imageId: "dev", revision: 3 }]]);
    const names = await fs.readdir(dir);
    const aside = names.find((n) => n.startsWith("migrated-v2-")) ?? "";
    expect(names.filter((n) => !n.startsWith(".")).sort()).toEqual([aside, "log.jsonl", "snapshot.jsonl"].sort());
    expect(loaded.problems.map((p) => p.file).sort()).toEqual([legacyPath(dir, "bad"), legacyPath(dir, "elsewhere")]);
    for (const problem of loaded.problems) {
      if (problem.kind !== "CorruptRecord") throw new Error(`unexpected problem ${problem.kind}`);
      expect(problem.movedTo).toBe(path.join(dir, aside, "sessions", path.basename(problem.file)));
      await fs.access(problem.movedTo!); // kept, with the rest of the old layout
      expect(entries.some((e) => e.level === "error" && e.msg.includes(problem.file))).toBe(true);
    }
    expect(await store.put(session("s1"), 7)).toBe(8);
    await store.close();

    const reopened = await FileSessionStore.open({ dir, logger });
    const again = await reopened.load();
    expect(again.problems).toEqual([]);
    expect(again.records.map((r) => [r.session.session_id, r.revision]).sort()).toEqual([
      ["s1", 8],
      ["s2", 1],
    ]);
    await reopened.close();
  });

  it("session store - migration: a crash after the snapshot was written only leaves the move to do", async () => {
    await fs.mkdir(path.join(dir, "sessions"));
    await fs.writeFile(legacyPath(dir, "s1"), encodeStoredSession(1, session("s1")));
    await fs.writeFile(snapshotOf(dir), `${encodeHeader(1)}${encodeStoredSession(2, session("s1"))}`, { mode: 0o600 });
    await fs.writeFile(logOf(dir), encodeHeader(1), { mode: 0o600 });
    const store = await FileSessionStore.open({ dir, logger: recordingLogger().logger });
    expect((await store.load()).records.map((r) => r.revision)).toEqual([2]);
    expect((await fs.readdir(dir)).some((n) => n === "sessions")).toBe(false);
    await store.close();
  });
});

describe("session store - damage", () => {
  /** A store holding `good` (revision 1), closed. */
  async function storeWithGood(): Promise<void> {
    const store = await FileSessionStore.open({ dir });
    await store.put(session("good"), null);
    await store.close();
  }

  it("session store - corrupt lines are copied aside, logged and reported by line, and the other records load", async () => {
    await storeWithGood();
    await fs.appendFile(
      logOf(dir),
      [
        '{"schema_version": 2, "revis',
        JSON.stringify({ schema_version: 2, revision: 1, session: { session_id: 3 } }),
        JSON.stringify({ schema_version: 3, revision: 1, session: session("future") }),
        encodeStoredSession(1, session("later")).trimEnd(),
        "",
      ].join("\n"),
    );
    const { logger, entries } = recordingLogger();
    const store = await FileSessionStore.open({ dir, logger });
    const loaded = await store.load();
    expect(loaded.records.map((r) => r.session.session_id).sort()).toEqual(["good", "later"]);
    expect(loaded.problems.map((p) => p.file)).toEqual([3, 4, 5].map((n) => `${logOf(dir)}:${n}`));
    const aside = loaded.problems[0]?.kind === "CorruptRecord" ? loaded.problems[0].movedTo : null;
    expect(aside).toMatch(/\/corrupt-[0-9TZ-]+\.jsonl$/);
    expect((await fs.readFile(aside!, "utf8")).split("\n")).toHaveLength(4); // three lines, kept as they were
    for (const problem of loaded.problems) {
      if (problem.kind !== "CorruptRecord") throw new Error(`unexpected problem ${problem.kind}`);
      expect(problem.movedTo).toBe(aside);
      expect(problem.error.name).toBe("CorruptRecordError");
      expect(entries.some((e) => e.level === "error" && e.msg.includes(problem.file))).toBe(true);
    }
    expect(loaded.problems[2]?.error.message).toContain("unknown schema version 3");
    await store.close();

    // Compacted out: the next open is clean.
    const reopened = await FileSessionStore.open({ dir, logger });
    const again = await reopened.load();
    expect(again.problems).toEqual([]);
    expect(again.records).toHaveLength(2);
    await reopened.close();
  });

  it("session store - a log cut off mid-line (a crash during a write) is cut back to its last whole line, with a warning", async () => {
    await storeWithGood();
    await fs.appendFile(logOf(dir), encodeStoredSession(1, session("torn")).slice(0, 40));
    const { logger, entries } = recordingLogger();
    const store = await FileSessionStore.open({ dir, logger });
    const loaded = await store.load();
    expect(loaded.problems).toEqual([]);
    expect(loaded.records.map((r) => r.session.session_id)).toEqual(["good"]);
    expect(entries.some((e) => e.level === "warn" && e.msg.includes("cut short"))).toBe(true);
    expect(await store.put(session("next"), null)).toBe(1);
    await store.close();
    const reopened = await FileSessionStore.open({ dir });
    expect((await reopened.load()).records.map((r) => r.session.session_id).sort()).toEqual(["good", "next"]);
    await reopened.close();
  });

  it("session store - a log of an older generation (a crash during compaction) is ignored; a newer one, or another format, is refused untouched", async () => {
    const snapshot = `${encodeHeader(2)}${encodeStoredSession(3, session("kept"))}`;
    await fs.writeFile(snapshotOf(dir), snapshot, { mode: 0o600 });
    await fs.writeFile(logOf(dir), `${encodeHeader(1)}${encodeStoredSession(1, session("folded"))}`, { mode: 0o600 });
    const store = await FileSessionStore.open({ dir, logger: recordingLogger().logger });
    expect((await store.load()).records.map((r) => [r.session.session_id, r.revision])).toEqual([["kept", 3]]);
    await store.close();
    expect(await linesOf(logOf(dir))).toEqual([{ stui_store: 3, generation: 2 }]);

    const ahead = `${encodeHeader(3)}${encodeStoredSession(1, session("lost"))}`;
    await fs.writeFile(logOf(dir), ahead);
    await expect(FileSessionStore.open({ dir })).rejects.toMatchObject({
      name: "StoreFormatError",
      message: expect.stringContaining("generation 3 is newer than snapshot.jsonl's 2") as unknown,
    });
    await fs.writeFile(snapshotOf(dir), '{"stui_store":4,"generation":9}\n');
    await expect(FileSessionStore.open({ dir })).rejects.toMatchObject({
      name: "StoreFormatError",
      message: expect.stringContaining("store format 4, written by a newer stui") as unknown,
    });
    expect(await fs.readFile(logOf(dir), "utf8")).toBe(ahead);
    // Refused, and not left locked.
    await fs.rm(snapshotOf(dir));
    await expect(FileSessionStore.open({ dir })).rejects.toMatchObject({ name: "StoreFormatError" });
    await fs.rm(logOf(dir));
    await (await FileSessionStore.open({ dir })).close();
  });

  it("session store - a leftover temp file from an interrupted write is removed on open", async () => {
    await storeWithGood();
    const temp = path.join(dir, ".snapshot.4242.1.deadbeef.tmp");
    await fs.writeFile(temp, '{"stui_store": 3, "gen');

    const reopened = await FileSessionStore.open({ dir, logger: recordingLogger().logger });
    await expect(fs.access(temp)).rejects.toThrow();
    const loaded = await reopened.load();
    expect(loaded.problems).toEqual([]);
    expect(loaded.records.map((r) => r.session.session_id)).toEqual(["good"]);
    await reopened.close();
  });
});

describe("session store - compaction", () => {
  it("session store - a log grown past the snapshot is folded into a new snapshot; every record and revision reads back", async () => {
    const store = await FileSessionStore.open({ dir });
    const big = (id: string, n: number): SessionStateData => ({
      ...session(id),
      description: `${n} ${"x".repeat(2000)}`,
    });
    for (let i = 0; i < 100; i += 1) await store.put(big(`s${i}`, 0), null);
    // Rewrites of the same records: the log grows, the live set does not.
    for (let round = 1; round <= 6; round += 1) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => store.put(big(`s${i}`, round), round)));
    }
    await store.delete("s0", 7);
    await store.putContext("alice", "dev", null);
    const [header] = await linesOf(snapshotOf(dir));
    expect(header?.["generation"]).toBeGreaterThan(1);
    expect((await fs.stat(logOf(dir))).size).toBeLessThan(1024 * 1024);
    await store.close();

    const reopened = await FileSessionStore.open({ dir });
    const loaded = await reopened.load();
    expect(loaded.problems).toEqual([]);
    expect(loaded.records).toHaveLength(99);
    for (const r of loaded.records) {
      expect(r.revision).toBe(7);
      expect(r.session.description?.startsWith("6 ")).toBe(true);
    }
    expect([...loaded.contexts]).toEqual([["alice", { imageId: "dev", revision: 1 }]]);
    expect((await fs.readdir(dir)).filter((n) => !n.startsWith(".")).sort()).toEqual(["log.jsonl", "snapshot.jsonl"]);
    await reopened.close();
  });
});

describe("session store - crash durability", () => {
  it("session store - every put acknowledged before a SIGKILL is on disk intact after reopening", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", WRITER, dir, "1000"], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    const acked: string[] = [];
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

    await new Promise<void>((resolve, reject) => {
      let buffered = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        for (const line of lines) {
          const match = /^ack (.+)$/.exec(line);
          if (match?.[1] !== undefined) acked.push(match[1]);
        }
        if (acked.length >= 300 && child.pid !== undefined) {
          process.kill(child.pid, "SIGKILL");
          resolve();
        }
      });
      child.once("exit", (code, signal) => {
        if (acked.length < 300) reject(new Error(`writer exited early (${code ?? signal}): ${stderr}`));
      });
    });
    await exited;
    expect(child.signalCode).toBe("SIGKILL");

    const store = await FileSessionStore.open({ dir, logger: recordingLogger().logger });
    const loaded = await store.load();
    expect(loaded.problems).toEqual([]);
    const byId = new Map(loaded.records.map((r) => [r.session.session_id, r]));
    expect(byId.size).toBeGreaterThanOrEqual(acked.length);
    for (const [n, id] of acked.entries()) {
      expect(id).toBe(`crash-${n}`);
      expect(byId.get(id)?.session).toEqual(writerSession(n));
      expect(byId.get(id)?.revision).toBe(1);
    }
    await store.close();
  }, 120_000);
});
