/**
 * The stream in `@statelyai/inspect`'s WebSocket format, for those who can use Stately's
 * inspector: the bridge's messages become its `@xstate.actor`, `@xstate.event` and
 * `@xstate.snapshot` events (microsteps and actions have no counterpart there and are left out),
 * sent to a relay such as `@statelyai/inspect`'s own server (`ws://localhost:8080` by default).
 * Actor ids are made unique across instances as `<instance_id>/<actor_id>`. While the relay is
 * unreachable, at most `maxQueued` events wait (the oldest dropped, counted); it is retried with
 * a growing delay.
 */
import { WebSocket } from "ws";
import type { Logger } from "../logger.js";
import type { InspectActor, InspectRecord, InspectSnapshot } from "../protocol/inspect.js";
import { applyContextChange } from "../protocol/inspect-change.js";
import type { PageMessage, PageSink } from "./bridge.js";

/** The version of the format written, as `_version`. */
const FORMAT_VERSION = "0.4.0";

export type StatelyEvent =
  | {
      type: "@xstate.actor";
      name: string;
      sessionId: string;
      parentId: string | undefined;
      rootId: string | undefined;
      definition: string | undefined;
      snapshot: StatelySnapshot;
      createdAt: string;
      id: string;
      _version: string;
    }
  | {
      type: "@xstate.event";
      sessionId: string;
      sourceId: string | undefined;
      rootId: string | undefined;
      event: unknown;
      createdAt: string;
      id: string;
      _version: string;
    }
  | {
      type: "@xstate.snapshot";
      sessionId: string;
      rootId: string | undefined;
      event: { type: string };
      snapshot: StatelySnapshot;
      createdAt: string;
      id: string;
      _version: string;
    };

interface StatelySnapshot {
  status: string;
  value: unknown;
  context: unknown;
}

/** Turns the bridge's messages into Stately's events; it remembers parents, to name each actor's root. */
export class StatelyConverter {
  private readonly parents = new Map<string, string | undefined>();
  private readonly definitions = new Map<string, string>();
  /** Each actor's last context, which a `change` record is applied to. */
  private readonly contexts = new Map<string, unknown>();
  private counter = 0;

  convert(message: PageMessage): StatelyEvent[] {
    switch (message.type) {
      case "attached": {
        const { instance_id, actors, definitions } = message.body;
        for (const [machineId, definition] of Object.entries(definitions)) {
          this.definitions.set(`${instance_id}/${machineId}`, JSON.stringify(definition));
        }
        for (const actor of actors) {
          const key = this.key(instance_id, actor.actor_id);
          this.parents.set(key, this.parentKey(instance_id, actor));
          this.contexts.set(key, actor.snapshot.context);
        }
        return actors.map((actor) => this.actor(instance_id, actor, message.at));
      }
      case "batch":
        return message.body.records.flatMap((record) => this.record(message.body.instance_id, record));
      case "hello":
      case "instances":
      case "gone":
      case "error":
        return [];
    }
  }

  private record(instance: string, record: InspectRecord): StatelyEvent[] {
    const sessionId = this.key(instance, record.actor_id);
    const at = Date.parse(record.at);
    switch (record.kind) {
      case "actor": {
        if (record.definition !== null && record.machine_id !== null) {
          this.definitions.set(`${instance}/${record.machine_id}`, JSON.stringify(record.definition));
        }
        this.parents.set(sessionId, this.parentKey(instance, record));
        const snapshot = { status: "active", value: null, context: null, children: [] };
        return [this.actor(instance, { ...record, snapshot }, at)];
      }
      case "event":
        return [
          {
            type: "@xstate.event",
            sessionId,
            sourceId: record.source_id === null ? undefined : this.key(instance, record.source_id),
            rootId: this.rootOf(sessionId),
            event: record.event,
            ...this.stamp(at),
          },
        ];
      case "snapshot":
      case "change":
      case "stopped": {
        const snapshot =
          record.kind === "change"
            ? {
                status: record.status,
                value: record.value,
                context: applyContextChange(this.contexts.get(sessionId) ?? null, record),
              }
            : plain(record.snapshot);
        const event: StatelyEvent = {
          type: "@xstate.snapshot",
          sessionId,
          rootId: this.rootOf(sessionId),
          event: { type: record.event_type },
          snapshot,
          ...this.stamp(at),
        };
        if (record.kind === "stopped") {
          this.parents.delete(sessionId);
          this.contexts.delete(sessionId);
        } else this.contexts.set(sessionId, snapshot.context);
        return [event];
      }
      case "microstep":
      case "action":
        return [];
    }
  }

  private actor(
    instance: string,
    actor: Pick<InspectActor, "actor_id" | "parent_id" | "id" | "system_id" | "machine_id" | "snapshot">,
    at: number,
  ): StatelyEvent {
    const sessionId = this.key(instance, actor.actor_id);
    return {
      type: "@xstate.actor",
      name: actor.system_id ?? actor.id,
      sessionId,
      parentId: this.parentKey(instance, actor),
      rootId: this.rootOf(sessionId),
      definition: actor.machine_id === null ? undefined : this.definitions.get(`${instance}/${actor.machine_id}`),
      snapshot: plain(actor.snapshot),
      ...this.stamp(at),
    };
  }

  private key(instance: string, actorId: string): string {
    return `${instance}/${actorId}`;
  }

  private parentKey(instance: string, actor: { parent_id: string | null }): string | undefined {
    return actor.parent_id === null ? undefined : this.key(instance, actor.parent_id);
  }

  private rootOf(sessionId: string): string | undefined {
    let at = sessionId;
    for (let depth = 0; depth < 64; depth++) {
      const parent = this.parents.get(at);
      if (parent === undefined) return at;
      at = parent;
    }
    return at;
  }

  private stamp(at: number): { createdAt: string; id: string; _version: string } {
    return { createdAt: String(at), id: `stui-${++this.counter}`, _version: FORMAT_VERSION };
  }
}

const plain = (snapshot: InspectSnapshot): StatelySnapshot => ({
  status: snapshot.status,
  value: snapshot.value,
  context: snapshot.context,
});

export interface StatelyForwarder extends PageSink {
  /** Events dropped while the relay could not be reached. */
  readonly dropped: number;
  close(): void;
}

/** A bridge page that forwards to a Stately relay at `url` (`ws://…`). */
export function forwardToStately(url: string, logger: Logger, maxQueued = 10_000): StatelyForwarder {
  const converter = new StatelyConverter();
  const queue: string[] = [];
  let socket: WebSocket | null = null;
  let open = false;
  let closed = false;
  let delay = 1000;
  let dropped = 0;
  let warned = false;

  const connect = (): void => {
    if (closed) return;
    const ws = new WebSocket(url);
    socket = ws;
    ws.on("open", () => {
      open = true;
      delay = 1000;
      warned = false;
      logger.info({ url }, `forwarding inspection to the Stately relay at ${url}`);
      for (const text of queue.splice(0)) ws.send(text);
    });
    ws.on("error", (error) => {
      if (!warned) logger.warn({ url }, `the Stately relay at ${url} is not reachable: ${error.message}; retrying`);
      warned = true;
    });
    ws.on("close", () => {
      open = false;
      if (closed) return;
      setTimeout(connect, delay).unref();
      delay = Math.min(delay * 2, 30_000);
    });
    // The relay may echo what others send; nothing it says is needed.
    ws.on("message", () => undefined);
  };
  connect();

  return {
    send: (message) => {
      for (const event of converter.convert(message)) {
        const text = JSON.stringify(event);
        if (open && socket !== null) socket.send(text);
        else {
          if (queue.length >= maxQueued) {
            queue.shift();
            dropped += 1;
          }
          queue.push(text);
        }
      }
    },
    get dropped() {
      return dropped;
    },
    close: () => {
      closed = true;
      socket?.close();
    },
  };
}
