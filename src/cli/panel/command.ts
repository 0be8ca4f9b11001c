/**
 * `stui panel`: the images and the events live in the terminal, over NATS with the client
 * commands' options. Without a terminal, `--once` prints the images table (`--json`: the
 * `ListImages` answer) and exits.
 */
import { createElement } from "react";
import { render } from "ink";
import { serversOf } from "../../actors/nats-link.js";
import { imagesTable } from "../client-commands.js";
import { EXIT, runClientCommand, show, str, UsageError } from "../client-run.js";
import { natsOptionsFromFlags } from "../nats-flags.js";
import { startDriver } from "./driver.js";
import { PanelView } from "./view.js";

const USAGE =
  "usage: stui panel [--once [--json]] [--no-color] [--events N]\n\n" +
  "The images (status, health, RTT, sessions, last seen, owner) and the last events, live.\n" +
  "Keys: j/k or the arrows select an image, q quits. NO_COLOR or --no-color: no colors.\n" +
  "--once: print the images table (--json: the ListImages answer) and exit; no terminal needed.\n" +
  "--events N: how many events to keep (default 50).";

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
    },
    check: (values) => {
      const events = str(values, "events");
      if (events !== undefined && !(Number.isInteger(Number(events)) && Number(events) > 0)) {
        throw new UsageError(`--events: not a positive integer: ${events}`);
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

async function interactive(
  client: Parameters<typeof startDriver>[0],
  values: Record<string, string | boolean | undefined>,
): Promise<number> {
  const color = wantsColor(values["no-color"] === true, process.env);
  const server = serversOf(natsOptionsFromFlags(values, process.env)).join(",");
  const driver = startDriver(client, Number(str(values, "events") ?? "50"));
  // Nothing but the panel may write to the screen while it runs.
  const quiet = (): void => undefined;
  const saved = { log: console.log, error: console.error, warn: console.warn, info: console.info };
  Object.assign(console, { log: quiet, error: quiet, warn: quiet, info: quiet });
  const size = (): { width: number; height: number } => ({
    width: process.stdout.columns || 80,
    height: process.stdout.rows || 24,
  });
  const view = (): ReturnType<typeof createElement> =>
    createElement(PanelView, { store: driver, ...size(), color, server });
  const app = render(view(), { exitOnCtrlC: true, patchConsole: false });
  const resize = (): void => app.rerender(view());
  process.stdout.on("resize", resize);
  const tick = setInterval(resize, 1000);
  try {
    await app.waitUntilExit();
  } finally {
    clearInterval(tick);
    process.stdout.off("resize", resize);
    driver.stop();
    app.unmount();
    Object.assign(console, saved);
  }
  return EXIT.done;
}
