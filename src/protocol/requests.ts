/**
 * What clients ask the service: the seed's `Request` enum plus what a client needs besides.
 * Optional (`Option`) fields may be left out and mean `null`; boolean flags may be left out and
 * take the documented default (docs/protocol.md).
 */
import { z } from "zod";
import { Id, ImageId } from "./primitives.js";
import { ExternallyTagged, type TaggedUnion, type VariantOf } from "./tagged.js";

/** Source code sent to `Evaluate`: bounded so one request cannot tie up an image with megabytes. */
const Code = z
  .string()
  .min(1)
  .max(256 * 1024);

export const requestVariants = {
  ListImageSessions: z.object({
    image_id: ImageId.nullable().default(null),
    include_disconnected: z.boolean().default(false),
  }),
  GetImageSessionStats: z.object({ image_id: ImageId }),
  CleanupImageSessions: z.object({
    image_id: ImageId,
    /** Also remove sessions that are not orphaned. */
    force: z.boolean().default(false),
    /** Never remove a session that is active, even with `force`. */
    preserve_active: z.boolean().default(true),
    /** Only remove sessions idle for longer than this; `null`: any age. */
    max_age_hours: z.number().nonnegative().nullable().default(null),
    /**
     * Only these sessions, of those the rules above select (what a preview listed, so that a
     * session orphaned since is not removed unseen); `null`: every session they select.
     */
    session_ids: z.array(Id).max(10_000).nullable().default(null),
  }),
  SwitchImageContext: z.object({
    client_id: Id,
    /** The context the client believes it is in; a mismatch is a `Conflict`. `null`: don't check. */
    from_image_id: ImageId.nullable().default(null),
    to_image_id: ImageId,
    /** Keep the client's sessions on the image it leaves. */
    preserve_context: z.boolean().default(true),
  }),
  GetImageConnectionStatus: z.object({ image_id: ImageId }),
  CreateSession: z.object({
    image_id: ImageId,
    client_id: Id,
    session_name: z.string().max(256).nullable().default(null),
    description: z.string().max(4096).nullable().default(null),
  }),
  CloseSession: z.object({
    session_id: Id,
    /** Keep the stored record (closed) instead of deleting it. */
    save_state: z.boolean().default(true),
  }),
  Evaluate: z.object({
    client_id: Id,
    /** `null`: the client's current image context. */
    image_id: ImageId.nullable().default(null),
    code: Code,
  }),
  ConnectImage: z.object({
    image_id: ImageId,
    address: z.string().min(1).max(1024),
    name: z.string().max(256).nullable().default(null),
  }),
  DisconnectImage: z.object({ image_id: ImageId }),
  /**
   * Tries the image's link now, as a network change does: a Connected image is probed at once, a
   * Reconnecting one attempts now with its backoff reset, a Failed one starts over.
   */
  RetryImage: z.object({ image_id: ImageId }),
  ListImages: z.object({}),
  GetConnectionHealthSummary: z.object({}),
  /** A client's current image context (what `Evaluate` without an image uses). */
  GetClientContext: z.object({ client_id: Id }),
};

export const Request = new ExternallyTagged("Request", requestVariants);
export type Request = TaggedUnion<typeof requestVariants>;
export type RequestType = Request["type"];
export type RequestOf<K extends RequestType> = VariantOf<Request, K>;
export const REQUEST_TYPES = Request.names;
