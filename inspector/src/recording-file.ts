/** Saving the retained history to a file and reading one back. */
import type { Recording } from "./protocol.js";

export function downloadRecording(recording: Recording, now: Date): void {
  const blob = new Blob([JSON.stringify(recording)], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = `stui-inspector-${now.toISOString().replace(/[:.]/g, "-")}.json`;
  document.body.append(link);
  link.click();
  link.remove();
  // The download has its own reference; revoking later frees the blob without racing it.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
