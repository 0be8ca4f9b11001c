/**
 * The inspector's web server: on 127.0.0.1 only, it serves the page (one self-contained HTML file,
 * built into dist/inspector/ from inspector/) and a WebSocket (`/ws`) on which the bridge's
 * messages reach the page. Both need the random token of the printed URL, compared in constant
 * time; a request naming another host (DNS rebinding) or a WebSocket from another origin is
 * refused. The page's Content-Security-Policy lets it reach nothing but this server. A page that
 * falls behind (more than `maxBufferedBytes` unsent) is closed: it reconnects to a fresh view.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { WebSocketServer, type WebSocket } from "ws";
import type { Logger } from "../logger.js";
import type { PageSink } from "./bridge.js";

/** What feeds the pages: the bridge, or a recording played back. */
export interface PageFeed {
  /** A page opened; the returned function says it closed. */
  addPage(sink: PageSink): () => void;
}

export interface InspectorServerOptions {
  readonly bridge: PageFeed;
  /** 0: a free port. @default 0 */
  readonly port?: number;
  readonly logger: Logger;
  /** @default the built page, dist/inspector/index.html */
  readonly pageFile?: string;
  /** @default 16 MiB */
  readonly maxBufferedBytes?: number;
}

export interface InspectorServer {
  /** `http://127.0.0.1:<port>/?token=<token>`: what to open. */
  readonly url: string;
  readonly port: number;
  /** Pages connected now. */
  readonly pages: number;
  close(): Promise<void>;
}

const HOST = "127.0.0.1";

/** The built page: dist/inspector/index.html from the package's root, whether run from src/ or dist/src/. */
export function builtPage(): string {
  for (const up of ["../../", "../../../"]) {
    const file = fileURLToPath(new URL(`${up}dist/inspector/index.html`, import.meta.url));
    if (existsSync(file)) return file;
  }
  throw new Error("the inspector page is not built (dist/inspector/index.html): run `npm run build`");
}

export async function startInspectorServer(options: InspectorServerOptions): Promise<InspectorServer> {
  const page = readFileSync(options.pageFile ?? builtPage());
  const token = randomBytes(24).toString("base64url");
  const maxBuffered = options.maxBufferedBytes ?? 16 * 1024 * 1024;
  const sockets = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  let port = 0;

  const hostOk = (req: IncomingMessage): boolean =>
    req.headers.host === `${HOST}:${port}` || req.headers.host === `localhost:${port}`;
  const tokenOk = (url: URL): boolean => {
    const given = Buffer.from(url.searchParams.get("token") ?? "");
    const wanted = Buffer.from(token);
    return given.length === wanted.length && timingSafeEqual(given, wanted);
  };

  const http = createServer((req, res) => {
    const url = new URL(req.url ?? "/", `http://${HOST}`);
    if (!hostOk(req)) return refuse(res, 421, `this inspector answers on ${HOST}:${port} only`);
    if (req.method !== "GET" && req.method !== "HEAD") return refuse(res, 405, "only GET");
    if (url.pathname !== "/") return refuse(res, 404, "not found: the inspector is at /");
    if (!tokenOk(url))
      return refuse(res, 403, "the token is missing or wrong: open the URL the inspector printed (`inspector: …`)");
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "referrer-policy": "no-referrer",
      "x-content-type-options": "nosniff",
      "content-security-policy":
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; " +
        `connect-src ws://${HOST}:${port} ws://localhost:${port}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    });
    res.end(req.method === "HEAD" ? undefined : page);
  });

  http.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url ?? "/", `http://${HOST}`);
    const origin = req.headers.origin;
    const originOk =
      origin === undefined || origin === `http://${HOST}:${port}` || origin === `http://localhost:${port}`;
    if (url.pathname !== "/ws" || !hostOk(req) || !originOk || !tokenOk(url)) {
      socket.end("HTTP/1.1 403 Forbidden\r\nconnection: close\r\n\r\n");
      return;
    }
    sockets.handleUpgrade(req, socket, head, (ws) => connect(ws));
  });

  const connect = (ws: WebSocket): void => {
    const remove = options.bridge.addPage({
      send: (_message, text) => {
        if (ws.readyState !== ws.OPEN) return;
        if (ws.bufferedAmount > maxBuffered) {
          ws.close(1013, "the page fell behind: reconnect for a fresh view");
          return;
        }
        ws.send(text());
      },
    });
    ws.on("close", remove);
    ws.on("error", (error) => options.logger.debug({ err: error }, "an inspector page's socket failed"));
    // The page sends nothing; what it does send is read and ignored.
    ws.on("message", () => undefined);
  };

  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(options.port ?? 0, HOST, () => {
      http.off("error", reject);
      resolve();
    });
  });
  port = (http.address() as AddressInfo).port;
  return {
    url: `http://${HOST}:${port}/?token=${token}`,
    port,
    get pages() {
      return sockets.clients.size;
    },
    close: async () => {
      for (const ws of sockets.clients) ws.terminate();
      sockets.close();
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await closed;
    },
  };
}

function refuse(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
  res.end(`${message}\n`);
}
