/**
 * The other instances over NATS: a request is forwarded to `stui.instance.<id>.request` (the tagged
 * `Request`, as on `stui.api.request`) with the header `Stui-Forwarded-By: <this instance>`, which
 * tells the receiver to answer it itself rather than forward it again.
 */
import { headers, RequestError as NatsRequestError, TimeoutError, type NatsConnection } from "@nats-io/transport-node";
import { RequestError } from "../errors.js";
import type { Peers } from "../ports.js";
import {
  decodeResponse,
  encodeRequest,
  instanceRequestSubject,
  RESPONSE_FOR,
  type RequestOf,
  type RequestType,
  type ResponseTo,
} from "../protocol/index.js";

export const FORWARDED_BY_HEADER = "Stui-Forwarded-By";

/** Longer than any image request (an `Evaluate` may run for a while). */
export const DEFAULT_FORWARD_TIMEOUT_MS = 30_000;

export class NatsPeers implements Peers {
  constructor(
    private readonly nc: NatsConnection,
    private readonly self: string,
    private readonly timeoutMs = DEFAULT_FORWARD_TIMEOUT_MS,
  ) {}

  async ask<K extends RequestType>(instanceId: string, request: RequestOf<K>): Promise<ResponseTo<K>> {
    const subject = instanceRequestSubject(instanceId);
    const h = headers();
    h.set(FORWARDED_BY_HEADER, this.self);
    let reply;
    try {
      reply = await this.nc.request(subject, encodeRequest(request), { timeout: this.timeoutMs, headers: h });
    } catch (error) {
      if (error instanceof NatsRequestError && error.isNoResponders()) {
        throw new RequestError("ImageUnavailable", `instance ${instanceId} does not answer (stopped or gone): retry`, {
          instance_id: instanceId,
        });
      }
      if (error instanceof TimeoutError) {
        throw new RequestError("Timeout", `instance ${instanceId} did not answer within ${this.timeoutMs} ms`, {
          instance_id: instanceId,
        });
      }
      throw error;
    }
    const decoded = decodeResponse(reply.data);
    if (!decoded.ok) {
      throw new RequestError("Internal", `instance ${instanceId} sent a malformed response: ${decoded.error.message}`);
    }
    const response = decoded.value;
    if (response.type !== "Error" && response.type !== RESPONSE_FOR[request.type]) {
      throw new RequestError("Internal", `instance ${instanceId} answered ${request.type} with ${response.type}`);
    }
    return response as ResponseTo<K>;
  }
}
