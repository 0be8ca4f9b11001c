/**
 * The request API as a NATS micro service named `stui` (discoverable with `$SRV.PING`, `$SRV.INFO`
 * and `$SRV.STATS`): one endpoint per request, `stui.api.<request in snake_case>`, taking the
 * request's fields as a JSON body (an empty body is `{}`), plus `stui.api.request` taking the
 * externally tagged `Request`. Every answer is the externally tagged `Response`; an `Error` is also
 * flagged with the service error headers (`Nats-Service-Error`, `Nats-Service-Error-Code`).
 * Instances share the load through the queue group `stui`. Only requests whose reply subject is
 * under an accepted inbox prefix are answered (see `reply-guard.ts`).
 */
import { Svcm, type Service, type ServiceMsg } from "@nats-io/services";
import { PermissionViolationError, type NatsConnection } from "@nats-io/transport-node";
import { guardReplies, type ReplyGuardOptions } from "./reply-guard.js";
import type { HandleOptions, RequestHandler } from "../ports.js";
import { FORWARDED_BY_HEADER } from "./peers.js";
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
  instanceRequestSubject,
  REQUEST_TYPES,
  SERVICE_NAME,
  type Decoded,
  type ErrorCode,
  type Request,
  type RequestType,
  type Response,
} from "../protocol/index.js";
import { ApiStartError } from "../errors.js";
import { systemClock } from "../clock.js";

export interface ApiOptions extends Pick<ReplyGuardOptions, "replyPrefixes" | "onRefused"> {
  readonly instanceId: string;
  /** The service version `$SRV.INFO` reports. */
  readonly version: string;
  /** Bodies larger than this are refused with `InvalidRequest`. @default 1048576 (1 MiB) */
  readonly maxBodyBytes?: number;
  /** @default "stui" */
  readonly queueGroup?: string;
  /**
   * Also take requests addressed to this instance on `stui.instance.<instance_id>.request` (shared
   * images: what other instances forward to the owner). @default false
   */
  readonly instanceEndpoint?: boolean;
  /** Told of every answer sent (for metrics), with the endpoint's name and the seconds it took. */
  readonly onAnswer?: (endpoint: string, response: Response, seconds: number) => void;
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
  StoreUnavailable: 503,
  Timeout: 504,
};

/**
 * Starts the micro service and its endpoints, or rejects with `ApiStartError` when the server
 * refuses any of their subscriptions.
 */
export async function startApi(
  nc: NatsConnection,
  handler: RequestHandler,
  options: ApiOptions,
  logger: Logger,
): Promise<Service> {
  const limits = { ...DEFAULT_LIMITS, maxBytes: options.maxBodyBytes ?? DEFAULT_LIMITS.maxBytes };
  // Every subscription of the service, `$SRV.*` included, answers only to accepted inboxes.
  const guarded = guardReplies(nc, options, logger);
  // Heard before the first SUB goes out, so that no refusal is missed.
  const refusals = watchRefusals(nc);
  const service = await new Svcm(guarded).add({
    name: SERVICE_NAME,
    version: options.version,
    description: "STUI multi-image session service",
    queue: options.queueGroup ?? SERVICE_NAME,
    metadata: { instance_id: options.instanceId },
  });
  const serve = (
    endpoint: string,
    msg: ServiceMsg,
    decode: () => Decoded<Request>,
    handleOptions: HandleOptions = {},
  ): void => {
    // The framework drops a handler's promise: a rejection here would be unhandled, so none escapes.
    const started = systemClock.monotonic();
    void answer(msg, decode, handleOptions)
      .then((response) => {
        const seconds = (systemClock.monotonic() - started) / 1000;
        options.onAnswer?.(endpoint, response, seconds);
        logger.debug(
          {
            endpoint,
            answer: response.type,
            ...(response.type === "Error" ? { code: response.code } : {}),
            ms: Math.round(seconds * 1e6) / 1e3,
          },
          `answered ${endpoint}`,
        );
      })
      .catch((error: unknown) => {
        logger.error({ err: error, subject: msg.subject }, "answering a request failed");
      });
  };
  const answer = async (
    msg: ServiceMsg,
    decode: () => Decoded<Request>,
    handleOptions: HandleOptions,
  ): Promise<Response> => {
    const maxPayload = nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
    if (msg.data.length > limits.maxBytes) {
      const refusal = `body of ${msg.data.length} bytes exceeds ${limits.maxBytes} bytes`;
      return reply(msg, errorResponse("InvalidRequest", refusal), maxPayload);
    }
    const request = decode();
    const response = request.ok
      ? await handler.handle(request.value, handleOptions)
      : errorResponse("InvalidRequest", bounded(request.error.message, MAX_MESSAGE_CHARS), {
          path: bounded(request.error.path, MAX_PATH_CHARS),
        });
    return reply(msg, response, maxPayload);
  };
  const body = (msg: ServiceMsg): Uint8Array => (msg.data.length === 0 ? EMPTY_OBJECT : msg.data);
  for (const type of REQUEST_TYPES) {
    service.addEndpoint(endpointName(type), {
      subject: apiSubject(type),
      handler: (_error, msg) =>
        serve(endpointName(type), msg, () => decodeRequestBody<RequestType>(type, body(msg), limits)),
    });
  }
  service.addEndpoint("request", {
    subject: API_REQUEST_SUBJECT,
    handler: (_error, msg) => serve("request", msg, () => decodeRequest(msg.data, limits)),
  });
  if (options.instanceEndpoint === true) {
    service.addEndpoint("instance", {
      subject: instanceRequestSubject(options.instanceId),
      handler: (_error, msg) =>
        serve("instance", msg, () => decodeRequest(msg.data, limits), {
          forwarded: (msg.headers?.get(FORWARDED_BY_HEADER) ?? "") !== "",
        }),
    });
  }
  // The endpoints' subscriptions reach the server before "started" is claimed. A SUB the server
  // refuses is answered with `-ERR 'Permissions Violation for Subscription to …'` before the PONG
  // of this flush; nats.js closes that subscription and the framework stops the whole service.
  await nc.flush();
  refusals.attach(service);
  // The status iterator hands the refusal over in a microtask: let those run before looking.
  await new Promise((resolve) => setImmediate(resolve));
  if (service.isStopped) {
    const why = await service.stopped;
    const refused = refusals.first();
    throw refused === null
      ? new ApiStartError(null, null, why instanceof Error ? why : null)
      : new ApiStartError(refused.subject, refused.queue ?? null, refused);
  }
  return service;
}

/**
 * The server's refusals of the service's subscriptions (its endpoints and `$SRV.*`), from the
 * connection's status. nats.js closes a refused subscription only when it has a queue group (it
 * compares the subscription's queue `""` with the error's `undefined` otherwise), and the framework
 * stops the service for a closed one; a refused `$SRV.*` subscription it leaves open, deaf. So any
 * refusal stops the service here, with the refusal as the reason, at start as at run time.
 */
function watchRefusals(nc: NatsConnection): {
  attach(service: Service): void;
  first(): PermissionViolationError | null;
} {
  const seen: PermissionViolationError[] = [];
  let attached: Service | null = null;
  const stop = (service: Service, error: PermissionViolationError): void => {
    if (!service.isStopped) void service.stop(error);
  };
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type !== "error" || !(status.error instanceof PermissionViolationError)) continue;
      const error = status.error;
      if (error.operation !== "subscription" || !isServiceSubject(error.subject)) continue;
      seen.push(error);
      if (attached !== null) stop(attached, error);
    }
  })();
  return {
    attach(service) {
      attached = service;
      const [refused] = seen;
      if (refused !== undefined) stop(service, refused);
    },
    first: () => seen[0] ?? null,
  };
}

const API_SUBJECTS: ReadonlySet<string> = new Set([...REQUEST_TYPES.map(apiSubject), API_REQUEST_SUBJECT]);
const isServiceSubject = (subject: string): boolean =>
  API_SUBJECTS.has(subject) || subject.startsWith("$SRV.") || /^stui\.instance\.[^.]+\.request$/.test(subject);

const EMPTY_OBJECT = new TextEncoder().encode("{}");

/** NATS's default; the server's own figure is used once known. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Room for the headers that go with an answer. */
const HEADER_ROOM = 4096;
/** A diagnosis may quote the input (a key, a value): it is cut, so an answer never echoes megabytes. */
const MAX_MESSAGE_CHARS = 1024;
const MAX_PATH_CHARS = 256;
const MAX_HEADER_CHARS = 256;

const bounded = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

function reply(msg: ServiceMsg, response: Response, maxPayload: number): Response {
  let answer = response;
  let encoded = encodeResponse(answer);
  const size = Buffer.byteLength(encoded);
  if (size > maxPayload - HEADER_ROOM) {
    answer = errorResponse(
      "Internal",
      `the answer (${size} bytes) exceeds what NATS carries (max_payload ${maxPayload} bytes): ask for less, e.g. one image`,
    );
    encoded = encodeResponse(answer);
  }
  if (answer.type === "Error") {
    // A header value is one line: the full message is in the body.
    const description = bounded(answer.message.replace(/[\r\n]+/g, " "), MAX_HEADER_CHARS);
    msg.respondError(SERVICE_ERROR_CODES[answer.code], description, encoded);
  } else {
    msg.respond(encoded);
  }
  return answer;
}
