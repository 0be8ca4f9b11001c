/**
 * The panel's own state, apart from the service's: the selected image, the filters, the sort, the
 * dialog that is open and the last action's outcome; and what each key does to it. A key may
 * also ask for a `Command` (an action on the service), whose outcome comes back with `settle`.
 * Pure: the view runs the commands.
 */
import type { ImageConnectionStatus, SessionMetadata } from "../../protocol/index.js";
import type { Outcome } from "./actions.js";
import { DEFAULT_SORT, nextSort, parseFilter, type Filter, type Sort } from "./list.js";

/** What an input line is for. */
export type InputPurpose = "filter" | "events-filter" | "evaluate" | "create" | "switch" | "connect";

export type Dialog =
  | { readonly kind: "help" }
  | { readonly kind: "input"; readonly purpose: InputPurpose; readonly value: string; readonly error: string | null }
  | { readonly kind: "confirm-disconnect"; readonly imageId: string }
  | { readonly kind: "pick-session"; readonly imageId: string; readonly index: number }
  | {
      readonly kind: "cleanup";
      readonly imageId: string;
      readonly step: "loading" | "preview" | "running" | "done";
      /** The preview: what would be removed. */
      readonly sessions: readonly SessionMetadata[];
      readonly outcome: Outcome | null;
    }
  | { readonly kind: "result"; readonly outcome: Outcome };

/** An image as the connect dialog offers it again after a disconnect. */
export interface Remembered {
  readonly image_id: string;
  readonly address: string;
  readonly name: string | null;
}

export interface UiState {
  /** By id, so that the selection stays on its image while rows move. */
  readonly selectedId: string | null;
  readonly filter: Filter | null;
  readonly eventsFilter: Filter | null;
  readonly sort: Sort;
  readonly dialog: Dialog | null;
  /** The last action's outcome (the status line), or what is under way. */
  readonly status: Outcome | { readonly busy: string } | null;
  readonly lastDisconnected: Remembered | null;
}

export const initialUi = (): UiState => ({
  selectedId: null,
  filter: null,
  eventsFilter: null,
  sort: DEFAULT_SORT,
  dialog: null,
  status: null,
  lastDisconnected: null,
});

export type Command =
  | { readonly kind: "switch"; readonly clientId: string; readonly imageId: string }
  | { readonly kind: "create"; readonly imageId: string; readonly name: string | null }
  | { readonly kind: "close"; readonly sessionId: string }
  | { readonly kind: "evaluate"; readonly imageId: string; readonly code: string }
  | { readonly kind: "connect"; readonly imageId: string; readonly address: string; readonly name: string | null }
  | { readonly kind: "disconnect"; readonly image: ImageConnectionStatus }
  | { readonly kind: "retry"; readonly image: ImageConnectionStatus }
  | { readonly kind: "cleanup-preview"; readonly imageId: string }
  | { readonly kind: "cleanup"; readonly imageId: string; readonly sessionIds: readonly string[] }
  | { readonly kind: "extra"; readonly key: string; readonly image: ImageConnectionStatus | null }
  | { readonly kind: "quit" };

/** The keys as ink reports them; only what the panel reads. */
export interface KeyPress {
  readonly input: string;
  readonly upArrow?: boolean;
  readonly downArrow?: boolean;
  readonly pageUp?: boolean;
  readonly pageDown?: boolean;
  readonly return?: boolean;
  readonly escape?: boolean;
  readonly backspace?: boolean;
  readonly delete?: boolean;
  readonly ctrl?: boolean;
  readonly tab?: boolean;
}

/** What a key reads besides the UI state. */
export interface KeyContext {
  /** The table's rows as shown (filtered, sorted). */
  readonly images: readonly ImageConnectionStatus[];
  /** The selected image's sessions, as the detail pane has them. */
  readonly sessions: readonly SessionMetadata[];
  /** Image rows that fit on the screen: a page for PgUp/PgDn. */
  readonly page: number;
  readonly clientId: string;
  /** The keys a caller added (the demo's). */
  readonly extraKeys: readonly string[];
}

/** Every key of the panel and what it does: the `?` overlay, and the README's table. */
export const KEY_HELP: readonly (readonly [string, string])[] = [
  ["j k ↑ ↓", "select an image (g G: first, last; PgUp PgDn: a page)"],
  ["/", "filter the images: a regular expression; !re keeps what does not match; empty clears"],
  ["f", "filter the events the same way"],
  ["o O", "sort by the next column; reverse the order"],
  ["x", "switch a client's context to the selected image"],
  ["n", "create a session on the selected image (a name may be given)"],
  ["w", "close one of the selected image's sessions (pick it, Enter)"],
  ["e", "evaluate a snippet on the selected image; the result is shown"],
  ["c", "connect an image: id address [name] (offers the last one disconnected)"],
  ["d", "disconnect the selected image (asks first; its sessions are orphaned)"],
  ["r", "retry a Failed image now"],
  ["C", "clean up the selected image's orphaned sessions: preview, confirm, result"],
  ["?", "this help"],
  ["Esc", "back out of any dialog or input"],
  ["q", "quit (Ctrl-C too)"],
];

export interface Step {
  readonly ui: UiState;
  readonly command?: Command;
}

const selectedIn = (ui: UiState, images: readonly ImageConnectionStatus[]): number => {
  const index = images.findIndex((i) => i.image_id === ui.selectedId);
  return index < 0 ? 0 : index;
};

/** The selected image: the one by id, or the first row when it is gone or none is chosen. */
export function selectedImage(ui: UiState, images: readonly ImageConnectionStatus[]): ImageConnectionStatus | null {
  return images.find((i) => i.image_id === ui.selectedId) ?? images[0] ?? null;
}

const open = (ui: UiState, dialog: Dialog): Step => ({ ui: { ...ui, dialog } });
const input = (ui: UiState, purpose: InputPurpose, value = ""): Step =>
  open(ui, { kind: "input", purpose, value, error: null });
const needImage = (ui: UiState): Step => ({ ui: { ...ui, status: { ok: false, text: "no image selected" } } });

/** What `key` does in state `ui`. */
export function onKey(ui: UiState, key: KeyPress, ctx: KeyContext): Step {
  const dialog = ui.dialog;
  if (dialog !== null) return onDialogKey(ui, dialog, key, ctx);
  const image = selectedImage(ui, ctx.images);
  const at = selectedIn(ui, ctx.images);
  const move = (to: number): Step => {
    const target = ctx.images[Math.max(0, Math.min(ctx.images.length - 1, to))];
    return { ui: { ...ui, selectedId: target?.image_id ?? null } };
  };
  if (key.downArrow || key.input === "j") return move(at + 1);
  if (key.upArrow || key.input === "k") return move(at - 1);
  if (key.pageDown) return move(at + Math.max(1, ctx.page));
  if (key.pageUp) return move(at - Math.max(1, ctx.page));
  if (key.escape) return { ui: { ...ui, status: null } };
  switch (key.input) {
    case "g":
      return move(0);
    case "G":
      return move(ctx.images.length - 1);
    case "q":
      return { ui, command: { kind: "quit" } };
    case "?":
      return open(ui, { kind: "help" });
    case "/":
      return input(ui, "filter", ui.filter?.text ?? "");
    case "f":
      return input(ui, "events-filter", ui.eventsFilter?.text ?? "");
    case "o":
      return { ui: { ...ui, sort: nextSort(ui.sort) } };
    case "O":
      return { ui: { ...ui, sort: { ...ui.sort, descending: !ui.sort.descending } } };
    case "c": {
      const last = ui.lastDisconnected;
      return input(ui, "connect", last === null ? "" : [last.image_id, last.address, last.name ?? ""].join(" ").trim());
    }
  }
  if (ctx.extraKeys.includes(key.input)) return { ui, command: { kind: "extra", key: key.input, image } };
  if (image === null) return "xnwedrC".includes(key.input) && key.input !== "" ? needImage(ui) : { ui };
  const imageId = image.image_id;
  switch (key.input) {
    case "x":
      return input(ui, "switch", ctx.clientId);
    case "n":
      return input(ui, "create");
    case "e":
      return input(ui, "evaluate");
    case "w":
      if (ctx.sessions.length === 0) return { ui: { ...ui, status: { ok: false, text: `no sessions on ${imageId}` } } };
      return open(ui, { kind: "pick-session", imageId, index: 0 });
    case "d":
      return open(ui, { kind: "confirm-disconnect", imageId });
    case "r":
      return { ui: { ...ui, status: { busy: `retrying ${imageId}…` } }, command: { kind: "retry", image } };
    case "C":
      return {
        ui: { ...ui, dialog: { kind: "cleanup", imageId, step: "loading", sessions: [], outcome: null } },
        command: { kind: "cleanup-preview", imageId },
      };
  }
  return { ui };
}

function onDialogKey(ui: UiState, dialog: Dialog, key: KeyPress, ctx: KeyContext): Step {
  const close: UiState = { ...ui, dialog: null };
  if (dialog.kind === "input") return onInputKey(ui, dialog, key, ctx);
  if (key.escape) {
    // A cleanup under way finishes; Esc only hides it.
    return { ui: close };
  }
  switch (dialog.kind) {
    case "help":
    case "result":
      return key.return || key.input === "q" || key.input === "?" ? { ui: close } : { ui };
    case "confirm-disconnect": {
      const image = ctx.images.find((i) => i.image_id === dialog.imageId);
      if (key.input === "y" && image !== undefined) {
        return {
          ui: { ...close, status: { busy: `disconnecting ${image.image_id}…` } },
          command: { kind: "disconnect", image },
        };
      }
      return key.input === "n" ? { ui: close } : { ui };
    }
    case "pick-session": {
      const count = ctx.sessions.length;
      const index = Math.min(dialog.index, Math.max(0, count - 1));
      if (key.downArrow || key.input === "j") return open(ui, { ...dialog, index: Math.min(count - 1, index + 1) });
      if (key.upArrow || key.input === "k") return open(ui, { ...dialog, index: Math.max(0, index - 1) });
      const chosen = ctx.sessions[index];
      if (key.return && chosen !== undefined) {
        return {
          ui: { ...close, status: { busy: `closing ${chosen.session_id}…` } },
          command: { kind: "close", sessionId: chosen.session_id },
        };
      }
      return { ui };
    }
    case "cleanup":
      if (dialog.step === "preview" && dialog.sessions.length > 0 && key.input === "y") {
        return {
          ui: { ...ui, dialog: { ...dialog, step: "running" } },
          command: { kind: "cleanup", imageId: dialog.imageId, sessionIds: dialog.sessions.map((s) => s.session_id) },
        };
      }
      if (
        dialog.step === "done" ||
        (dialog.step === "preview" && (key.input === "n" || dialog.sessions.length === 0))
      ) {
        return key.return || key.input === "n" || key.input === "q" ? { ui: close } : { ui };
      }
      return { ui };
  }
}

function onInputKey(ui: UiState, dialog: Extract<Dialog, { kind: "input" }>, key: KeyPress, ctx: KeyContext): Step {
  if (key.escape) return { ui: { ...ui, dialog: null } };
  if (key.backspace || key.delete) return open(ui, { ...dialog, value: dialog.value.slice(0, -1), error: null });
  if (key.ctrl && key.input === "u") return open(ui, { ...dialog, value: "", error: null });
  if (key.return) return submit(ui, dialog, ctx);
  if (key.ctrl || key.tab || key.upArrow || key.downArrow || key.input === "") return { ui };
  return open(ui, { ...dialog, value: dialog.value + key.input.replace(/[\r\n]/g, ""), error: null });
}

function submit(ui: UiState, dialog: Extract<Dialog, { kind: "input" }>, ctx: KeyContext): Step {
  const value = dialog.value.trim();
  const close: UiState = { ...ui, dialog: null };
  const refuse = (error: string): Step => open(ui, { ...dialog, error });
  if (dialog.purpose === "filter" || dialog.purpose === "events-filter") {
    const parsed = parseFilter(value);
    if ("error" in parsed) return refuse(parsed.error);
    return {
      ui: dialog.purpose === "filter" ? { ...close, filter: parsed.filter } : { ...close, eventsFilter: parsed.filter },
    };
  }
  if (dialog.purpose === "connect") {
    const [imageId = "", address = "", ...name] = value.split(/\s+/);
    if (imageId === "" || address === "") return refuse("type: <image id> <address> [name]");
    const command: Command = { kind: "connect", imageId, address, name: name.length > 0 ? name.join(" ") : null };
    return { ui: { ...close, status: { busy: `connecting ${imageId}…` } }, command };
  }
  const image = selectedImage(ui, ctx.images);
  if (image === null) return { ui: { ...close, status: { ok: false, text: "no image selected" } } };
  const imageId = image.image_id;
  switch (dialog.purpose) {
    case "switch":
      if (value === "") return refuse("a client id is needed");
      return {
        ui: { ...close, status: { busy: `switching ${value} to ${imageId}…` } },
        command: { kind: "switch", clientId: value, imageId },
      };
    case "create":
      return {
        ui: { ...close, status: { busy: `creating a session on ${imageId}…` } },
        command: { kind: "create", imageId, name: value === "" ? null : value },
      };
    case "evaluate":
      if (value === "") return refuse("type the code to evaluate");
      return {
        ui: { ...close, status: { busy: `evaluating on ${imageId}…` } },
        command: { kind: "evaluate", imageId, code: dialog.value },
      };
  }
}

/** The state once `command` has its outcome. */
export function settle(ui: UiState, command: Command, outcome: Outcome): UiState {
  const status = { ok: outcome.ok, text: outcome.text };
  switch (command.kind) {
    case "evaluate":
      return { ...ui, status, dialog: { kind: "result", outcome } };
    case "disconnect":
      return {
        ...ui,
        status,
        lastDisconnected: outcome.ok
          ? { image_id: command.image.image_id, address: command.image.address, name: command.image.name }
          : ui.lastDisconnected,
      };
    case "cleanup": {
      const dialog = ui.dialog;
      if (dialog?.kind !== "cleanup" || dialog.imageId !== command.imageId) return { ...ui, status };
      return { ...ui, status, dialog: { ...dialog, step: "done", outcome } };
    }
    default:
      return { ...ui, status };
  }
}

/** The cleanup dialog once its preview is in (or failed). */
export function previewed(
  ui: UiState,
  imageId: string,
  preview: readonly SessionMetadata[] | { readonly error: string },
): UiState {
  const dialog = ui.dialog;
  if (dialog?.kind !== "cleanup" || dialog.imageId !== imageId) return ui;
  if ("error" in preview) {
    return { ...ui, dialog: { ...dialog, step: "done", outcome: { ok: false, text: preview.error } } };
  }
  return { ...ui, dialog: { ...dialog, step: "preview", sessions: preview } };
}
