/**
 * The `stui` command line: one sub-command per job. Each command module exports `run(argv)`
 * returning the process exit code.
 */
import { readFileSync } from "node:fs";

type Command = { readonly summary: string; readonly load: () => Promise<{ run: Run }> };

type Run = (argv: string[]) => Promise<number>;

/** A client command: the named export of one of the client command modules. */
const client =
  <M extends Record<string, unknown>>(load: () => Promise<M>, name: keyof M & string) =>
  async (): Promise<{ run: Run }> => ({ run: (await load())[name] as Run });

const listing = () => import("./client-commands.js");
const sessionCommands = () => import("./session-commands.js");
const imageCommands = () => import("./image-commands.js");
const eventsCommand = () => import("./events-command.js");
/**
 * Before ink and React load, for the commands that draw with them. ink decides when it is first
 * imported whether it runs in CI (a `CI` or `CONTINUOUS_INTEGRATION` variable) and then draws only
 * the last frame, on exit: on a real terminal the panel is live wherever it runs, so those
 * variables are dropped for this process. React runs its production build unless NODE_ENV says
 * otherwise: its development build is slower (see the panel benchmark in the README).
 */
const drawing =
  <T>(load: () => Promise<T>) =>
  (): Promise<T> => {
    if (process.stdout.isTTY) {
      delete process.env["CI"];
      delete process.env["CONTINUOUS_INTEGRATION"];
    }
    process.env["NODE_ENV"] ??= "production";
    return load();
  };
const panelCommand = drawing(() => import("./panel/command.js"));

const commands: Record<string, Command> = {
  serve: {
    summary: "run the service: images, sessions, events and the API on NATS",
    load: () => import("./serve.js"),
  },
  demo: {
    summary: "the whole product on one machine: three simulated images, NATS, the service, a live view",
    load: drawing(() => import("./demo.js")),
  },
  images: {
    summary: "list the images, their connection status and sessions (over NATS)",
    load: client(listing, "images"),
  },
  image: {
    summary: "connect | disconnect | retry an image: --image ID",
    load: client(imageCommands, "image"),
  },
  health: {
    summary: "the connection health summary",
    load: client(imageCommands, "health"),
  },
  stats: {
    summary: "an image's session figures: --image ID",
    load: client(imageCommands, "stats"),
  },
  instances: {
    summary: "the live stui serve instances on this NATS",
    load: client(imageCommands, "instances"),
  },
  store: {
    summary: "migrate --from DIR: copy a file store into JetStream KV (store.kind: kv)",
    load: client(() => import("./store-command.js"), "store"),
  },
  sessions: {
    summary: "list stored sessions, of one image with --image",
    load: client(listing, "sessions"),
  },
  session: {
    summary: "create | close a session",
    load: client(sessionCommands, "session"),
  },
  eval: {
    summary: "evaluate code on an image: --client C [--image ID] CODE... (- reads stdin)",
    load: client(sessionCommands, "evaluate"),
  },
  context: {
    summary: "a client's current image: --client C",
    load: client(sessionCommands, "context"),
  },
  switch: {
    summary: "switch a client's current image: --client C --to ID",
    load: client(listing, "switchContext"),
  },
  cleanup: {
    summary: "remove an image's orphaned sessions: --image ID [--force] [--dry-run]",
    load: client(listing, "cleanup"),
  },
  panel: {
    summary: "the images and events live in the terminal (--once: print the images and exit)",
    load: client(panelCommand, "panel"),
  },
  events: {
    summary: "follow events live, or replay them --since a time",
    load: client(eventsCommand, "events"),
  },
  inspect: {
    summary: "the web inspector of every instance: serves it on 127.0.0.1 and prints its URL",
    load: client(() => import("./inspect-command.js"), "inspect"),
  },
  keygen: {
    summary: "a CURVE key pair for image links: --out FILE (mode 0600); prints the public key",
    load: () => import("./keygen.js"),
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
  if (name === undefined) {
    console.error(usage());
    return 2;
  }
  if (name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return 0;
  }
  if (name === "--version" || name === "-v") {
    console.log(version());
    return 0;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (command === undefined) {
    console.error(`stui: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await (await command.load()).run(rest);
  } catch (error) {
    // The last resort: one line, never a stack trace (STUI_DEBUG=1 shows it).
    if (process.env["STUI_DEBUG"] === "1") console.error(error);
    else console.error(`stui ${name}: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`);
    return 1;
  }
}
