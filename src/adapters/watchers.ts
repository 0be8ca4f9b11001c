/**
 * The listeners of a store's change feed (`SessionStore.watch`), shared by both stores: a
 * listener that throws is logged and does not stop the others, nor undo the change.
 */
import type { StoreChange, StoreLogger } from "../ports.js";

export class StoreWatchers {
  private readonly listeners = new Set<(change: StoreChange) => void>();

  constructor(private readonly logger: StoreLogger) {}

  /** Adds `listener`; returns the function that removes it. */
  add(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  tell(change: StoreChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (error) {
        this.logger.error({ err: error, change: change.kind }, "session store: a watcher failed");
      }
    }
  }
}
