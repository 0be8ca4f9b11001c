/**
 * An inspector, whole: the bridge over a source, the web server on 127.0.0.1 and, when asked, the
 * forwarder to a Stately relay. What `stui inspect`, `stui serve --inspect` and `stui demo
 * --inspect` start.
 */
import type { Logger } from "../logger.js";
import { InspectBridge, type BridgeOptions, type InspectSource } from "./bridge.js";
import { startInspectorServer } from "./server.js";
import { forwardToStately } from "./stately.js";

export interface InspectorOptions {
  readonly source: InspectSource;
  readonly logger: Logger;
  /** @default 0: a free port */
  readonly port?: number;
  /** A Stately relay (`ws://…`) to forward to as well. */
  readonly stately?: string | null;
  readonly bridge?: BridgeOptions;
}

export interface Inspector {
  /** `http://127.0.0.1:<port>/?token=<token>` */
  readonly url: string;
  readonly bridge: InspectBridge;
  /** Detaches from every instance, closes the pages and the server. */
  close(): Promise<void>;
}

export async function openInspector(options: InspectorOptions): Promise<Inspector> {
  const bridge = new InspectBridge(options.source, options.logger, options.bridge);
  const stately =
    options.stately === undefined || options.stately === null
      ? null
      : forwardToStately(options.stately, options.logger);
  if (stately !== null) bridge.addPage(stately);
  let server;
  try {
    server = await startInspectorServer({ bridge, port: options.port ?? 0, logger: options.logger });
  } catch (error) {
    stately?.close();
    await bridge.stop();
    throw error;
  }
  const opened = server;
  return {
    url: opened.url,
    bridge,
    close: async () => {
      stately?.close();
      await bridge.stop();
      await opened.close();
    },
  };
}
