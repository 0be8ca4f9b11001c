/**
 * The session manager's durable operations: each writes the store first and only then commits the
 * change to the machine (which announces it), so the machine's registry is always what the store
 * holds. Writes to one session, client or image are serialized by key; different keys run
 * concurrently. Every write names the revision it replaces (compare-and-set).
 */
import { requestImage } from "./image-connection.js";
import { ImageRequestError } from "../errors.js";
import { eachInParallel, type KeyedQueue } from "./concurrency.js";
import { UNREVISIONED, type SessionStore } from "../ports.js";
import { isStoreWriteError, type StoreIoError, type StoreUnavailableError } from "../errors.js";
import type { Logger } from "../logger.js";
import {
  imageStatusOf,
  type SessionManagerActor,
  type SessionManagerContext,
  type SessionNotice,
} from "../machines/session-manager.js";
import { isOrphaned } from "../machines/session-registry.js";
import type { ImageConnectionStatus, SessionStateData } from "../protocol/index.js";
import { RequestError } from "../errors.js";
import { isoTime } from "../clock.js";

/** What every operation works with. */
export interface ManagerCore {
  readonly actor: SessionManagerActor;
  readonly store: SessionStore;
  readonly queue: KeyedQueue;
  readonly logger: Logger;
  /** Wall-clock milliseconds. */
  readonly now: () => number;
  /** This instance's `instance_id`, the `owner` of its images; `null` when it runs without NATS. */
  readonly instanceId: string | null;
  /** When this instance's lease on the image lapses unless renewed; `null` without shared images. */
  readonly leaseExpiry: (imageId: string) => string | null;
  /**
   * Resolves when this instance may write the sessions of the image: always with one instance;
   * shared, when the lease store still names this instance's lease (the fencing token). Rejects
   * with `ImageUnavailable` otherwise.
   */
  readonly fence: (imageId: string) => Promise<void>;
}

export const sessionKey = (id: string): string => `session:${id}`;
export const clientKey = (id: string): string => `client:${id}`;
export const imageKey = (id: string): string => `image:${id}`;

export const stateOf = (core: ManagerCore): SessionManagerContext => core.actor.getSnapshot().context;
export const isoNow = (core: ManagerCore): string => isoTime(core.now());

/** The image's status as clients see it, with the session figures filled in; `null` if unknown. */
export function imageStatus(core: ManagerCore, imageId: string): ImageConnectionStatus | null {
  const { images, registry } = stateOf(core);
  const entry = images.get(imageId);
  if (entry === undefined) return null;
  const counts = registry.countsOf(imageId);
  return {
    ...imageStatusOf(entry),
    session_count: counts.total,
    active_sessions: counts.active,
    orphaned_sessions: counts.orphaned,
    last_activity: registry.lastActivityOf(imageId),
    owner: core.instanceId,
    lease_expires_at: core.leaseExpiry(imageId),
  };
}

/** Every image's status, in the order the images were added. */
export function imageStatuses(core: ManagerCore): ImageConnectionStatus[] {
  return [...stateOf(core).images.keys()].flatMap((id) => imageStatus(core, id) ?? []);
}

export function requireSession(core: ManagerCore, sessionId: string): SessionStateData {
  const session = stateOf(core).registry.get(sessionId);
  if (session === undefined) throw new RequestError("SessionNotFound", `no session ${sessionId}`);
  return session;
}

export function notice(
  kind: "created" | "closed" | "orphaned" | "cleaned",
  session: SessionStateData,
  reason: string | null,
  at: string,
): SessionNotice {
  return {
    kind,
    data: { image_id: session.image_id, session_id: session.session_id, client_id: session.client_id, reason, at },
  };
}

/** Announces durable changes. The registry has them already: the store's feed brought them. */
export function announce(core: ManagerCore, notices: readonly SessionNotice[]): void {
  core.actor.send({ type: "ANNOUNCE", notices });
}

/** Writes `session` over the revision the manager holds for it (none: it must be new). */
export async function writeSession(core: ManagerCore, session: SessionStateData): Promise<void> {
  await core.fence(session.image_id);
  const expected = stateOf(core).registry.revisionOf(session.session_id) ?? UNREVISIONED;
  await core.store.put(session, expected);
}

export async function deleteSession(core: ManagerCore, sessionId: string): Promise<void> {
  const { registry } = stateOf(core);
  const imageId = registry.get(sessionId)?.image_id;
  if (imageId !== undefined) await core.fence(imageId);
  await core.store.delete(sessionId, registry.revisionOf(sessionId) ?? UNREVISIONED);
}

/** Tells the image a session is closed. Best effort: the image times out sessions of its own. */
export async function closeOnImage(core: ManagerCore, session: SessionStateData): Promise<void> {
  const entry = stateOf(core).images.get(session.image_id);
  if (entry === undefined || entry.crash !== null || isOrphaned(session)) return;
  if (entry.ref.getSnapshot().context.image.status !== "Connected") return;
  try {
    await requestImage(entry.ref, "close_session", { session_id: session.session_id });
  } catch (error) {
    if (error instanceof ImageRequestError && error.code === "SessionNotFound") return;
    core.logger.warn(
      { err: error, image_id: session.image_id, session_id: session.session_id },
      "the image did not confirm closing a session",
    );
  }
}

/** Writes to different records overlap their fsyncs (and image round trips): this many at a time. */
const PARALLEL = 16;

/** Orphans the image's sessions, each durable and announced once written. Returns how many. */
export function orphanSessions(core: ManagerCore, imageId: string, reason: string): Promise<number> {
  return core.queue.run(imageKey(imageId), async () => {
    let count = 0;
    const live = stateOf(core)
      .registry.sessionsOf(imageId)
      .filter((s) => !isOrphaned(s));
    await eachInParallel(live, PARALLEL, async (s) => {
      if (await orphanOne(core, s.session_id, reason)) count += 1;
    });
    return count;
  });
}

/**
 * Restores the image's open sessions on it after it (re)connects. The rule: a session the image
 * still knows is kept (and no longer orphaned if it was); a session it answers `SessionNotFound`
 * for is orphaned, not re-created, because a re-created session would get a new id and none of the
 * state the client had in it. Any other failure ends the pass: the next connect tries again.
 */
export function restoreSessions(core: ManagerCore, imageId: string): Promise<void> {
  return core.queue.run(imageKey(imageId), async () => {
    const lost: string[] = [];
    let storeError: StoreIoError | StoreUnavailableError | null = null;
    const open = stateOf(core)
      .registry.sessionsOf(imageId)
      .filter((s) => s.is_active);
    try {
      await eachInParallel(open, PARALLEL, async (s) => {
        const entry = stateOf(core).images.get(imageId);
        if (entry === undefined || entry.crash !== null) throw new Error(`image ${imageId} is gone`);
        try {
          const info = await requestImage(entry.ref, "restore_session", { session_id: s.session_id });
          if (isOrphaned(s)) await adopt(core, s.session_id, info.is_active);
        } catch (error) {
          if (!(error instanceof ImageRequestError && error.code === "SessionNotFound")) throw error;
          lost.push(s.session_id);
        }
      });
    } catch (error) {
      if (isStoreWriteError(error)) storeError = error;
      else core.logger.warn({ err: error, image_id: imageId }, "restoring sessions stopped; the next connect retries");
    }
    // Orphaned here, not through `orphanSessions`: this pass already holds the image's key.
    const reason = `image ${imageId} no longer knows the session (restarted?)`;
    await eachInParallel(lost, PARALLEL, async (id) => {
      await orphanOne(core, id, reason);
    });
    // The pass is tried again once the store takes writes (see `SessionManager.run`).
    if (storeError !== null) throw storeError;
  });
}

/** A session orphaned earlier that the image still knows becomes a live session again. */
function adopt(core: ManagerCore, sessionId: string, isActive: boolean): Promise<void> {
  return core.queue.run(sessionKey(sessionId), async () => {
    const current = stateOf(core).registry.get(sessionId);
    if (current === undefined || !isOrphaned(current)) return;
    await writeSession(core, {
      ...current,
      orphaned_at: null,
      is_active: isActive,
      last_activity: isoNow(core),
    });
  });
}

/** Orphans one session durably and announces it; `false` when it was gone or orphaned already. */
function orphanOne(core: ManagerCore, sessionId: string, reason: string): Promise<boolean> {
  return core.queue.run(sessionKey(sessionId), async () => {
    const current = stateOf(core).registry.get(sessionId);
    if (current === undefined || isOrphaned(current)) return false;
    const at = isoNow(core);
    await writeSession(core, { ...current, orphaned_at: at });
    announce(core, [notice("orphaned", current, reason, at)]);
    return true;
  });
}

/** Removes the given sessions durably, each announced as cleaned; returns the ids removed, in order. */
export async function removeSessions(core: ManagerCore, ids: readonly string[], reason: string): Promise<string[]> {
  const removed = new Set<string>();
  await eachInParallel(ids, PARALLEL, (id) =>
    core.queue.run(sessionKey(id), async () => {
      const current = stateOf(core).registry.get(id);
      if (current === undefined) return;
      await closeOnImage(core, current);
      await deleteSession(core, id);
      announce(core, [notice("cleaned", current, reason, isoNow(core))]);
      removed.add(id);
    }),
  );
  return ids.filter((id) => removed.has(id));
}

/**
 * The automatic cleanup: sessions orphaned for longer than the policy's `orphanMaxAgeMs`, of the
 * images `mine` says are this instance's to clean (shared images: its own).
 */
export async function sweepOrphans(
  core: ManagerCore,
  mine: (imageId: string) => boolean = () => true,
): Promise<number> {
  const { policy, registry } = stateOf(core);
  if (policy.orphanMaxAgeMs === null) return 0;
  const expired = registry
    .expiredOrphans(core.now(), policy.orphanMaxAgeMs)
    .filter((id) => mine(registry.get(id)?.image_id ?? ""));
  const reason = `orphaned for longer than ${policy.orphanMaxAgeMs} ms`;
  return (await removeSessions(core, expired, reason)).length;
}
