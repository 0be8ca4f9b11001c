/**
 * Which images the table shows and in what order: a filter (a regular expression, case-insensitive,
 * over an image's id, name, status, health, owner and address; a leading `!` keeps what does not
 * match) and a sort by one column, either way.
 */
import type { ConnectionHealth, ConnectionStatus, ImageConnectionStatus } from "../../protocol/index.js";
import type { ColumnKey } from "./format.js";

export interface Filter {
  /** As typed, for the header. */
  readonly text: string;
  readonly test: (text: string) => boolean;
}

/** The filter `text` names; empty: none. A pattern that is no regular expression is an error. */
export function parseFilter(text: string): { readonly filter: Filter | null } | { readonly error: string } {
  const trimmed = text.trim();
  if (trimmed === "" || trimmed === "!") return { filter: null };
  const invert = trimmed.startsWith("!");
  const pattern = invert ? trimmed.slice(1) : trimmed;
  let re: RegExp;
  try {
    re = new RegExp(pattern, "i");
  } catch (error) {
    return { error: `not a regular expression: ${error instanceof Error ? error.message : String(error)}` };
  }
  return { filter: { text: trimmed, test: (s) => re.test(s) !== invert } };
}

export interface Sort {
  readonly key: ColumnKey;
  readonly descending: boolean;
}

/** The columns `o` steps through, in order. */
export const SORT_KEYS: readonly ColumnKey[] = [
  "id",
  "status",
  "health",
  "retry",
  "sessions",
  "rtt",
  "seen",
  "owner",
  "name",
];

export const DEFAULT_SORT: Sort = { key: "id", descending: false };

/** The next sort column after `sort`'s (`o`), ascending. */
export const nextSort = (sort: Sort): Sort => ({
  key: SORT_KEYS[(SORT_KEYS.indexOf(sort.key) + 1) % SORT_KEYS.length] ?? "id",
  descending: false,
});

/** Worst first when ascending: what needs a look comes to the top. */
const STATUS_RANK: Record<ConnectionStatus, number> = {
  Failed: 0,
  Reconnecting: 1,
  Unknown: 2,
  Disconnected: 3,
  Connected: 4,
};
const HEALTH_RANK: Record<ConnectionHealth, number> = { Critical: 0, Warning: 1, Unknown: 2, Healthy: 3 };

type Key = number | string;
const KEY_OF: Record<ColumnKey, (i: ImageConnectionStatus) => Key> = {
  id: (i) => i.image_id,
  name: (i) => i.name ?? "",
  status: (i) => STATUS_RANK[i.status],
  health: (i) => HEALTH_RANK[i.connection_health],
  // The fewest failed attempts first; images not reconnecting last.
  retry: (i) => (i.status === "Reconnecting" ? (i.reconnect_attempt ?? 0) : Number.POSITIVE_INFINITY),
  sessions: (i) => i.session_count,
  rtt: (i) => i.rtt_ms ?? Number.POSITIVE_INFINITY,
  // Most recently seen first.
  seen: (i) => -(i.last_seen === null ? Number.NEGATIVE_INFINITY : Date.parse(i.last_seen)),
  owner: (i) => i.owner ?? "",
};

const compareKeys = (a: Key, b: Key): number =>
  typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b));

/** What the filter matches against: every column a user may look for. */
const haystack = (i: ImageConnectionStatus): string =>
  [i.image_id, i.name ?? "", i.status, i.connection_health, i.owner ?? "", i.address].join(" ");

/** The images that pass `filter`, sorted by `sort` (ties by id). */
export function visibleImages(
  images: readonly ImageConnectionStatus[],
  filter: Filter | null,
  sort: Sort,
): ImageConnectionStatus[] {
  const key = KEY_OF[sort.key];
  const sign = sort.descending ? -1 : 1;
  return images
    .filter((i) => filter === null || filter.test(haystack(i)))
    .sort((a, b) => sign * compareKeys(key(a), key(b)) || a.image_id.localeCompare(b.image_id));
}
