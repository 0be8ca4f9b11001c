/**
 * Inspection of this process's own instance (`stui serve --inspect`): the bridge attaches to and
 * reads from the instance's inspect link directly, with no NATS in between and so no NATS
 * permission to ask for.
 */
import type { InspectLink } from "../actors/inspect-link.js";
import type { InspectAttached, InspectBatch } from "../protocol/inspect.js";
import type { InspectSource } from "./bridge.js";

export class LocalInspectSource implements InspectSource {
  constructor(
    private readonly link: InspectLink,
    private readonly instanceId: string,
  ) {}

  instances(): Promise<string[]> {
    return Promise.resolve([this.instanceId]);
  }

  attach(instanceId: string, inspectorId: string, leaseMs: number): Promise<InspectAttached> {
    if (instanceId !== this.instanceId)
      return Promise.reject(new Error(`this process runs ${this.instanceId}, not ${instanceId}`));
    return Promise.resolve(this.link.attachLocal(inspectorId, leaseMs));
  }

  detach(instanceId: string, inspectorId: string): Promise<void> {
    if (instanceId === this.instanceId) this.link.detachLocal(inspectorId);
    return Promise.resolve();
  }

  onBatch(listener: (batch: InspectBatch) => void): () => void {
    // The link's own text: its records' shape is the protocol's by construction.
    return this.link.onBatch((json) => listener(JSON.parse(json) as InspectBatch));
  }
}
