/**
 * The `panel` benchmark's child, run in a tmux pane (`node --import tsx bench/panel-child.ts
 * <spec file>`, the file holding a `PanelChildSpec` as JSON): either the live panel (`runPanel`
 * over a real client) or the baseline, a bare ink render of a static table of the same images,
 * re-rendered at a given rate. Both record when each frame was rendered and ink's render time of
 * it; `q` quits and the frames go to `spec.result` as JSON. The parent picks the frames of its
 * measured period by their time and reads the CPU from /proc, so that a child slowed down by a
 * busy machine cannot stretch or shift the period.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { inspect } from "node:util";
import type { ImageConnectionStatus } from "../src/protocol/index.js";

export interface PanelChildSpec {
  readonly mode: "live" | "baseline";
  readonly natsUrl: string;
  /** Where the child writes its pid (once started) and its figures (on exit). */
  readonly pidFile: string;
  readonly result: string;
  /** Baseline: the images to show, as `ListImages` gave them. */
  readonly images?: readonly ImageConnectionStatus[];
  /** Baseline: frames per second to re-render at. */
  readonly fps?: number;
}

export interface PanelChildResult {
  readonly mode: "live" | "baseline";
  /** `[epoch ms, render ms]` of every frame: when ink rendered it, and its `renderTime`. */
  readonly frames: readonly (readonly [number, number])[];
  readonly error?: string;
}

const spec = JSON.parse(readFileSync(process.argv[2] ?? "", "utf8")) as PanelChildSpec;

// ink reads CI and CONTINUOUS_INTEGRATION once, when first imported, and then draws only the last
// frame; `stui panel` drops them on a terminal (src/cli/main.ts), so does this child.
delete process.env["CI"];
delete process.env["CONTINUOUS_INTEGRATION"];

const frames: [number, number][] = [];
const onFrame = (renderMs: number): void => void frames.push([performance.timeOrigin + performance.now(), renderMs]);

function finish(error?: unknown): void {
  const result: PanelChildResult = {
    mode: spec.mode,
    frames,
    ...(error === undefined ? {} : { error: error instanceof Error ? (error.stack ?? error.message) : inspect(error) }),
  };
  writeFileSync(spec.result, JSON.stringify(result));
}

async function live(): Promise<void> {
  const { StuiClient } = await import("../src/client.js");
  const { runPanel } = await import("../src/cli/panel/run.js");
  const client = await StuiClient.connect({ servers: spec.natsUrl });
  try {
    await runPanel({ client, server: spec.natsUrl, color: true, clientId: "bench", onFrame });
  } finally {
    await client.close();
  }
}

async function baseline(): Promise<void> {
  const { render } = await import("ink");
  const { createElement } = await import("react");
  const { StaticTable } = await import("./panel-table.js");
  const images = spec.images ?? [];
  let frame = 0;
  const view = (): ReturnType<typeof createElement> =>
    createElement(StaticTable, {
      images,
      width: process.stdout.columns || 80,
      height: process.stdout.rows || 24,
      frame,
    });
  const app = render(view(), {
    exitOnCtrlC: true,
    patchConsole: false,
    incrementalRendering: true,
    onRender: (m: { renderTime: number }) => onFrame(m.renderTime),
  });
  const timer = setInterval(
    () => {
      frame += 1;
      app.rerender(view());
    },
    1000 / Math.max(0.1, spec.fps ?? 10),
  );
  try {
    await app.waitUntilExit();
  } finally {
    clearInterval(timer);
    app.unmount();
  }
}

writeFileSync(spec.pidFile, String(process.pid));
try {
  await (spec.mode === "live" ? live() : baseline());
  finish();
  process.exit(0);
} catch (error) {
  finish(error);
  process.exit(1);
}
