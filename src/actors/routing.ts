/**
 * Any instance answers (with `cluster.lease_ttl_ms`): a request that needs an image's connection
 * goes to the instance that owns the image (forwarded over NATS, answered as if local); what the
 * shared store holds is answered here; image statuses are gathered from their owners.
 */
import { RequestError } from "../errors.js";
import { isoTime } from "../clock.js";
import type { ImageLeases, SharedImage } from "./image-leases.js";
import type { ImageCatalog, Peers } from "../ports.js";
import type { ImageConnectionStatus, RequestOf, RequestType } from "../protocol/index.js";

const LIST_IMAGES = { type: "ListImages" } as RequestOf<"ListImages">;
import { imageStatuses, stateOf, type ManagerCore } from "./session-ops.js";

/** What an instance knows of the others, and how it reaches them. */
export interface ClusterView {
  /** This instance's `instance_id`. */
  readonly self: string;
  readonly leases: ImageLeases;
  readonly peers: Peers;
  /** The image list the instances share. */
  readonly catalog: ImageCatalog;
}

/** The core as a request handler sees it. */
export interface RoutedCore extends ManagerCore {
  /** `null`: one instance, every image is here. */
  readonly cluster: ClusterView | null;
  /** The request was forwarded here by another instance: answer from what is here only. */
  readonly forwarded: boolean;
}

/** The image whose owner must answer the request (it needs the image's connection); `null`: any instance. */
function ownerBoundImage(core: RoutedCore, request: RequestOf<RequestType>): string | null {
  switch (request.type) {
    case "CreateSession":
    case "GetImageConnectionStatus":
    case "CleanupImageSessions":
    case "ConnectImage":
    case "RetryImage":
      return request.image_id;
    case "SwitchImageContext":
      return request.to_image_id;
    case "Evaluate":
      return request.image_id ?? stateOf(core).registry.contexts.get(request.client_id) ?? null;
    case "CloseSession":
      return stateOf(core).registry.get(request.session_id)?.image_id ?? null;
    default:
      return null;
  }
}

/**
 * The instance the request must be forwarded to, or `null` to answer it here. Rejects with
 * `ImageUnavailable` when the image is shared but nobody owns it right now (a takeover is under way).
 */
export function forwardTarget(core: RoutedCore, request: RequestOf<RequestType>): string | null {
  const { cluster } = core;
  if (cluster === null || core.forwarded) return null;
  const imageId = ownerBoundImage(core, request);
  if (imageId === null || stateOf(core).images.has(imageId)) return null;
  const shared = cluster.leases.image(imageId);
  // Not shared: answered here (`ImageNotFound`, or a new image for `ConnectImage`).
  if (shared === undefined) return null;
  if (shared.owner === null) throw unowned(imageId);
  return shared.owner === cluster.self ? null : shared.owner;
}

export const unowned = (imageId: string): RequestError =>
  new RequestError(
    "ImageUnavailable",
    `no instance owns image ${imageId} right now (its owner stopped or died; another takes it over once its lease lapses): retry in a few seconds`,
    { image_id: imageId },
  );

/**
 * Every image's status: this instance's own, then (unless forwarded) the other shared images' from
 * their owners, one `ListImages` per owner in parallel. An image nobody owns, or whose owner does
 * not answer, is listed `Unknown`. In image id order when shared; in the order added otherwise.
 */
export async function clusterStatuses(core: RoutedCore): Promise<ImageConnectionStatus[]> {
  const local = imageStatuses(core);
  const { cluster } = core;
  if (cluster === null || core.forwarded) return local;
  const here = new Set(local.map((s) => s.image_id));
  const remote = cluster.leases.images().filter((i) => !here.has(i.config.id));
  const owners = new Set(remote.flatMap((i) => (i.owner === null || i.owner === cluster.self ? [] : [i.owner])));
  const answers = await Promise.all(
    [...owners].map(async (owner) => {
      try {
        const answer = await cluster.peers.ask(owner, LIST_IMAGES);
        return answer.type === "Images" ? answer.images.filter((s) => s.owner === owner) : [];
      } catch {
        return [];
      }
    }),
  );
  const reported = new Map(answers.flat().map((s) => [s.image_id, s]));
  const rest = remote.map((i) => reported.get(i.config.id) ?? unknownStatus(core, i));
  return [...local, ...rest].sort((a, b) => a.image_id.localeCompare(b.image_id));
}

/** A shared image as known without its owner's answer: its configuration and the stored sessions. */
function unknownStatus(core: ManagerCore, shared: SharedImage): ImageConnectionStatus {
  const { registry } = stateOf(core);
  const counts = registry.countsOf(shared.config.id);
  return {
    image_id: shared.config.id,
    name: shared.config.name ?? null,
    address: shared.config.address,
    status: "Unknown",
    connection_health: "Unknown",
    last_seen: null,
    last_activity: registry.lastActivityOf(shared.config.id),
    session_count: counts.total,
    active_sessions: counts.active,
    orphaned_sessions: counts.orphaned,
    rtt_ms: null,
    image_name: null,
    image_version: null,
    owner: shared.owner,
    lease_expires_at: shared.expiresAt === null ? null : isoTime(shared.expiresAt),
    reconnect_attempt: null,
    next_attempt_at: null,
    failure: null,
  };
}

/** How long `ConnectImage` waits for a shared image's first owner to connect it. */
const CONNECT_WAIT_MS = 5000;

/**
 * A shared image's status once some instance has Connected it, or as it stands after
 * `CONNECT_WAIT_MS` (its first attempt failed, or no instance has taken its lease yet).
 */
export async function awaitConnected(core: RoutedCore, imageId: string): Promise<ImageConnectionStatus> {
  const deadline = Date.now() + CONNECT_WAIT_MS;
  for (;;) {
    const status = (await clusterStatuses(core)).find((s) => s.image_id === imageId);
    if (status === undefined) throw new RequestError("ImageNotFound", `no image ${imageId}`);
    if (status.status === "Connected" || Date.now() >= deadline) return status;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
