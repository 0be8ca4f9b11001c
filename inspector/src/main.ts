/**
 * The inspector page: wires the store to the bridge's WebSocket (or to an imported recording)
 * and the views to the store, rendering at most ~10 times a second however fast records come.
 */
import { bridgeUrl, connect } from "./connection.js";
import type { Connection, ConnectionStatus } from "./connection.js";
import { byTestId, h } from "./dom.js";
import { ChartView } from "./chart-view.js";
import { LogView } from "./log-view.js";
import { decodeMessage, decodeRecording } from "./protocol.js";
import { downloadRecording } from "./recording-file.js";
import { SnapshotView } from "./snapshot-view.js";
import { InspectorStore } from "./store.js";
import type { StoreCounters } from "./store.js";
import { TimelineView } from "./timeline-view.js";
import { TreeView } from "./tree-view.js";
import type { Selection } from "./tree-view.js";

const minRenderGapMs = 100;

export interface InspectorStats extends StoreCounters {
  /** `performance.now()` when the tree first showed actors; null until then. */
  readonly first_paint_ms: number | null;
  readonly renders: number;
  readonly last_render_ms: number;
}

declare global {
  interface Window {
    stuiInspector?: { stats(): InspectorStats };
  }
}

type Mode = { readonly kind: "live"; status: ConnectionStatus } | { readonly kind: "recording"; readonly name: string };

class Inspector {
  private store = new InspectorStore();
  private mode: Mode = { kind: "live", status: { kind: "connecting", attempt: 1 } };
  private connection: Connection | null = null;
  /** The entry the cursor is on, by gseq (indices shift as old entries are folded); null: live. */
  private cursor: number | null = null;
  private selected: Selection | null = null;
  private renderQueued = false;
  private lastRenderAt = -Infinity;
  private renders = 0;
  private lastRenderMs = 0;
  private firstPaintMs: number | null = null;
  private shownErrors = "";
  private readonly status = byTestId(document, "status", HTMLElement);
  private readonly errors = byTestId(document, "errors", HTMLElement);
  private readonly backToLive = byTestId(document, "back-live", HTMLButtonElement);
  private readonly tree: TreeView;
  private readonly chart: ChartView;
  private readonly snapshot: SnapshotView;
  private readonly log: LogView;
  private readonly timeline: TimelineView;

  constructor() {
    const render = (): void => this.schedule();
    this.tree = new TreeView(byTestId(document, "tree", HTMLElement), (selection) => {
      this.selected = selection;
      render();
    });
    this.chart = new ChartView(byTestId(document, "chart", HTMLElement), render);
    this.snapshot = new SnapshotView(byTestId(document, "snapshot", HTMLElement));
    this.log = new LogView(byTestId(document, "log-pane", HTMLElement), (gseq) => this.seekGseq(gseq), render);
    this.timeline = new TimelineView(
      byTestId(document, "timeline", HTMLElement),
      (index) => this.seekGseq(this.store.entry(index)?.gseq ?? null),
      () => this.seekGseq(null),
    );
    byTestId(document, "export", HTMLButtonElement).addEventListener("click", () => {
      const now = new Date();
      downloadRecording(this.store.exportRecording(now), now);
    });
    const importInput = byTestId(document, "import", HTMLInputElement);
    importInput.addEventListener("change", () => {
      const file = importInput.files?.[0];
      if (file !== undefined) void this.importFile(file).finally(() => (importInput.value = ""));
    });
    this.backToLive.addEventListener("click", () => this.goLive());
  }

  stats(): InspectorStats {
    return {
      ...this.store.counters(),
      first_paint_ms: this.firstPaintMs,
      renders: this.renders,
      last_render_ms: this.lastRenderMs,
    };
  }

  goLive(): void {
    this.connection?.close();
    this.store = new InspectorStore();
    this.cursor = null;
    this.mode = { kind: "live", status: { kind: "connecting", attempt: 1 } };
    this.connection = connect({
      url: bridgeUrl(location),
      onMessage: (data) => this.receive(data),
      onStatus: (status) => {
        if (this.mode.kind === "live") this.mode.status = status;
        this.schedule();
      },
    });
    this.schedule();
  }

  private receive(data: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      this.store.ingest({ type: "error", message: `the bridge sent text that is not JSON: ${data.slice(0, 80)}` });
      this.schedule();
      return;
    }
    const decoded = decodeMessage(parsed);
    this.store.ingest(decoded.ok ? decoded.value : { type: "error", message: `bad message: ${decoded.error}` });
    this.schedule();
  }

  private async importFile(file: File): Promise<void> {
    const decoded = decodeRecording(await file.text());
    if (!decoded.ok) {
      this.store.ingest({ type: "error", message: `${file.name}: ${decoded.error}` });
      this.schedule();
      return;
    }
    this.connection?.close();
    this.connection = null;
    this.store = new InspectorStore();
    for (const message of decoded.value) this.store.ingest(message);
    this.mode = { kind: "recording", name: file.name };
    this.cursor = null;
    this.schedule();
  }

  private seekGseq(gseq: number | null): void {
    const last = this.store.entry(this.store.length - 1);
    this.cursor = gseq === null || gseq === last?.gseq ? null : gseq;
    this.schedule();
  }

  /** Coalesces renders into animation frames, at most one per `minRenderGapMs`. */
  private schedule(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    const wait = Math.max(0, this.lastRenderAt + minRenderGapMs - performance.now());
    setTimeout(() => requestAnimationFrame(() => this.render()), wait);
  }

  private render(): void {
    this.renderQueued = false;
    const started = performance.now();
    this.lastRenderAt = started;
    const store = this.store;
    const index = this.cursor === null ? null : store.indexOf(this.cursor);
    const view = store.viewAt(index);
    const shown = this.tree.render(view, this.selected);
    if (shown > 0 && this.firstPaintMs === null) this.firstPaintMs = performance.now();

    const instance = view.instances.find((item) => item.id === this.selected?.instance);
    const actor = instance?.actors.find((item) => item.actorId === this.selected?.actorId) ?? null;
    const machineId = actor?.machineId ?? null;
    const chartNote =
      actor === null ? "The selected actor is not alive at this point." : `${actor.name} runs no machine.`;
    this.chart.render(
      this.selected === null
        ? null
        : {
            machineId,
            definition: machineId !== null ? instance?.definitions.get(machineId) : undefined,
            value: actor?.value,
            note: chartNote,
          },
    );
    this.snapshot.render(actor, this.selected === null ? "Select an actor to see its snapshot." : chartNote);
    const end = index ?? store.length - 1;
    this.log.render(store, end, index === null ? null : (store.entry(index)?.gseq ?? null));
    this.timeline.render(store, index);
    this.renderStatus();
    this.renders++;
    this.lastRenderMs = performance.now() - started;
  }

  private renderStatus(): void {
    const mode = this.mode;
    let text: string;
    if (mode.kind === "recording") {
      text = `recording: ${mode.name}`;
    } else {
      const status = mode.status;
      switch (status.kind) {
        case "open":
          text = "live";
          break;
        case "connecting":
          text = status.attempt > 1 ? `connecting (attempt ${status.attempt})…` : "connecting…";
          break;
        case "waiting": {
          const seconds = Math.max(0, Math.ceil((status.retryAt - Date.now()) / 1000));
          text = `disconnected: ${status.reason}; retrying in ${seconds} s`;
          break;
        }
      }
    }
    if (this.status.textContent !== text) this.status.textContent = text;
    this.status.dataset["mode"] = mode.kind === "recording" ? "recording" : mode.status.kind;
    this.backToLive.hidden = mode.kind !== "recording";
    const errors = this.store.errors;
    const errorsText = errors.join("\n");
    if (errorsText !== this.shownErrors) {
      this.shownErrors = errorsText;
      this.errors.replaceChildren(...errors.map((message) => h("div", { class: "error" }, message)));
    }
    // The countdown only moves when something renders.
    if (mode.kind === "live" && mode.status.kind === "waiting") setTimeout(() => this.schedule(), 1000);
  }
}

const inspector = new Inspector();
window.stuiInspector = { stats: () => inspector.stats() };
inspector.goLive();
