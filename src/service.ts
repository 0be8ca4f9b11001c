/**
 * The service: the session manager with its events published on NATS and its requests answered
 * over NATS. `stui serve` runs one; tests and embedders can start one in-process.
 */
import type { Service } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import { EventPublisher, type EventPublisherOptions } from "./actors/event-publisher.js";
import { InspectLink } from "./actors/inspect-link.js";
import { watchNetwork, type NetworkWatch, type NetworkWatchOptions } from "./actors/network-watch.js";
import { startApi } from "./actors/nats-api.js";
import { InspectionRecorder } from "./inspect/recorder.js";
import { DEFAULT_REPLY_PREFIXES, type RefusalReason } from "./actors/reply-guard.js";
import { pingInstances, type LiveInstance } from "./actors/instances.js";
import { DuplicateInstanceError, NatsPermissionError } from "./errors.js";
import {
  checkServer,
  connectNats,
  NatsLink,
  redactNatsOptions,
  serversOf,
  type NatsOptions,
} from "./actors/nats-link.js";
import { Membership } from "./actors/membership.js";
import { NatsPeers } from "./actors/peers.js";
import { SessionManager } from "./actors/session-manager.js";
import type { ImageCatalog, LeaseStore, SessionStore } from "./ports.js";
import { stderrLogger, type Logger } from "./logger.js";
import type { ImageConfig, ManagerPolicy } from "./machines/session-manager.js";
import { SERVICE_NAME, timestamp, type NatsLinkStatus, type Response } from "./protocol/index.js";

export const SERVICE_VERSION = "0.1.0";

export interface ServiceOptions {
  /** Names this instance in events (`/stui/<id>`, `instance.<id>.started`); a subject token. */
  readonly instanceId: string;
  readonly nats: NatsOptions;
  /** The session store, or how to open it on the service's own NATS connection (the KV store). */
  readonly store: SessionStore | ((nc: NatsConnection) => Promise<SessionStore>);
  readonly images: readonly ImageConfig[];
  readonly policy?: Partial<ManagerPolicy>;
  readonly events?: Omit<EventPublisherOptions, "instanceId">;
  /** What an attached inspector may cost (`InspectLinkOptions.maxShare`). */
  readonly inspect?: { readonly maxShare?: number };
  /** Request bodies larger than this are refused. @default 1048576 */
  readonly maxBodyBytes?: number;
  /** @default JSON lines on stderr */
  readonly logger?: Logger;
  /** Told of every API answer sent (for metrics). */
  readonly onAnswer?: (endpoint: string, response: Response, seconds: number) => void;
  /**
   * Shared ownership of the images: the lease store and the shared image list, opened on the
   * service's NATS connection, and the lease TTL. Absent: this instance connects every configured image.
   */
  readonly leases?: {
    readonly ttlMs: number;
    readonly open: (nc: NatsConnection) => Promise<{ readonly store: LeaseStore; readonly catalog: ImageCatalog }>;
  };
  /** Reply subject prefixes the API answers to. @default ["_INBOX."] */
  readonly replyPrefixes?: readonly string[];
  /** Told of every request refused for its reply subject (for metrics). */
  readonly onRefused?: (reason: RefusalReason, subject: string) => void;
  /**
   * Watching the host's network interfaces and for a resume from sleep, to have every image link
   * try again at once; `false`: not watched. @default watched, `NetworkWatchOptions`' defaults
   */
  readonly network?: Omit<NetworkWatchOptions, "onChange"> | false;
}

export class StuiService {
  private stopping: Promise<number> | null = null;

  private constructor(
    readonly manager: SessionManager,
    readonly link: NatsLink,
    readonly publisher: EventPublisher,
    private readonly api: Service,
    private readonly detach: () => void,
    private readonly logger: Logger,
    private readonly membership: Membership | null,
    /** Inspectors attach here (`stui.inspect.<instance_id>.*`). */
    readonly inspection: InspectLink,
    private readonly network: NetworkWatch | null,
  ) {
    // The micro service stops itself when the server refuses one of its subscriptions (permissions
    // changed by a reload, or refused again after a reconnect) or when the connection closes:
    // nothing would answer any more, so it must not go unnoticed.
    void api.stopped.then((why) => {
      if (this.stopping !== null) return;
      const reason = why === null ? "the NATS connection closed" : why.message;
      logger.error(
        { err: why, api: "stui.api.*" },
        `the API stopped: ${reason}; requests on stui.api.* are no longer answered until stui serve is restarted (see docs/security.md)`,
      );
    });
  }

  /**
   * Connects to NATS (rejecting with `NatsConnectError` if it cannot, `JetStreamMissingError` if
   * the server has no JetStream), then starts everything.
   */
  static async start(options: ServiceOptions): Promise<StuiService> {
    const logger = options.logger ?? stderrLogger;
    logger.info({ nats: redactNatsOptions(options.nats) }, "connecting to NATS");
    const nc = await connectNats(options.nats);
    try {
      await checkServer(nc, logger);
      // Before anything is announced: two instances with one id would interleave one event source.
      const twin = (await pingInstancesAtStart(nc)).find((i) => i.instance_id === options.instanceId);
      if (twin !== undefined) throw new DuplicateInstanceError(options.instanceId, twin.service_id);
    } catch (error) {
      await nc.close();
      throw error;
    }
    const link = new NatsLink(nc, logger);
    let publisher: EventPublisher | null = null;
    const natsStatus = (): NatsLinkStatus => ({
      status: link.status,
      server: link.server,
      buffered_events: publisher?.counts.buffered ?? 0,
      dropped_events: publisher?.counts.dropped ?? 0,
    });
    let manager: SessionManager | null = null;
    let store: SessionStore | null = null;
    const membership = options.leases === undefined ? null : new Membership(nc, options.instanceId, logger);
    // One observer of every actor of this instance; it records only while an inspector is attached.
    const recorder = new InspectionRecorder();
    let inspection: InspectLink | null = null;
    try {
      publisher = await EventPublisher.start(link, { ...options.events, instanceId: options.instanceId }, logger);
      store = typeof options.store === "function" ? await options.store(nc) : options.store;
      const shared = options.leases === undefined ? null : await options.leases.open(nc);
      manager = await SessionManager.start({
        store,
        instanceId: options.instanceId,
        ...(shared === null || options.leases === undefined
          ? {}
          : {
              leases: {
                ...shared,
                owner: options.instanceId,
                ttlMs: options.leases.ttlMs,
                peers: new NatsPeers(nc, options.instanceId),
                ...(membership === null ? {} : { members: () => membership.members() }),
              },
            }),
        images: options.images,
        ...(options.policy === undefined ? {} : { policy: options.policy }),
        logger,
        natsStatus,
        actorOptions: { inspect: recorder.observe },
      });
      inspection = new InspectLink(nc, options.instanceId, recorder, logger, options.inspect);
      const detach = publisher.attach(manager);
      const api = await startApi(
        nc,
        manager,
        {
          instanceId: options.instanceId,
          version: SERVICE_VERSION,
          instanceEndpoint: options.leases !== undefined,
          ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
          ...(options.onAnswer === undefined ? {} : { onAnswer: options.onAnswer }),
          ...replyPrefixesOf(options),
          ...(options.onRefused === undefined ? {} : { onRefused: options.onRefused }),
        },
        logger,
      );
      logger.info(
        { instance_id: options.instanceId, nats: serversOf(options.nats), images: options.images.length },
        "stui service started",
      );
      const network = watchHost(options, manager, publisher, logger);
      return new StuiService(manager, link, publisher, api, detach, logger, membership, inspection, network);
    } catch (error) {
      inspection?.stop();
      membership?.stop();
      await manager?.stop();
      // A store the service opened itself is closed by it (the manager closes it once started).
      if (manager === null && typeof options.store === "function") await store?.close();
      await publisher?.close(0);
      await nc.close();
      throw error;
    }
  }

  /**
   * Stops taking requests, lets those in flight finish, stops the image connections, announces
   * `instance.<id>.stopped`, publishes what is buffered (for up to `flushTimeoutMs`), and closes.
   * Resolves with the number of events that could not be published in that time (0: all were).
   */
  stop(flushTimeoutMs = 5000): Promise<number> {
    this.stopping ??= (async () => {
      this.network?.stop();
      await this.api.stop();
      this.membership?.announceLeaving();
      await this.manager.stop();
      this.membership?.stop();
      this.inspection.stop();
      this.detach();
      const unpublished = await this.publisher.close(flushTimeoutMs);
      await this.link.nc.drain().catch((error: unknown) => {
        this.logger.warn({ err: error }, "draining the NATS connection failed");
      });
      this.logger.info({ unpublished_events: unpublished }, "stui service stopped");
      return unpublished;
    })();
    return this.stopping;
  }
}

/**
 * The reply prefixes the API answers to. With shared images, the other instances' forwarded
 * requests come back on the service's own inbox prefix (`nats.inbox_prefix`): accepted too.
 */
function replyPrefixesOf(options: ServiceOptions): { replyPrefixes?: readonly string[] } {
  const own = options.nats.inboxPrefix;
  if (options.leases === undefined || own === undefined) {
    return options.replyPrefixes === undefined ? {} : { replyPrefixes: options.replyPrefixes };
  }
  const accepted = options.replyPrefixes ?? DEFAULT_REPLY_PREFIXES;
  return { replyPrefixes: [...new Set([...accepted, `${own}.`])] };
}

/** `pingInstances`, with a refused publish said as what the service user lacks. */
async function pingInstancesAtStart(nc: NatsConnection): Promise<LiveInstance[]> {
  try {
    return await pingInstances(nc);
  } catch (error) {
    if (!(error instanceof Error && /Permissions Violation/i.test(error.message))) throw error;
    throw new NatsPermissionError(
      `$SRV.PING.${SERVICE_NAME}`,
      "used at start to find a running instance with the same instance_id",
      error,
    );
  }
}

/**
 * A network change or a resume from sleep: logged, published (`instance.<id>.network`), and every
 * image connection told, so that none waits out a backoff meant for the old network.
 */
function watchHost(
  options: ServiceOptions,
  manager: SessionManager,
  publisher: EventPublisher,
  logger: Logger,
): NetworkWatch | null {
  if (options.network === false) return null;
  return watchNetwork({
    ...options.network,
    onChange: (reason) => {
      const images = manager.networkChanged();
      logger.warn({ reason, images }, `${reason}: every image link probes or tries again now`);
      publisher.publish(
        "io.stui.instance.network_changed",
        { instance_id: options.instanceId, reason, images, at: timestamp() },
        options.instanceId,
      );
    },
  });
}
