/**
 * The session manager's bookkeeping: sessions (with their store revisions) indexed by id and by
 * image, each client's current image context, stats, and the selections for cleanup.
 *
 * Definitions (documented for clients in the README):
 * - a session is **orphaned** once `orphaned_at` is set (its image was removed, stayed Failed past
 *   the grace period, or lost it across a restart);
 * - a session is **active** when `is_active` is true and it is not orphaned: a live session on a
 *   live image. `preserve_active` protects exactly these.
 *
 * Unlike the rest of a machine's context, the registry is changed in place, and only by the
 * manager's `storeChanged` action, from the store's change feed: it is a view of the store, which
 * others may write to too. Copying 100 000 entries per write cost 40 ms a write (bench/sessions).
 * Everything else reads it. Sessions are listed in the order they were added, and a loaded store is
 * added oldest first, so listings are oldest first without sorting.
 */
import type { StoreChange, StoredContext } from "../ports.js";
import type { ImageSessionStats, SessionStateData, Timestamp } from "../protocol/index.js";

/** What the definitions below read of a session: a stored record or a listed `SessionMetadata`. */
export type SessionFlags = Pick<SessionStateData, "is_active" | "orphaned_at">;

export const isOrphaned = (s: SessionFlags): boolean => s.orphaned_at !== null;
export const isActive = (s: SessionFlags): boolean => s.is_active && !isOrphaned(s);

/** A session's active / orphaned / total figures, as `ImageConnectionStatus` and the stats report them. */
export interface SessionCounts {
  readonly total: number;
  readonly active: number;
  readonly orphaned: number;
}

export function countSessions(sessions: Iterable<SessionFlags>): SessionCounts {
  let total = 0;
  let active = 0;
  let orphaned = 0;
  for (const s of sessions) {
    total += 1;
    if (isActive(s)) active += 1;
    if (isOrphaned(s)) orphaned += 1;
  }
  return { total, active, orphaned };
}

/** A session with the store revision its next write must name. */
export interface RevisedSession {
  readonly session: SessionStateData;
  readonly revision: number;
}

export interface CleanupCriteria {
  readonly image_id: string;
  /** Also remove sessions that are not orphaned. */
  readonly force: boolean;
  /** Never remove an active session, even with `force`. */
  readonly preserve_active: boolean;
  /** Only sessions idle for longer than this; `null`: any age. */
  readonly max_age_hours: number | null;
  /** Only these sessions, of those the rules select; `null` or left out: any. */
  readonly session_ids?: readonly string[] | null;
}

/** What the cleanup rule reads of a session. */
export type CleanupCandidate = SessionFlags & Pick<SessionStateData, "session_id" | "last_activity">;

/**
 * The cleanup rule, over one image's sessions (in the order given): orphaned ones (any with
 * `force`), never an active one with `preserve_active`, only those idle longer than
 * `max_age_hours`, only those `session_ids` names when given. The service applies it to its
 * registry; `stui cleanup --dry-run` and the panel's cleanup preview to a listing.
 */
export function selectCleanup(
  sessions: Iterable<CleanupCandidate>,
  criteria: Omit<CleanupCriteria, "image_id">,
  now: number,
): string[] {
  const maxAgeMs = criteria.max_age_hours === null ? null : criteria.max_age_hours * 3_600_000;
  const named =
    criteria.session_ids === undefined || criteria.session_ids === null ? null : new Set(criteria.session_ids);
  return [...sessions]
    .filter((s) => named === null || named.has(s.session_id))
    .filter((s) => criteria.force || isOrphaned(s))
    .filter((s) => !(criteria.preserve_active && isActive(s)))
    .filter((s) => maxAgeMs === null || now - Date.parse(s.last_activity) > maxAgeMs)
    .map((s) => s.session_id);
}

export class SessionRegistry {
  private readonly byId = new Map<string, RevisedSession>();
  private readonly byImage = new Map<string, Map<string, SessionStateData>>();
  /** The latest `last_activity` seen per image, also of sessions removed since. */
  private readonly lastActivity = new Map<string, { readonly at: Timestamp; readonly ms: number }>();
  private readonly clientContexts = new Map<string, string>();
  private readonly contextRevisions = new Map<string, number>();

  /** A registry of loaded records, oldest first. */
  static from(
    records: Iterable<RevisedSession> = [],
    contexts: ReadonlyMap<string, StoredContext> = new Map(),
  ): SessionRegistry {
    const registry = new SessionRegistry();
    // Each timestamp parsed once, not twice per comparison: 100 000 records sorted in 0.9 s otherwise.
    const keyed = Array.from(records, (r) => ({ at: Date.parse(r.session.created_at), r }));
    keyed.sort((a, b) => a.at - b.at);
    for (const { r } of keyed) registry.put(r.session, r.revision);
    for (const [client, c] of contexts) registry.setContext(client, c.imageId, c.revision);
    return registry;
  }

  /**
   * Applies a change the store made durable: the registry is a view of the store. A change older
   * than the revision held (a feed may repeat one) is ignored.
   */
  apply(change: StoreChange): void {
    if (change.kind === "context") {
      const held = this.contextRevisions.get(change.clientId) ?? 0;
      if (change.context !== null && change.context.revision < held) return;
      this.setContext(change.clientId, change.context?.imageId ?? null, change.context?.revision ?? 0);
    } else if (change.stored === null) {
      this.remove(change.sessionId);
    } else if (change.stored.revision >= (this.revisionOf(change.sessionId) ?? 0)) {
      this.put(change.stored.session, change.stored.revision);
    }
  }

  get size(): number {
    return this.byId.size;
  }

  get(sessionId: string): SessionStateData | undefined {
    return this.byId.get(sessionId)?.session;
  }

  revisionOf(sessionId: string): number | undefined {
    return this.byId.get(sessionId)?.revision;
  }

  put(session: SessionStateData, revision: number): void {
    const previous = this.byId.get(session.session_id)?.session;
    if (previous !== undefined && previous.image_id !== session.image_id) {
      this.byImage.get(previous.image_id)?.delete(session.session_id);
    }
    this.byId.set(session.session_id, { session, revision });
    let ofImage = this.byImage.get(session.image_id);
    if (ofImage === undefined) {
      ofImage = new Map();
      this.byImage.set(session.image_id, ofImage);
    }
    ofImage.set(session.session_id, session);
    const last = this.lastActivity.get(session.image_id);
    const ms = Date.parse(session.last_activity);
    if (last === undefined || ms > last.ms) {
      this.lastActivity.set(session.image_id, { at: session.last_activity, ms });
    }
  }

  remove(sessionId: string): void {
    const entry = this.byId.get(sessionId);
    if (entry === undefined) return;
    this.byId.delete(sessionId);
    const ofImage = this.byImage.get(entry.session.image_id);
    ofImage?.delete(sessionId);
    if (ofImage?.size === 0) this.byImage.delete(entry.session.image_id);
  }

  /** The sessions of one image, or of all images when `imageId` is null, oldest first. */
  sessionsOf(imageId: string | null): SessionStateData[] {
    if (imageId !== null) return [...(this.byImage.get(imageId)?.values() ?? [])];
    return Array.from(this.byId.values(), (r) => r.session);
  }

  countOf(imageId: string): number {
    return this.byImage.get(imageId)?.size ?? 0;
  }

  /** Whether any session is stored for the image. */
  hasSessionsOn(imageId: string): boolean {
    return this.byImage.has(imageId);
  }

  /** The image ids that sessions are stored for. */
  imageIds(): string[] {
    return [...this.byImage.keys()];
  }

  /** The latest session activity on the image, `null` if none was ever seen. */
  lastActivityOf(imageId: string): Timestamp | null {
    return this.lastActivity.get(imageId)?.at ?? null;
  }

  /** The image's sessions counted: total, active, orphaned. */
  countsOf(imageId: string): SessionCounts {
    return countSessions(this.byImage.get(imageId)?.values() ?? []);
  }

  statsOf(imageId: string): ImageSessionStats {
    const counts = this.countsOf(imageId);
    return {
      image_id: imageId,
      total_sessions: counts.total,
      active_sessions: counts.active,
      orphaned_sessions: counts.orphaned,
      last_activity: this.lastActivityOf(imageId),
    };
  }

  /** The ids `CleanupImageSessions` removes at time `now` (ms). */
  selectCleanup(criteria: CleanupCriteria, now: number): string[] {
    return selectCleanup(this.byImage.get(criteria.image_id)?.values() ?? [], criteria, now);
  }

  /** The ids of sessions orphaned for longer than `maxAgeMs` at time `now` (ms): the automatic cleanup. */
  expiredOrphans(now: number, maxAgeMs: number): string[] {
    const expired: string[] = [];
    for (const { session } of this.byId.values()) {
      if (session.orphaned_at !== null && now - Date.parse(session.orphaned_at) > maxAgeMs) {
        expired.push(session.session_id);
      }
    }
    return expired;
  }

  /** Each client's current image context (client id → image id). */
  get contexts(): ReadonlyMap<string, string> {
    return this.clientContexts;
  }

  /** The revision a compare-and-set of the client's context must name (`0`: none stored). */
  contextRevisionOf(clientId: string): number {
    return this.contextRevisions.get(clientId) ?? 0;
  }

  /** Sets a client's current image context at its store revision; `null` clears it. */
  setContext(clientId: string, imageId: string | null, revision = 0): void {
    if (imageId === null) {
      this.clientContexts.delete(clientId);
      this.contextRevisions.delete(clientId);
    } else {
      this.clientContexts.set(clientId, imageId);
      this.contextRevisions.set(clientId, revision);
    }
  }
}
