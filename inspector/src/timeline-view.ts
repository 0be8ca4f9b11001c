/** The scrubber over the retained history, the live button and where the cursor is. */
import { byTestId, clockTime, setTextIfChanged } from "./dom.js";
import type { InspectorStore } from "./store.js";

export class TimelineView {
  private readonly scrubber: HTMLInputElement;
  private readonly cursor: HTMLElement;
  private readonly liveButton: HTMLButtonElement;

  constructor(root: HTMLElement, onSeek: (index: number) => void, onLive: () => void) {
    this.scrubber = byTestId(root, "scrubber", HTMLInputElement);
    this.cursor = byTestId(root, "cursor", HTMLElement);
    this.liveButton = byTestId(root, "live", HTMLButtonElement);
    this.scrubber.addEventListener("input", () => onSeek(Number(this.scrubber.value)));
    this.liveButton.addEventListener("click", onLive);
  }

  /** `index`: the cursor's timeline index, `null` at the live end. */
  render(store: InspectorStore, index: number | null): void {
    const first = store.firstIndex;
    const last = Math.max(0, store.length - 1);
    this.scrubber.min = String(first);
    this.scrubber.max = String(last);
    this.scrubber.disabled = store.length === 0;
    const at = index ?? last;
    if (this.scrubber.value !== String(at)) this.scrubber.value = String(at);
    this.liveButton.disabled = index === null;
    const entry = store.entry(at);
    const position = `${at - first + 1}/${last - first + 1}`;
    const text =
      index === null ? `live (${position})` : `${entry !== undefined ? clockTime(entry.at) : "?"} · ${position}`;
    setTextIfChanged(this.cursor, text);
  }
}
