/**
 * What the panel shows, as plain strings: status symbols and words, relative times, the images
 * table's columns (dropped by priority when the terminal is narrow) and lines cut to a width.
 */
import type { ConnectionStatus, ImageConnectionStatus, StuiEvent } from "../../protocol/index.js";
import { describeEvent } from "../events-command.js";
import type { LinkState } from "./model.js";

/** A terminal color name as ink takes it, or `dim`. */
export type Tone = "green" | "yellow" | "red" | "dim";

export const STATUS_LOOK = {
  Connected: { symbol: "●", tone: "green" },
  Reconnecting: { symbol: "◐", tone: "yellow" },
  Failed: { symbol: "✖", tone: "red" },
  Disconnected: { symbol: "○", tone: "dim" },
  Unknown: { symbol: "?", tone: "dim" },
} as const satisfies Record<ConnectionStatus, { symbol: string; tone: Tone }>;

export const statusText = (status: ConnectionStatus): string => `${STATUS_LOOK[status].symbol} ${status}`;

export const LINK_LOOK = {
  connecting: { symbol: "◐", tone: "yellow" },
  connected: { symbol: "●", tone: "green" },
  reconnecting: { symbol: "◐", tone: "yellow" },
  closed: { symbol: "✖", tone: "red" },
} as const satisfies Record<LinkState, { symbol: string; tone: Tone }>;

/** `12s ago`, `4m ago`, `3h ago`, `2d ago`; `-` for never. */
export function relativeTime(at: string | null, now: number): string {
  if (at === null) return "-";
  const seconds = Math.max(0, Math.round((now - Date.parse(at)) / 1000));
  if (Number.isNaN(seconds)) return "-";
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}

export type ColumnKey = "id" | "name" | "status" | "health" | "retry" | "rtt" | "sessions" | "seen" | "owner";

export interface Column {
  readonly key: ColumnKey;
  readonly title: string;
  /** Lower numbers stay longest when the terminal is narrow. */
  readonly priority: number;
  readonly right?: boolean;
  readonly cell: (image: ImageConnectionStatus, now: number) => string;
}

export const COLUMNS: readonly Column[] = [
  { key: "id", title: "IMAGE", priority: 0, cell: (i) => i.image_id },
  { key: "status", title: "STATUS", priority: 0, cell: (i) => statusText(i.status) },
  { key: "health", title: "HEALTH", priority: 1, cell: (i) => i.connection_health },
  { key: "retry", title: "RETRY", priority: 2, cell: retryCell },
  { key: "sessions", title: "ACT/ORPH/ALL", priority: 3, cell: sessionsCell },
  {
    key: "rtt",
    title: "RTT ms",
    priority: 4,
    right: true,
    cell: (i) => (i.rtt_ms === null ? "-" : i.rtt_ms.toFixed(1)),
  },
  { key: "seen", title: "LAST SEEN", priority: 5, cell: (i, now) => relativeTime(i.last_seen, now) },
  { key: "owner", title: "OWNER", priority: 6, cell: (i) => i.owner ?? "-" },
  { key: "name", title: "NAME", priority: 7, cell: (i) => i.name ?? "-" },
];

/** `in 3s`, `in 2m`; `now` once the time has come. */
export function untilTime(at: string, now: number): string {
  const seconds = Math.ceil((Date.parse(at) - now) / 1000);
  if (Number.isNaN(seconds) || seconds <= 0) return "now";
  return seconds < 60 ? `in ${seconds}s` : `in ${Math.floor(seconds / 60)}m`;
}

/**
 * While reconnecting: the number of the coming attempt and when it starts (`#3 in 2s`), or
 * `#3 now` while it is under way; `-` otherwise.
 */
export function retryText(i: ImageConnectionStatus, now: number): string | null {
  if (i.status !== "Reconnecting" || i.reconnect_attempt === null) return null;
  const next = `#${i.reconnect_attempt + 1}`;
  return i.next_attempt_at === null ? `${next} now` : `${next} ${untilTime(i.next_attempt_at, now)}`;
}

function retryCell(i: ImageConnectionStatus, now: number): string {
  return retryText(i, now) ?? "-";
}

function sessionsCell(i: ImageConnectionStatus): string {
  return `${i.active_sessions}/${i.orphaned_sessions}/${i.session_count}`;
}

export interface Layout {
  readonly columns: readonly Column[];
  readonly widths: readonly number[];
}

const GAP = 2;

/**
 * The columns that fit `width`, each as wide as its widest cell: the least important dropped
 * first; the owner column only when some image has an owner, the retry column only while some
 * image reconnects. The first column is cut if even it alone does not fit.
 */
export function layout(images: readonly ImageConnectionStatus[], width: number, now: number): Layout {
  const hasOwner = images.some((i) => i.owner !== null);
  const reconnecting = images.some((i) => i.status === "Reconnecting");
  let columns = COLUMNS.filter((c) => (c.key !== "owner" || hasOwner) && (c.key !== "retry" || reconnecting));
  // A title has room for the sort mark after it.
  const widthOf = (c: Column): number => Math.max(c.title.length + 1, ...images.map((i) => c.cell(i, now).length));
  const total = (cs: readonly Column[]): number => cs.reduce((sum, c) => sum + widthOf(c), 0) + GAP * (cs.length - 1);
  while (columns.length > 1 && total(columns) > width) {
    const drop = columns.reduce((worst, c) => (c.priority >= worst.priority ? c : worst));
    columns = columns.filter((c) => c !== drop);
  }
  return { columns, widths: columns.map(widthOf) };
}

export function pad(text: string, width: number, right = false): string {
  const cut = cutTo(text, width);
  return right ? cut.padStart(width) : cut.padEnd(width);
}

/** `text` on one line of at most `width` characters (an ellipsis marks a cut). */
export function cutTo(text: string, width: number): string {
  const line = text.replace(/[\r\n\t]+/g, " ");
  if (line.length <= width) return line;
  if (width <= 1) return line.slice(0, Math.max(0, width));
  return `${line.slice(0, width - 1)}…`;
}

export const GAP_TEXT = " ".repeat(GAP);

/** One event as the events pane shows it: the time of day, then what happened. */
export function eventLine(event: StuiEvent): string {
  const text = describeEvent(event);
  const time = event.time.slice(11, 19);
  return `${time} ${text.slice(text.indexOf(" ") + 1)}`;
}
