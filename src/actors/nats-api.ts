/**
 * The request API as a NATS micro service named `stui` (discoverable with `$SRV.PING`, `$SRV.INFO`
 * and `$SRV.STATS`): one endpoint per request, `stui.api.<request in snake_case>`, taking the
 * request's fields as a JSON body (an empty body is `{}`), plus `stui.api.request` taking the
 * externally tagged `Request`. Every answer is the externally tagged `Response`; an `Error` is also
 * flagged with the service error headers (`Nats-Service-Error`, `Nats-Service-Error-Code`).
 * Instances share the load through the queue group `stui`.
 */
import { Svcm, type Service, type ServiceMsg } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import type { SessionManager } from "./session-manager.js";
import type { Logger } from "../logger.js";
import {
  API_REQUEST_SUBJECT,
  apiSubject,
  DEFAULT_LIMITS,
  decodeRequest,
  decodeRequestBody,
  encodeResponse,
  endpointName,
  errorResponse,
  REQUEST_TYPES,
  SERVICE_NAME,
  type Decoded,
  type ErrorCode,
  type Request,
  type RequestType,
  type Response,
} from "../protocol/index.js";

export interface ApiOptions {
  readonly instanceId: string;
  /** The service version `$SRV.INFO` reports. */
  readonly version: string;
  /** Bodies larger than this are refused with `InvalidRequest`. @default 1048576 (1 MiB) */
  readonly maxBodyBytes?: number;
  /** @default "stui" */
  readonly queueGroup?: string;
}

/** The service error code sent with each protocol error (HTTP-like, as NATS micro services use). */
export const SERVICE_ERROR_CODES: Readonly<Record<ErrorCode, number>> = {
  InvalidRequest: 400,
  ImageNotFound: 404,
  SessionNotFound: 404,
  Conflict: 409,
  EvaluationError: 422,
  Overloaded: 429,
  Internal: 500,
  ImageError: 502,
  ImageUnavailable: 503,
  Timeout: 504,
};

export async function startApi(
  nc: NatsConnection,
  manager: SessionManager,
  options: ApiOptions,
  logger: Logger,
): Promise<Service> {
  const limits = { ...DEFAULT_LIMITS, maxBytes: options.maxBodyBytes ?? DEFAULT_LIMITS.maxBytes };
  const service = await new Svcm(nc).add({
    name: SERVICE_NAME,
    version: options.version,
    description: "STUI multi-image session service",
    queue: options.queueGroup ?? SERVICE_NAME,
    metadata: { instance_id: options.instanceId },
  });
  const serve = (msg: ServiceMsg, decode: () => Decoded<Request>): void => {
    // The framework drops a handler's promise: a rejection here would be unhandled, so none escapes.
    void answer(msg, decode).catch((error: unknown) => {
      logger.error({ err: error, subject: msg.subject }, "answering a request failed");
    });
  };
  const answer = async (msg: ServiceMsg, decode: () => Decoded<Request>): Promise<void> => {
    if (msg.data.length > limits.maxBytes) {
      reply(msg, errorResponse("InvalidRequest", `body of ${msg.data.length} bytes exceeds ${limits.maxBytes} bytes`));
      return;
    }
    const request = decode();
    const response = request.ok
      ? await manager.handle(request.value)
      : errorResponse("InvalidRequest", request.error.message, { path: request.error.path });
    reply(msg, response);
  };
  const body = (msg: ServiceMsg): Uint8Array => (msg.data.length === 0 ? EMPTY_OBJECT : msg.data);
  for (const type of REQUEST_TYPES) {
    service.addEndpoint(endpointName(type), {
      subject: apiSubject(type),
      handler: (_error, msg) => serve(msg, () => decodeRequestBody<RequestType>(type, body(msg), limits)),
    });
  }
  service.addEndpoint("request", {
    subject: API_REQUEST_SUBJECT,
    handler: (_error, msg) => serve(msg, () => decodeRequest(msg.data, limits)),
  });
  return service;
}

const EMPTY_OBJECT = new TextEncoder().encode("{}");

function reply(msg: ServiceMsg, response: Response): void {
  const encoded = encodeResponse(response);
  if (response.type === "Error") msg.respondError(SERVICE_ERROR_CODES[response.code], response.message, encoded);
  else msg.respond(encoded);
}
