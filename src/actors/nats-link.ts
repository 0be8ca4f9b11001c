/**
 * The service's connection to NATS: options (with every auth method nats.js offers passed through),
 * a connection that reconnects forever, the link's status as the health summary reports it, and a
 * description of the options that is safe to log (secrets redacted).
 */
import { readFile } from "node:fs/promises";
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  type Authenticator,
  type ConnectionOptions,
  type NatsConnection,
} from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import type { Logger } from "../logger.js";
import type { ConnectionStatus } from "../protocol/index.js";
import { JetStreamMissingError, NatsConnectError, NatsOptionsError } from "../errors.js";

export interface NatsTlsOptions {
  /** PEM file of the CA that signed the server's certificate. */
  readonly caFile?: string;
  /** Client certificate and key, for servers that verify clients. */
  readonly certFile?: string;
  readonly keyFile?: string;
}

export interface NatsOptions {
  /** One or more server URLs. @default "nats://127.0.0.1:4222" */
  readonly servers?: string | readonly string[];
  /** The connection name servers show in their monitoring. @default "stui" */
  readonly name?: string;
  /** User and password authentication. */
  readonly user?: string;
  readonly pass?: string;
  /** Token authentication. */
  readonly token?: string;
  /** NKey authentication: the user's seed (`SU…`). */
  readonly nkeySeed?: string;
  /** JWT authentication: a `.creds` file. */
  readonly credsFile?: string;
  /** TLS; `null`/absent: plain TCP unless the server requires TLS. */
  readonly tls?: NatsTlsOptions | null;
  /** Wait between reconnection attempts (plus up to 100 ms jitter). @default 250 */
  readonly reconnectTimeWaitMs?: number;
  /** Time allowed for the first connection. @default 5000 */
  readonly connectTimeoutMs?: number;
  /**
   * The prefix of this connection's reply inboxes (nats.js `inboxPrefix`): request answers,
   * JetStream API answers, publish acks and consumer deliveries all arrive under `<prefix>.`, so a
   * user's permissions can grant `_INBOX_alice.>` instead of every client's `_INBOX.>`. Tokens of
   * letters, digits, `_` and `-` separated by `.`, no wildcards, no trailing dot (see
   * `INBOX_PREFIX`). docs/security.md, "One inbox per user".
   * @default "_INBOX"
   */
  readonly inboxPrefix?: string;
}

/** What `NatsOptions.inboxPrefix` must look like, e.g. `_INBOX_alice` or `_INBOX.alice`. */
export const INBOX_PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Why `prefix` is not a usable inbox prefix, or `null`. */
export function inboxPrefixProblem(prefix: string): string | null {
  return INBOX_PREFIX.test(prefix)
    ? null
    : `expected an inbox prefix of tokens [A-Za-z0-9_-] separated by "." (e.g. "_INBOX_alice"), without wildcards or a trailing dot, got ${JSON.stringify(prefix)}`;
}

export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/**
 * Checks what the service needs of the server it reached: JetStream (else `JetStreamMissingError`),
 * and logs the server's version, warning when it cannot be made to fsync every write.
 */
export async function checkServer(nc: NatsConnection, logger: Logger): Promise<void> {
  const version = nc.info?.version ?? "unknown";
  const server = nc.getServer();
  try {
    await jetstreamManager(nc);
  } catch (error) {
    // nats.js does not export the class of this error, only its name.
    if (error instanceof Error && error.name === "JetStreamNotEnabled") throw new JetStreamMissingError(server, error);
    throw error;
  }
  logger.info({ server, server_version: version }, `connected to nats-server ${version} at ${server}`);
  if (!versionAtLeast(version, 2, 10)) {
    logger.warn(
      { server_version: version },
      `nats-server ${version} cannot fsync every write (sync_interval: always needs 2.10+): events the stream acknowledged can be lost if the NATS host loses power within its sync interval (2 min by default); see docs/operations.md`,
    );
  }
}

function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split(".").map((part) => Number.parseInt(part, 10));
  return a > major || (a === major && b >= minor);
}

const listedServers = (options: NatsOptions): string[] =>
  typeof options.servers === "string" ? [options.servers] : [...(options.servers ?? [DEFAULT_NATS_URL])];

/**
 * A server URL without the `user:pass@` some people write into it (nats.js 3 ignores it there):
 * the URL to dial and to show, and the credentials it carried.
 */
function splitCredentials(server: string): { readonly url: string; readonly user?: string; readonly pass?: string } {
  const at = server.lastIndexOf("@");
  const scheme = server.indexOf("://");
  if (at === -1 || at < scheme) return { url: server };
  const start = scheme === -1 ? 0 : scheme + 3;
  const [user = "", ...rest] = server.slice(start, at).split(":");
  const url = `${server.slice(0, start)}${server.slice(at + 1)}`;
  return {
    url,
    ...(user === "" ? {} : { user: decodeURIComponent(user) }),
    ...(rest.length === 0 ? {} : { pass: decodeURIComponent(rest.join(":")) }),
  };
}

/** The server URLs as they may be shown: without credentials. */
export const serversOf = (options: NatsOptions): string[] => listedServers(options).map((s) => splitCredentials(s).url);

/**
 * Connects, or rejects with `NatsConnectError` (`NatsOptionsError` for a bad `inboxPrefix`). Once
 * connected it reconnects forever: nats.js gives up after 10 attempts unless told otherwise, and
 * this service must outlive any outage.
 */
export async function connectNats(options: NatsOptions): Promise<NatsConnection> {
  const servers = serversOf(options);
  const inboxProblem = options.inboxPrefix === undefined ? null : inboxPrefixProblem(options.inboxPrefix);
  if (inboxProblem !== null) throw new NatsOptionsError(`inboxPrefix: ${inboxProblem}`);
  // Credentials written into a URL are used as if given as `user`/`pass` (explicit ones win).
  const inUrl = listedServers(options)
    .map(splitCredentials)
    .find((s) => s.user !== undefined);
  const user = options.user ?? inUrl?.user;
  const pass = options.user === undefined ? inUrl?.pass : options.pass;
  const connectionOptions: ConnectionOptions = {
    servers,
    name: options.name ?? "stui",
    maxReconnectAttempts: -1,
    reconnectTimeWait: options.reconnectTimeWaitMs ?? 250,
    timeout: options.connectTimeoutMs ?? 5000,
    ...(user === undefined ? {} : { user, pass: pass ?? "" }),
    ...(options.token === undefined ? {} : { token: options.token }),
    ...(options.tls === undefined || options.tls === null ? {} : { tls: { ...options.tls } }),
    ...(options.inboxPrefix === undefined ? {} : { inboxPrefix: options.inboxPrefix }),
  };
  try {
    const authenticator = await authenticatorOf(options);
    if (authenticator !== null) connectionOptions.authenticator = authenticator;
    return await connect(connectionOptions);
  } catch (error) {
    throw new NatsConnectError(servers, error);
  }
}

async function authenticatorOf(options: NatsOptions): Promise<Authenticator | null> {
  if (options.credsFile !== undefined) return credsAuthenticator(await readFile(options.credsFile));
  if (options.nkeySeed !== undefined) return nkeyAuthenticator(new TextEncoder().encode(options.nkeySeed));
  return null;
}

const REDACTED = "[redacted]";

/** The options as they may be logged: passwords, tokens and seeds replaced, URLs without credentials. */
export function redactNatsOptions(options: NatsOptions): Record<string, unknown> {
  return {
    ...options,
    servers: serversOf(options),
    ...(options.pass === undefined ? {} : { pass: REDACTED }),
    ...(options.token === undefined ? {} : { token: REDACTED }),
    ...(options.nkeySeed === undefined ? {} : { nkeySeed: REDACTED }),
  };
}

/**
 * Follows the connection's status: `Connected`, `Reconnecting` while an outage lasts, and
 * `Disconnected` once closed. Listeners hear every change.
 */
export class NatsLink {
  private current: ConnectionStatus = "Connected";
  private readonly listeners = new Set<(status: ConnectionStatus) => void>();

  constructor(
    readonly nc: NatsConnection,
    private readonly logger: Logger,
  ) {
    void this.follow();
    void nc.closed().then((error) => {
      if (error !== undefined) logger.error({ err: error }, "NATS connection closed on an error");
      this.set("Disconnected");
    });
  }

  get status(): ConnectionStatus {
    return this.current;
  }

  /** The server currently connected to, `null` while none is. */
  get server(): string | null {
    return this.current === "Connected" ? this.nc.getServer() : null;
  }

  onChange(listener: (status: ConnectionStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async follow(): Promise<void> {
    for await (const s of this.nc.status()) {
      switch (s.type) {
        case "disconnect":
          this.logger.warn({ server: s.server }, "NATS link lost; reconnecting");
          this.set("Reconnecting");
          break;
        case "reconnect":
          this.logger.info({ server: s.server }, "NATS link back");
          this.set("Connected");
          break;
        case "error": {
          // The server's words (e.g. a permissions violation) say it all; nats.js's stack does not.
          const error = s.error instanceof Error ? s.error.message : String(s.error);
          this.logger.warn({ error }, `NATS connection error: ${error}`);
          break;
        }
        default:
          break;
      }
    }
  }

  private set(status: ConnectionStatus): void {
    if (status === this.current) return;
    this.current = status;
    for (const listener of this.listeners) listener(status);
  }
}
