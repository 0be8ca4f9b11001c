/**
 * The event log: the last matching entries up to the cursor, filtered by actor path, event type
 * and free text. Bounded to `maxRows` rows. Paused, it stops redrawing (the store still ingests).
 */
import { byTestId, clockTime, h } from "./dom.js";
import { entryKind, entryType, lastMatching } from "./log-filter.js";
import type { LogFilter } from "./log-filter.js";
import type { TimelineEntry } from "./state.js";
import type { InspectorStore } from "./store.js";

const maxRows = 300;

function summary(entry: TimelineEntry): string {
  const item = entry.item;
  switch (item.kind) {
    case "gap":
      return `records ${item.from}…${item.to} were lost`;
    case "attached":
      return `attached: ${item.body.actors.length} actors from seq ${item.body.sequence}`;
    case "gone":
      return "instance stopped answering";
    case "record": {
      const record = item.record;
      switch (record.kind) {
        case "event":
          return `${record.event_type}${record.source_id !== null ? ` from ${record.source_id}` : ""}`;
        case "snapshot":
        case "change":
        case "microstep":
          return `${record.event_type} → ${JSON.stringify(record.kind === "snapshot" ? record.snapshot.value : record.value)}`;
        case "stopped":
          return "stopped";
        case "action":
          return record.action_type;
        case "actor":
          return `new actor ${record.system_id ?? record.id}${record.machine_id !== null ? ` (${record.machine_id})` : ""}`;
      }
    }
  }
}

export class LogView {
  private filter: LogFilter = { actor: "", type: "", text: "" };
  private paused = false;
  private drawnKey = "";
  private readonly list: HTMLElement;
  private readonly pauseButton: HTMLButtonElement;

  constructor(
    root: HTMLElement,
    /** A click on a row moves the cursor there. */
    onPick: (gseq: number) => void,
    onChange: () => void,
  ) {
    this.list = byTestId(root, "log", HTMLElement);
    this.pauseButton = byTestId(root, "pause", HTMLButtonElement);
    const inputs = {
      actor: byTestId(root, "filter-actor", HTMLInputElement),
      type: byTestId(root, "filter-type", HTMLInputElement),
      text: byTestId(root, "filter-text", HTMLInputElement),
    };
    for (const input of Object.values(inputs)) {
      input.addEventListener("input", () => {
        this.filter = {
          actor: inputs.actor.value.trim(),
          type: inputs.type.value.trim(),
          text: inputs.text.value.trim(),
        };
        onChange();
      });
    }
    this.pauseButton.addEventListener("click", () => {
      this.paused = !this.paused;
      this.pauseButton.setAttribute("aria-pressed", String(this.paused));
      this.pauseButton.textContent = this.paused ? "Resume" : "Pause";
      onChange();
    });
    this.list.addEventListener("click", (event) => {
      const row = event.target instanceof Element ? event.target.closest("[data-gseq]") : null;
      const gseq = Number(row?.getAttribute("data-gseq"));
      if (Number.isInteger(gseq) && gseq > 0) onPick(gseq);
    });
  }

  /** `end`: the cursor's timeline index (the last at the live end). */
  render(store: InspectorStore, end: number, cursorGseq: number | null): void {
    if (this.paused) return;
    const key = `${store.version} ${end} ${cursorGseq} ${JSON.stringify(this.filter)}`;
    if (key === this.drawnKey) return;
    this.drawnKey = key;
    const entries = lastMatching((index) => store.entry(index), store.firstIndex, end, this.filter, maxRows);
    const rows = entries.map((entry) => {
      const kind = entryKind(entry);
      const type = entryType(entry);
      const attributes = {
        class: `log-row kind-${kind}${entry.gseq === cursorGseq ? " at-cursor" : ""}`,
        "data-testid": "log-row",
        "data-gseq": entry.gseq,
        "data-instance": entry.instance,
        "data-actor-path": entry.path,
        "data-kind": kind,
        "data-event-type": type,
      };
      return h(
        "div",
        attributes,
        h("span", { class: "time" }, clockTime(entry.at)),
        h("span", { class: "path" }, entry.path),
        h("span", { class: "kind" }, kind),
        h("span", { class: "summary" }, summary(entry)),
      );
    });
    if (rows.length === 0) rows.push(h("div", { class: "note" }, "No matching records."));
    this.list.replaceChildren(...rows);
    this.list.scrollTop = this.list.scrollHeight;
  }
}
