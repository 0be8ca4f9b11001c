/**
 * The panel's parts as lines of text, each at most `width` wide and exactly as many as it is
 * given: the images table, the selected image's detail, the events, and the dialogs. A part is a
 * list of `Line`s (a text with an optional look); the view turns them into ink elements.
 */
import type { ImageConnectionStatus, ImageSessionStats, SessionMetadata } from "../../protocol/index.js";
import type { Detail } from "./actions.js";
import { cutTo, eventLine, GAP_TEXT, layout, pad, relativeTime, retryText, STATUS_LOOK, type Tone } from "./format.js";
import type { Filter, Sort } from "./list.js";
import { imageOf, type PaneEvent } from "./model.js";
import { KEY_HELP, type Dialog } from "./ui.js";

/** One piece of a line, with how it looks. */
export interface Span {
  readonly text: string;
  readonly tone?: Tone;
  readonly bold?: boolean;
  readonly inverse?: boolean;
}

/** A line: its pieces, together at most the width. */
export type Line = readonly Span[];

const plain = (text: string, width: number): Line => [{ text: cutTo(text, width) }];
const rule = (title: string, width: number): Line => [
  { text: cutTo(`── ${title} `.padEnd(width, "─"), width), tone: "dim" },
];

/** Pads `lines` with empty ones (or cuts them) to exactly `count`. */
export function fit(lines: readonly Line[], count: number): Line[] {
  const out = lines.slice(0, Math.max(0, count));
  while (out.length < count) out.push([{ text: " " }]);
  return out;
}

/** The images table: a head line, then `rows` lines around the selected image. */
export function imagesPane(o: {
  readonly images: readonly ImageConnectionStatus[];
  readonly all: number;
  readonly selected: number;
  readonly rows: number;
  readonly width: number;
  readonly now: number;
  readonly sort: Sort;
}): Line[] {
  const mark = 2;
  const { columns, widths } = layout(o.images, o.width - mark, o.now);
  const arrow = o.sort.descending ? "▼" : "▲";
  const head =
    " ".repeat(mark) +
    columns
      .map((c, n) => pad(c.key === o.sort.key ? `${c.title}${arrow}` : c.title, widths[n] ?? 0, c.right))
      .join(GAP_TEXT);
  const start = windowStart(o.selected, o.rows, o.images.length);
  const lines: Line[] = [[{ text: cutTo(head, o.width), bold: true }]];
  for (const [n, image] of o.images.slice(start, start + o.rows).entries()) {
    const selected = start + n === o.selected;
    lines.push([
      { text: selected ? "› " : "  ", bold: selected },
      ...columns.map((c, k) => ({
        text: pad(c.cell(image, o.now), widths[k] ?? 0, c.right) + (k < columns.length - 1 ? GAP_TEXT : ""),
        ...(c.key === "status" ? { tone: STATUS_LOOK[image.status].tone } : {}),
        inverse: selected,
      })),
    ]);
  }
  if (o.images.length === 0)
    lines.push(plain(o.all === 0 ? "(no images)" : `(no image matches; ${o.all} hidden by the filter)`, o.width));
  return fit(lines, 1 + o.rows);
}

/** The first row shown so that `selected` is in a window of `rows`. */
export function windowStart(selected: number, rows: number, count: number): number {
  return Math.max(0, Math.min(selected - rows + 1 > 0 ? selected - rows + 1 : 0, count - rows));
}

const sessionState = (s: SessionMetadata): string =>
  s.orphaned_at !== null ? "orphaned" : s.is_active ? "active" : "closed";

function statsLine(image: ImageConnectionStatus, stats: ImageSessionStats | null, now: number): string {
  const total = stats?.total_sessions ?? image.session_count;
  const active = stats?.active_sessions ?? image.active_sessions;
  const orphaned = stats?.orphaned_sessions ?? image.orphaned_sessions;
  const activity = stats?.last_activity ?? image.last_activity;
  const parts = [
    `${total} session${total === 1 ? "" : "s"} (${active} active, ${orphaned} orphaned)`,
    `last activity ${relativeTime(activity, now)}`,
    `seen ${relativeTime(image.last_seen, now)}`,
    `${image.connection_health}${image.rtt_ms === null ? "" : ` ${image.rtt_ms.toFixed(1)} ms`}`,
  ];
  const retry = retryText(image, now);
  return [...(retry === null ? [] : [`reconnect attempt ${retry}`]), ...parts].join(" · ");
}

/** The selected image: a title, its stats, its sessions, and its last events. */
export function detailPane(o: {
  readonly image: ImageConnectionStatus | null;
  readonly detail: Detail | { readonly error: string } | null;
  readonly events: readonly PaneEvent[];
  readonly lines: number;
  readonly width: number;
  readonly now: number;
}): Line[] {
  const { image, width } = o;
  if (o.lines <= 0) return [];
  if (image === null) return fit([rule("no image selected", width)], o.lines);
  const about = [image.image_id, image.name, image.image_version, image.address].filter((s) => s !== null && s !== "");
  const lines: Line[] = [rule(about.join(" · "), width)];
  const body = o.lines - 1;
  const detail = o.detail;
  lines.push(plain(statsLine(image, detail !== null && "stats" in detail ? detail.stats : null, o.now), width));
  const mine = o.events.filter((e) => imageOf(e.event) === image.image_id);
  const recent = body >= 6 ? 2 : body >= 4 ? 1 : 0;
  const sessionLines = Math.max(0, body - 1 - recent);
  if (detail === null) lines.push(plain("loading sessions…", width));
  else if ("error" in detail) lines.push([{ text: cutTo(`✖ sessions: ${detail.error}`, width), tone: "red" }]);
  else if (detail.sessions.length === 0) lines.push(plain("no sessions", width));
  else if (sessionLines > 0) {
    const rows = detail.sessions.map((s) => [
      s.client_id,
      s.session_name ?? "-",
      relativeTime(s.created_at, o.now),
      relativeTime(s.last_activity, o.now),
      sessionState(s),
      s.session_id.slice(0, 8),
    ]);
    const head = ["CLIENT", "NAME", "CREATED", "ACTIVITY", "STATE", "ID"];
    const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => (r[k] ?? "").length)));
    const row = (cells: readonly string[]): string => cells.map((c, k) => pad(c, widths[k] ?? 0)).join(GAP_TEXT);
    lines.push([{ text: cutTo(`  ${row(head)}`, width), bold: true }]);
    const room = sessionLines - 1;
    const shown = rows.length > room ? rows.slice(0, Math.max(0, room - 1)) : rows;
    for (const r of shown) lines.push(plain(`  ${row(r)}`, width));
    if (shown.length < rows.length && room > 0) lines.push(plain(`  … ${rows.length - shown.length} more`, width));
  }
  const body1 = fit(lines, o.lines - recent);
  const tail = mine.slice(-recent).map((e) => eventText(e, width));
  return [...body1, ...fit(tail, recent)];
}

/** One event line: `↺` marks one replayed from before the panel started. */
function eventText(e: PaneEvent, width: number): Line {
  const text = cutTo(`${e.replayed ? "↺" : " "} ${eventLine(e.event)}`, width);
  return [{ text, ...(e.replayed ? { tone: "dim" as const } : {}) }];
}

/** The events: a title (with the filter), then the newest that fit. */
export function eventsPane(o: {
  readonly events: readonly PaneEvent[];
  readonly filter: Filter | null;
  readonly lines: number;
  readonly width: number;
}): Line[] {
  if (o.lines <= 0) return [];
  const shown = o.filter === null ? o.events : o.events.filter((e) => o.filter?.test(eventLine(e.event)) === true);
  const replayed = o.events.filter((e) => e.replayed).length;
  const title = [
    `events ${shown.length}${o.filter === null ? "" : ` of ${o.events.length} (filter /${o.filter.text}/)`}`,
    replayed > 0 ? `↺ ${replayed} replayed from before` : null,
  ].filter((s) => s !== null);
  const body = shown.slice(-(o.lines - 1)).map((e) => eventText(e, o.width));
  return fit([rule(title.join(" · "), o.width), ...body], o.lines);
}

/** A dialog in the lower part of the screen: a title, its lines, what the keys do. */
export function dialogPane(o: {
  readonly dialog: Exclude<Dialog, { kind: "input" }>;
  readonly sessions: readonly SessionMetadata[];
  readonly extraHelp: readonly (readonly [string, string])[];
  readonly lines: number;
  readonly width: number;
  readonly now: number;
}): Line[] {
  const { dialog, width } = o;
  const sessionRow = (s: SessionMetadata, mark = "  "): string =>
    `${mark}${s.session_id}  ${s.client_id}  ${s.session_name ?? "-"}  ${sessionState(s)}${s.orphaned_at === null ? "" : ` since ${relativeTime(s.orphaned_at, o.now)}`}`;
  const keys = (text: string): Line => [{ text: cutTo(text, width), bold: true }];
  let title: string;
  let body: Line[];
  let footer: string;
  switch (dialog.kind) {
    case "help": {
      title = "keys";
      const all = [...KEY_HELP, ...o.extraHelp];
      const w = Math.max(...all.map(([k]) => k.length));
      body = all.map(([k, text]) => plain(`  ${k.padEnd(w)}  ${text}`, width));
      footer = "Esc, Enter or ? closes";
      break;
    }
    case "result":
      title = `${dialog.outcome.ok ? "✔" : "✖"} ${dialog.outcome.text}`;
      body = (dialog.outcome.lines ?? []).map((l) => plain(`  ${l}`, width));
      footer = "Esc or Enter closes";
      break;
    case "confirm-disconnect":
      title = `disconnect ${dialog.imageId}?`;
      body = [
        plain(
          `  ${dialog.imageId} is removed from the service; its ${o.sessions.length} session(s) are orphaned.`,
          width,
        ),
      ];
      footer = "y disconnect · n or Esc cancel";
      break;
    case "pick-session":
      title = `close which session of ${dialog.imageId}?`;
      body = o.sessions.map((s, n) => {
        const chosen = n === Math.min(dialog.index, o.sessions.length - 1);
        return [{ text: cutTo(sessionRow(s, chosen ? "› " : "  "), width), inverse: chosen }];
      });
      footer = "j/k choose · Enter close it · Esc cancel";
      break;
    case "cleanup":
      ({ title, body, footer } = cleanupText(dialog, sessionRow, width));
      break;
  }
  const room = Math.max(0, o.lines - 2);
  const cut =
    body.length > room
      ? [...body.slice(0, Math.max(0, room - 1)), plain(`  … ${body.length - room + 1} more`, width)]
      : body;
  return fit([rule(title, width), ...fit(cut, room), keys(footer)], o.lines);
}

function cleanupText(
  dialog: Extract<Dialog, { kind: "cleanup" }>,
  sessionRow: (s: SessionMetadata) => string,
  width: number,
): { title: string; body: Line[]; footer: string } {
  const n = dialog.sessions.length;
  switch (dialog.step) {
    case "loading":
      return {
        title: `clean up ${dialog.imageId}`,
        body: [plain("  looking for orphaned sessions…", width)],
        footer: "Esc cancel",
      };
    case "preview":
      if (n === 0)
        return {
          title: `clean up ${dialog.imageId}`,
          body: [plain("  no orphaned sessions: nothing to remove", width)],
          footer: "Enter or Esc closes",
        };
      return {
        title: `clean up ${dialog.imageId}: these ${n} orphaned session(s) would be removed`,
        body: dialog.sessions.map((s) => plain(sessionRow(s), width)),
        footer: `y remove these ${n} · n or Esc cancel`,
      };
    case "running":
      return {
        title: `clean up ${dialog.imageId}: removing ${n}…`,
        body: dialog.sessions.map((s) => plain(sessionRow(s), width)),
        footer: "Esc hides (the cleanup goes on)",
      };
    case "done": {
      const outcome = dialog.outcome;
      const removed = outcome?.lines ?? [];
      return {
        title: `${outcome?.ok === true ? "✔" : "✖"} ${outcome?.text ?? "done"}`,
        body: removed.map((id) => plain(`  removed ${id}`, width)),
        footer: "Enter or Esc closes",
      };
    }
  }
}
