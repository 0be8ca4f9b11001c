/**
 * One handler per request of the client protocol. A handler returns its success response or
 * throws a `RequestError` (or an image or store error), which `SessionManager.handle` turns into
 * the protocol's `Error` response.
 */
import { requestImage, waitForStatus } from "./image-connection.js";
import {
  clientKey,
  closeOnImage,
  announce,
  deleteSession,
  imageKey,
  imageStatus,
  isoNow,
  notice,
  orphanSessions,
  removeSessions,
  requireSession,
  sessionKey,
  stateOf,
  writeSession,
} from "./session-ops.js";
import { awaitConnected, clusterStatuses, type RoutedCore } from "./routing.js";
import { RequestError } from "../errors.js";
import { UNREVISIONED } from "../ports.js";
import { isStoreWriteError } from "../errors.js";
import type { ManagerWork } from "../machines/session-manager.js";
import { isActive, isOrphaned } from "../machines/session-registry.js";
import type { RESPONSE_FOR } from "../protocol/index.js";
import {
  CONNECTION_HEALTHS,
  CONNECTION_STATUSES,
  type ImageConnectionStatus,
  type NatsLinkStatus,
  type RequestOf,
  type RequestType,
  type ResponseOf,
  type SessionMetadata,
  type SessionStateData,
} from "../protocol/index.js";

/** What the handlers need besides the core. */
export interface HandlerContext extends RoutedCore {
  /** The service's NATS link for the health summary; `null` when running without NATS. */
  readonly natsStatus: () => NatsLinkStatus | null;
  /** Runs background work, tried again while the store cannot write. */
  readonly runLater: (work: ManagerWork) => void;
}

type Success<K extends RequestType> = ResponseOf<(typeof RESPONSE_FOR)[K]>;
type Handler<K extends RequestType> = (ctx: HandlerContext, request: RequestOf<K>) => Promise<Success<K>>;

function requireImage(ctx: HandlerContext, imageId: string): ImageConnectionStatus {
  const status = imageStatus(ctx, imageId);
  if (status === null) throw new RequestError("ImageNotFound", `no image ${imageId}`);
  return status;
}

/** An image is known to queries while it is connected or still has stored sessions. */
function requireKnownImage(ctx: HandlerContext, imageId: string): void {
  const { images, registry } = stateOf(ctx);
  if (images.has(imageId) || registry.hasSessionsOn(imageId)) return;
  if (ctx.cluster?.leases.image(imageId) !== undefined) return;
  throw new RequestError("ImageNotFound", `no image ${imageId} and no sessions stored for it`);
}

function imageRef(ctx: HandlerContext, imageId: string) {
  const entry = stateOf(ctx).images.get(imageId);
  if (entry === undefined) throw new RequestError("ImageNotFound", `no image ${imageId}`);
  return entry.ref;
}

/** A session as listed: `is_active` is `isActive`, so an orphan is never listed active as well. */
function metadata(session: SessionStateData, status: SessionMetadata["connection_status"]): SessionMetadata {
  const { workspace_context: _workspace, image_metadata: _metadata, ...fields } = session;
  return { ...fields, is_active: isActive(session), connection_status: status };
}

const listImageSessions: Handler<"ListImageSessions"> = async (ctx, request) => {
  if (request.image_id !== null) requireKnownImage(ctx, request.image_id);
  const { registry } = stateOf(ctx);
  const statusOf = new Map((await clusterStatuses(ctx)).map((s) => [s.image_id, s.status]));
  const sessions: SessionMetadata[] = [];
  for (const s of registry.sessionsOf(request.image_id)) {
    const status = statusOf.get(s.image_id) ?? "Disconnected";
    if (request.include_disconnected || (status === "Connected" && !isOrphaned(s))) sessions.push(metadata(s, status));
  }
  return { type: "ImageSessions", sessions };
};

const getImageSessionStats: Handler<"GetImageSessionStats"> = async (ctx, request) => {
  requireKnownImage(ctx, request.image_id);
  return Promise.resolve({ type: "ImageSessionStats", ...stateOf(ctx).registry.statsOf(request.image_id) });
};

const cleanupImageSessions: Handler<"CleanupImageSessions"> = async (ctx, request) => {
  requireKnownImage(ctx, request.image_id);
  const removed = await ctx.queue.run(imageKey(request.image_id), () => {
    const ids = stateOf(ctx).registry.selectCleanup(request, ctx.now());
    return removeSessions(ctx, ids, request.force ? "cleanup (forced)" : "cleanup");
  });
  return {
    type: "CleanupResult",
    image_id: request.image_id,
    removed_session_ids: removed,
    remaining_sessions: stateOf(ctx).registry.countOf(request.image_id),
  };
};

const switchImageContext: Handler<"SwitchImageContext"> = (ctx, request) =>
  ctx.queue.run(clientKey(request.client_id), async () => {
    const current = stateOf(ctx).registry.contexts.get(request.client_id) ?? null;
    if (request.from_image_id !== null && request.from_image_id !== current) {
      throw new RequestError(
        "Conflict",
        `client ${request.client_id} is in context ${current ?? "(none)"}, not ${request.from_image_id}`,
        { current_image_id: current },
      );
    }
    const target = requireImage(ctx, request.to_image_id);
    if (target.status === "Failed") {
      const entry = stateOf(ctx).images.get(request.to_image_id);
      const reason = entry?.crash ?? entry?.ref.getSnapshot().context.reason ?? "unknown";
      throw new RequestError("ImageUnavailable", `image ${request.to_image_id} is Failed: ${reason}`, {
        status: target.status,
        reason,
      });
    }
    if (!request.preserve_context && current !== null && current !== request.to_image_id) {
      await closeClientSessions(ctx, request.client_id, current);
    }
    // One compare-and-set on the context's revision: a change made meanwhile (by anyone) is a Conflict.
    const revision = stateOf(ctx).registry.contextRevisionOf(request.client_id);
    if (current !== request.to_image_id) await ctx.store.putContext(request.client_id, request.to_image_id, revision);
    const switched = {
      client_id: request.client_id,
      from_image_id: current,
      to_image_id: request.to_image_id,
      preserve_context: request.preserve_context,
      at: isoNow(ctx),
    };
    announce(ctx, [{ kind: "context", data: switched }]);
    return { type: "ContextSwitched", ...switched };
  });

/**
 * Without `preserve_context`, the client's open sessions on the image it leaves are closed: here,
 * or by that image's owner when another instance owns it.
 */
async function closeClientSessions(ctx: HandlerContext, clientId: string, imageId: string): Promise<void> {
  const owner = stateOf(ctx).images.has(imageId) ? null : (ctx.cluster?.leases.image(imageId)?.owner ?? null);
  for (const s of stateOf(ctx).registry.sessionsOf(imageId)) {
    if (s.client_id !== clientId || !isActive(s)) continue;
    const request: RequestOf<"CloseSession"> = { type: "CloseSession", session_id: s.session_id, save_state: true };
    if (owner === null || ctx.cluster === null || owner === ctx.cluster.self) {
      await closeSession(ctx, request, "context switched away");
      continue;
    }
    const answer = await ctx.cluster.peers.ask(owner, request);
    if (answer.type === "Error") throw new RequestError(answer.code, `instance ${owner}: ${answer.message}`);
  }
}

const getImageConnectionStatus: Handler<"GetImageConnectionStatus"> = async (ctx, request) =>
  Promise.resolve({ type: "ImageConnectionStatus", ...requireImage(ctx, request.image_id) });

const createSession: Handler<"CreateSession"> = async (ctx, request) => {
  const ref = imageRef(ctx, request.image_id);
  await ctx.store.ensureWritable(); // rather than a session on the image that could not be stored
  const info = await requestImage(ref, "create_session", { client_id: request.client_id });
  const image = requireImage(ctx, request.image_id);
  const existing = stateOf(ctx).registry.get(info.session_id);
  if (existing !== undefined) {
    throw new RequestError(
      "ImageError",
      `image ${request.image_id} returned session id ${info.session_id}, already used on image ${existing.image_id}`,
    );
  }
  const session: SessionStateData = {
    session_id: info.session_id,
    client_id: request.client_id,
    session_name: request.session_name,
    description: request.description,
    created_at: info.created_at,
    last_activity: isoNow(ctx),
    is_active: info.is_active,
    orphaned_at: null,
    workspace_context: { current_workspace: null, input_history: [], variables: {} },
    image_id: request.image_id,
    image_address: image.address,
    image_name: image.image_name,
    image_version: image.image_version,
    image_metadata: {},
  };
  return ctx.queue.run(sessionKey(session.session_id), async () => {
    try {
      await ctx.fence(session.image_id);
      await ctx.store.put(session, UNREVISIONED);
    } catch (error) {
      // Not stored, so not acknowledged: the image need not keep it either.
      await closeOnImage(ctx, session);
      throw error;
    }
    announce(ctx, [notice("created", session, null, session.last_activity)]);
    return { type: "SessionCreated", session };
  });
};

const closeSession = (
  ctx: HandlerContext,
  request: RequestOf<"CloseSession">,
  reason: string | null = null,
): Promise<Success<"CloseSession">> =>
  ctx.queue.run(sessionKey(request.session_id), async () => {
    const session = requireSession(ctx, request.session_id);
    const closed = { type: "SessionClosed", session_id: session.session_id, saved: request.save_state } as const;
    if (!session.is_active && request.save_state) return closed;
    await closeOnImage(ctx, session);
    const at = isoNow(ctx);
    if (request.save_state) {
      await writeSession(ctx, { ...session, is_active: false, last_activity: at });
      announce(ctx, [notice("closed", session, reason, at)]);
    } else {
      await deleteSession(ctx, session.session_id);
      announce(ctx, [notice("closed", session, reason, at)]);
    }
    return closed;
  });

const evaluate: Handler<"Evaluate"> = async (ctx, request) => {
  const imageId = request.image_id ?? stateOf(ctx).registry.contexts.get(request.client_id) ?? null;
  if (imageId === null) {
    throw new RequestError(
      "InvalidRequest",
      `client ${request.client_id} has no current image context: name image_id or switch first`,
    );
  }
  const result = await requestImage(imageRef(ctx, imageId), "evaluate", { code: request.code });
  return { type: "EvaluationResult", image_id: imageId, ...result };
};

const connectImage: Handler<"ConnectImage"> = async (ctx, request) => {
  const existing = imageStatus(ctx, request.image_id);
  if (existing !== null) {
    if (existing.address !== request.address) {
      throw new RequestError(
        "Conflict",
        `image ${request.image_id} is already connected to ${existing.address}; disconnect it first`,
      );
    }
    if (existing.status === "Failed") ctx.actor.send({ type: "IMAGE.RETRY", imageId: request.image_id });
    return { type: "ImageConnected", ...requireImage(ctx, request.image_id) };
  }
  const config = { id: request.image_id, address: request.address, name: request.name };
  if (ctx.cluster !== null) {
    // Shared: added to the list every instance follows; whoever takes its lease connects it.
    const listed = await ctx.cluster.catalog.add(config);
    if (listed.address !== request.address) {
      throw new RequestError(
        "Conflict",
        `image ${request.image_id} is already listed with ${listed.address}; disconnect it first`,
      );
    }
    ctx.cluster.leases.add(config);
    return { type: "ImageConnected", ...(await awaitConnected(ctx, request.image_id)) };
  }
  ctx.actor.send({ type: "IMAGE.ADD", config });
  // Answer with the first outcome (Connected, or the first failed attempt) rather than Unknown.
  const ref = imageRef(ctx, request.image_id);
  const connectTimeoutMs = ref.getSnapshot().context.policy.connectTimeoutMs;
  await waitForStatus(ref, "Connected", connectTimeoutMs + 100).catch(() => undefined);
  return { type: "ImageConnected", ...requireImage(ctx, request.image_id) };
};

const retryImage: Handler<"RetryImage"> = (ctx, request) => {
  const imageId = request.image_id;
  // A Failed one starts over ("retry requested"; a crashed connection is spawned anew); any other
  // is told the network changed: a Connected one probes, a Reconnecting one attempts now.
  const failed = requireImage(ctx, imageId).status === "Failed";
  ctx.actor.send(failed ? { type: "IMAGE.RETRY", imageId } : { type: "IMAGES.NETWORK_CHANGED", imageId });
  return Promise.resolve({ type: "ImageConnectionStatus", ...requireImage(ctx, imageId) });
};

const disconnectImage: Handler<"DisconnectImage"> = async (ctx, request) => {
  const { cluster } = ctx;
  if (cluster === null || cluster.leases.image(request.image_id) === undefined) requireImage(ctx, request.image_id);
  await ctx.store.ensureWritable(); // before the removal, which is not rolled back
  if (cluster === null) {
    ctx.actor.send({ type: "IMAGE.REMOVE", imageId: request.image_id });
  } else {
    // Off the shared list: every instance stops competing for it; its owner disconnects it.
    await cluster.catalog.remove(request.image_id);
    cluster.leases.remove(request.image_id);
  }
  const reason = `image ${request.image_id} removed`;
  try {
    await orphanSessions(ctx, request.image_id, reason);
  } catch (error) {
    if (!isStoreWriteError(error)) throw error;
    // The image is disconnected; its sessions are orphaned as soon as the store takes writes.
    ctx.runLater({ kind: "orphan", imageId: request.image_id, reason });
  }
  return { type: "ImageDisconnected", image_id: request.image_id };
};

const listImages: Handler<"ListImages"> = async (ctx) => ({ type: "Images", images: await clusterStatuses(ctx) });

const getConnectionHealthSummary: Handler<"GetConnectionHealthSummary"> = async (ctx) => {
  const images = await clusterStatuses(ctx);
  const by_status = Object.fromEntries(CONNECTION_STATUSES.map((s) => [s, 0])) as Record<
    (typeof CONNECTION_STATUSES)[number],
    number
  >;
  const by_health = Object.fromEntries(CONNECTION_HEALTHS.map((h) => [h, 0])) as Record<
    (typeof CONNECTION_HEALTHS)[number],
    number
  >;
  for (const image of images) {
    by_status[image.status] += 1;
    by_health[image.connection_health] += 1;
  }
  return {
    type: "ConnectionHealthSummary",
    total_images: images.length,
    by_status,
    by_health,
    images: images.map((i) => ({
      image_id: i.image_id,
      status: i.status,
      connection_health: i.connection_health,
      rtt_ms: i.rtt_ms,
      owner: i.owner,
    })),
    nats: ctx.natsStatus(),
    store: ctx.store.status(),
  };
};

const getClientContext: Handler<"GetClientContext"> = async (ctx, request) =>
  Promise.resolve({
    type: "ClientContext",
    client_id: request.client_id,
    image_id: stateOf(ctx).registry.contexts.get(request.client_id) ?? null,
  });

/** Every request's handler: the table `SessionManager.handle` dispatches on. */
export const handlers: { readonly [K in RequestType]: Handler<K> } = {
  ListImageSessions: listImageSessions,
  GetImageSessionStats: getImageSessionStats,
  CleanupImageSessions: cleanupImageSessions,
  SwitchImageContext: switchImageContext,
  GetImageConnectionStatus: getImageConnectionStatus,
  CreateSession: createSession,
  CloseSession: (ctx, request) => closeSession(ctx, request),
  Evaluate: evaluate,
  ConnectImage: connectImage,
  DisconnectImage: disconnectImage,
  RetryImage: retryImage,
  ListImages: listImages,
  GetConnectionHealthSummary: getConnectionHealthSummary,
  GetClientContext: getClientContext,
};
