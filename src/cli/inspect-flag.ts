/**
 * The inspector's flags shared by `stui inspect`, `stui serve --inspect [PORT]` and `stui demo
 * --inspect [PORT]`.
 */

/** A bad port: the command's usage error. */
export class InspectFlagError extends Error {
  override readonly name = "InspectFlagError";
}

export function parsePort(text: string, flag: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65_535) throw new InspectFlagError(`${flag}: not a port (0 to 65535): ${text}`);
  return port;
}

/**
 * `--inspect [PORT]` as parseArgs can read it: the port is optional, so a bare `--inspect` (last,
 * or followed by another flag) becomes `--inspect=0`, a free port.
 */
export function inspectFlag(argv: readonly string[]): string[] {
  return argv.map((arg, i) => {
    if (arg !== "--inspect") return arg;
    const next = argv[i + 1];
    return next !== undefined && /^\d+$/.test(next) ? arg : "--inspect=0";
  });
}
