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
  imageRequest,
  type ConnectionStatus,
  type ImageCommand,
  type ImageConnectionStatus,
  type ImageParameters,
  type ImageRequestOf,
  type ImageResult,
} from "../protocol/index.js";
import { imageLink } from "./image-link.js";
import { ImageRequestError } from "../errors.js";

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
}

/**
 * Sends one command to the image behind `actor` and resolves with its typed result, or rejects
 * with an `ImageRequestError` (`ImageUnavailable`, `Timeout`, `Overloaded`, `EvaluationError`…).
 */
export function requestImage<C extends ImageCommand>(
  actor: ImageConnectionActor,
  command: C,
  parameters: ImageParameters<C>,
  options: RequestOptions = {},
): Promise<ImageResult<C>> {
  const request = imageRequest(randomUUID(), command, parameters) as ImageRequestOf<C>;
  const waiters = waitersOf(actor);
  return new Promise<ImageResult<C>>((resolve, reject) => {
    waiters.set(request.id, (outcome) => {
      if (outcome.ok) resolve(outcome.result as ImageResult<C>);
      else reject(new ImageRequestError(outcome.code, outcome.message, outcome.errorType));
    });
    actor.send({
      type: "REQUEST",
      request,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    // A stopped actor settles nothing: answer at once rather than hang.
    if (actor.getSnapshot().status !== "active" && waiters.delete(request.id)) {
      reject(new ImageRequestError("ImageUnavailable", "the image connection is stopped"));
    }
  });
}

export interface ImageConnection {
  readonly actor: ImageConnectionActor;
  status(): ImageConnectionStatus;
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
 * Resolves with `performance.now()` once the connection reports `status` (at once if it already
 * does); rejects after `timeoutMs`, naming the status it is still in.
 */
export function waitForStatus(
  actor: ImageConnectionActor,
  status: ConnectionStatus,
  timeoutMs: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    if (actor.getSnapshot().context.image.status === status) return resolve(performance.now());
    const timer = setTimeout(() => {
      sub.unsubscribe();
      const current = actor.getSnapshot().context.image.status;
      reject(new Error(`still ${current} after ${timeoutMs} ms, waiting for ${status}`));
    }, timeoutMs);
    const sub = actor.on("status", ({ data }) => {
      if (data.status !== status) return;
      clearTimeout(timer);
      sub.unsubscribe();
      resolve(performance.now());
    });
  });
}
