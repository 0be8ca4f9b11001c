/**
 * The vocabulary between an image connection machine and the link actor that owns its socket.
 * Every link event carries the generation of the link that sent it, so that a late event from a
 * link already replaced is recognised and ignored.
 */
import type { CurveClient } from "../curve.js";
import type { ImageReply } from "../protocol/index.js";

export interface LinkInput {
  /** Named in the messages of the requests the link settles itself (its request lane). */
  readonly imageId: string;
  readonly address: string;
  readonly generation: number;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly maxMessageBytes: number;
  /** The link pings the image this often from its handshake on, and reports each result. */
  readonly pingIntervalMs: number;
  /** A ping not answered within this long is reported missed. */
  readonly pingTimeoutMs: number;
  /** Requests in flight in the link's request lane; more are refused with `Overloaded`. */
  readonly maxInFlight: number;
  /** Asked right before each send; `false`: the frame is dropped and the link goes down. */
  readonly fence: () => boolean;
  /** CURVE keys, when the link is secured; `null`: plain TCP. */
  readonly curve: CurveClient | null;
}

/** What the machine tells its link: write a request, or ping now (unless a ping is waiting). */
export type LinkCommand =
  { readonly type: "SEND"; readonly id: string; readonly frame: string } | { readonly type: "PROBE" };

/** What a link tells its machine. */
export type LinkEvent =
  /** The ZMTP handshake completed: the peer is a ZeroMQ socket that speaks to us. */
  | { readonly type: "LINK.UP"; readonly generation: number }
  /** The link is gone (peer closed, heartbeat timeout, handshake failed). */
  | { readonly type: "LINK.DOWN"; readonly generation: number; readonly reason: string }
  /**
   * The peer and this link do not agree on who they are: a CURVE key refused, the wrong image key
   * pinned, CURVE on one side only. Trying again will not help until the configuration changes.
   */
  | { readonly type: "LINK.AUTH_FAILED"; readonly generation: number; readonly reason: string }
  /** A ping was answered after `rttMs`, or not within the ping timeout (`null`). */
  | { readonly type: "LINK.PINGED"; readonly generation: number; readonly rttMs: number | null }
  /** A decoded reply. */
  | { readonly type: "LINK.REPLY"; readonly generation: number; readonly reply: ImageReply }
  /** A frame that is no reply at all: the image is broken and the link must be reset. */
  | { readonly type: "LINK.FAULT"; readonly generation: number; readonly reason: string }
  /** A request could not be queued on the socket. */
  | { readonly type: "LINK.SEND_FAILED"; readonly generation: number; readonly id: string; readonly reason: string };
