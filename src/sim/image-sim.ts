/**
 * A simulated Smalltalk image: the image protocol on a real ZeroMQ REP socket, sessions in memory,
 * and fault switches (see `faults.ts`) that make it misbehave the ways real images do. It stands
 * in for a Pharo image wherever one cannot run: tests, demos, a laptop without a VM.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Reply } from "zeromq";
import {
  decodeImageRequest,
  encodeImageReply,
  timestamp,
  type ImageCommand,
  type ImageErrorReply,
  type ImageReply,
  type ImageRequest,
  type ImageResult,
  type ImageSessionInfo,
  type ImageSuccess,
} from "../protocol/index.js";
import { parseJson } from "../protocol/json.js";
import { evaluate } from "./evaluator.js";
import { noFaults, type Faults } from "./faults.js";

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
}

/** Idle sessions last this long (s), as the STUI Pharo server's default. */
export const SESSION_TIMEOUT_SECONDS = 3600;
export const DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024;
/** The bytes the `garbage` fault answers with. */
export const GARBAGE_REPLY = "garbage from stui image-sim: this is not JSON {";

type Session = { readonly session_id: string; readonly client_id: string; readonly created_at: string } & {
  last_activity: string | null;
};

export class ImageSim {
  readonly faults: Faults;
  private readonly socket: Reply;
  private readonly sessions = new Map<string, Session>();
  private readonly startedAt = Date.now();
  private readonly onExitRequested: (command: ImageCommand) => void;
  /** Cuts a reply delay short on close, so a long `delay` cannot hold up a shutdown. */
  private readonly closing = new AbortController();

  constructor(private readonly options: ImageSimOptions) {
    this.faults = { ...noFaults(), ...options.faults };
    this.onExitRequested = options.onExitRequested ?? (() => process.exit(3));
    this.socket = new Reply({ linger: 0, maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE });
  }

  /** Binds (`tcp://127.0.0.1:*` picks a free port) and answers the endpoint actually bound. */
  async bind(endpoint: string): Promise<string> {
    await this.socket.bind(endpoint);
    return this.socket.lastEndpoint ?? endpoint;
  }

  /** Answers requests until `close()`. A REP socket must answer each request before the next. */
  async serve(): Promise<void> {
    for (;;) {
      let frames: Buffer[];
      try {
        frames = await this.socket.receive();
      } catch (error) {
        if (this.socket.closed) return;
        throw error;
      }
      const reply = this.answer(frames);
      if (reply === null) return;
      if (this.faults.delayMs > 0) {
        await sleep(this.faults.delayMs, undefined, { signal: this.closing.signal }).catch(() => undefined);
      }
      if (this.socket.closed) return;
      try {
        await this.socket.send(reply);
      } catch (error) {
        if (this.socket.closed) return;
        throw error;
      }
    }
  }

  close(): void {
    this.closing.abort();
    if (!this.socket.closed) this.socket.close();
  }

  /** The bytes answering one request, faults applied; `null` when the exit fault fired. */
  answer(frames: readonly Buffer[]): string | Buffer | null {
    const decoded = frames.length === 1 && frames[0] !== undefined ? decodeImageRequest(frames[0]) : undefined;
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
      // A bug here must still produce a reply, or the REP socket is stuck for good.
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
