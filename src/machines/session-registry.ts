/**
 * The session manager's bookkeeping as pure functions over an immutable registry: sessions per
 * image, each client's current image context, stats, orphan marking and cleanup selection.
 *
 * Definitions (documented for clients in the README):
 * - a session is **orphaned** once `orphaned_at` is set (its image was removed, stayed Failed past
 *   the grace period, or lost it across a restart);
 * - a session is **active** when `is_active` is true and it is not orphaned: a live session on a
 *   live image. `preserve_active` protects exactly these.
 */
import type { ImageSessionStats, SessionStateData, Timestamp } from "../protocol/index.js";

export interface Registry {
  readonly sessions: ReadonlyMap<string, SessionStateData>;
  /** client id → image id */
  readonly contexts: ReadonlyMap<string, string>;
}

export const emptyRegistry: Registry = { sessions: new Map(), contexts: new Map() };

/** A registry of loaded records, built in one pass (a store may hold 100 000 sessions). */
export function registryFrom(
  sessions: Iterable<SessionStateData>,
  contexts: ReadonlyMap<string, string> = new Map(),
): Registry {
  const byId = new Map<string, SessionStateData>();
  for (const s of sessions) byId.set(s.session_id, s);
  return { sessions: byId, contexts: new Map(contexts) };
}

export const isOrphaned = (s: SessionStateData): boolean => s.orphaned_at !== null;
export const isActive = (s: SessionStateData): boolean => s.is_active && !isOrphaned(s);

export function putSession(registry: Registry, session: SessionStateData): Registry {
  return { ...registry, sessions: new Map(registry.sessions).set(session.session_id, session) };
}

export function removeSessions(registry: Registry, ids: Iterable<string>): Registry {
  return applyChanges(registry, [], ids);
}

/** Puts and removes in one copy of the session map. */
export function applyChanges(registry: Registry, put: Iterable<SessionStateData>, remove: Iterable<string>): Registry {
  const sessions = new Map(registry.sessions);
  for (const s of put) sessions.set(s.session_id, s);
  for (const id of remove) sessions.delete(id);
  return { ...registry, sessions };
}

/** The sessions of one image, or of all images when `imageId` is null, oldest first. */
export function sessionsOf(registry: Registry, imageId: string | null): SessionStateData[] {
  const all = [...registry.sessions.values()];
  const chosen = imageId === null ? all : all.filter((s) => s.image_id === imageId);
  return chosen.sort((a, b) => a.created_at.localeCompare(b.created_at));
}

export function statsOf(registry: Registry, imageId: string): ImageSessionStats {
  const sessions = sessionsOf(registry, imageId);
  let last: Timestamp | null = null;
  for (const s of sessions) if (last === null || s.last_activity > last) last = s.last_activity;
  return {
    image_id: imageId,
    total_sessions: sessions.length,
    active_sessions: sessions.filter(isActive).length,
    orphaned_sessions: sessions.filter(isOrphaned).length,
    last_activity: last,
  };
}

/** Marks every not yet orphaned session of `imageId` (or those named) orphaned at `at`. */
export function markOrphaned(
  registry: Registry,
  imageId: string,
  at: Timestamp,
  only?: ReadonlySet<string>,
): { readonly registry: Registry; readonly orphaned: SessionStateData[] } {
  const sessions = new Map(registry.sessions);
  const orphaned: SessionStateData[] = [];
  for (const s of registry.sessions.values()) {
    if (s.image_id !== imageId || isOrphaned(s) || (only !== undefined && !only.has(s.session_id))) continue;
    const marked = { ...s, orphaned_at: at };
    sessions.set(s.session_id, marked);
    orphaned.push(marked);
  }
  return { registry: { ...registry, sessions }, orphaned };
}

export interface CleanupCriteria {
  readonly image_id: string;
  /** Also remove sessions that are not orphaned. */
  readonly force: boolean;
  /** Never remove an active session, even with `force`. */
  readonly preserve_active: boolean;
  /** Only sessions idle for longer than this; `null`: any age. */
  readonly max_age_hours: number | null;
}

/** The ids `CleanupImageSessions` removes at time `now` (ms). */
export function selectCleanup(registry: Registry, criteria: CleanupCriteria, now: number): string[] {
  const maxAgeMs = criteria.max_age_hours === null ? null : criteria.max_age_hours * 3_600_000;
  return sessionsOf(registry, criteria.image_id)
    .filter((s) => criteria.force || isOrphaned(s))
    .filter((s) => !(criteria.preserve_active && isActive(s)))
    .filter((s) => maxAgeMs === null || now - Date.parse(s.last_activity) > maxAgeMs)
    .map((s) => s.session_id);
}

/** The ids of sessions orphaned for longer than `maxAgeMs` at time `now` (ms): the automatic cleanup. */
export function expiredOrphans(registry: Registry, now: number, maxAgeMs: number): string[] {
  const expired: string[] = [];
  for (const s of registry.sessions.values()) {
    if (s.orphaned_at !== null && now - Date.parse(s.orphaned_at) > maxAgeMs) expired.push(s.session_id);
  }
  return expired;
}

/** Sets a client's current image context; `null` clears it. */
export function setContext(registry: Registry, clientId: string, imageId: string | null): Registry {
  const contexts = new Map(registry.contexts);
  if (imageId === null) contexts.delete(clientId);
  else contexts.set(clientId, imageId);
  return { ...registry, contexts };
}

/** Forgets the contexts that point at a removed image. */
export function dropContextsOf(registry: Registry, imageId: string): Registry {
  const contexts = new Map([...registry.contexts].filter(([, image]) => image !== imageId));
  return { ...registry, contexts };
}
