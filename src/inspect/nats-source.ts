/**
 * Inspection over NATS, as an inspector sees it: the live instances are those answering the micro
 * service's ping; attach and detach are requests on `stui.inspect.<id>.attach|detach`; every
 * instance's batches arrive on `stui.inspect.*.events`. What an instance sends is checked against
 * the protocol's schemas: a malformed answer is an error naming what is wrong, a malformed batch is
 * logged (once a minute at most) and left out.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { z } from "zod";
import { pingInstances } from "../actors/instances.js";
import type { Logger } from "../logger.js";
import { InspectAttached, InspectBatch, InspectError, inspectSubjects } from "../protocol/inspect.js";
import { parseJson } from "../protocol/json.js";
import type { InspectSource } from "./bridge.js";

const REQUEST_TIMEOUT_MS = 5000;
/** An instance's answer holds every actor with its machine's definition: larger and deeper than a request. */
const LIMITS = { maxBytes: 64 * 1024 * 1024, maxDepth: 128 };

export class NatsInspectSource implements InspectSource {
  private lastMalformed = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly logger: Logger,
  ) {}

  async instances(): Promise<string[]> {
    return (await pingInstances(this.nc)).map((i) => i.instance_id);
  }

  async attach(instanceId: string, inspectorId: string, leaseMs: number): Promise<InspectAttached> {
    const body = await this.request(inspectSubjects.attach(instanceId), {
      inspector_id: inspectorId,
      lease_ms: leaseMs,
    });
    return parse(InspectAttached, body, `the attach answer of ${instanceId}`);
  }

  async detach(instanceId: string, inspectorId: string): Promise<void> {
    await this.request(inspectSubjects.detach(instanceId), { inspector_id: inspectorId });
  }

  onBatch(listener: (batch: InspectBatch) => void): () => void {
    const subject = inspectSubjects.events("*");
    const sub: Subscription = this.nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error !== null) {
          this.logger.warn({ err: error }, `no inspection records: ${subject} was refused: ${error.message}`);
          return;
        }
        const json = parseJson(msg.data, LIMITS);
        const batch = json.ok ? InspectBatch.safeParse(json.value) : null;
        if (batch?.success === true) listener(batch.data);
        else this.malformed(msg.subject, json.ok ? problems(batch?.error) : json.error.message);
      },
    });
    return () => sub.unsubscribe();
  }

  private async request(subject: string, body: object): Promise<unknown> {
    const reply = await this.nc.request(subject, JSON.stringify(body), { timeout: REQUEST_TIMEOUT_MS });
    const json = parseJson(reply.data, LIMITS);
    if (!json.ok) throw new Error(`${subject} answered what is not JSON: ${json.error.message}`);
    const refused = InspectError.safeParse(json.value);
    if (refused.success) throw new Error(`${subject} refused: ${refused.data.error}`);
    return json.value;
  }

  private malformed(subject: string, problem: string): void {
    const now = Date.now();
    if (now - this.lastMalformed < 60_000) return;
    this.lastMalformed = now;
    this.logger.warn({ subject }, `a malformed inspection batch on ${subject} was left out: ${problem}`);
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new Error(`${what} is malformed: ${problems(parsed.error)}`);
  return parsed.data;
}

function problems(error: z.ZodError | undefined): string {
  if (error === undefined) return "unknown";
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join(".") || "body"}: ${i.message}`)
    .join("; ");
}
