/**
 * The image side: the JSON a Smalltalk image (the STUI Pharo server, or `stui image-sim`) speaks
 * over its ZeroMQ REP socket. Requests are tagged by `command`, replies by `status`; a reply's
 * `result` is typed by the command of the request it answers (correlated by `id`).
 */
import { z } from "zod";
import { Count, Id, Millis, Timestamp } from "./primitives.js";
import { FieldTagged } from "./tagged.js";

/** A session as the image reports it. */
export const ImageSessionInfo = z.object({
  session_id: Id,
  client_id: Id,
  created_at: Timestamp,
  last_activity: Timestamp.nullable().default(null),
  /** Idle seconds after which the image may drop the session. */
  timeout: z.number().nonnegative(),
  is_active: z.boolean(),
});
export type ImageSessionInfo = z.infer<typeof ImageSessionInfo>;

const NoParameters = z.object({});
const BySession = z.object({ session_id: Id });
const ByClient = z.object({ client_id: Id });

/** Every command: its parameters and the `result` of its success reply. */
export const imageCommands = {
  ping: {
    parameters: NoParameters,
    result: z.object({ message: z.string(), status: z.string(), uptime: z.number().nonnegative() }),
  },
  system_info: {
    parameters: NoParameters,
    // Images add what they like (memory, dialect, ...): kept, not required.
    result: z.looseObject({
      image_name: z.string(),
      image_version: z.string(),
      vm_version: z.string(),
      platform: z.string(),
    }),
  },
  evaluate: {
    parameters: z.object({ code: z.string() }),
    result: z.object({
      result: z.string(),
      result_type: z.string(),
      execution_time: Millis,
      has_error: z.boolean(),
    }),
  },
  create_session: { parameters: ByClient, result: ImageSessionInfo },
  restore_session: { parameters: BySession, result: ImageSessionInfo },
  close_session: { parameters: BySession, result: z.object({ session_id: Id, closed: z.boolean() }) },
  get_session_info: { parameters: BySession, result: ImageSessionInfo },
  list_client_sessions: {
    parameters: ByClient,
    result: z.object({ client_id: Id, sessions: z.array(ImageSessionInfo) }),
  },
  get_session_statistics: {
    parameters: NoParameters,
    result: z.object({ total_sessions: Count, active_sessions: Count }),
  },
} as const;

export type ImageCommand = keyof typeof imageCommands;
export const IMAGE_COMMANDS = Object.keys(imageCommands) as ImageCommand[];
export type ImageParameters<C extends ImageCommand> = z.output<(typeof imageCommands)[C]["parameters"]>;
export type ImageResult<C extends ImageCommand> = z.output<(typeof imageCommands)[C]["result"]>;

/** Error types an image reports; others may appear and are kept as they are. */
export const IMAGE_ERROR_TYPES = [
  "SessionError",
  "SessionNotFound",
  "RuntimeError",
  "EvaluationError",
  "InvalidRequest",
] as const;

function requestVariant<C extends ImageCommand, P extends z.ZodObject>(command: C, parameters: P) {
  // A command without parameters may leave `parameters` out.
  return z.object({ id: Id, command: z.literal(command), parameters: parameters.prefault({} as z.input<P>) });
}

const imageRequestVariants = {
  ping: requestVariant("ping", imageCommands.ping.parameters),
  system_info: requestVariant("system_info", imageCommands.system_info.parameters),
  evaluate: requestVariant("evaluate", imageCommands.evaluate.parameters),
  create_session: requestVariant("create_session", imageCommands.create_session.parameters),
  restore_session: requestVariant("restore_session", imageCommands.restore_session.parameters),
  close_session: requestVariant("close_session", imageCommands.close_session.parameters),
  get_session_info: requestVariant("get_session_info", imageCommands.get_session_info.parameters),
  list_client_sessions: requestVariant("list_client_sessions", imageCommands.list_client_sessions.parameters),
  get_session_statistics: requestVariant("get_session_statistics", imageCommands.get_session_statistics.parameters),
} satisfies Record<ImageCommand, z.ZodObject>;

export const ImageRequest = new FieldTagged("ImageRequest", "command", imageRequestVariants);
export type ImageRequest = z.output<(typeof imageRequestVariants)[ImageCommand]>;
export type ImageRequestOf<C extends ImageCommand> = z.output<(typeof imageRequestVariants)[C]>;

const imageReplyVariants = {
  success: z.object({
    id: Id,
    status: z.literal("success"),
    /** Typed by the command of the request this answers: see `decodeImageResult`. */
    result: z.unknown(),
    timestamp: Timestamp.nullable().default(null),
  }),
  error: z.object({
    /** `null` when the image could not read the request's id. */
    id: Id.nullable(),
    status: z.literal("error"),
    error: z.string(),
    error_type: z.string(),
    timestamp: Timestamp.nullable().default(null),
  }),
};

export const ImageReply = new FieldTagged("ImageReply", "status", imageReplyVariants);
export type ImageReply = z.output<(typeof imageReplyVariants)[keyof typeof imageReplyVariants]>;
export type ImageSuccess = z.output<typeof imageReplyVariants.success>;
export type ImageErrorReply = z.output<typeof imageReplyVariants.error>;

/** Builds a request for `command`; the caller supplies the correlation id. */
export function imageRequest<C extends ImageCommand>(
  id: string,
  command: C,
  parameters: ImageParameters<C>,
): ImageRequestOf<C> {
  return { id, command, parameters } as ImageRequestOf<C>;
}
