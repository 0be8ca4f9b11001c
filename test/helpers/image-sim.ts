/**
 * `stui image-sim` as a test fixture: started as a real child process on a free port, its faults
 * switched at run time through its stdin, its peers (connections) read from its `peers` answer and
 * its `--peer-log` lines.
 */
import { Dealer } from "zeromq";
import { IMAGE_COMMANDS, type ImageCommand } from "../../src/protocol/index.js";
import type { PeerLogEntry, PeerReport, PeerStats } from "../../src/sim/peers.js";
import { DEFAULT_WAIT_MS, spawnStui, type Exit, type ProcessHandle, type WaitOptions } from "./processes.js";

export type { PeerLogEntry, PeerReport, PeerStats };

export interface ImageSimStartOptions {
  /** Default `tcp://127.0.0.1:*`: a free port, read back from the `ready` line. */
  readonly bind?: string;
  readonly name?: string;
  readonly imageVersion?: string;
  /** More flags, e.g. `["--delay-ms", "500"]`. */
  readonly extraArgs?: readonly string[];
  /** Starts it with `--peer-log`, for `peerLog()` and `waitForPeerEvent()`. @default false */
  readonly peerLog?: boolean;
  readonly readyTimeoutMs?: number;
}

export interface ImageSimHandle extends AsyncDisposable {
  /** The endpoint actually bound, e.g. `tcp://127.0.0.1:41873`. */
  readonly endpoint: string;
  readonly pid: number;
  readonly process: ProcessHandle;
  /** Sends a control line (`delay 500`, `garbage on`, ...) and waits for its `ok`; rejects on `error`. */
  control(line: string): Promise<void>;
  /** Asks the `peers` control line: the connections open now and what each peer sent. */
  peers(): Promise<PeerReport>;
  /**
   * The `--peer-log` lines printed so far (from the output line index `since` on, see
   * `process.lineCount()`), parsed; empty without `peerLog: true`.
   */
  peerLog(since?: number): PeerLogEntry[];
  /** The first peer log entry (from `since` on) that `match` accepts; rejects on timeout or exit. */
  waitForPeerEvent(match: (entry: PeerLogEntry) => boolean, options?: WaitOptions): Promise<PeerLogEntry>;
  /** Signals the sim by pid; `false` if it had already exited. */
  kill(signal?: NodeJS.Signals): boolean;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<Exit>;
}

export async function startImageSim(options: ImageSimStartOptions = {}): Promise<ImageSimHandle> {
  const args = ["image-sim", "--bind", options.bind ?? "tcp://127.0.0.1:*"];
  if (options.name !== undefined) args.push("--name", options.name);
  if (options.imageVersion !== undefined) args.push("--image-version", options.imageVersion);
  if (options.peerLog === true) args.push("--peer-log");
  args.push(...(options.extraArgs ?? []));
  const child = spawnStui(args);
  let endpoint: string;
  try {
    const ready = await child.waitForLine(/^ready (\S+)$/, { timeoutMs: options.readyTimeoutMs ?? DEFAULT_WAIT_MS });
    endpoint = ready[1] ?? "";
  } catch (error) {
    await child.stop();
    throw error;
  }
  /** Sends `command` and waits for its answer, `ok <answer>` (matching `ok`) or `error ...`. */
  const ask = async (command: string, ok: string): Promise<string> => {
    const since = child.lineCount();
    child.send(command);
    const answer = await child.waitForLine(new RegExp(`^(ok ${ok}|error .*)$`), { since });
    if (answer[0].startsWith("error ")) throw new Error(`image-sim refused "${command}": ${answer[0]}`);
    return answer[0].slice("ok ".length);
  };
  const peerLog = (since = 0): PeerLogEntry[] =>
    child
      .lines()
      .slice(since)
      .flatMap((line) => (line.startsWith(PEER_LINE) ? [parsePeerLogEntry(line.slice(PEER_LINE.length))] : []));

  return {
    endpoint,
    pid: child.pid,
    process: child,
    async control(line) {
      const command = line.trim();
      await ask(command, command === "peers" ? "peers \\{.*\\}" : escapeRegExp(command));
    },
    async peers() {
      const answer = await ask("peers", "peers \\{.*\\}");
      return parsePeerReport(answer.slice("peers ".length));
    },
    peerLog,
    async waitForPeerEvent(match, { since = 0, timeoutMs = DEFAULT_WAIT_MS } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (let from = since; ;) {
        const seen = child.lineCount();
        const found = peerLog(from).find(match);
        if (found !== undefined) return found;
        from = seen;
        // Resolves on the next peer line (or rejects on timeout or exit, showing the output).
        await child.waitForLine(/^peer /, { since: from, timeoutMs: Math.max(0, deadline - Date.now()) });
      }
    },
    kill: (signal = "SIGTERM") => child.signal(signal),
    stop: () => child.stop(),
    [Symbol.asyncDispose]: () => child[Symbol.asyncDispose](),
  };
}

const PEER_LINE = "peer ";

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A command name or `null` as the sim reports it; `undefined` for anything else. */
const commandOrNull = (value: unknown): ImageCommand | null | undefined =>
  value === null ? null : IMAGE_COMMANDS.find((c) => c === value);

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null;

function parseJsonObject(text: string, what: string): Json {
  const value: unknown = JSON.parse(text);
  if (!isObject(value)) throw new Error(`image-sim ${what}: expected a JSON object, got ${text}`);
  return value;
}

/** One `--peer-log` line's JSON, checked field by field so that a test cannot misread it. */
export function parsePeerLogEntry(text: string): PeerLogEntry {
  const v = parseJsonObject(text, "peer log");
  const { at, event, peer, connected } = v;
  if (typeof at !== "number" || typeof connected !== "number") throw new Error(`image-sim peer log: ${text}`);
  if ((event === "accepted" || event === "disconnected") && peer === null && !("command" in v)) {
    return { at, event, peer, connected };
  }
  const command = commandOrNull(v["command"]);
  if (event === "request" && typeof peer === "string" && command !== undefined) {
    return { at, event, peer, command, connected };
  }
  throw new Error(`image-sim peer log: unexpected entry ${text}`);
}

function parsePeerReport(text: string): PeerReport {
  const v = parseJsonObject(text, "peers");
  const { connected, peers } = v;
  if (typeof connected !== "number" || !Array.isArray(peers)) throw new Error(`image-sim peers: ${text}`);
  return { connected, peers: peers.map((p: unknown) => parsePeerStats(p, text)) };
}

function parsePeerStats(value: unknown, text: string): PeerStats {
  if (isObject(value)) {
    const { peer, requests, last_at } = value;
    const last_command = commandOrNull(value["last_command"]);
    if (typeof peer === "string" && typeof requests === "number" && last_command !== undefined) {
      if (typeof last_at === "number") return { peer, requests, last_command, last_at };
    }
  }
  throw new Error(`image-sim peers: unexpected peer in ${text}`);
}

/** A DEALER on the sim's REP socket: sends the empty delimiter frame REP expects. */
export class ImageSimClient implements Disposable {
  readonly socket: Dealer;

  constructor(
    endpoint: string,
    options: { receiveTimeout?: number; heartbeatInterval?: number; heartbeatTimeout?: number } = {},
  ) {
    this.socket = new Dealer({ linger: 0, receiveTimeout: DEFAULT_WAIT_MS, ...options });
    this.socket.connect(endpoint);
  }

  /** Sends one request (an object is JSON-encoded; a string or buffer goes as it is). */
  async send(request: object | string | Buffer): Promise<void> {
    const body = typeof request === "string" || Buffer.isBuffer(request) ? request : JSON.stringify(request);
    await this.socket.send(["", body]);
  }

  /** The next reply's body frame (after the empty delimiter). */
  async receive(): Promise<Buffer> {
    const [delimiter, body, ...rest] = await this.socket.receive();
    if (delimiter === undefined || delimiter.length !== 0 || body === undefined || rest.length > 0) {
      throw new Error(`expected [empty, body] from REP, got ${[delimiter, body, ...rest].length} frames`);
    }
    return body;
  }

  async request(request: object | string | Buffer): Promise<Buffer> {
    await this.send(request);
    return this.receive();
  }

  close(): void {
    if (!this.socket.closed) this.socket.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
