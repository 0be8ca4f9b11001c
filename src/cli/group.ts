/** A command with sub-commands (`stui session create`, `stui image retry`): dispatch and usage. */

export interface SubCommand {
  readonly summary: string;
  readonly run: (argv: string[]) => Promise<number>;
}

export async function runGroup(
  argv: string[],
  name: string,
  subcommands: Readonly<Record<string, SubCommand>>,
): Promise<number> {
  const [sub, ...rest] = argv;
  const width = Math.max(...Object.keys(subcommands).map((n) => n.length));
  const usage = [
    `usage: stui ${name} <${Object.keys(subcommands).join("|")}> [options]`,
    "",
    ...Object.entries(subcommands).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`),
    "",
    `  stui ${name} <command> --help    options of a command`,
  ].join("\n");
  if (sub === "--help" || sub === "-h" || sub === "help") {
    console.log(usage);
    return 0;
  }
  const command = sub !== undefined && Object.hasOwn(subcommands, sub) ? subcommands[sub] : undefined;
  if (command === undefined) {
    console.error(
      `stui: ${sub === undefined ? `${name}: which one?` : `unknown command "${name} ${sub}"`}\n\n${usage}`,
    );
    return 2;
  }
  return command.run(rest);
}
