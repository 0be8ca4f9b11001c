/**
 * The simulated image's fault switches: how a test makes it slow, busy, broken or dead. The same
 * parsers serve the command-line flags and the control lines a test writes to the sim's stdin, so
 * the two cannot accept different things.
 */
import { IMAGE_COMMANDS, type ImageCommand } from "../protocol/index.js";

export interface Faults {
  /** Every reply is sent this many ms late (without blocking the thread). */
  delayMs: number;
  /** An `evaluate` of exactly `code` blocks the whole JS thread for `seconds`, as a busy image does. */
  block: { readonly code: string; readonly seconds: number } | null;
  /** Every reply is bytes that are not JSON. */
  garbage: boolean;
  /** Every reply is one frame of this many bytes. */
  oversizedBytes: number | null;
  /** A request with this command ends the process (code 3) without a reply. */
  exitOn: ImageCommand | null;
}

export const noFaults = (): Faults => ({ delayMs: 0, block: null, garbage: false, oversizedBytes: null, exitOn: null });

/** Far beyond any sane limit, yet still an allocation a test machine survives. */
export const MAX_OVERSIZED_BYTES = 256 * 1024 * 1024;
/** A REQ/DEALER peer would give up long before; the bound only stops a typo from hanging a run. */
export const MAX_BLOCK_SECONDS = 3600;
export const MAX_DELAY_MS = 3_600_000;

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

const good = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(reason: string): Parsed<T> => ({ ok: false, reason });

export function parseDelayMs(text: string): Parsed<number> {
  return parseNumber(text, { integer: true, min: 0, max: MAX_DELAY_MS, what: "a delay in ms" });
}

export function parseBlockSeconds(text: string): Parsed<number> {
  return parseNumber(text, { integer: false, min: 0, max: MAX_BLOCK_SECONDS, what: "a number of seconds" });
}

export function parseOversizedBytes(text: string): Parsed<number> {
  return parseNumber(text, { integer: true, min: 1, max: MAX_OVERSIZED_BYTES, what: "a size in bytes" });
}

export function parseCommand(text: string): Parsed<ImageCommand> {
  const found = IMAGE_COMMANDS.find((c) => c === text);
  return found === undefined
    ? bad(`expected one of ${IMAGE_COMMANDS.join(", ")}, got ${JSON.stringify(text)}`)
    : good(found);
}

function parseNumber(text: string, rule: { integer: boolean; min: number; max: number; what: string }): Parsed<number> {
  const pattern = rule.integer ? /^\d+$/ : /^\d+(\.\d+)?$/;
  const value = Number(text);
  if (!pattern.test(text) || value < rule.min || value > rule.max) {
    return bad(`expected ${rule.what} from ${rule.min} to ${rule.max}, got ${JSON.stringify(text)}`);
  }
  return good(value);
}

/** The control lines, as the usage text shows them. */
export const CONTROL_USAGE = [
  "delay <ms>                 delay every reply (0 = off)",
  "block <seconds> <code...>  block the thread on an evaluate of exactly <code>",
  "block off                  stop blocking",
  "garbage on|off             answer with bytes that are not JSON",
  "oversized <bytes>|off      answer with one frame of <bytes> bytes",
  "exit-on <command>|off      exit (code 3) without replying on <command>",
];

/** The control words that switch faults, in the order the usage text shows them. */
const FAULT_CONTROL_WORDS = ["delay", "block", "garbage", "oversized", "exit-on"] as const;

/**
 * Applies one control line (already trimmed) to `faults`; on a bad line nothing changes. Returns
 * the reason for refusing it, or `undefined`. `otherWords` are the control words the caller
 * answers itself, named with these when a word is unknown.
 */
export function applyControl(faults: Faults, line: string, otherWords: readonly string[] = []): string | undefined {
  const [word = "", ...args] = line.split(/\s+/);
  const rest = line.slice(word.length).trim();
  const onOff = (apply: (value: boolean) => void): string | undefined => {
    if (rest !== "on" && rest !== "off") return `${word}: expected on or off, got ${JSON.stringify(rest)}`;
    apply(rest === "on");
    return undefined;
  };
  const orOff = <T>(parse: (text: string) => Parsed<T>, apply: (value: T | null) => void): string | undefined => {
    if (rest === "off") {
      apply(null);
      return undefined;
    }
    const parsed = parse(rest);
    if (!parsed.ok) return `${word}: ${parsed.reason}`;
    apply(parsed.value);
    return undefined;
  };
  switch (word) {
    case "delay":
      return orOff(parseDelayMs, (ms) => (faults.delayMs = ms ?? 0));
    case "block": {
      if (rest === "off") {
        faults.block = null;
        return undefined;
      }
      const [secondsText = ""] = args;
      const seconds = parseBlockSeconds(secondsText);
      if (!seconds.ok) return `block: ${seconds.reason}`;
      // The code is the rest of the line as written, inner spaces included.
      const code = rest.slice(secondsText.length).trim();
      if (code === "") return "block: expected the code to block on after the seconds";
      faults.block = { code, seconds: seconds.value };
      return undefined;
    }
    case "garbage":
      return onOff((on) => (faults.garbage = on));
    case "oversized":
      return orOff(parseOversizedBytes, (bytes) => (faults.oversizedBytes = bytes));
    case "exit-on":
      return orOff(parseCommand, (command) => (faults.exitOn = command));
    default: {
      const known = [...FAULT_CONTROL_WORDS, ...otherWords];
      const expected = `${known.slice(0, -1).join(", ")} or ${known.at(-1) ?? ""}`;
      return `unknown control command ${JSON.stringify(word)}; expected ${expected}`;
    }
  }
}
