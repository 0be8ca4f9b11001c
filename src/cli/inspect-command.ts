/**
 * `stui inspect`: the web inspector of every instance on this NATS. It serves the page on
 * 127.0.0.1 only, at a URL with a random token, and bridges the instances' inspection streams to
 * it over a WebSocket; `--stately URL` also forwards them to a Stately inspector's relay.
 */
import type { Logger } from "../logger.js";
import { openInspector } from "../inspect/inspector.js";
import { NatsInspectSource } from "../inspect/nats-source.js";
import { runClientCommand, str, UsageError } from "./client-run.js";
import { parsePort } from "./inspect-flag.js";

/** Lines a person reads on stderr: `stui inspect: …`. */
const consoleLogger: Logger = {
  error: (_obj, msg) => console.error(`stui inspect: ${msg}`),
  warn: (_obj, msg) => console.error(`stui inspect: ${msg}`),
  info: (_obj, msg) => console.error(`stui inspect: ${msg}`),
  debug: () => undefined,
};

function parseRelay(text: string): string {
  if (!/^wss?:\/\/[^\s/]+/.test(text)) throw new UsageError(`--stately: not a WebSocket URL (ws://host:port): ${text}`);
  return text;
}

export const inspect = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage:
      "usage: stui inspect [--port N] [--stately ws://localhost:8080]\n\n" +
      "Serves the web inspector of every instance on this NATS on 127.0.0.1 and prints its URL\n" +
      "(with a random token; Ctrl-C stops). --port: the port (default 0, a free one).\n" +
      "--stately URL: also forward the stream to a Stately inspector relay, in @statelyai/inspect's format.",
    options: { port: { type: "string" }, stately: { type: "string" } },
    check: (values) => {
      parsePort(str(values, "port") ?? "0", "--port");
      const relay = str(values, "stately");
      if (relay !== undefined) parseRelay(relay);
    },
    run: async ({ client, values }) => {
      const inspector = await openInspector({
        source: new NatsInspectSource(client.nc, consoleLogger),
        logger: consoleLogger,
        port: parsePort(str(values, "port") ?? "0", "--port"),
        stately: str(values, "stately") ?? null,
      });
      console.log(`inspector: ${inspector.url}`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await inspector.close();
      return 0;
    },
  });
