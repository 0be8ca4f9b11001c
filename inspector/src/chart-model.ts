/**
 * A machine definition (`machine.toJSON()`) as an ELK graph: compound nodes for nested states,
 * one edge per transition target labelled with its event type. Pure, so it runs under node too.
 */
import type { ElkExtendedEdge, ElkNode } from "elkjs/lib/elk-api.js";

/** The parts of a state node's JSON the chart reads. */
export interface StateNodeJson {
  readonly id: string;
  readonly key: string;
  readonly type?: string;
  readonly states?: Readonly<Record<string, StateNodeJson>>;
  /** Transitions by event type; read through `transitionTargets`, which checks their shape. */
  readonly on?: Readonly<Record<string, unknown>>;
  readonly initial?: { readonly target?: readonly string[] } | string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function isStateNodeJson(value: unknown): value is StateNodeJson {
  return isObject(value) && typeof value["id"] === "string" && typeof value["key"] === "string";
}

const charWidth = 7;
const labelHeight = 14;

/** Event types xstate generates for delays: `xstate.after.pingInterval.image.X` → `after pingInterval`. */
export function eventLabel(eventType: string): string {
  const after = /^xstate\.after\.([^.]+)\./.exec(eventType);
  if (after !== null) return `after ${after[1]}`;
  return eventType;
}

function stateNode(state: StateNodeJson): ElkNode {
  const children = Object.values(state.states ?? {})
    .filter(isStateNodeJson)
    .map(stateNode);
  const width = Math.max(60, state.key.length * charWidth + 24);
  const node: ElkNode = {
    id: state.id,
    labels: [{ text: state.key, width: state.key.length * charWidth, height: labelHeight }],
    children,
    layoutOptions: {
      "elk.nodeLabels.placement": "INSIDE V_TOP H_CENTER",
      "elk.padding": "[top=28,left=12,bottom=12,right=12]",
    },
  };
  if (children.length === 0) {
    node.width = width;
    node.height = 32;
  }
  return node;
}

/** The targets of an event's transitions; the definition is JSON from afar, so each part is checked. */
function transitionTargets(transitions: unknown): string[] {
  if (!Array.isArray(transitions)) return [];
  const targets: string[] = [];
  for (const transition of transitions as unknown[]) {
    const target = isObject(transition) ? transition["target"] : undefined;
    if (!Array.isArray(target)) continue;
    for (const item of target as unknown[]) if (typeof item === "string") targets.push(item);
  }
  return targets;
}

function collectEdges(state: StateNodeJson, edges: ElkExtendedEdge[], known: ReadonlySet<string>): void {
  for (const [eventType, transitions] of Object.entries(state.on ?? {})) {
    for (const rawTarget of transitionTargets(transitions)) {
      const target = rawTarget.startsWith("#") ? rawTarget.slice(1) : rawTarget;
      if (!known.has(target)) continue;
      const text = eventLabel(eventType);
      edges.push({
        id: `e${edges.length}`,
        sources: [state.id],
        targets: [target],
        labels: [{ text, width: text.length * charWidth, height: labelHeight }],
      });
    }
  }
  for (const child of Object.values(state.states ?? {})) if (isStateNodeJson(child)) collectEdges(child, edges, known);
}

function stateIds(state: StateNodeJson, into: Set<string>): Set<string> {
  into.add(state.id);
  for (const child of Object.values(state.states ?? {})) if (isStateNodeJson(child)) stateIds(child, into);
  return into;
}

/** The ELK graph for a machine: its root state node is the one compound node at the top. */
export function machineGraph(machine: StateNodeJson): ElkNode {
  const edges: ElkExtendedEdge[] = [];
  collectEdges(machine, edges, stateIds(machine, new Set()));
  return {
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "DOWN",
      "elk.hierarchyHandling": "INCLUDE_CHILDREN",
      "elk.layered.spacing.nodeNodeBetweenLayers": "40",
      "elk.spacing.nodeNode": "24",
      "elk.spacing.edgeLabel": "4",
      "elk.edgeLabels.inline": "false",
    },
    children: [stateNode(machine)],
    edges,
  };
}

/** The ids of the state nodes a state value makes active, walking the definition (ids may be custom). */
export function activeStateIds(machine: StateNodeJson, value: unknown): Set<string> {
  const active = new Set<string>([machine.id]);
  const walk = (node: StateNodeJson, part: unknown): void => {
    if (typeof part === "string") {
      const child = node.states?.[part];
      if (child !== undefined) active.add(child.id);
      return;
    }
    if (!isObject(part)) return;
    for (const [key, rest] of Object.entries(part)) {
      const child = node.states?.[key];
      if (child === undefined) continue;
      active.add(child.id);
      walk(child, rest);
    }
  };
  walk(machine, value);
  return active;
}
