/**
 * The selected actor's snapshot as a collapsible JSON tree (`<details>`), entries that differ from
 * its previous snapshot marked `changed`. Which branches are open survives re-renders.
 */
import { h } from "./dom.js";
import { jsonTree } from "./json-diff.js";
import type { JsonNode } from "./json-diff.js";
import type { ActorView } from "./state.js";

export class SnapshotView {
  /** Paths the user opened or closed, against the default (open near the top, or when changed). */
  private readonly toggled = new Map<string, boolean>();
  private shown: { actor: ActorView | null; note: string } | null = null;

  constructor(private readonly root: HTMLElement) {
    root.addEventListener(
      "toggle",
      (event) => {
        const details = event.target;
        if (!(details instanceof HTMLDetailsElement)) return;
        const path = details.dataset["path"];
        if (path !== undefined) this.toggled.set(path, details.open);
      },
      true,
    );
  }

  /** `actor` null: `note` says why there is nothing to show. Renders only when the snapshot changed. */
  render(actor: ActorView | null, note: string): void {
    if (this.shown !== null && this.shown.actor === actor && this.shown.note === note) return;
    this.shown = { actor, note };
    if (actor === null) {
      this.root.replaceChildren(h("p", { class: "note" }, note));
      return;
    }
    const snapshot = actor.snapshot ?? { status: actor.status, value: actor.value, context: null, children: [] };
    const header = h("p", { class: "snapshot-title" }, `${actor.path} (${actor.actorId})`);
    this.root.replaceChildren(header, this.node(jsonTree(snapshot, actor.previous), 0));
  }

  private node(node: JsonNode, depth: number): HTMLElement {
    const key = node.key === "" ? [] : [h("span", { class: "key" }, `${node.key}: `)];
    if (node.kind === "leaf") {
      return h(
        "div",
        { class: node.changed ? "entry leaf changed" : "entry leaf", "data-path": node.path },
        ...key,
        h("span", { class: "value" }, node.text),
      );
    }
    const open = this.toggled.get(node.path) ?? (depth < 2 || node.changedWithin);
    const classes = ["entry", "branch", node.changed ? "changed" : "", node.changedWithin ? "changed-within" : ""];
    const summary = h(
      "summary",
      {},
      ...key,
      h("span", { class: "brackets" }, `${node.brackets[0]}${node.children.length}${node.brackets[1]}`),
    );
    const details = h(
      "details",
      { class: classes.filter((name) => name !== "").join(" "), "data-path": node.path, open },
      summary,
    );
    // Closed branches are filled only when opened: a large context stays cheap until looked at.
    const fill = (): void => {
      if (details.childElementCount > 1) return;
      details.append(h("div", { class: "children" }, ...node.children.map((child) => this.node(child, depth + 1))));
    };
    if (open) fill();
    else details.addEventListener("toggle", fill, { once: true });
    return details;
  }
}
