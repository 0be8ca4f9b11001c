/**
 * What the panel's keys do, as a small interface over the client API: each action resolves with
 * what to show (a result or an error, never a throw), so the view only draws outcomes. The view
 * tests give their own implementation; `stui panel` gives `clientActions`.
 */
import type { StuiClient } from "../../client.js";
import { selectCleanup } from "../../machines/session-registry.js";
import type { ImageConnectionStatus, ImageSessionStats, SessionMetadata } from "../../protocol/index.js";
import { messageOf } from "../client-run.js";

/** An action's outcome: `ok` false is an error (the service's, or no answer). */
export interface Outcome {
  readonly ok: boolean;
  /** One line for the status bar. */
  readonly text: string;
  /** More lines for a result dialog (an evaluation's result, the sessions removed). */
  readonly lines?: readonly string[];
}

/** The selected image's detail: its sessions and stats. */
export interface Detail {
  readonly sessions: readonly SessionMetadata[];
  readonly stats: ImageSessionStats | null;
}

export interface PanelActions {
  detail(imageId: string): Promise<Detail | { readonly error: string }>;
  switchContext(clientId: string, imageId: string): Promise<Outcome>;
  createSession(clientId: string, imageId: string, name: string | null): Promise<Outcome>;
  closeSession(sessionId: string): Promise<Outcome>;
  evaluate(clientId: string, imageId: string, code: string): Promise<Outcome>;
  connect(imageId: string, address: string, name: string | null): Promise<Outcome>;
  disconnect(imageId: string): Promise<Outcome>;
  /** Asks a `Failed` image to connect again. */
  retry(image: ImageConnectionStatus): Promise<Outcome>;
  /** The sessions the cleanup of `imageId` would remove now (its orphans). */
  cleanupPreview(imageId: string): Promise<readonly SessionMetadata[] | { readonly error: string }>;
  /** Removes those of `sessionIds` that are still orphaned; says which were removed. */
  cleanup(imageId: string, sessionIds: readonly string[]): Promise<Outcome & { readonly removed?: readonly string[] }>;
}

const failure = (error: unknown): Outcome => ({ ok: false, text: messageOf(error) });

/** Runs `work`, turning a thrown error (no answer, NATS down) into an outcome. */
async function attempt<T extends Outcome>(work: () => Promise<T | Outcome>): Promise<T | Outcome> {
  try {
    return await work();
  } catch (error) {
    return failure(error);
  }
}

const refused = (r: { code: string; message: string }): Outcome => ({ ok: false, text: `${r.code}: ${r.message}` });

export function clientActions(client: StuiClient): PanelActions {
  return {
    detail: async (imageId) => {
      try {
        const [sessions, stats] = await Promise.all([
          client.listImageSessions({ image_id: imageId, include_disconnected: true }),
          client.getImageSessionStats({ image_id: imageId }),
        ]);
        if (sessions.type === "Error") return { error: `${sessions.code}: ${sessions.message}` };
        return { sessions: sessions.sessions, stats: stats.type === "Error" ? null : stats };
      } catch (error) {
        return { error: messageOf(error) };
      }
    },
    switchContext: (clientId, imageId) =>
      attempt(async () => {
        const r = await client.switchImageContext({ client_id: clientId, to_image_id: imageId });
        if (r.type === "Error") return refused(r);
        return { ok: true, text: `${clientId} now works on ${r.to_image_id} (was ${r.from_image_id ?? "none"})` };
      }),
    createSession: (clientId, imageId, name) =>
      attempt(async () => {
        const r = await client.createSession({ image_id: imageId, client_id: clientId, session_name: name });
        if (r.type === "Error") return refused(r);
        return { ok: true, text: `created session ${r.session.session_id} on ${imageId}` };
      }),
    closeSession: (sessionId) =>
      attempt(async () => {
        const r = await client.closeSession({ session_id: sessionId });
        if (r.type === "Error") return refused(r);
        return { ok: true, text: `closed session ${r.session_id}${r.saved ? " (record kept)" : ""}` };
      }),
    evaluate: (clientId, imageId, code) =>
      attempt(async () => {
        const r = await client.evaluate({ client_id: clientId, image_id: imageId, code });
        if (r.type === "Error") return refused(r);
        const head = `${r.has_error ? "error" : "result"} on ${imageId} (${r.result_type}, ${r.execution_time} ms)`;
        return { ok: !r.has_error, text: head, lines: r.result.split("\n") };
      }),
    connect: (imageId, address, name) =>
      attempt(async () => {
        const r = await client.connectImage({ image_id: imageId, address, name });
        if (r.type === "Error") return refused(r);
        return { ok: true, text: `${imageId} at ${r.address}: ${r.status}` };
      }),
    disconnect: (imageId) =>
      attempt(async () => {
        const r = await client.disconnectImage({ image_id: imageId });
        if (r.type === "Error") return refused(r);
        return { ok: true, text: `disconnected ${r.image_id}; its sessions are orphaned` };
      }),
    retry: (image) =>
      attempt(async () => {
        if (image.status !== "Failed") {
          return { ok: false, text: `${image.image_id} is ${image.status}: only a Failed image is retried by hand` };
        }
        const r = await client.connectImage({ image_id: image.image_id, address: image.address, name: image.name });
        if (r.type === "Error") return refused(r);
        return { ok: true, text: `retrying ${image.image_id}: ${r.status}` };
      }),
    cleanupPreview: async (imageId) => {
      try {
        const r = await client.listImageSessions({ image_id: imageId, include_disconnected: true });
        if (r.type === "Error") return { error: `${r.code}: ${r.message}` };
        const ids = new Set(
          selectCleanup(r.sessions, { force: false, preserve_active: true, max_age_hours: null }, Date.now()),
        );
        return r.sessions.filter((s) => ids.has(s.session_id));
      } catch (error) {
        return { error: messageOf(error) };
      }
    },
    cleanup: (imageId, sessionIds) =>
      attempt(async () => {
        const r = await client.cleanupImageSessions({ image_id: imageId, session_ids: [...sessionIds] });
        if (r.type === "Error") return refused(r);
        const removed = r.removed_session_ids;
        return {
          ok: true,
          text: `removed ${removed.length} session(s) of ${imageId}; ${r.remaining_sessions} remain`,
          lines: removed,
          removed,
        };
      }),
  };
}
