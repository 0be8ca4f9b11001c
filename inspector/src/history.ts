/**
 * One instance's retained history: a base state, the entries after it, and checkpoints every
 * `checkpointEvery` entries so that any point is at most that many entries away from a copy.
 * Beyond `cap` entries the oldest are folded into the base, so memory stays bounded however long
 * the inspector runs.
 */
import { applyEntry, cloneState, emptyState } from "./state.js";
import type { InstanceState, TimelineEntry } from "./state.js";

export interface HistoryOptions {
  /**
   * Entries kept per instance; older ones are folded into its base state.
   * @default 10000
   */
  readonly cap?: number;
  /**
   * Entries between checkpoints: the most a seek replays. Also how many are folded at once.
   * @default 500
   */
  readonly checkpointEvery?: number;
}

export class InstanceHistory {
  readonly cap: number;
  readonly checkpointEvery: number;
  /** The state before `entries[0]`. */
  base: InstanceState = emptyState();
  /** How many entries were folded into `base` (when any, it stands for real history). */
  folded = 0;
  readonly entries: TimelineEntry[] = [];
  /** Absolute index (since the instance was first seen) of `entries[0]`. */
  private firstIndex = 0;
  /** Absolute index → the state after that entry. */
  private readonly checkpoints = new Map<number, InstanceState>();
  readonly live: InstanceState = emptyState();
  /** Machine definitions by machine id; they do not change with time, so they are kept aside. */
  readonly definitions = new Map<string, unknown>();

  constructor(
    readonly id: string,
    options: HistoryOptions = {},
  ) {
    this.cap = Math.max(1, options.cap ?? 10_000);
    this.checkpointEvery = Math.max(1, options.checkpointEvery ?? 500);
  }

  /**
   * Appends and applies `entry`; returns the entries folded away (the caller drops them from the
   * global timeline).
   */
  append(entry: TimelineEntry): readonly TimelineEntry[] {
    applyEntry(this.live, entry);
    this.entries.push(entry);
    const absolute = this.firstIndex + this.entries.length - 1;
    if ((absolute + 1) % this.checkpointEvery === 0) this.checkpoints.set(absolute, cloneState(this.live));
    return this.entries.length >= this.cap + this.checkpointEvery ? this.foldOldest() : [];
  }

  /** Folds the oldest entries so that `cap` remain; the new base is a checkpoint, so no replay is needed. */
  private foldOldest(): readonly TimelineEntry[] {
    const count = this.entries.length - this.cap;
    const newFirst = this.firstIndex + count;
    this.base = this.stateAfter(newFirst - 1 - this.firstIndex);
    for (const key of this.checkpoints.keys()) if (key < newFirst) this.checkpoints.delete(key);
    this.firstIndex = newFirst;
    this.folded += count;
    return this.entries.splice(0, count);
  }

  /**
   * The state after `entries[index]` (`-1`: the base). It may be the live state or the base
   * itself, so callers only read it.
   */
  stateAfter(index: number): InstanceState {
    if (index >= this.entries.length - 1) return this.live;
    if (index < 0) return this.base;
    const absolute = this.firstIndex + index;
    const every = this.checkpointEvery;
    const key = Math.floor((absolute + 1) / every) * every - 1;
    const checkpoint = key >= this.firstIndex ? this.checkpoints.get(key) : undefined;
    const state = cloneState(checkpoint ?? this.base);
    const from = checkpoint !== undefined ? key - this.firstIndex + 1 : 0;
    for (let i = from; i <= index; i++) {
      const entry = this.entries[i];
      if (entry !== undefined) applyEntry(state, entry);
    }
    return state;
  }

  /** The index of the last entry with `gseq <= gseq`, or -1 when all are later. */
  indexAtOrBefore(gseq: number): number {
    let low = 0;
    let high = this.entries.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const entry = this.entries[middle];
      if (entry !== undefined && entry.gseq <= gseq) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }
}
