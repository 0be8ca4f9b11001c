/**
 * Creating a replicated stream on a cluster that has just started: until every node has reported
 * to the JetStream meta leader, an R3 stream has nowhere to go and the server answers "no
 * suitable peers for placement". That is a wait, not a failure: try again until `waitMs` is over.
 */
import { JetStreamApiError, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";

const RETRY_MS = 250;

export async function addStreamWhenPlaced(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string },
  waitMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await jsm.streams.add(config);
      return;
    } catch (error) {
      const noPeers = error instanceof JetStreamApiError && /no suitable peers/i.test(error.message);
      if (!noPeers || Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }
}
