/**
 * A simulated Smalltalk image: the image protocol on a real ZeroMQ socket with REP semantics,
 * sessions in memory, and fault switches (see `faults.ts`) that make it misbehave the ways real
 * images do. It stands in for a Pharo image wherever one cannot run: tests, demos, a laptop
 * without a VM.
 *
 * The socket is a ROUTER driven exactly as libzmq drives a REP socket (one request at a time, in
 * arrival order, the envelope sent back as it came), because only a ROUTER tells which peer sent
 * a request: that is what `peers.ts` records.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Router } from "zeromq";
import type { Clock } from "../clock.js";
import {
  decodeImageRequest,
  encodeImageReply,
  timestamp,
  type Decoded,
  type ImageCommand,
  type ImageErrorReply,
  type ImageReply,
  type ImageRequest,
  type ImageResult,
  type ImageSessionInfo,
  type ImageSuccess,
} from "../protocol/index.js";
import { parseJson } from "../protocol/json.js";
import { curveServerOptions, startZapHandler, type CurveServerOptions } from "./curve-auth.js";
import { evaluate } from "./evaluator.js";
import { noFaults, type Faults } from "./faults.js";
import { PeerBook, peerId, type PeerLogEntry } from "./peers.js";

export interface ImageSimOptions {
  /** Reported as `image_name`. */
  readonly name: string;
  /** Reported as `image_version` and answered by `Smalltalk version`. */
  readonly imageVersion: string;
  readonly faults?: Partial<Faults>;
  /**
   * Called instead of replying when `exitOn` matches. The default ends the process with code 3,
   * which is the point: a real image that dies mid-request does not say goodbye.
   */
  readonly onExitRequested?: (command: ImageCommand) => void;
  /** Largest request frame accepted; libzmq drops a peer that sends more. */
  readonly maxMessageSize?: number;
  /** Called on every peer event (a connection accepted or lost, a request received). */
  readonly onPeerEvent?: (entry: PeerLogEntry) => void;
  /** Serves CURVE with these keys (and lets in only these clients' keys, when given). @default plain TCP */
  readonly curve?: CurveServerOptions;
  /** Called with the public key of each CURVE client refused. */
  readonly onRefused?: (publicKey: string) => void;
  /** Timestamps the peer events. @default systemClock */
  readonly clock?: Pick<Clock, "now">;
}

/** Idle sessions last this long (s), as the STUI Pharo server's default. */
export const SESSION_TIMEOUT_SECONDS = 3600;
export const DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024;
/** The bytes the `garbage` fault answers with. */
export const GARBAGE_REPLY = "garbage from stui image-sim: this is not JSON {";

type Session = { readonly session_id: string; readonly client_id: string; readonly created_at: string } & {
  last_activity: string | null;
};

const DELIMITER = Buffer.alloc(0);

export class ImageSim {
  readonly faults: Faults;
  readonly peers: PeerBook;
  private readonly socket: Router;
  private readonly sessions = new Map<string, Session>();
  private readonly startedAt = Date.now();
  private readonly onExitRequested: (command: ImageCommand) => void;
  private readonly onPeerEvent: (entry: PeerLogEntry) => void;
  /** Cuts a reply delay short on close, so a long `delay` cannot hold up a shutdown. */
  private readonly closing = new AbortController();
  private closeZap: () => void = () => undefined;

  constructor(private readonly options: ImageSimOptions) {
    this.faults = { ...noFaults(), ...options.faults };
    this.onExitRequested = options.onExitRequested ?? (() => process.exit(3));
    this.socket = new Router({
      linger: 0,
      maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      ...(options.curve === undefined ? {} : curveServerOptions(options.curve)),
    });
    this.peers = new PeerBook(options.clock);
    const onPeerEvent = options.onPeerEvent ?? (() => undefined);
    // Subscribed before bind, so that no connection is accepted unseen.
    this.socket.events.on("accept", () => onPeerEvent(this.peers.accepted()));
    this.socket.events.on("disconnect", () => onPeerEvent(this.peers.disconnected()));
    this.onPeerEvent = onPeerEvent;
  }

  /** Binds (`tcp://127.0.0.1:*` picks a free port) and answers the endpoint actually bound. */
  async bind(endpoint: string): Promise<string> {
    const clients = this.options.curve?.clients ?? null;
    if (clients !== null) this.closeZap = await startZapHandler(clients, this.options.onRefused ?? (() => undefined));
    await this.socket.bind(endpoint);
    return this.socket.lastEndpoint ?? endpoint;
  }

  /**
   * Answers requests until `close()`, one at a time as a REP socket does: the next request is not
   * read before the last one is answered, so the faults hold up every peer alike.
   */
  async serve(): Promise<void> {
    for (;;) {
      let frames: Buffer[];
      try {
        frames = await this.socket.receive();
      } catch (error) {
        if (this.socket.closed) return;
        throw error;
      }
      const message = splitEnvelope(frames);
      // No delimiter: a REP socket drops such a message without the application seeing it.
      if (message === null) continue;
      const decoded = decodeBody(message.body);
      const command = decoded?.ok === true ? decoded.value.command : null;
      this.onPeerEvent(this.peers.request(peerId(message.routingId), command));
      const reply = this.answer(message.body, decoded);
      if (reply === null) return;
      if (this.faults.delayMs > 0) {
        await sleep(this.faults.delayMs, undefined, { signal: this.closing.signal }).catch(() => undefined);
      }
      if (this.socket.closed) return;
      try {
        // A peer gone meanwhile is not an error: ROUTER drops the reply, as REP would.
        await this.socket.send([...message.envelope, DELIMITER, reply]);
      } catch (error) {
        if (this.socket.closed) return;
        throw error;
      }
    }
  }

  close(): void {
    this.closeZap();
    this.closing.abort();
    if (!this.socket.closed) this.socket.close();
  }

  /**
   * The bytes answering one request (the frames after the delimiter), faults applied; `null` when
   * the exit fault fired.
   */
  answer(frames: readonly Buffer[], decoded = decodeBody(frames)): string | Buffer | null {
    if (decoded?.ok === true && decoded.value.command === this.faults.exitOn) {
      this.onExitRequested(decoded.value.command);
      return null;
    }
    let reply: ImageReply;
    try {
      if (decoded === undefined) {
        reply = this.error(readId(frames[0]), "InvalidRequest", `expected one frame, got ${frames.length}`);
      } else if (!decoded.ok) {
        reply = this.error(readId(frames[0]), "InvalidRequest", decoded.error.message);
      } else {
        reply = this.respond(decoded.value);
      }
    } catch (cause) {
      // A bug here must still produce a reply, or the peer waits for it for good.
      const detail = cause instanceof Error ? cause.message : String(cause);
      reply = this.error(readId(frames[0]), "RuntimeError", detail);
    }
    if (this.faults.garbage) return GARBAGE_REPLY;
    if (this.faults.oversizedBytes !== null) return padTo(encodeImageReply(reply), this.faults.oversizedBytes);
    return encodeImageReply(reply);
  }

  private respond(request: ImageRequest): ImageReply {
    const { id } = request;
    switch (request.command) {
      case "ping":
        return this.success(id, "ping", { message: "pong", status: "ready", uptime: this.uptime() });
      case "system_info":
        return this.success(id, "system_info", {
          image_name: this.options.name,
          image_version: this.options.imageVersion,
          vm_version: `stui image-sim (Node.js ${process.version})`,
          platform: process.platform,
          dialect: "Pharo",
          simulated: true,
          pid: process.pid,
          memory_mb: Math.round(process.memoryUsage().rss / (1024 * 1024)),
        });
      case "evaluate":
        return this.evaluate(id, request.parameters.code);
      case "create_session": {
        const session: Session = {
          session_id: randomUUID(),
          client_id: request.parameters.client_id,
          created_at: timestamp(),
          last_activity: null,
        };
        this.sessions.set(session.session_id, session);
        return this.success(id, "create_session", this.info(session));
      }
      case "restore_session":
      case "get_session_info":
      case "close_session": {
        const { session_id } = request.parameters;
        const session = this.sessions.get(session_id);
        if (session === undefined) return this.error(id, "SessionNotFound", `Session ${session_id} not found`);
        if (request.command === "get_session_info") return this.success(id, "get_session_info", this.info(session));
        if (request.command === "close_session") {
          this.sessions.delete(session_id);
          return this.success(id, "close_session", { session_id, closed: true });
        }
        session.last_activity = timestamp();
        return this.success(id, "restore_session", this.info(session));
      }
      case "list_client_sessions": {
        const { client_id } = request.parameters;
        const sessions = [...this.sessions.values()].filter((s) => s.client_id === client_id).map((s) => this.info(s));
        return this.success(id, "list_client_sessions", { client_id, sessions });
      }
      case "get_session_statistics": {
        const infos = [...this.sessions.values()].map((s) => this.info(s));
        return this.success(id, "get_session_statistics", {
          total_sessions: infos.length,
          active_sessions: infos.filter((s) => s.is_active).length,
        });
      }
    }
  }

  private evaluate(id: string, code: string): ImageReply {
    const started = performance.now();
    const block = this.faults.block;
    if (block !== null && code === block.code) {
      // Stops the whole JS thread, as a busy Pharo image stops its own; only libzmq's I/O thread
      // keeps running, so ZMTP heartbeats are still answered while nothing else is.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, block.seconds * 1000);
      return this.success(id, "evaluate", {
        result: "'done'",
        result_type: "ByteString",
        execution_time: performance.now() - started,
        has_error: false,
      });
    }
    const outcome = evaluate(code, { imageVersion: this.options.imageVersion });
    if (!outcome.ok) return this.error(id, "EvaluationError", outcome.message);
    return this.success(id, "evaluate", {
      result: outcome.result,
      result_type: outcome.resultType,
      execution_time: performance.now() - started,
      has_error: false,
    });
  }

  private info(session: Session): ImageSessionInfo {
    const lastSeen = Date.parse(session.last_activity ?? session.created_at);
    return {
      session_id: session.session_id,
      client_id: session.client_id,
      created_at: session.created_at,
      last_activity: session.last_activity,
      timeout: SESSION_TIMEOUT_SECONDS,
      is_active: Date.now() - lastSeen < SESSION_TIMEOUT_SECONDS * 1000,
    };
  }

  private uptime(): number {
    return Math.floor((Date.now() - this.startedAt) / 1000);
  }

  private success<C extends ImageCommand>(id: string, _command: C, result: ImageResult<C>): ImageSuccess {
    return { id, status: "success", result, timestamp: timestamp() };
  }

  private error(id: string | null, errorType: string, message: string): ImageErrorReply {
    return { id, status: "error", error: message, error_type: errorType, timestamp: timestamp() };
  }
}

/**
 * A ROUTER message split as a REP socket splits it: the envelope (the routing id, and any frames a
 * proxy added) up to the first empty delimiter frame, and the body after it; `null` without one,
 * a message REP would drop.
 */
export function splitEnvelope(
  frames: readonly Buffer[],
): { routingId: Buffer; envelope: Buffer[]; body: Buffer[] } | null {
  const [routingId] = frames;
  // Frame 0 is the routing id ROUTER adds, never empty. A delimiter in the last frame does not
  // count: REP reads envelope frames only while more follow, and drops the message at its end.
  const delimiter = frames.findIndex((frame, index) => index > 0 && index < frames.length - 1 && frame.length === 0);
  if (routingId === undefined || delimiter < 0) return null;
  return { routingId, envelope: frames.slice(0, delimiter), body: frames.slice(delimiter + 1) };
}

/** The request in a body of exactly one frame; `undefined` for any other number of frames. */
function decodeBody(frames: readonly Buffer[]): Decoded<ImageRequest> | undefined {
  return frames.length === 1 && frames[0] !== undefined ? decodeImageRequest(frames[0]) : undefined;
}

/** The id of a request that failed to decode, when it can still be read, so the client can match the error. */
function readId(frame: Buffer | undefined): string | null {
  if (frame === undefined) return null;
  const parsed = parseJson(frame);
  if (!parsed.ok) return null;
  const value = parsed.value;
  if (typeof value !== "object" || value === null || !("id" in value)) return null;
  const { id } = value;
  return typeof id === "string" && id.length >= 1 && id.length <= 256 ? id : null;
}

/**
 * `json` grown to exactly `bytes` bytes with a `padding` field, so it is still a valid reply for a
 * client whose limit is larger; below the size of the reply itself, just `bytes` spaces.
 */
function padTo(json: string, bytes: number): Buffer {
  const overhead = Buffer.byteLength(json, "utf8") + '"padding":"",'.length;
  if (bytes < overhead) return Buffer.alloc(bytes, " ");
  const frame = Buffer.alloc(bytes, "x");
  const head = '{"padding":"';
  frame.write(head, 0, "utf8");
  const tail = `",${json.slice(1)}`;
  frame.write(tail, bytes - Buffer.byteLength(tail, "utf8"), "utf8");
  return frame;
}
