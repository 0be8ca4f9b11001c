/**
 * Client commands as a user runs them: `node bin/stui.js <args>` to its end, with its exit code
 * and output; JSON output parsed.
 */
import { spawnStui } from "./processes.js";

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  /** Variables added to this process's environment (`NATS_URL` and `STUI_NATS_*` removed first). */
  readonly env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed. */
  readonly input?: string;
}

/** The environment of a child: nothing inherited that points it at another server, user or setting. */
export function isolatedEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("NATS_") && !key.startsWith("STUI_")) env[key] = value;
  }
  return { ...env, ...extra };
}

/** This process's environment without any NATS setting a developer's shell may carry. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => k !== "NATS_URL" && !k.startsWith("STUI_NATS_")),
  );
  return { ...env, ...extra };
}

export async function runStui(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const child = spawnStui(args, { env: cleanEnv(options.env) });
  if (options.input !== undefined) child.child.stdin.end(options.input);
  else child.child.stdin.end();
  const exit = await child.exited;
  return { code: exit.code, stdout: child.stdout(), stderr: child.stderr() };
}

/** Runs a command with `--json`; its parsed output, or throws with what it printed. */
export async function runStuiJson<T>(args: readonly string[], options: CliOptions = {}): Promise<T> {
  const result = await runStui([...args, "--json"], options);
  if (result.code !== 0) {
    throw new Error(`stui ${args.join(" ")}: exit ${result.code}: ${result.stderr}${result.stdout}`);
  }
  return JSON.parse(result.stdout) as T;
}

/** What a mistake must look like: exactly one line on stderr, no stack trace. */
export function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split("\n");
  if (lines.length !== 1 || /^\s+at /m.test(stderr)) throw new Error(`expected one line on stderr, got:\n${stderr}`);
  return lines[0] ?? "";
}
