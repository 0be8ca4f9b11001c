/**
 * `stui panel`: the images and the events live in the terminal, over NATS with the client
 * commands' options. Without a terminal, `--once` prints the images table (`--json`: the
 * `ListImages` answer) and exits.
 */
import { userInfo } from "node:os";
import type { StuiClient } from "../../client.js";
import { serversOf } from "../../actors/nats-link.js";
import { imagesTable } from "../client-commands.js";
import { EXIT, runClientCommand, show, str, UsageError, type Values } from "../client-run.js";
import { natsOptionsFromFlags } from "../nats-flags.js";
import { runPanel } from "./run.js";

const USAGE =
  "usage: stui panel [--client ID] [--no-color] [--events N] | --once [--json]\n\n" +
  "Every image (status, health, RTT, sessions, reconnect attempt, last seen, owner), the selected\n" +
  "image's sessions and stats, and the events, live over NATS; actions on the selected image.\n" +
  "Keys (? shows them all): j/k select, / filter, o/O sort, x switch context, n new session,\n" +
  "w close a session, e evaluate, c connect, d disconnect, r retry, C clean up orphans, q quit.\n" +
  "--client ID: the client id of the panel's actions (default panel-<user>).\n" +
  "NO_COLOR or --no-color: no colors. --events N: how many events to keep (default 50).\n" +
  "--once: print the images table (--json: the ListImages answer) and exit; no terminal needed.";

/** Whether colors are wanted: not with `--no-color` nor a non-empty `NO_COLOR` (no-color.org). */
export const wantsColor = (noColorFlag: boolean, env: NodeJS.ProcessEnv): boolean =>
  !noColorFlag && (env["NO_COLOR"] === undefined || env["NO_COLOR"] === "");

export const panel = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage: USAGE,
    options: {
      once: { type: "boolean", default: false },
      "no-color": { type: "boolean", default: false },
      events: { type: "string" },
      client: { type: "string" },
    },
    check: (values) => {
      const events = str(values, "events");
      if (events !== undefined && !(Number.isInteger(Number(events)) && Number(events) > 0)) {
        throw new UsageError(`--events: not a positive integer: ${events}`);
      }
      const client = str(values, "client");
      if (client !== undefined && (client.trim() === "" || client.length > 256)) {
        throw new UsageError("--client: a client id is 1 to 256 characters");
      }
      if (values["json"] === true && values["once"] !== true) throw new UsageError("--json goes with --once");
      if (values["once"] !== true && !(process.stdout.isTTY && process.stdin.isTTY)) {
        throw new UsageError("the panel needs a terminal; without one, use --once");
      }
    },
    run: async ({ client, values, json }) => {
      if (values["once"] === true) return show(await client.listImages(), json, imagesTable);
      return interactive(client, values);
    },
  });

async function interactive(client: StuiClient, values: Values): Promise<number> {
  await runPanel({
    client,
    server: serversOf(natsOptionsFromFlags(values, process.env)).join(","),
    color: wantsColor(values["no-color"] === true, process.env),
    clientId: str(values, "client") ?? `panel-${userInfo().username}`,
    maxEvents: Number(str(values, "events") ?? "50"),
  });
  return EXIT.done;
}
