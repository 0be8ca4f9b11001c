/**
 * A JSON value as a tree of entries, each marked when it differs from the previous snapshot:
 * the snapshot pane renders it. Pure, so the marking is tested without a DOM.
 */

export type JsonNode =
  | {
      readonly kind: "leaf";
      readonly key: string;
      readonly path: string;
      readonly text: string;
      readonly changed: boolean;
    }
  | {
      readonly kind: "branch";
      readonly key: string;
      readonly path: string;
      readonly brackets: "{}" | "[]";
      readonly children: readonly JsonNode[];
      /** New, or of another shape, since the previous snapshot. */
      readonly changed: boolean;
      /** Something inside changed. */
      readonly changedWithin: boolean;
    };

const absent = Symbol("absent");

function isContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  return typeof value === "object" && value !== null;
}

function leafText(value: unknown): string {
  return value === undefined ? "undefined" : JSON.stringify(value);
}

/**
 * `previous` is the same place in the previous snapshot; `null` (no previous snapshot) marks
 * nothing, since everything would be "new".
 */
export function jsonTree(
  value: unknown,
  previous: unknown,
  key = "",
  path = "$",
  compare = previous !== null,
): JsonNode {
  const before: unknown = compare ? previous : absent;
  if (!isContainer(value)) {
    const changed = compare && (before === absent || !Object.is(before, value));
    return { kind: "leaf", key, path, text: leafText(value), changed };
  }
  const brackets = Array.isArray(value) ? "[]" : "{}";
  const sameShape = isContainer(before) && Array.isArray(before) === Array.isArray(value);
  const children: JsonNode[] = [];
  for (const [childKey, child] of Object.entries(value)) {
    const old: unknown = sameShape ? (before as Record<string, unknown>)[childKey] : absent;
    const hadKey = sameShape && Object.prototype.hasOwnProperty.call(before, childKey);
    children.push(jsonTree(child, hadKey ? old : absent, childKey, `${path}.${childKey}`, compare && hadKey));
    const last = children[children.length - 1];
    // A key the previous snapshot lacked is new as a whole.
    if (compare && !hadKey && last !== undefined) children[children.length - 1] = { ...last, changed: true };
  }
  const removed = sameShape && Object.keys(before).some((old) => !Object.prototype.hasOwnProperty.call(value, old));
  const changedWithin =
    removed || children.some((child) => child.changed || (child.kind === "branch" && child.changedWithin));
  return { kind: "branch", key, path, brackets, children, changed: compare && !sameShape, changedWithin };
}
