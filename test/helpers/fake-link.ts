/**
 * A link test double for the image connection machine: records what the machine sends (and how
 * often it asked for a ping) and lets a test play the image's side (handshake, replies, ping
 * results, loss). Swapped in with `machine.provide()`.
 */
import { fromCallback } from "xstate";
import type { LinkCommand, LinkEvent, LinkInput } from "../../src/machines/image-link-events.js";
import { decodeImageRequest, type ImageReply, type ImageRequest } from "../../src/protocol/index.js";

export interface FakeLinkInstance {
  readonly input: LinkInput;
  readonly sent: ImageRequest[];
  /** `PROBE`s received: pings asked for now. */
  probes: number;
  closed: boolean;
  emit(event: LinkEvent): void;
}

export class FakeLinks {
  readonly instances: FakeLinkInstance[] = [];

  readonly logic = fromCallback<LinkCommand, LinkInput, LinkEvent>(({ input, sendBack, receive }) => {
    const instance: FakeLinkInstance = { input, sent: [], probes: 0, closed: false, emit: sendBack };
    this.instances.push(instance);
    receive((command) => {
      if (command.type === "PROBE") {
        instance.probes += 1;
        return;
      }
      const decoded = decodeImageRequest(command.frame);
      if (!decoded.ok) throw decoded.error;
      instance.sent.push(decoded.value);
    });
    return () => {
      instance.closed = true;
    };
  });

  get current(): FakeLinkInstance {
    const link = this.instances.at(-1);
    if (link === undefined) throw new Error("no link was opened");
    return link;
  }

  up(): void {
    this.current.emit({ type: "LINK.UP", generation: this.current.input.generation });
  }

  down(reason = "peer closed"): void {
    this.current.emit({ type: "LINK.DOWN", generation: this.current.input.generation, reason });
  }

  fault(reason = "garbage"): void {
    this.current.emit({ type: "LINK.FAULT", generation: this.current.input.generation, reason });
  }

  reply(reply: ImageReply): void {
    this.current.emit({ type: "LINK.REPLY", generation: this.current.input.generation, reply });
  }

  /** A ping answered after `rttMs`, or missed (`null`), as the link's pinger reports it. */
  pinged(rttMs: number | null): void {
    this.current.emit({ type: "LINK.PINGED", generation: this.current.input.generation, rttMs });
  }

  /** Answers the last request of `command` with `result`. */
  succeed(command: ImageRequest["command"], result: unknown): void {
    this.reply({ id: this.lastOf(command).id, status: "success", result, timestamp: null });
  }

  lastOf(command: ImageRequest["command"]): ImageRequest {
    const request = this.current.sent.findLast((r) => r.command === command);
    if (request === undefined) throw new Error(`no ${command} was sent`);
    return request;
  }
}

export const PONG = { message: "pong", status: "ready", uptime: 1 };
export const SYSTEM_INFO = { image_name: "Pharo-12.0", image_version: "12.0.0", vm_version: "vm", platform: "linux" };
