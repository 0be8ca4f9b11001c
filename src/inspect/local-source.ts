/**
 * Inspection inside the service (`stui serve --inspect`): the instance's own link, without a
 * round trip through NATS and without the permissions an inspector's NATS user needs. Only this
 * instance is seen; `stui inspect` sees them all.
 */
import type { InspectAttached, InspectBatch } from "../protocol/inspect.js";
import type { InspectSource } from "./bridge.js";

/** What the instance's inspect link offers in-process. */
export interface LocalInspection {
  attachLocal(inspectorId: string, leaseMs: number): InspectAttached;
  detachLocal(inspectorId: string): void;
  onBatch(listener: (batch: InspectBatch) => void): () => void;
}

export class LocalInspectSource implements InspectSource {
  constructor(
    private readonly instanceId: string,
    private readonly link: LocalInspection,
  ) {}

  instances(): Promise<string[]> {
    return Promise.resolve([this.instanceId]);
  }

  attach(_instanceId: string, inspectorId: string, leaseMs: number): Promise<InspectAttached> {
    return Promise.resolve(this.link.attachLocal(inspectorId, leaseMs));
  }

  detach(_instanceId: string, inspectorId: string): Promise<void> {
    this.link.detachLocal(inspectorId);
    return Promise.resolve();
  }

  onBatch(listener: (batch: InspectBatch) => void): () => void {
    return this.link.onBatch(listener);
  }
}
