/**
 * The panel on screen (ink): a header with the NATS link, the images table, the selected image's
 * detail, the events, and a status line (the last action's outcome, or an input being typed);
 * a dialog takes the place of the detail and the events. Never taller than `height - 1` lines, so
 * that ink redraws in place instead of clearing the screen. Keys go through `onKey` (ui.ts); the
 * commands they ask for run here, through `actions`.
 */
import { createElement as h, useEffect, useRef, useState, useSyncExternalStore, type ReactElement } from "react";
import { Box, Text, useApp, useInput } from "ink";
import type { Detail, Outcome, PanelActions } from "./actions.js";
import { cutTo, LINK_LOOK, type Tone } from "./format.js";
import { visibleImages } from "./list.js";
import { imageOf, isSessionEvent, type PanelState } from "./model.js";
import { detailPane, dialogPane, eventsPane, imagesPane, type Line, type Span } from "./panes.js";
import type { PanelKey } from "./run.js";
import {
  initialUi,
  onKey,
  previewed,
  selectedImage,
  settle,
  type Command,
  type Dialog,
  type InputPurpose,
  type KeyContext,
  type UiState,
} from "./ui.js";

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

/**
 * How many lines each part gets: the image rows, the detail pane (at most `detailNeed`), the
 * events pane, or a dialog in place of both (titles included).
 */
export function budget(
  height: number,
  images: number,
  dialog: boolean,
  detailNeed = Number.POSITIVE_INFINITY,
): { rows: number; detail: number; events: number; dialog: number } {
  // The header and the status line; the last line of the screen stays free.
  const rest = Math.max(6, height - 1) - 2;
  const want = Math.max(3, Math.floor(rest * (dialog ? 0.3 : 0.4)));
  const rows = Math.max(1, Math.min(images, want, rest - 4));
  const lower = rest - 1 - rows;
  if (dialog) return { rows, detail: 0, events: 0, dialog: lower };
  const detail = lower >= 4 ? Math.min(detailNeed, Math.ceil(lower * 0.55)) : 0;
  return { rows, detail, events: lower - detail, dialog: 0 };
}

const PROMPTS: Record<InputPurpose, (image: string) => string> = {
  filter: () => "filter images (regex, !regex inverts, empty clears): ",
  "events-filter": () => "filter events (regex, !regex inverts, empty clears): ",
  evaluate: (image) => `evaluate on ${image}: `,
  create: (image) => `new session on ${image}, name (Enter: none): `,
  switch: (image) => `switch to ${image}, client id: `,
  connect: () => "connect image: <id> <address> [name]: ",
};

/** The detail of the selected image, asked again when one of its sessions changes. */
function useDetail(
  actions: PanelActions,
  imageId: string | null,
  version: string,
): Detail | { readonly error: string } | null {
  const [detail, setDetail] = useState<{ id: string; value: Detail | { readonly error: string } } | null>(null);
  useEffect(() => {
    if (imageId === null) return;
    let current = true;
    const timer = setTimeout(() => {
      void actions.detail(imageId).then((value) => {
        if (current) setDetail({ id: imageId, value });
      });
    }, 100);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [actions, imageId, version]);
  return detail !== null && detail.id === imageId ? detail.value : null;
}

export function PanelView(props: PanelViewProps): ReactElement {
  const state = useSyncExternalStore(props.store.subscribe, props.store.getState);
  const [ui, setUi] = useState<UiState>(initialUi);
  const uiRef = useRef(ui);
  uiRef.current = ui;
  const { exit } = useApp();
  const images = visibleImages(state.images, ui.filter, ui.sort);
  const image = selectedImage(ui, images);
  const selected = image === null ? 0 : images.indexOf(image);
  const imageId = image?.image_id ?? null;
  const lastAbout = state.events.findLast((e) => isSessionEvent(e.event) && imageOf(e.event) === imageId);
  const detail = useDetail(props.actions, imageId, lastAbout?.event.id ?? "");
  const sessions = detail !== null && "sessions" in detail ? detail.sessions : [];
  const extraKeys = props.extraKeys ?? [];
  const width = Math.max(20, props.width);
  const dialog = ui.dialog;
  const lower = dialog !== null && dialog.kind !== "input";
  // Title, stats, the sessions' head and rows (or one line saying there are none), two events.
  const detailNeed = 2 + (sessions.length === 0 ? 1 : 1 + sessions.length) + 2;
  const parts = budget(props.height, images.length, lower, detailNeed);

  const update = (next: (u: UiState) => UiState): void => {
    uiRef.current = next(uiRef.current);
    setUi(uiRef.current);
  };
  const run = (command: Command): void => {
    const done = (outcome: Outcome): void => update((u) => settle(u, command, outcome));
    const a = props.actions;
    switch (command.kind) {
      case "quit":
        props.onQuit?.();
        exit();
        return;
      case "switch":
        return void a.switchContext(command.clientId, command.imageId).then(done);
      case "create":
        return void a.createSession(props.clientId, command.imageId, command.name).then(done);
      case "close":
        return void a.closeSession(command.sessionId).then(done);
      case "evaluate":
        return void a.evaluate(props.clientId, command.imageId, command.code).then(done);
      case "connect":
        return void a.connect(command.imageId, command.address, command.name).then(done);
      case "disconnect":
        return void a.disconnect(command.image.image_id).then(done);
      case "retry":
        return void a.retry(command.image).then(done);
      case "cleanup-preview":
        return void a.cleanupPreview(command.imageId).then((p) => update((u) => previewed(u, command.imageId, p)));
      case "cleanup":
        return void a.cleanup(command.imageId, command.sessionIds).then(done);
      case "extra": {
        const extra = extraKeys.find((k) => k.key === command.key);
        if (extra === undefined) return;
        update((u) => ({ ...u, status: { busy: `${extra.help}…` } }));
        return void extra.run(command.image).then(
          (text) => done({ ok: true, text }),
          (error: unknown) => done({ ok: false, text: error instanceof Error ? error.message : String(error) }),
        );
      }
    }
  };
  // Keys may come faster than frames: they read what the latest frame showed.
  const context = useRef<KeyContext | null>(null);
  context.current = {
    images,
    sessions,
    page: parts.rows,
    clientId: props.clientId,
    extraKeys: extraKeys.map((k) => k.key),
  };
  useInput((input, key) => {
    const ctx = context.current;
    if (ctx === null) return;
    // Keys typed faster than they are read come as one string: each is a key, except in an input.
    const typing = uiRef.current.dialog?.kind === "input";
    const presses =
      !typing && input.length > 1 && !key.ctrl && !key.meta
        ? [...input].map((c) => ({ input: c }))
        : [{ input, ...key }];
    for (const press of presses) {
      const step = onKey(uiRef.current, press, ctx);
      update(() => step.ui);
      if (step.command !== undefined) run(step.command);
    }
  });

  const now = (props.now ?? Date.now)();
  const look = (tone: Tone | undefined): { color?: string; dimColor?: boolean } =>
    !props.color || tone === undefined ? {} : tone === "dim" ? { dimColor: true } : { color: tone };
  const draw = (line: Line, key: string): ReactElement =>
    h(
      Text,
      { key, wrap: "truncate" },
      ...merged(line, props.color).map((span, n) =>
        h(
          Text,
          {
            key: n,
            ...look(span.tone),
            bold: span.bold === true && props.color,
            inverse: span.inverse === true && props.color,
          },
          span.text,
        ),
      ),
    );

  const lines: Line[] = [
    header(state, ui, images.length, props, width),
    ...imagesPane({ images, all: state.images.length, selected, rows: parts.rows, width, now, sort: ui.sort }),
  ];
  if (lower) {
    const extraHelp = extraKeys.map((k) => [k.key, k.help] as const);
    lines.push(...dialogPane({ dialog, sessions, extraHelp, lines: parts.dialog, width, now }));
  } else {
    lines.push(...detailPane({ image, detail, events: state.events, lines: parts.detail, width, now }));
    lines.push(...eventsPane({ events: state.events, filter: ui.eventsFilter, lines: parts.events, width }));
  }
  lines.push(statusLine(ui, dialog, imageId ?? "-", width));
  return h(Box, { flexDirection: "column", width }, ...lines.map((line, n) => draw(line, `line-${n}`)));
}

/**
 * `line` with neighbouring pieces that look the same joined (without color, all look the same):
 * fewer nodes for ink to lay out each frame, the same text.
 */
function merged(line: Line, color: boolean): Span[] {
  const out: Span[] = [];
  for (const span of line) {
    const piece: Span = color
      ? { text: span.text, tone: span.tone, bold: span.bold === true, inverse: span.inverse === true }
      : { text: span.text };
    const last = out.at(-1);
    if (last !== undefined && last.tone === piece.tone && last.bold === piece.bold && last.inverse === piece.inverse) {
      out[out.length - 1] = { ...last, text: last.text + piece.text };
    } else out.push(piece);
  }
  return out;
}

function header(state: PanelState, ui: UiState, shown: number, props: PanelViewProps, width: number): Line {
  const link = LINK_LOOK[state.link];
  const count = state.images.length;
  const images =
    state.phase === "loading"
      ? "loading…"
      : ui.filter === null
        ? `${count} image${count === 1 ? "" : "s"}`
        : `${shown} of ${count} images (filter /${ui.filter.text}/)`;
  const extra = [
    state.error === null ? null : `error: ${state.error}`,
    state.resyncReason === null ? null : `resync ${state.resyncs}: ${state.resyncReason}`,
  ].filter((s) => s !== null);
  const title = `${props.title ?? "stui panel"}  NATS `;
  const rest = ` ${state.link} ${props.server}  ${images}${extra.length > 0 ? `  ${extra.join("  ")}` : ""}`;
  return [
    { text: cutTo(title, width), bold: true },
    { text: link.symbol, tone: link.tone },
    { text: cutTo(rest, Math.max(0, width - title.length - 1)) },
  ];
}

function statusLine(ui: UiState, dialog: Dialog | null, imageId: string, width: number): Line {
  if (dialog?.kind === "input") {
    const prompt = PROMPTS[dialog.purpose](imageId);
    const room = Math.max(2, width - prompt.length - 1);
    const value = dialog.value.length > room ? `…${dialog.value.slice(-(room - 1))}` : dialog.value;
    const error = dialog.error === null ? "" : `  ✖ ${dialog.error}`;
    return [
      { text: cutTo(prompt, width), bold: true },
      { text: `${value}█` },
      { text: cutTo(error, Math.max(0, width - prompt.length - value.length - 1)), tone: "red" },
    ];
  }
  const status = ui.status;
  if (status === null)
    return [
      { text: cutTo("? keys  / filter  j/k select  x switch  e evaluate  C cleanup  q quit", width), tone: "dim" },
    ];
  if ("busy" in status) return [{ text: cutTo(`◐ ${status.busy}`, width), tone: "yellow" }];
  return [{ text: cutTo(`${status.ok ? "✔" : "✖"} ${status.text}`, width), tone: status.ok ? "green" : "red" }];
}
