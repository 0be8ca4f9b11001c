/**
 * What the service answers: one success variant per request, or `Error`.
 */
import { z } from "zod";
import {
  ConnectionHealthSummary,
  ImageConnectionStatus,
  ImageSessionStats,
  SessionMetadata,
  SessionStateData,
} from "./model.js";
import { Count, Details, ErrorCode, Id, ImageId, Millis, Timestamp } from "./primitives.js";
import type { RequestType } from "./requests.js";
import { ExternallyTagged, type TaggedUnion, type VariantOf } from "./tagged.js";

export const responseVariants = {
  ImageSessions: z.object({ sessions: z.array(SessionMetadata) }),
  ImageSessionStats: ImageSessionStats,
  CleanupResult: z.object({
    image_id: ImageId,
    removed_session_ids: z.array(Id),
    remaining_sessions: Count,
  }),
  ContextSwitched: z.object({
    client_id: Id,
    from_image_id: ImageId.nullable(),
    to_image_id: ImageId,
    preserve_context: z.boolean(),
    at: Timestamp,
  }),
  ImageConnectionStatus: ImageConnectionStatus,
  SessionCreated: z.object({ session: SessionStateData }),
  SessionClosed: z.object({ session_id: Id, saved: z.boolean() }),
  EvaluationResult: z.object({
    image_id: ImageId,
    result: z.string(),
    result_type: z.string(),
    /** As the image reports it, in milliseconds. */
    execution_time: Millis,
    has_error: z.boolean(),
  }),
  ImageConnected: ImageConnectionStatus,
  ImageDisconnected: z.object({ image_id: ImageId }),
  Images: z.object({ images: z.array(ImageConnectionStatus) }),
  ConnectionHealthSummary: ConnectionHealthSummary,
  /** `image_id` `null`: the client has no current image context. */
  ClientContext: z.object({ client_id: Id, image_id: ImageId.nullable() }),
  Error: z.object({
    code: ErrorCode,
    message: z.string(),
    details: Details.nullable().default(null),
  }),
};

export const Response = new ExternallyTagged("Response", responseVariants);
export type Response = TaggedUnion<typeof responseVariants>;
export type ResponseType = Response["type"];
export type ResponseOf<K extends ResponseType> = VariantOf<Response, K>;
export type ErrorResponse = ResponseOf<"Error">;

/** Which success variant answers which request: the typed contract of `handle(request)`. */
export const RESPONSE_FOR = {
  ListImageSessions: "ImageSessions",
  GetImageSessionStats: "ImageSessionStats",
  CleanupImageSessions: "CleanupResult",
  SwitchImageContext: "ContextSwitched",
  GetImageConnectionStatus: "ImageConnectionStatus",
  CreateSession: "SessionCreated",
  CloseSession: "SessionClosed",
  Evaluate: "EvaluationResult",
  ConnectImage: "ImageConnected",
  DisconnectImage: "ImageDisconnected",
  RetryImage: "ImageConnectionStatus",
  ListImages: "Images",
  GetConnectionHealthSummary: "ConnectionHealthSummary",
  GetClientContext: "ClientContext",
} as const satisfies Record<RequestType, Exclude<ResponseType, "Error">>;

/** The answer to request `K`: its success variant or an error. */
export type ResponseTo<K extends RequestType> = ResponseOf<(typeof RESPONSE_FOR)[K]> | ErrorResponse;

export const errorResponse = (code: ErrorCode, message: string, details: Details | null = null): ErrorResponse => ({
  type: "Error",
  code,
  message,
  details,
});
