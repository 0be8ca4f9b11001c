/**
 * The ZeroMQ link to one image: a DEALER socket living inside a callback actor. It reports the
 * ZMTP handshake (not the TCP connect) as `LINK.UP`, any loss as `LINK.DOWN`, a handshake the
 * peer and this link cannot agree on as `LINK.AUTH_FAILED`, decodes replies with the protocol
 * codec, and closes the socket (linger 0) when the actor is stopped. It also holds the link's
 * request lane (`request-lane.ts`): client requests written and settled here while Connected;
 * and its pinger (`pinger.ts`): from the handshake on, the application pings and their round
 * trips, each reported as `LINK.PINGED`.
 *
 * With CURVE keys the socket is a CURVE client pinned to the image's public key. What tells an
 * authentication failure, from libzmq's socket events: `handshake:error:auth` (the image's ZAP
 * handler refused this service's key); a mechanism mismatch (CURVE on one side only); and the
 * handshake broken off twice in a row (an image whose key is not the pinned one cannot open
 * the hello and drops the connection; libzmq retries after `reconnectInterval`, 100 ms).
 */
import { Dealer, context as zmqContext } from "zeromq";
import { fromCallback } from "xstate";
import type { LinkCommand, LinkEvent, LinkInput } from "../machines/image-link-events.js";
import { decodeImageReply, type DecodeLimits } from "../protocol/index.js";
import { RequestLane } from "./request-lane.js";
import { Pinger } from "./pinger.js";

/**
 * libzmq's default of 1023 sockets per context is too few for a large fleet (and the service
 * also needs file descriptors for NATS and its store).
 */
const MAX_SOCKETS = 16_384;
if (zmqContext.maxSockets < MAX_SOCKETS) zmqContext.maxSockets = MAX_SOCKETS;

/** libzmq's socket limit in this process (`ZMQ_MAX_SOCKETS`), as raised above. */
export const zmqSocketLimit = (): number => zmqContext.maxSockets;

const EMPTY = Buffer.alloc(0);

/** Each live link's request lane, by the link actor (`laneOf`). */
const lanes = new WeakMap<object, RequestLane>();

/** The request lane of a link actor started from `imageLink`; `undefined` for any other link. */
export const laneOf = (link: object): RequestLane | undefined => lanes.get(link);

export const imageLink = fromCallback<LinkCommand, LinkInput, LinkEvent>(({ input, self, sendBack, receive }) => {
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
    ...(input.curve === null ? {} : input.curve.socketOptions()),
  });
  let down = false;
  let downBecause: string | null = null;
  let handshaken = false;
  const report = (type: "LINK.DOWN" | "LINK.AUTH_FAILED", reason: string): void => {
    if (down) return;
    down = true;
    downBecause = reason;
    sendBack({ type, generation, reason });
  };
  const reportDown = (reason: string): void => report("LINK.DOWN", reason);
  const authFailed = (reason: string): void => report("LINK.AUTH_FAILED", `AuthFailed: ${reason}`);
  const secured = input.curve !== null;
  let brokenOff = 0;

  socket.events.on("handshake", () => {
    handshaken = true;
    sendBack({ type: "LINK.UP", generation });
    pinger.start();
  });
  socket.events.on("disconnect", () => {
    // Before the handshake, the handshake's own events (or the attempt's deadline) tell what went wrong.
    if (handshaken) reportDown("the image closed the connection or stopped answering heartbeats");
  });
  socket.events.on("handshake:error:auth", (e) =>
    authFailed(`the image refused this service's CURVE key (ZAP status ${e.error.status})`),
  );
  socket.events.on("handshake:error:protocol", (e) => {
    if (e.error.code !== "ERR_ZMTP_MECHANISM_MISMATCH") reportDown(`ZMTP handshake failed: ${e.error.message}`);
    else if (secured) authFailed("the image does not speak CURVE: a plaintext peer where CURVE is configured");
    else authFailed("the image asks for a security mechanism (CURVE) and none is configured for it here");
  });
  // A handshake broken off (the peer closed it): once may be a peer going away, and libzmq tries
  // again by itself; twice in a row is the peer refusing it: a CURVE image cannot open a hello
  // sealed for another key, and a mechanism mismatch is often seen this way too, as the peer
  // that noticed it first hangs up.
  socket.events.on("handshake:error:other", () => {
    if (++brokenOff < 2) return;
    if (secured) {
      authFailed(
        "the image broke off the CURVE handshake twice: it holds another key than server_public_key, or does not speak CURVE",
      );
    } else
      authFailed("the image broke off the handshake twice: it may ask for CURVE, and none is configured for it here");
  });

  // One writer at a time: zeromq refuses a second `send` while one is waiting (EBUSY).
  const outbox: { readonly id: string; readonly frame: string }[] = [];
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

  const queue = (id: string, frame: string): void => {
    outbox.push({ id, frame });
    void write();
  };
  const lane = new RequestLane(input.imageId, input.maxInFlight, queue);
  lanes.set(self, lane);
  const pinger = new Pinger(
    `ping-${input.imageId}-`,
    { intervalMs: input.pingIntervalMs, timeoutMs: input.pingTimeoutMs },
    queue,
    (rttMs) => sendBack({ type: "LINK.PINGED", generation, rttMs }),
  );

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
      if (reply.ok) {
        if (!pinger.settle(reply.value) && !lane.settle(reply.value)) {
          sendBack({ type: "LINK.REPLY", generation, reply: reply.value });
        }
      } else
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
  receive((command) => (command.type === "SEND" ? queue(command.id, command.frame) : pinger.ping()));

  return () => {
    down = true;
    pinger.stop();
    lane.close(downBecause ?? "the connection closed it");
    // The event observer ends by itself with the socket; closing it first makes its pending
    // receive fail with ENOTSOCK.
    socket.close();
  };
});

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
