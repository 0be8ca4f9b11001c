/**
 * The statechart of the selected actor's machine: laid out once per machine id by elkjs (on the
 * main thread; a machine of this size takes well under a second), drawn as SVG, and its active
 * states marked on every render.
 */
import type { ELK as ElkApi, ElkEdgeSection, ElkExtendedEdge, ElkNode } from "elkjs/lib/elk-api.js";
import { activeStateIds, isStateNodeJson, machineGraph } from "./chart-model.js";
import type { StateNodeJson } from "./chart-model.js";
import { h, svg } from "./dom.js";

type Layout = { readonly kind: "ready"; readonly graph: ElkNode } | { readonly kind: "failed"; readonly error: string };

export interface ChartInput {
  readonly machineId: string | null;
  readonly definition: unknown;
  readonly value: unknown;
  /** Said instead of a chart for an actor without a machine. */
  readonly note: string;
}

/**
 * elkjs is most of the page's script; loaded on the first chart (the bundle inlines it, so this
 * only defers running it) the tree paints without waiting for it.
 */
let elk: Promise<ElkApi> | null = null;

function loadElk(): Promise<ElkApi> {
  elk ??= import("elkjs/lib/elk.bundled.js").then(({ default: ELK }) => new ELK());
  return elk;
}

export class ChartView {
  private readonly layouts = new Map<string, Layout>();
  private readonly pending = new Set<string>();
  private drawn: { machineId: string; nodes: Map<string, SVGGElement> } | null = null;
  private message = "";

  constructor(
    private readonly root: HTMLElement,
    /** Asks for a render when a layout finishes. */
    private readonly onLayout: () => void,
  ) {}

  render(input: ChartInput | null): void {
    if (input === null || input.machineId === null || !isStateNodeJson(input.definition)) {
      this.showMessage(input === null ? "Select an actor to see its statechart." : input.note);
      return;
    }
    const machine = input.definition;
    const layout = this.layoutOf(input.machineId, machine);
    if (layout === undefined) {
      this.showMessage(`Laying out ${input.machineId}…`);
      return;
    }
    if (layout.kind === "failed") {
      this.showMessage(`The ${input.machineId} chart could not be laid out: ${layout.error}`);
      return;
    }
    if (this.drawn?.machineId !== input.machineId) this.draw(input.machineId, layout.graph);
    const active = activeStateIds(machine, input.value);
    for (const [id, node] of this.drawn?.nodes ?? []) node.classList.toggle("active", active.has(id));
  }

  private showMessage(text: string): void {
    if (this.drawn === null && this.message === text) return;
    this.drawn = null;
    this.message = text;
    this.root.replaceChildren(h("p", { class: "note" }, text));
  }

  private layoutOf(machineId: string, machine: StateNodeJson): Layout | undefined {
    const layout = this.layouts.get(machineId);
    if (layout !== undefined || this.pending.has(machineId)) return layout;
    this.pending.add(machineId);
    loadElk()
      .then((instance) => instance.layout(machineGraph(machine)))
      .then(
        (graph) => this.settle(machineId, { kind: "ready", graph }),
        (error: unknown) => this.settle(machineId, { kind: "failed", error: String(error) }),
      );
    return undefined;
  }

  private settle(machineId: string, layout: Layout): void {
    this.pending.delete(machineId);
    this.layouts.set(machineId, layout);
    this.onLayout();
  }

  private draw(machineId: string, graph: ElkNode): void {
    const nodes = new Map<string, SVGGElement>();
    const offsets = new Map<string, { x: number; y: number }>();
    const nodeLayer = svg("g", { class: "nodes" });
    const edgeLayer = svg("g", { class: "edges" });
    const addNode = (node: ElkNode, x0: number, y0: number, depth: number): void => {
      const x = x0 + (node.x ?? 0);
      const y = y0 + (node.y ?? 0);
      offsets.set(node.id, { x, y });
      if (depth > 0) {
        const compound = (node.children?.length ?? 0) > 0;
        const label = node.labels?.[0]?.text ?? node.id;
        const group = svg(
          "g",
          { class: compound ? "state compound" : "state", "data-state-id": node.id },
          svg("title", {}, node.id),
          svg("rect", { x, y, width: node.width ?? 0, height: node.height ?? 0, rx: 6 }),
          svg("text", { x: x + (node.width ?? 0) / 2, y: y + (compound ? 16 : 20), "text-anchor": "middle" }, label),
        );
        nodes.set(node.id, group);
        nodeLayer.append(group);
      }
      for (const child of node.children ?? []) addNode(child, x, y, depth + 1);
    };
    addNode(graph, 0, 0, 0);
    const addEdges = (node: ElkNode): void => {
      for (const edge of node.edges ?? []) edgeLayer.append(drawEdge(edge, offsets));
      for (const child of node.children ?? []) addEdges(child);
    };
    addEdges(graph);
    const width = Math.ceil(graph.width ?? 0);
    const height = Math.ceil(graph.height ?? 0);
    const marker = svg(
      "marker",
      { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
      svg("path", { d: "M0,0 L10,5 L0,10 z" }),
    );
    const chart = svg(
      "svg",
      { viewBox: `0 0 ${width} ${height}`, width, height, "data-machine": machineId, role: "img" },
      svg("defs", {}, marker),
      nodeLayer,
      edgeLayer,
    );
    this.root.replaceChildren(chart);
    this.drawn = { machineId, nodes };
    this.message = "";
  }
}

function sectionPath(section: ElkEdgeSection, dx: number, dy: number): string {
  const points = [section.startPoint, ...(section.bendPoints ?? []), section.endPoint];
  return points.map((point, index) => `${index === 0 ? "M" : "L"}${point.x + dx},${point.y + dy}`).join(" ");
}

/** Edge coordinates are relative to the edge's container (with hierarchy handling, not the root). */
function drawEdge(edge: ElkExtendedEdge, offsets: ReadonlyMap<string, { x: number; y: number }>): SVGGElement {
  const container = (edge as ElkExtendedEdge & { container?: string }).container;
  const { x: dx, y: dy } = (container !== undefined ? offsets.get(container) : undefined) ?? { x: 0, y: 0 };
  const group = svg("g", { class: "edge" });
  for (const section of edge.sections ?? []) {
    group.append(svg("path", { d: sectionPath(section, dx, dy), "marker-end": "url(#arrow)" }));
  }
  for (const label of edge.labels ?? []) {
    const x = (label.x ?? 0) + dx;
    const y = (label.y ?? 0) + dy + (label.height ?? 0) - 3;
    group.append(svg("text", { x, y, class: "edge-label" }, label.text ?? ""));
  }
  return group;
}
