/**
 * How a `change` inspection record is applied, in one place for the service's side (the Stately
 * forwarder) and the inspector page, which bundles this file: it has no imports.
 */

/** What changed in a context (or in one of its fields, for `patch`): each part left out when empty. */
export interface ContextChange {
  /** Fields with a new value, whole. */
  readonly set?: Readonly<Record<string, unknown>> | undefined;
  /** Fields whose value changed in only some of its own fields: each said as a change of its own. */
  readonly patch?: Readonly<Record<string, ContextChange>> | undefined;
  /** Fields that went. */
  readonly unset?: readonly string[] | undefined;
}

/** What a `change` record leaves: `context` (the actor's previous one) with its parts applied. */
export function applyContextChange(context: unknown, change: ContextChange): unknown {
  if (change.set === undefined && change.patch === undefined && change.unset === undefined) return context;
  const next: Record<string, unknown> =
    context !== null && typeof context === "object" && !Array.isArray(context)
      ? { ...(context as Record<string, unknown>) }
      : {};
  // A field named __proto__ would set the prototype here; the recorder never sends one.
  if (change.set !== undefined) {
    for (const [key, value] of Object.entries(change.set)) if (key !== "__proto__") next[key] = value;
  }
  if (change.patch !== undefined) {
    for (const [key, part] of Object.entries(change.patch)) {
      if (key !== "__proto__" && part !== null && typeof part === "object")
        next[key] = applyContextChange(next[key], part);
    }
  }
  if (change.unset !== undefined) for (const key of change.unset) delete next[key];
  return next;
}
