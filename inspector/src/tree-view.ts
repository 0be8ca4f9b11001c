/**
 * The actor tree: a header per instance, then its actors (session manager, image connections,
 * links) indented by depth. Rows are kept by key and updated in place, so a render many times a
 * second only touches what changed.
 */
import { h, setIfChanged, setTextIfChanged } from "./dom.js";
import { actorStateText } from "./state.js";
import type { StoreView } from "./store.js";

export interface Selection {
  readonly instance: string;
  readonly actorId: string;
}

interface Row {
  readonly element: HTMLElement;
  readonly label: HTMLElement;
  readonly state: HTMLElement;
}

export class TreeView {
  private readonly rows = new Map<string, Row>();

  constructor(
    private readonly root: HTMLElement,
    onSelect: (selection: Selection) => void,
  ) {
    root.addEventListener("click", (event) => {
      const row = event.target instanceof Element ? event.target.closest("[data-testid=actor-row]") : null;
      const instance = row?.getAttribute("data-instance");
      const actorId = row?.getAttribute("data-actor-id");
      if (instance != null && actorId != null) onSelect({ instance, actorId });
    });
  }

  /** Returns how many actor rows it shows. */
  render(view: StoreView, selected: Selection | null): number {
    const wanted: HTMLElement[] = [];
    const seen = new Set<string>();
    let actors = 0;
    for (const instance of view.instances) {
      const key = `i ${instance.id}`;
      const flags = [
        instance.gone ? "gone" : "",
        instance.listed ? "" : "not listed",
        instance.actors.length === 0 && !instance.gone ? "waiting for its state" : "",
      ].filter((flag) => flag !== "");
      const header = this.row(key, () => {
        const label = h("span", { class: "name" });
        const state = h("span", { class: "state" });
        return {
          element: h("div", { class: "instance-row", "data-testid": "instance-row" }, label, state),
          label,
          state,
        };
      });
      setIfChanged(header.element, "data-instance", instance.id);
      setIfChanged(header.element, "data-gone", String(instance.gone));
      setTextIfChanged(header.label, instance.id);
      setTextIfChanged(header.state, flags.join(", "));
      wanted.push(header.element);
      seen.add(key);
      for (const actor of instance.actors) {
        const actorKey = `a ${instance.id} ${actor.actorId}`;
        const row = this.row(actorKey, () => {
          const label = h("span", { class: "name" });
          const state = h("span", { class: "state" });
          const element = h("div", { class: "actor-row", "data-testid": "actor-row", role: "option" }, label, state);
          return { element, label, state };
        });
        const stateText = actorStateText(actor);
        const display = actor.name === actor.actorId && actor.machineId !== null ? actor.machineId : actor.name;
        const isSelected = selected?.instance === instance.id && selected.actorId === actor.actorId;
        setIfChanged(row.element, "data-instance", instance.id);
        setIfChanged(row.element, "data-actor-id", actor.actorId);
        setIfChanged(row.element, "data-name", actor.name);
        setIfChanged(row.element, "data-machine", actor.machineId ?? "");
        setIfChanged(row.element, "data-state", stateText);
        setIfChanged(row.element, "aria-selected", String(isSelected));
        setIfChanged(row.element, "title", `${actor.path} (${actor.actorId})`);
        setIfChanged(row.element, "style", `padding-left: ${0.5 + actor.depth * 1.2}em`);
        setTextIfChanged(row.label, display);
        setTextIfChanged(row.state, stateText);
        wanted.push(row.element);
        seen.add(actorKey);
        actors++;
      }
    }
    for (const key of this.rows.keys()) if (!seen.has(key)) this.rows.delete(key);
    this.reconcile(wanted);
    return actors;
  }

  private row(key: string, make: () => Row): Row {
    let row = this.rows.get(key);
    if (row === undefined) {
      row = make();
      this.rows.set(key, row);
    }
    return row;
  }

  /** Puts `wanted` in order as the root's children, moving only rows that are out of place. */
  private reconcile(wanted: readonly HTMLElement[]): void {
    let current = this.root.firstElementChild;
    for (const element of wanted) {
      if (current === element) {
        current = current.nextElementSibling;
        continue;
      }
      this.root.insertBefore(element, current);
    }
    while (current !== null) {
      const next = current.nextElementSibling;
      current.remove();
      current = next;
    }
  }
}
