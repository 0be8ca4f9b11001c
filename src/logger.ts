/**
 * The logger shape the service's parts report to: pino's, so a pino logger can be passed as is.
 * Until one is given, entries go to stderr as JSON lines.
 */
import { isoTime } from "./clock.js";

export interface Logger {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** One JSON line per entry on stderr (debug entries left out), errors reduced to name and message. */
export const stderrLogger: Logger = {
  error: (obj, msg) => writeLine("error", obj, msg),
  warn: (obj, msg) => writeLine("warn", obj, msg),
  info: (obj, msg) => writeLine("info", obj, msg),
  debug: () => undefined,
};

function writeLine(level: string, obj: object, msg: string): void {
  const line = JSON.stringify({ level, time: isoTime(), msg, ...obj }, (_key, value: unknown) =>
    value instanceof Error ? { name: value.name, message: value.message } : value,
  );
  process.stderr.write(`${line}\n`);
}
