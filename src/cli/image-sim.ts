/**
 * `stui image-sim`: a simulated Smalltalk image on a ZeroMQ REP socket. Its faults can be set by
 * flags at start and changed later by control lines on stdin, which is how tests drive it.
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
import { ImageSim } from "../sim/image-sim.js";

const USAGE = `usage: stui image-sim --bind ENDPOINT [options]

Runs a simulated Smalltalk image that speaks the image protocol on a ZeroMQ REP socket.
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
  -h, --help               this text

control lines on stdin (answered "ok <line>" or "error <reason>" on stdout):
${CONTROL_USAGE.map((line) => `  ${line}`).join("\n")}`;

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
    sim = new ImageSim({ name: values.name, imageVersion: values["image-version"], faults: faultsFrom(values) });
  } catch (error) {
    // parseArgs's own messages already name the flag ("Unknown option '--bnd'").
    if (!(error instanceof UsageError) && !(error instanceof TypeError)) throw error;
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
    const problem = applyControl(sim.faults, line);
    console.log(problem === undefined ? `ok ${line}` : `error ${problem}`);
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
