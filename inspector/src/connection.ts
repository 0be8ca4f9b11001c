/**
 * The WebSocket to the bridge, reopened with exponential backoff whenever it closes, until
 * `close()` (an import switches to a recording).
 */

export type ConnectionStatus =
  | { readonly kind: "connecting"; readonly attempt: number }
  | { readonly kind: "open" }
  | { readonly kind: "waiting"; readonly attempt: number; readonly retryAt: number; readonly reason: string };

export interface ConnectionOptions {
  readonly url: string;
  readonly onMessage: (data: string) => void;
  readonly onStatus: (status: ConnectionStatus) => void;
  /** @default 500 */
  readonly backoffBaseMs?: number;
  /** @default 10000 */
  readonly backoffCapMs?: number;
}

export interface Connection {
  close(): void;
}

/** `ws(s)://<this host>/ws?token=<the page's token>`. */
export function bridgeUrl(location: Location): string {
  const token = new URLSearchParams(location.search).get("token") ?? "";
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws?token=${encodeURIComponent(token)}`;
}

export function connect(options: ConnectionOptions): Connection {
  const base = options.backoffBaseMs ?? 500;
  const cap = options.backoffCapMs ?? 10_000;
  let socket: WebSocket | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let attempt = 0;
  let closed = false;

  const open = (): void => {
    attempt++;
    options.onStatus({ kind: "connecting", attempt });
    const current = new WebSocket(options.url);
    socket = current;
    current.addEventListener("open", () => {
      attempt = 0;
      options.onStatus({ kind: "open" });
    });
    current.addEventListener("message", (event: MessageEvent<unknown>) => {
      if (typeof event.data === "string") options.onMessage(event.data);
    });
    current.addEventListener("close", (event) => {
      if (closed || socket !== current) return;
      const delay = Math.min(cap, base * 2 ** Math.min(attempt, 20));
      const reason = event.reason !== "" ? event.reason : `closed (${event.code})`;
      options.onStatus({ kind: "waiting", attempt, retryAt: Date.now() + delay, reason });
      timer = setTimeout(open, delay);
    });
  };
  open();
  return {
    close(): void {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      socket?.close();
    },
  };
}
