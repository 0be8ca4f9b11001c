/**
 * `stui image-sim`: a simulated Smalltalk image on a ZeroMQ socket with REP semantics. Its faults
 * can be set by flags at start and changed later by control lines on stdin, which is how tests
 * drive it; `--peer-log` and the `peers` control line tell who is connected and what each sent.
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import {
  applyControl,
  CONTROL_USAGE,
  parseBlockSeconds,
  parseCommand,
  parseDelayMs,
  parseOversizedBytes,
  type Faults,
  type Parsed,
} from "../sim/faults.js";
import { KeyFileError, readKeyFile, Z85Key } from "../curve.js";
import type { CurveServerOptions } from "../sim/curve-auth.js";
import { ImageSim } from "../sim/image-sim.js";
import type { PeerLogEntry } from "../sim/peers.js";

const PEERS_USAGE = [
  'peers                      answer "ok peers {json}": {connected, peers: [{peer, requests,',
  "                           last_command, last_at}]}, every peer that sent a request",
];

const USAGE = `usage: stui image-sim --bind ENDPOINT [options]

Runs a simulated Smalltalk image that speaks the image protocol on a ZeroMQ socket that behaves
as a REP socket (a ROUTER answering one request at a time, so that it knows each request's peer).
Prints "ready <endpoint>" once bound (the real port when bound to port * or 0).

options:
  --bind ENDPOINT          where to bind, e.g. tcp://127.0.0.1:5555 or tcp://127.0.0.1:* (required)
  --name NAME              the image name it reports (default: sim)
  --image-version V        the image version it reports (default: Pharo-12.0.0)
  --delay-ms N             delay every reply by N ms
  --block-code CODE        block the whole thread on an evaluate of exactly CODE ...
  --block-seconds S        ... for S seconds (both flags together)
  --garbage                answer every request with bytes that are not JSON
  --oversized BYTES        answer every request with one frame of BYTES bytes
  --exit-on COMMAND        exit with code 3, without replying, on a request with COMMAND
  --curve-secret-key FILE  serve CURVE with the key pair in FILE (JSON {"public_key", "secret_key"},
                           mode 0600, as stui keygen writes it); clients pin its public key
  --curve-client-key=KEY   with CURVE, let in only this client public key (Z85; with "=", as a key
                           may start with "-"); may be repeated; without it any CURVE client is
                           let in; each one refused is named on stderr
  --peer-log               print a line per peer event: peer {"at":MS,"event":E,"peer":ID,
                           "command":C,"connected":N}; E is accepted, disconnected (peer null:
                           the socket event cannot name it) or request (command null when the
                           request did not decode); a peer is one connection, ID its routing
                           id in hex; N the connections open now
  -h, --help               this text

control lines on stdin (answered "ok <line>" or "error <reason>" on stdout):
${[...CONTROL_USAGE, ...PEERS_USAGE].map((line) => `  ${line}`).join("\n")}`;

const options = {
  bind: { type: "string" },
  name: { type: "string", default: "sim" },
  "image-version": { type: "string", default: "Pharo-12.0.0" },
  "delay-ms": { type: "string" },
  "block-code": { type: "string" },
  "block-seconds": { type: "string" },
  garbage: { type: "boolean", default: false },
  oversized: { type: "string" },
  "exit-on": { type: "string" },
  "peer-log": { type: "boolean", default: false },
  "curve-secret-key": { type: "string" },
  "curve-client-key": { type: "string", multiple: true },
  help: { type: "boolean", short: "h", default: false },
} as const;

class UsageError extends Error {}

function flag<T>(name: string, text: string | undefined, parse: (text: string) => Parsed<T>): T | undefined {
  if (text === undefined) return undefined;
  const parsed = parse(text);
  if (!parsed.ok) throw new UsageError(`--${name}: ${parsed.reason}`);
  return parsed.value;
}

function faultsFrom(values: {
  "delay-ms"?: string;
  "block-code"?: string;
  "block-seconds"?: string;
  garbage: boolean;
  oversized?: string;
  "exit-on"?: string;
}): Partial<Faults> {
  const code = values["block-code"];
  const seconds = flag("block-seconds", values["block-seconds"], parseBlockSeconds);
  if ((code === undefined) !== (seconds === undefined)) {
    throw new UsageError("--block-code and --block-seconds go together: give both or neither");
  }
  if (code === "") throw new UsageError("--block-code: expected the code to block on, got an empty string");
  return {
    delayMs: flag("delay-ms", values["delay-ms"], parseDelayMs) ?? 0,
    block: code !== undefined && seconds !== undefined ? { code, seconds } : null,
    garbage: values.garbage,
    oversizedBytes: flag("oversized", values.oversized, parseOversizedBytes) ?? null,
    exitOn: flag("exit-on", values["exit-on"], parseCommand) ?? null,
  };
}

/** The CURVE server options of `--curve-secret-key` and `--curve-client-key`. */
async function curveFrom(
  keyFile: string | undefined,
  clients: readonly string[] | undefined,
): Promise<CurveServerOptions | undefined> {
  if (keyFile === undefined) {
    if (clients !== undefined) throw new UsageError("--curve-client-key needs --curve-secret-key");
    return undefined;
  }
  for (const key of clients ?? []) {
    if (!Z85Key.safeParse(key).success)
      throw new UsageError(`--curve-client-key: not a CURVE public key (40 characters of Z85): ${key}`);
  }
  return { keys: await readKeyFile(keyFile), clients: clients ?? null };
}

const printPeerEvent = (entry: PeerLogEntry): void => console.log(`peer ${JSON.stringify(entry)}`);

/** The answer to one control line (already trimmed): `peers` here, the fault switches in `faults.ts`. */
function answerControl(sim: ImageSim, line: string): string {
  const [word] = line.split(/\s+/);
  if (word === "peers") {
    return line === "peers" ? `ok peers ${JSON.stringify(sim.peers.report())}` : "error peers: takes no arguments";
  }
  const problem = applyControl(sim.faults, line, ["peers"]);
  return problem === undefined ? `ok ${line}` : `error ${problem}`;
}

export async function run(argv: string[]): Promise<number> {
  let sim: ImageSim;
  let bind: string;
  try {
    const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    if (values.bind === undefined || values.bind === "") throw new UsageError("--bind ENDPOINT is required");
    bind = values.bind;
    const onPeerEvent = values["peer-log"] ? printPeerEvent : undefined;
    const curve = await curveFrom(values["curve-secret-key"], values["curve-client-key"]);
    sim = new ImageSim({
      name: values.name,
      imageVersion: values["image-version"],
      faults: faultsFrom(values),
      onPeerEvent,
      ...(curve === undefined
        ? {}
        : { curve, onRefused: (key: string) => console.error(`stui image-sim: refused the CURVE client ${key}`) }),
    });
  } catch (error) {
    // parseArgs's own messages already name the flag ("Unknown option '--bnd'").
    if (!(error instanceof UsageError) && !(error instanceof TypeError) && !(error instanceof KeyFileError))
      throw error;
    console.error(`stui image-sim: ${error.message}\n(see stui image-sim --help)`);
    return 2;
  }

  let endpoint: string;
  try {
    endpoint = await sim.bind(bind);
  } catch (error) {
    sim.close();
    const detail = error instanceof Error ? error.message : String(error);
    console.error(`stui image-sim: cannot bind ${bind}: ${detail}`);
    return 1;
  }

  const control = createInterface({ input: process.stdin, crlfDelay: Infinity });
  control.on("line", (raw) => {
    const line = raw.trim();
    if (line === "") return;
    console.log(answerControl(sim, line));
  });

  const stop = (): void => sim.close();
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  console.log(`ready ${endpoint}`);
  try {
    await sim.serve();
    return 0;
  } finally {
    process.off("SIGTERM", stop);
    process.off("SIGINT", stop);
    control.close();
    // A piped stdin left open would keep the process alive after the socket is gone.
    process.stdin.destroy();
  }
}
