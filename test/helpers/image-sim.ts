/**
 * `stui image-sim` as a test fixture: started as a real child process on a free port, its faults
 * switched at run time through its stdin.
 */
import { Dealer } from "zeromq";
import { DEFAULT_WAIT_MS, spawnStui, type Exit, type ProcessHandle } from "./processes.js";

export interface ImageSimStartOptions {
  /** Default `tcp://127.0.0.1:*`: a free port, read back from the `ready` line. */
  readonly bind?: string;
  readonly name?: string;
  readonly imageVersion?: string;
  /** More flags, e.g. `["--delay-ms", "500"]`. */
  readonly extraArgs?: readonly string[];
  readonly readyTimeoutMs?: number;
}

export interface ImageSimHandle extends AsyncDisposable {
  /** The endpoint actually bound, e.g. `tcp://127.0.0.1:41873`. */
  readonly endpoint: string;
  readonly pid: number;
  readonly process: ProcessHandle;
  /** Sends a control line (`delay 500`, `garbage on`, ...) and waits for its `ok`; rejects on `error`. */
  control(line: string): Promise<void>;
  /** Signals the sim by pid; `false` if it had already exited. */
  kill(signal?: NodeJS.Signals): boolean;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<Exit>;
}

export async function startImageSim(options: ImageSimStartOptions = {}): Promise<ImageSimHandle> {
  const args = ["image-sim", "--bind", options.bind ?? "tcp://127.0.0.1:*"];
  if (options.name !== undefined) args.push("--name", options.name);
  if (options.imageVersion !== undefined) args.push("--image-version", options.imageVersion);
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
  return {
    endpoint,
    pid: child.pid,
    process: child,
    async control(line) {
      const command = line.trim();
      const since = child.lineCount();
      child.send(command);
      const escaped = command.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      const answer = await child.waitForLine(new RegExp(`^(ok ${escaped}|error .*)$`), { since });
      if (answer[0].startsWith("error ")) throw new Error(`image-sim refused "${command}": ${answer[0]}`);
    },
    kill: (signal = "SIGTERM") => child.signal(signal),
    stop: () => child.stop(),
    [Symbol.asyncDispose]: () => child[Symbol.asyncDispose](),
  };
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
