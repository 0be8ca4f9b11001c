/** Which timeline entries the event log shows: pure, so the page and the tests share it. */
import type { TimelineEntry } from "./state.js";

export interface LogFilter {
  /** Matched against the actor's path (`test/sessionManager/alpha/link`), case-insensitive. */
  readonly actor: string;
  /** Matched against the event (or action) type. */
  readonly type: string;
  /** Matched against the entry's JSON. */
  readonly text: string;
}

export const noFilter: LogFilter = { actor: "", type: "", text: "" };

/** What the log's kind column and `data-kind` say: the record kind, or the entry's own. */
export function entryKind(entry: TimelineEntry): string {
  return entry.item.kind === "record" ? entry.item.record.kind : entry.item.kind;
}

/** The event type a record is about (an action's type for actions); empty for the rest. */
export function entryType(entry: TimelineEntry): string {
  if (entry.item.kind !== "record") return "";
  const record = entry.item.record;
  switch (record.kind) {
    case "event":
    case "snapshot":
    case "change":
    case "stopped":
    case "microstep":
      return record.event_type;
    case "action":
      return record.action_type;
    case "actor":
      return record.machine_id ?? "";
  }
}

// The JSON of an entry is only made when a text filter asks for it, and then once.
const texts = new WeakMap<TimelineEntry, string>();

function textOf(entry: TimelineEntry): string {
  let text = texts.get(entry);
  if (text === undefined) {
    text = JSON.stringify(entry.item).toLowerCase();
    texts.set(entry, text);
  }
  return text;
}

export function matches(entry: TimelineEntry, filter: LogFilter): boolean {
  if (filter.actor !== "" && !entry.path.toLowerCase().includes(filter.actor.toLowerCase())) return false;
  if (filter.type !== "" && !entryType(entry).toLowerCase().includes(filter.type.toLowerCase())) return false;
  if (filter.text !== "" && !textOf(entry).includes(filter.text.toLowerCase())) return false;
  return true;
}

/** Up to `limit` matching entries ending at index `end`, oldest first. */
export function lastMatching(
  entryAt: (index: number) => TimelineEntry | undefined,
  first: number,
  end: number,
  filter: LogFilter,
  limit: number,
): TimelineEntry[] {
  const result: TimelineEntry[] = [];
  for (let index = end; index >= first && result.length < limit; index--) {
    const entry = entryAt(index);
    if (entry !== undefined && matches(entry, filter)) result.push(entry);
  }
  return result.reverse();
}
