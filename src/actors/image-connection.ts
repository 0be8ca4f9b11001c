/**
 * Running an image connection: the machine with the real ZeroMQ link, and promise-based requests
 * over any running image connection actor (standalone or a session manager's child).
 */
import { randomUUID } from "node:crypto";
import { createActor, type ActorOptions } from "xstate";
import {
  imageConnectionMachine,
  type ImageConnectionActor,
  type ImageConnectionInput,
  type RequestOutcome,
} from "../machines/image-connection.js";
import {
  encodeImageRequest,
  imageRequest,
  type ConnectionStatus,
  type ImageCommand,
  type ImageConnectionStatus,
  type ImageParameters,
  type ImageRequestOf,
  type ImageResult,
} from "../protocol/index.js";
import { imageLink, laneOf } from "./image-link.js";
import type { RequestLane } from "./request-lane.js";
import { ImageRequestError } from "../errors.js";
import { systemClock } from "../clock.js";

/** The machine with its real link. */
export const liveImageConnectionMachine = imageConnectionMachine.provide({ actors: { link: imageLink } });

/** One `settled` listener per actor, dispatching by request id. */
const waiting = new WeakMap<ImageConnectionActor, Map<string, (outcome: RequestOutcome) => void>>();

function waitersOf(actor: ImageConnectionActor): Map<string, (outcome: RequestOutcome) => void> {
  let map = waiting.get(actor);
  if (map === undefined) {
    const created = new Map<string, (outcome: RequestOutcome) => void>();
    actor.on("settled", ({ id, outcome }) => {
      const resolve = created.get(id);
      if (resolve === undefined) return;
      created.delete(id);
      resolve(outcome);
    });
    waiting.set(actor, created);
    map = created;
  }
  return map;
}

export interface RequestOptions {
  /** Deadline of this request; the connection's `requestTimeoutMs` when left out. */
  readonly timeoutMs?: number;
  /**
   * Stops waiting for the answer: see `requestImage`. A signal that is already aborted sends
   * nothing. @default no signal: the request waits for its answer or its deadline
   */
  readonly signal?: AbortSignal;
}

/** Why an aborted request rejects: the signal's reason when it is an `Error`, else an `AbortError`. */
function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error
    ? reason
    : new DOMException(`the image request was aborted: ${String(reason)}`, "AbortError");
}

/**
 * Sends one command to the image behind `actor` and resolves with its typed result, or rejects
 * with an `ImageRequestError` (`ImageUnavailable`, `Timeout`, `Overloaded`, `EvaluationError`…).
 *
 * Aborting `options.signal` rejects at once with the signal's `reason` when it is an `Error` (a
 * plain `abort()` gives a `DOMException` named `AbortError`, `AbortSignal.timeout()` one named
 * `TimeoutError`), else with an `AbortError` naming the reason: never an `ImageRequestError`, which
 * says the image or its connection failed. A signal already aborted rejects without sending
 * anything. Once aborted, the request's answer is dropped when it comes. The connection machine
 * has no way to cancel a request it has sent: it keeps it pending (counted in `maxInFlight`) until
 * the image answers (a reply matched as usual, settled to nobody) or its deadline passes (a later
 * answer then counts as a late reply).
 */
export function requestImage<C extends ImageCommand>(
  actor: ImageConnectionActor,
  command: C,
  parameters: ImageParameters<C>,
  options: RequestOptions = {},
): Promise<ImageResult<C>> {
  const { signal } = options;
  if (signal?.aborted === true) return Promise.reject(abortError(signal));
  const request = imageRequest(randomUUID(), command, parameters) as ImageRequestOf<C>;
  return new Promise<ImageResult<C>>((resolve, reject) => {
    let settled = false;
    const settle = (outcome: RequestOutcome): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      if (outcome.ok) resolve(outcome.result as ImageResult<C>);
      else reject(new ImageRequestError(outcome.code, outcome.message, outcome.errorType));
    };
    // Aborted: rejected at once; the answer, when it comes, settles nobody.
    const onAbort = (): void => {
      if (settled || signal === undefined) return;
      settled = true;
      waitersOf(actor).delete(request.id);
      reject(abortError(signal));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const timeoutMs = options.timeoutMs;
    const open = connectedLane(actor);
    if (open !== undefined) {
      const frame = encodeImageRequest(request);
      open.lane.request(request.id, command, frame, timeoutMs ?? open.defaultTimeoutMs, settle);
      return;
    }
    const waiters = waitersOf(actor);
    waiters.set(request.id, settle);
    actor.send({ type: "REQUEST", request, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    // A stopped actor settles nothing: answer at once rather than hang.
    if (actor.getSnapshot().status !== "active" && waiters.delete(request.id)) {
      settle({ ok: false, code: "ImageUnavailable", message: "the image connection is stopped", errorType: null });
    }
  });
}

/**
 * The request lane of the connection's link while the machine says `Connected` (see
 * `request-lane.ts`); `undefined` otherwise, or for a link that has none (a test double).
 */
function connectedLane(
  actor: ImageConnectionActor,
): { readonly lane: RequestLane; readonly defaultTimeoutMs: number } | undefined {
  const snapshot = actor.getSnapshot();
  if (snapshot.status !== "active" || snapshot.context.image.status !== "Connected") return undefined;
  const link = snapshot.children.link;
  const lane = link === undefined ? undefined : laneOf(link);
  return lane === undefined ? undefined : { lane, defaultTimeoutMs: snapshot.context.policy.requestTimeoutMs };
}

export interface ImageConnection {
  readonly actor: ImageConnectionActor;
  status(): ImageConnectionStatus;
  /** `requestImage` on this connection's actor; `options.signal` aborts the wait. */
  request<C extends ImageCommand>(
    command: C,
    parameters: ImageParameters<C>,
    options?: RequestOptions,
  ): Promise<ImageResult<C>>;
  /** Closes the socket and stops the actor. */
  stop(): void;
}

/** Starts a standalone image connection (the session manager spawns its own as children). */
export function startImageConnection(
  input: ImageConnectionInput,
  options: Pick<ActorOptions<typeof liveImageConnectionMachine>, "clock" | "inspect"> = {},
): ImageConnection {
  const actor = createActor(liveImageConnectionMachine, { ...options, input });
  actor.start();
  return {
    actor,
    status: () => actor.getSnapshot().context.image,
    request: (command, parameters, requestOptions) => requestImage(actor, command, parameters, requestOptions),
    stop: () => actor.stop(),
  };
}

/**
 * Resolves with `systemClock.monotonic()` once the connection reports `status` (at once if it already
 * does); rejects after `timeoutMs`, naming the status it is still in.
 */
export function waitForStatus(
  actor: ImageConnectionActor,
  status: ConnectionStatus,
  timeoutMs: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    if (actor.getSnapshot().context.image.status === status) return resolve(systemClock.monotonic());
    const timer = setTimeout(() => {
      sub.unsubscribe();
      const current = actor.getSnapshot().context.image.status;
      reject(new Error(`still ${current} after ${timeoutMs} ms, waiting for ${status}`));
    }, timeoutMs);
    const sub = actor.on("status", ({ data }) => {
      if (data.status !== status) return;
      clearTimeout(timer);
      sub.unsubscribe();
      resolve(systemClock.monotonic());
    });
  });
}
