/**
 * The `stui` command line: one sub-command per job. Each command module exports `run(argv)`
 * returning the process exit code.
 */
import { readFileSync } from "node:fs";

type Command = { readonly summary: string; readonly load: () => Promise<{ run: Run }> };

type Run = (argv: string[]) => Promise<number>;

/** The client commands share one module. */
const clientCommand =
  (name: "images" | "sessions" | "switchContext" | "cleanup" | "events") => async (): Promise<{ run: Run }> => ({
    run: (await import("./client-commands.js"))[name],
  });

const commands: Record<string, Command> = {
  serve: {
    summary: "run the service: images, sessions, events and the API on NATS",
    load: () => import("./serve.js"),
  },
  demo: {
    summary: "the whole product on one machine: three simulated images, NATS, the service, a live view",
    load: () => import("./demo.js"),
  },
  images: {
    summary: "list the images and their connection status (over NATS)",
    load: clientCommand("images"),
  },
  sessions: {
    summary: "list stored sessions, of one image with --image",
    load: clientCommand("sessions"),
  },
  switch: {
    summary: "switch a client's current image: --client C --to ID",
    load: clientCommand("switchContext"),
  },
  cleanup: {
    summary: "remove an image's orphaned sessions: --image ID [--force]",
    load: clientCommand("cleanup"),
  },
  events: {
    summary: "follow events live, or replay them --since a time",
    load: clientCommand("events"),
  },
  "image-sim": {
    summary: "run a simulated Smalltalk image (ZeroMQ REP) for tests and demos",
    load: () => import("./image-sim.js"),
  },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(0, ...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    "usage: stui <command> [options]",
    "",
    "STUI multi-image session service.",
    "",
    "commands:",
    ...(lines.length > 0 ? lines : ["  (none yet)"]),
    "",
    "  stui <command> --help    options of a command",
    "  stui --version           the version",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return 0;
  }
  if (name === "--version" || name === "-v") {
    console.log(version());
    return 0;
  }
  const command = commands[name];
  if (command === undefined) {
    console.error(`stui: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  return (await command.load()).run(rest);
}
