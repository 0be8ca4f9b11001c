/**
 * The ZeroMQ link to one image: a DEALER socket living inside a callback actor. It reports the
 * ZMTP handshake (not the TCP connect) as `LINK.UP`, any loss as `LINK.DOWN`, decodes replies with
 * the protocol codec, and closes the socket (linger 0) when the actor is stopped.
 */
import { Dealer, context as zmqContext } from "zeromq";
import { fromCallback } from "xstate";
import type { LinkCommand, LinkEvent, LinkInput } from "../machines/image-link-events.js";
import { decodeImageReply, type DecodeLimits } from "../protocol/index.js";

/**
 * libzmq's default of 1023 sockets per context is too few for a large fleet (and the service
 * also needs file descriptors for NATS and its store).
 */
const MAX_SOCKETS = 16_384;
if (zmqContext.maxSockets < MAX_SOCKETS) zmqContext.maxSockets = MAX_SOCKETS;

const EMPTY = Buffer.alloc(0);

export const imageLink = fromCallback<LinkCommand, LinkInput, LinkEvent>(({ input, sendBack, receive }) => {
  const { generation } = input;
  const limits: DecodeLimits = { maxBytes: input.maxMessageBytes, maxDepth: 64 };
  const socket = new Dealer({
    linger: 0,
    // Only hand messages to a peer whose handshake completed; until then `send` waits.
    immediate: true,
    heartbeatInterval: input.heartbeatIntervalMs,
    heartbeatTimeout: input.heartbeatTimeoutMs,
    heartbeatTimeToLive: input.heartbeatTimeoutMs,
    // A new socket is made per attempt; within an attempt libzmq retries the TCP connect this often.
    reconnectInterval: 100,
    maxMessageSize: input.maxMessageBytes,
    sendTimeout: 1000,
  });
  let down = false;
  const reportDown = (reason: string): void => {
    if (down) return;
    down = true;
    sendBack({ type: "LINK.DOWN", generation, reason });
  };

  socket.events.on("handshake", () => sendBack({ type: "LINK.UP", generation }));
  socket.events.on("disconnect", () => reportDown("the image closed the connection or stopped answering heartbeats"));
  socket.events.on("handshake:error:protocol", (e) => reportDown(`ZMTP handshake failed: ${e.error.message}`));
  socket.events.on("handshake:error:other", (e) => reportDown(`ZMTP handshake failed: ${e.error.message}`));

  // One writer at a time: zeromq refuses a second `send` while one is waiting (EBUSY).
  const outbox: LinkCommand[] = [];
  let writing = false;
  const write = async (): Promise<void> => {
    if (writing) return;
    writing = true;
    for (let next = outbox.shift(); next !== undefined && !socket.closed; next = outbox.shift()) {
      // Checked at the last moment: a process paused past its lease wakes up with sends queued.
      if (!input.fence()) {
        outbox.length = 0;
        socket.close();
        reportDown("this instance no longer holds the image's lease: nothing more is sent");
        break;
      }
      try {
        await socket.send([EMPTY, next.frame]);
      } catch (error) {
        if (socket.closed) break;
        sendBack({ type: "LINK.SEND_FAILED", generation, id: next.id, reason: describe(error) });
      }
    }
    writing = false;
  };

  const read = async (): Promise<void> => {
    while (!socket.closed) {
      let frames: Buffer[];
      try {
        frames = await socket.receive();
      } catch (error) {
        // Closing the socket rejects a pending receive with EAGAIN, like a timeout would.
        if (socket.closed) return;
        reportDown(`receive failed: ${describe(error)}`);
        return;
      }
      const frame = frames.length === 2 && frames[0]?.length === 0 ? frames[1] : undefined;
      if (frame === undefined) {
        sendBack({ type: "LINK.FAULT", generation, reason: `the image sent ${frames.length} frames, not a REP reply` });
        continue;
      }
      const reply = decodeImageReply(frame, limits);
      if (reply.ok) sendBack({ type: "LINK.REPLY", generation, reply: reply.value });
      else
        sendBack({
          type: "LINK.FAULT",
          generation,
          reason: `the image sent an undecodable reply: ${reply.error.message}`,
        });
    }
  };

  try {
    socket.connect(input.address);
  } catch (error) {
    queueMicrotask(() => reportDown(`cannot connect to ${input.address}: ${describe(error)}`));
  }
  void read();
  receive((command) => {
    outbox.push(command);
    void write();
  });

  return () => {
    down = true;
    // The event observer ends by itself with the socket; closing it first makes its pending
    // receive fail with ENOTSOCK.
    socket.close();
  };
});

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
