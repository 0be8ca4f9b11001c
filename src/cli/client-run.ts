/**
 * What every client command shares: its options (NATS login from `nats-flags.ts`, `--timeout-ms`,
 * `--json`), the connection, and turning each failure into one line on stderr and an exit code:
 * 0 done, 1 the service answered an error, 2 bad usage, 3 no NATS or no service (unreachable,
 * refused, no JetStream or no event stream).
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { JetStreamApiCodes, JetStreamApiError, JetStreamError } from "@nats-io/jetstream";
import { AuthorizationError, PermissionViolationError } from "@nats-io/transport-node";
import { ServiceUnavailableError, StuiClient } from "../client.js";
import { serversOf, type NatsOptions } from "../actors/nats-link.js";
import { NatsConnectError } from "../errors.js";
import type { Response } from "../protocol/index.js";
import { NATS_FLAG_OPTIONS, NATS_FLAGS_HELP, NatsFlagsError, natsOptionsFromFlags } from "./nats-flags.js";

export const EXIT = { done: 0, answeredError: 1, usage: 2, unavailable: 3 } as const;

const COMMON = `common options:
  --timeout-ms N           how long to wait for an answer (default 5000)
  --json                   machine-readable output
  -h, --help               this text

${NATS_FLAGS_HELP}`;

const COMMON_OPTIONS = {
  ...NATS_FLAG_OPTIONS,
  "timeout-ms": { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const satisfies ParseArgsConfig["options"];

export type Values = Record<string, string | boolean | undefined>;

/** A mistake in how the command was called: exit 2 with the usage. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** What a command's body gets. */
export interface CommandInput {
  readonly client: StuiClient;
  readonly values: Values;
  readonly positionals: readonly string[];
  readonly json: boolean;
}

export interface CommandSpec {
  readonly usage: string;
  readonly options?: ParseArgsConfig["options"];
  /** Whether the command takes operands (e.g. `stui eval CODE...`). @default false */
  readonly positionals?: boolean;
  /** Refuses bad operands before connecting (throws `UsageError`). */
  readonly check?: (values: Values, positionals: readonly string[]) => void;
  /** Resolves with the exit code. */
  readonly run: (input: CommandInput) => Promise<number>;
}

/**
 * A reader that went away (`stui events | head -1`) is the end of the output, not a failure: exit
 * quietly instead of dying of an unhandled EPIPE with a stack trace.
 */
function quietOnClosedPipe(): void {
  if (process.stdout.listenerCount("error") > 0) return;
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    process.exit(error.code === "EPIPE" ? EXIT.done : EXIT.answeredError);
  });
}

/** Parses `argv`, connects, runs the body; never throws. */
export async function runClientCommand(argv: string[], spec: CommandSpec): Promise<number> {
  quietOnClosedPipe();
  const hint = ` (${/^usage: (stui(?: [a-z][a-z-]*)+)/.exec(spec.usage)?.[1] ?? "stui <command>"} --help)`;
  const help = `${spec.usage}\n\n${COMMON}`;
  let values: Values;
  let positionals: string[];
  let nats: NatsOptions;
  try {
    const parsed = parseArgs({
      args: argv,
      options: { ...COMMON_OPTIONS, ...spec.options },
      strict: true,
      allowPositionals: spec.positionals ?? false,
    });
    values = parsed.values;
    positionals = parsed.positionals;
    if (values["help"] === true) {
      console.log(help);
      return EXIT.done;
    }
    nats = natsOptionsFromFlags(values, process.env);
    spec.check?.(values, positionals);
  } catch (error) {
    console.error(`stui: ${messageOf(error)}${hint}`);
    return EXIT.usage;
  }
  const timeout = str(values, "timeout-ms") ?? "5000";
  const timeoutMs = Number(timeout);
  if (!(Number.isInteger(timeoutMs) && timeoutMs > 0)) {
    console.error(`stui: --timeout-ms: not a positive integer: ${timeout}`);
    return EXIT.usage;
  }
  let client: StuiClient;
  try {
    client = await StuiClient.connect({ ...nats, timeoutMs, connectTimeoutMs: timeoutMs });
  } catch (error) {
    console.error(`stui: ${messageOf(error)}`);
    return EXIT.unavailable;
  }
  try {
    return await spec.run({ client, values, positionals, json: values["json"] === true });
  } catch (error) {
    const { code, message } = describeFailure(error, nats);
    console.error(`stui: ${message}${code === EXIT.usage ? hint : ""}`);
    return code;
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** The one line and the exit code a failure of a command's body gives. */
export function describeFailure(error: unknown, nats: NatsOptions): { code: number; message: string } {
  if (error instanceof UsageError || error instanceof NatsFlagsError)
    return { code: EXIT.usage, message: error.message };
  if (error instanceof ServiceUnavailableError) {
    const shown = serversOf(nats).join(", ");
    return {
      code: EXIT.unavailable,
      message: `${error.message} (is \`stui serve\` running and connected to ${shown}?)`,
    };
  }
  // nats.js does not export its JetStreamNotEnabled class: known by name.
  const noJetStream =
    findCause(error, (e) => e.name === "JetStreamNotEnabled") !== null ||
    (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.JetStreamNotEnabledForAccount);
  if (noJetStream) {
    return { code: EXIT.unavailable, message: "the NATS server has no JetStream, so no events to replay" };
  }
  if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) {
    return {
      code: EXIT.unavailable,
      message: "no event stream STUI_EVENTS yet (has `stui serve` run on this NATS with JetStream?)",
    };
  }
  const permission = findCause(
    error,
    (e) => e instanceof PermissionViolationError || /Permissions Violation/i.test(e.message),
  );
  if (permission !== null) return { code: EXIT.unavailable, message: `NATS refused: ${permission.message}` };
  if (findCause(error, (e) => e instanceof AuthorizationError) !== null || error instanceof NatsConnectError) {
    return { code: EXIT.unavailable, message: messageOf(error) };
  }
  if (error instanceof JetStreamError || error instanceof JetStreamApiError) {
    return { code: EXIT.unavailable, message: `JetStream: ${error.message}` };
  }
  return { code: EXIT.answeredError, message: messageOf(error) };
}

function findCause(error: unknown, test: (e: Error) => boolean): Error | null {
  let e: unknown = error;
  for (let depth = 0; e instanceof Error && depth < 8; depth++) {
    if (test(e)) return e;
    e = e.cause;
  }
  return null;
}

export const messageOf = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "";

export const str = (values: Values, key: string): string | undefined => {
  const value = values[key];
  return typeof value === "string" ? value : undefined;
};

export function required(values: Values, key: string): string {
  const value = str(values, key);
  if (value === undefined || value === "") throw new UsageError(`--${key} is required`);
  return value;
}

/** Prints an answer: JSON, or the readable form of a success, or the error on stderr (exit 1). */
export function show<R extends Response>(
  response: R,
  json: boolean,
  render: (response: Exclude<R, { type: "Error" }>) => string,
): number {
  if (json) {
    console.log(JSON.stringify(response, null, 2));
    return response.type === "Error" ? EXIT.answeredError : EXIT.done;
  }
  if (response.type === "Error") {
    console.error(`stui: ${response.code}: ${response.message}`);
    return EXIT.answeredError;
  }
  console.log(render(response as Exclude<R, { type: "Error" }>));
  return EXIT.done;
}

export const dash = (value: string | number | null | undefined): string =>
  value === null || value === undefined ? "-" : String(value);
