/**
 * The interactive panel on the terminal: the driver (NATS → model), the view (ink), and the way
 * out that restores the terminal. `stui panel` and `stui demo` both run it; the demo adds its own
 * keys (`extraKeys`) for its simulated images.
 */
import { createElement } from "react";
import { render } from "ink";
import type { StuiClient } from "../../client.js";
import type { ImageConnectionStatus } from "../../protocol/index.js";
import { clientActions } from "./actions.js";
import { startDriver } from "./driver.js";
import { PanelView } from "./view.js";

/** A key a caller adds: pressed, it acts on the selected image and says what it did. */
export interface PanelKey {
  /** One character, not one of the panel's own keys (see the `?` overlay). */
  readonly key: string;
  /** What the help overlay says it does. */
  readonly help: string;
  readonly run: (image: ImageConnectionStatus | null) => Promise<string>;
}

export interface PanelRunOptions {
  readonly client: StuiClient;
  /** What the NATS link is to, for the header. */
  readonly server: string;
  readonly color: boolean;
  /** The client id the panel's actions use (context switch, sessions, evaluate). */
  readonly clientId: string;
  /** How many events the events pane keeps. @default 50 */
  readonly maxEvents?: number;
  /** The header's first word. @default "stui panel" */
  readonly title?: string;
  readonly extraKeys?: readonly PanelKey[];
  /** Called after each frame with the time it took to render, in ms (the benchmark's probe). */
  readonly onFrame?: (renderMs: number) => void;
  /** Ends the panel from outside (the demo on a signal), as `q` does. */
  readonly signal?: AbortSignal;
  readonly stdout?: NodeJS.WriteStream;
  readonly stdin?: NodeJS.ReadStream;
}

/** At most this many frames a second (ink's default is 30); the first change after a pause draws at once. */
const MAX_FPS = 12;

/** Runs the panel until `q` (or Ctrl-C, or `signal`); nothing but the panel writes to the screen meanwhile. */
export async function runPanel(o: PanelRunOptions): Promise<void> {
  const stdout = o.stdout ?? process.stdout;
  const driver = startDriver(o.client, o.maxEvents ?? 50);
  const actions = clientActions(o.client);
  const quiet = (): void => undefined;
  const saved = { log: console.log, error: console.error, warn: console.warn, info: console.info };
  Object.assign(console, { log: quiet, error: quiet, warn: quiet, info: quiet });
  const size = (): { width: number; height: number } => ({ width: stdout.columns || 80, height: stdout.rows || 24 });
  const view = (): ReturnType<typeof createElement> =>
    createElement(PanelView, {
      store: driver,
      actions,
      ...size(),
      color: o.color,
      server: o.server,
      clientId: o.clientId,
      title: o.title ?? "stui panel",
      extraKeys: o.extraKeys ?? [],
    });
  // ink's standard renderer: each frame is one write, inside synchronized-update codes on a
  // terminal. (Its incremental renderer left the first frame's top line behind in tmux.)
  const app = render(view(), {
    stdout,
    stdin: o.stdin ?? process.stdin,
    exitOnCtrlC: true,
    patchConsole: false,
    // A screen a person reads: a burst of events costs at most this many frames a second.
    maxFps: MAX_FPS,
    ...(o.onFrame === undefined ? {} : { onRender: (m: { renderTime: number }) => o.onFrame?.(m.renderTime) }),
  });
  const end = (): void => app.unmount();
  o.signal?.addEventListener("abort", end, { once: true });
  const resize = (): void => app.rerender(view());
  stdout.on("resize", resize);
  // Relative times ("12s ago") move on even when nothing else does.
  const tick = setInterval(resize, 1000);
  try {
    await app.waitUntilExit();
  } finally {
    clearInterval(tick);
    o.signal?.removeEventListener("abort", end);
    stdout.off("resize", resize);
    driver.stop();
    app.unmount();
    Object.assign(console, saved);
  }
}
