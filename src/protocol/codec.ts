/**
 * The codec: the one place where wire bytes become typed values and back. Every decoder returns
 * `Decoded<T>`: the value, or a `DecodeError` naming the path. None of them throws.
 */
import type { z } from "zod";
import { fail, type Decoded } from "./errors.js";
import { StuiEvent } from "./events.js";
import { ImageReply, ImageRequest, imageCommands, type ImageCommand, type ImageResult } from "./image.js";
import { checkStructure, DEFAULT_LIMITS, parseJson, type DecodeLimits, type WireInput } from "./json.js";
import { SessionStateData } from "./model.js";
import { Request, type RequestOf, type RequestType } from "./requests.js";
import { Response } from "./responses.js";
import { validate } from "./validate.js";

function decodeWire<T>(input: WireInput, limits: DecodeLimits, decode: (value: unknown) => Decoded<T>): Decoded<T> {
  const parsed = parseJson(input, limits);
  return parsed.ok ? decode(parsed.value) : parsed;
}

/** For values that did not come through `parseJson` (a record read back, an object built in memory). */
function decodeValue<T>(value: unknown, limits: DecodeLimits, decode: (value: unknown) => Decoded<T>): Decoded<T> {
  const problem = checkStructure(value, limits.maxDepth);
  return problem === undefined ? decode(value) : fail(problem);
}

// Client protocol ---------------------------------------------------------------------------

/** `{"SwitchImageContext": {...}}` → `{type: "SwitchImageContext", ...}`. */
export const decodeRequest = (input: WireInput, limits: DecodeLimits = DEFAULT_LIMITS): Decoded<Request> =>
  decodeWire(input, limits, (v) => Request.decode(v));

/** The bare fields of a known request (the body of `stui.api.<endpoint>`). */
export const decodeRequestBody = <K extends RequestType>(
  type: K,
  input: WireInput,
  limits: DecodeLimits = DEFAULT_LIMITS,
): Decoded<RequestOf<K>> => decodeWire(input, limits, (v) => Request.decodeBody(type, v));

export const encodeRequest = (request: Request): string => JSON.stringify(Request.encode(request));

export const decodeResponse = (input: WireInput, limits: DecodeLimits = DEFAULT_LIMITS): Decoded<Response> =>
  decodeWire(input, limits, (v) => Response.decode(v));

export const encodeResponse = (response: Response): string => JSON.stringify(Response.encode(response));

// Image protocol ----------------------------------------------------------------------------

export const decodeImageRequest = (input: WireInput, limits: DecodeLimits = DEFAULT_LIMITS): Decoded<ImageRequest> =>
  decodeWire(input, limits, (v) => ImageRequest.decode(v));

export const encodeImageRequest = (request: ImageRequest): string => JSON.stringify(request);

export const decodeImageReply = (input: WireInput, limits: DecodeLimits = DEFAULT_LIMITS): Decoded<ImageReply> =>
  decodeWire(input, limits, (v) => ImageReply.decode(v));

export const encodeImageReply = (reply: ImageReply): string => JSON.stringify(reply);

/** Types a success reply's `result` by the command it answers. */
export function decodeImageResult<C extends ImageCommand>(command: C, result: unknown): Decoded<ImageResult<C>> {
  const schema: z.ZodType = imageCommands[command].result;
  return validate(schema, result, `${command}.result`) as Decoded<ImageResult<C>>;
}

// Events ------------------------------------------------------------------------------------

export const decodeEvent = (input: WireInput, limits: DecodeLimits = DEFAULT_LIMITS): Decoded<StuiEvent> =>
  decodeWire(input, limits, (v) => StuiEvent.decode(v));

/** Checks an event built in memory against the same schema subscribers validate with. */
export const validateEvent = (event: StuiEvent): Decoded<StuiEvent> =>
  decodeValue(event, DEFAULT_LIMITS, (v) => StuiEvent.decode(v));

export const encodeEvent = (event: StuiEvent): string => JSON.stringify(event);

// Stored records ----------------------------------------------------------------------------

/** A stored session; a record without the image fields (an older STUI's) lands on the defaults. */
export const decodeSessionRecord = (
  input: WireInput,
  limits: DecodeLimits = DEFAULT_LIMITS,
): Decoded<SessionStateData> => decodeWire(input, limits, decodeSessionValue);

/** The same, for a record already parsed (one entry of a larger file). */
export const decodeSessionRecordValue = (
  value: unknown,
  limits: DecodeLimits = DEFAULT_LIMITS,
): Decoded<SessionStateData> => decodeValue(value, limits, decodeSessionValue);

/** The same, for part of a value that came out of `parseJson` (its structure already checked). */
export const validateSessionRecord = (value: unknown): Decoded<SessionStateData> => decodeSessionValue(value);

function decodeSessionValue(value: unknown): Decoded<SessionStateData> {
  return validate(SessionStateData, value, "SessionStateData");
}

export const encodeSessionRecord = (session: SessionStateData): string => JSON.stringify(session);
