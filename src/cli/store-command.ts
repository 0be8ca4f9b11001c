/**
 * `stui store migrate --from DIR`: copies an embedded file store (sessions and client contexts)
 * into the JetStream KV buckets that `store.kind: kv` uses. Idempotent: a record already in KV is
 * left as it is (the same: counted as such; different: reported, never overwritten), so running it
 * again copies nothing twice. The file store must not be in use (its lock is taken).
 */
import { FileSessionStore } from "../adapters/file-store/store.js";
import { KvSessionStore } from "../adapters/kv-store/store.js";
import { RevisionConflictError } from "../errors.js";
import { UNREVISIONED, type SessionStore, type StoreLogger } from "../ports.js";
import { EXIT, required, runClientCommand, str, UsageError } from "./client-run.js";
import { runGroup } from "./group.js";

/** What a migration did, as `--json` prints it. */
export interface MigrationReport {
  readonly from: string;
  readonly buckets: readonly string[];
  readonly sessions: Counts;
  readonly contexts: Counts;
  /** The ids of records kept in KV although the file store's differ. */
  readonly differing: readonly string[];
}

interface Counts {
  copied: number;
  same: number;
  differing: number;
}

const PROGRESS_EVERY = 1000;

const quietStore: StoreLogger = {
  error: (obj, msg) => console.error(`stui: ${msg}`),
  warn: (obj, msg) => console.error(`stui: ${msg}`),
  info: () => undefined,
};

const migrate = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage:
      "usage: stui store migrate --from DIR [--replicas N] [--bucket-prefix P] [--json]\n\n" +
      "Copies a file store (sessions, client contexts) into the JetStream KV buckets of store.kind: kv.\n" +
      "Records already there are kept; running it again copies nothing twice. Stop the stui serve\n" +
      "that uses DIR first.",
    options: { from: { type: "string" }, replicas: { type: "string" }, "bucket-prefix": { type: "string" } },
    check: (values) => {
      const replicas = str(values, "replicas");
      if (replicas !== undefined && !/^[1-5]$/.test(replicas)) throw new UsageError("--replicas: 1 to 5");
    },
    run: async ({ client, values, json }) => {
      const from = required(values, "from");
      const bucketPrefix = str(values, "bucket-prefix") ?? "stui";
      const file = await FileSessionStore.open({ dir: from, logger: quietStore });
      let kv: KvSessionStore | null = null;
      try {
        kv = await KvSessionStore.open({
          nc: client.nc,
          bucketPrefix,
          replicas: Number(str(values, "replicas") ?? "1"),
          logger: quietStore,
        });
        const report = await copy(file, kv, file.dir, [`${bucketPrefix}_sessions`, `${bucketPrefix}_contexts`], json);
        if (json) console.log(JSON.stringify(report, null, 2));
        else console.log(summary(report));
        return EXIT.done;
      } finally {
        await kv?.close();
        await file.close();
      }
    },
  });

async function copy(
  file: SessionStore,
  kv: SessionStore,
  from: string,
  buckets: readonly string[],
  quiet: boolean,
): Promise<MigrationReport> {
  const source = await file.load();
  for (const problem of source.problems) console.error(`stui: skipped ${problem.file}: ${problem.error.message}`);
  const target = await kv.load();
  const inKv = new Map(target.records.map((r) => [r.session.session_id, r.session]));
  const sessions: Counts = { copied: 0, same: 0, differing: 0 };
  const contexts: Counts = { copied: 0, same: 0, differing: 0 };
  const differing: string[] = [];
  let done = 0;
  for (const { session } of source.records) {
    const there = inKv.get(session.session_id);
    if (there === undefined) {
      // Created meanwhile by a running KV instance: theirs stays.
      if (await created(() => kv.put(session, UNREVISIONED))) sessions.copied += 1;
      else sessions.same += 1;
    } else if (JSON.stringify(there) === JSON.stringify(session)) {
      sessions.same += 1;
    } else {
      sessions.differing += 1;
      differing.push(session.session_id);
    }
    done += 1;
    if (!quiet && done % PROGRESS_EVERY === 0) console.error(`stui: ${done} of ${source.records.length} sessions`);
  }
  for (const [clientId, context] of source.contexts) {
    const there = target.contexts.get(clientId);
    if (there === undefined) {
      if (await created(() => kv.putContext(clientId, context.imageId, UNREVISIONED))) contexts.copied += 1;
      else contexts.same += 1;
    } else if (there.imageId === context.imageId) {
      contexts.same += 1;
    } else {
      contexts.differing += 1;
      differing.push(`context of ${clientId}`);
    }
  }
  return { from, buckets, sessions, contexts, differing };
}

/** `true` once written; `false` when a record appeared there first (a conflict on "absent"). */
async function created(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (error) {
    if (error instanceof RevisionConflictError) return false;
    throw error;
  }
}

function summary(r: MigrationReport): string {
  const lines = [
    `copied ${r.sessions.copied} session(s) and ${r.contexts.copied} context(s) from ${r.from} into ${r.buckets.join(", ")}`,
    `already there: ${r.sessions.same + r.sessions.differing} session(s), ${r.contexts.same + r.contexts.differing} context(s)`,
  ];
  if (r.differing.length > 0) {
    lines.push(`kept as they are in KV, although the file store's differ: ${r.differing.join(", ")}`);
  }
  return lines.join("\n");
}

export const store = (argv: string[]): Promise<number> =>
  runGroup(argv, "store", { migrate: { summary: "copy a file store into JetStream KV", run: migrate } });
