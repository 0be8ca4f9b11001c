/**
 * Browser-test helpers: Debian's Chromium driven by playwright-core, a recorder of every request a
 * page makes (to prove none leaves 127.0.0.1), a tiny HTTP + WebSocket server for a built page,
 * and screenshots under test/artifacts/. Each handle is `await using`-disposable, so a failing
 * test still closes its browser and servers.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { chromium } from "playwright-core";
import type { Browser, Page } from "playwright-core";
import { WebSocketServer } from "ws";
import type { WebSocket } from "ws";

export const chromiumPath = "/usr/bin/chromium";

/** Why browser tests must be skipped here, or null when they can run. */
export function browserMissing(): string | null {
  return existsSync(chromiumPath)
    ? null
    : `${chromiumPath} is missing (apt-get install chromium): browser tests skipped`;
}

export interface BrowserHandle {
  readonly browser: Browser;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function launchBrowser(): Promise<BrowserHandle> {
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu"],
  });
  const close = async (): Promise<void> => {
    if (browser.isConnected()) await browser.close();
  };
  return { browser, close, [Symbol.asyncDispose]: close };
}

/** Every URL a page requested, including WebSockets and whatever its frames and workers asked for. */
export interface RequestRecorder {
  readonly urls: readonly string[];
  /** The requests that did not go to 127.0.0.1 (data:, blob: and about: stay in the page). */
  outside(): string[];
}

const inPage = new Set(["data:", "blob:", "about:"]);

export function recordRequests(page: Page): RequestRecorder {
  const urls: string[] = [];
  page.on("request", (request) => urls.push(request.url()));
  page.on("websocket", (socket) => urls.push(socket.url()));
  return {
    urls,
    outside: () =>
      urls.filter((url) => {
        const parsed = new URL(url);
        return !inPage.has(parsed.protocol) && parsed.hostname !== "127.0.0.1";
      }),
  };
}

const artifacts = new URL("../artifacts/inspector/", import.meta.url);

/** Saves a full-page screenshot as test/artifacts/inspector/<name>.png; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(artifacts, { recursive: true });
  const path = new URL(`${name}.png`, artifacts).pathname;
  await page.screenshot({ path, fullPage: true });
  return path;
}

export interface PageServer {
  /** `http://127.0.0.1:<port>/?token=<token>` */
  readonly url: string;
  readonly token: string;
  /** Sockets connected to /ws with the right token, in order. */
  readonly sockets: WebSocket[];
  /** Resolves with the next socket that connects (every caller waiting gets it). */
  nextSocket(): Promise<WebSocket>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Serves `file` at `/` on 127.0.0.1 and accepts WebSockets at `/ws?token=…` (others are refused
 * with 401, as the real bridge does). What the sockets are sent is up to the test.
 */
export interface ServePageOptions {
  /** @default "test-token" */
  readonly token?: string;
  /** Called with each socket as it connects (e.g. to send it messages). */
  readonly onSocket?: (socket: WebSocket) => void;
}

export async function servePage(file: string, options: ServePageOptions = {}): Promise<PageServer> {
  const token = options.token ?? "test-token";
  const html = readFileSync(file);
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://127.0.0.1").pathname;
    if (path === "/" || path === "/index.html") {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
    } else {
      response.writeHead(404).end();
    }
  });
  const wss = new WebSocketServer({ noServer: true });
  const sockets: WebSocket[] = [];
  const waiting: ((socket: WebSocket) => void)[] = [];
  server.on("upgrade", (request: IncomingMessage, socket, head) => {
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    if (url.pathname !== "/ws" || url.searchParams.get("token") !== token) {
      socket.end("HTTP/1.1 401 Unauthorized\r\n\r\n");
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      sockets.push(ws);
      options.onSocket?.(ws);
      for (const resolve of waiting.splice(0)) resolve(ws);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const close = async (): Promise<void> => {
    for (const socket of sockets) socket.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    token,
    sockets,
    nextSocket: () => new Promise((resolve) => waiting.push(resolve)),
    close,
    [Symbol.asyncDispose]: close,
  };
}
