/**
 * The panel on screen (ink): a header line with the NATS link, the images table with a selected
 * row, and the last events, each one line cut to the width. Never taller than `height - 1` lines,
 * so that ink redraws in place instead of clearing the screen.
 */
import { createElement as h, useState, useSyncExternalStore, type ReactElement } from "react";
import { Box, Text, useApp, useInput } from "ink";
import type { ImageConnectionStatus } from "../../protocol/index.js";
import { cutTo, eventLine, GAP_TEXT, layout, LINK_LOOK, pad, STATUS_LOOK, type Tone } from "./format.js";
import type { PanelState } from "./model.js";
import type { PanelActions } from "./actions.js";
import type { PanelKey } from "./run.js";

/** Where the view reads the state from: the driver updates it, the view follows. */
export interface PanelStore {
  readonly getState: () => PanelState;
  readonly subscribe: (listener: () => void) => () => void;
}

export interface PanelViewProps {
  readonly store: PanelStore;
  readonly width: number;
  readonly height: number;
  /** `false` (NO_COLOR, --no-color): no color or dimming at all. */
  readonly color: boolean;
  /** What the NATS link is to: a server URL. */
  readonly server: string;
  readonly actions: PanelActions;
  /** The client id the actions use. */
  readonly clientId: string;
  /** The header's first word. @default "stui panel" */
  readonly title?: string;
  readonly extraKeys?: readonly PanelKey[];
  /** The clock for relative times. @default Date.now */
  readonly now?: () => number;
  /** Called when `q` is pressed, before the app exits. */
  readonly onQuit?: () => void;
}

/** The selection mark before each row: `› ` or blanks. */
const MARK = 2;

/** How many lines each part gets: header, table head, image rows, events title, event lines. */
export function budget(height: number, images: number): { rows: number; events: number } {
  const usable = Math.max(4, height - 1) - 3;
  const events = Math.min(Math.max(2, Math.floor(usable / 3)), Math.max(0, usable - 1));
  const rows = Math.max(1, Math.min(images, usable - events));
  return { rows, events: usable - rows };
}

/** The first row shown so that `selected` is in a window of `rows`. */
export function windowStart(selected: number, rows: number, count: number): number {
  return Math.max(0, Math.min(selected - rows + 1 > 0 ? selected - rows + 1 : 0, count - rows));
}

export function PanelView(props: PanelViewProps): ReactElement {
  const state = useSyncExternalStore(props.store.subscribe, props.store.getState);
  const [selected, setSelected] = useState(0);
  const { exit } = useApp();
  const count = state.images.length;
  const current = Math.min(selected, Math.max(0, count - 1));
  useInput((input, key) => {
    if (input === "q") {
      props.onQuit?.();
      exit();
    } else if (input === "j" || key.downArrow) setSelected(Math.min(current + 1, Math.max(0, count - 1)));
    else if (input === "k" || key.upArrow) setSelected(Math.max(0, current - 1));
  });
  const now = (props.now ?? Date.now)();
  const width = Math.max(20, props.width);
  const tint = (tone: Tone): { color?: string; dimColor?: boolean } =>
    !props.color ? {} : tone === "dim" ? { dimColor: true } : { color: tone };
  const { rows, events } = budget(props.height, count);
  const start = windowStart(current, rows, count);
  const shown = state.images.slice(start, start + rows);
  const { columns, widths } = layout(state.images, width - MARK, now);

  const link = LINK_LOOK[state.link];
  const phase = state.phase === "loading" ? "loading…" : `${count} image${count === 1 ? "" : "s"}`;
  const extra = [
    state.error === null ? null : `error: ${state.error}`,
    state.resyncReason === null ? null : `resync ${state.resyncs}: ${state.resyncReason}`,
  ].filter((s) => s !== null);
  const headerRest = cutTo(
    ` ${state.link} ${props.server}  ${phase}${extra.length > 0 ? `  ${extra.join("  ")}` : ""}  j/k move  q quit`,
    width - "NATS ◐".length,
  );

  const cells = (image: ImageConnectionStatus, selectedRow: boolean): ReactElement[] =>
    columns.map((c, n) => {
      const text = pad(c.cell(image, now), widths[n] ?? 0, c.right) + (n < columns.length - 1 ? GAP_TEXT : "");
      const look = c.key === "status" ? tint(STATUS_LOOK[image.status].tone) : {};
      return h(Text, { key: c.key, ...look, inverse: selectedRow && props.color }, text);
    });
  const headLine = cutTo(
    " ".repeat(MARK) + columns.map((c, n) => pad(c.title, widths[n] ?? 0, c.right)).join(GAP_TEXT),
    width,
  );
  const eventLines = state.events.slice(-events);

  return h(
    Box,
    { flexDirection: "column", width },
    h(
      Text,
      { wrap: "truncate" },
      h(Text, { bold: props.color }, "NATS "),
      h(Text, tint(link.tone), link.symbol),
      h(Text, null, headerRest),
    ),
    h(Text, { wrap: "truncate", bold: props.color }, headLine),
    ...Array.from({ length: rows }, (_, n) => {
      const image = shown[n];
      if (image === undefined) return h(Text, { key: `empty-${n}` }, n === 0 && count === 0 ? "(no images)" : " ");
      const isSelected = start + n === current;
      return h(
        Text,
        { key: image.image_id, wrap: "truncate" },
        h(Text, { bold: isSelected && props.color }, isSelected ? "› " : "  "),
        ...cells(image, isSelected),
      );
    }),
    h(
      Text,
      { wrap: "truncate", ...tint("dim") },
      cutTo(`── events (${state.events.length}) `.padEnd(width, "─"), width),
    ),
    ...Array.from({ length: events }, (_, n) => {
      const event = eventLines[n];
      return h(
        Text,
        { key: `event-${n}`, wrap: "truncate" },
        event === undefined ? " " : cutTo(eventLine(event), width),
      );
    }),
  );
}
