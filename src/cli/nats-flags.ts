/**
 * How a command reaches NATS: the flags (named as the `nats` CLI names them), the environment
 * variables `stui serve` reads, and credentials written in the URL. One table, one help block and
 * one mapping to `NatsOptions`, so every command logs in the same way.
 *
 * Precedence: a flag over its variable; `STUI_NATS_URL` over `NATS_URL`. Credentials in a URL
 * given by flag win over `STUI_NATS_USER` / `STUI_NATS_PASS` (flags override the environment);
 * `--user` / `--password` win over both.
 */
import { readFileSync } from "node:fs";
import type { ParseArgsConfig } from "node:util";
import {
  DEFAULT_NATS_URL,
  inboxPrefixProblem,
  serversOf,
  type NatsOptions,
  type NatsTlsOptions,
} from "../actors/nats-link.js";

/** The parseArgs options of the NATS connection. */
export const NATS_FLAG_OPTIONS = {
  server: { type: "string", short: "s" },
  "nats-url": { type: "string" },
  user: { type: "string" },
  password: { type: "string" },
  token: { type: "string" },
  "nkey-seed-file": { type: "string" },
  creds: { type: "string" },
  "tls-ca": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "inbox-prefix": { type: "string" },
} as const satisfies ParseArgsConfig["options"];

export const NATS_FLAGS_HELP = `NATS connection (flags override the environment):
  -s, --server URL         NATS server(s), comma-separated; nats://user:pass@host:port logs in
                           (alias --nats-url; env STUI_NATS_URL, NATS_URL; default ${DEFAULT_NATS_URL})
  --user USER              user (env STUI_NATS_USER)
  --password PASS          password (env STUI_NATS_PASS)
  --token TOKEN            token (env STUI_NATS_TOKEN)
  --nkey-seed-file FILE    file holding the user's NKey seed SU... (env STUI_NATS_NKEY_SEED: the seed)
  --creds FILE             JWT credentials file (env STUI_NATS_CREDS_FILE)
  --tls-ca FILE            CA certificate (PEM) that signed the server's
  --tls-cert FILE          client certificate (PEM), with --tls-key
  --tls-key FILE           client key (PEM)
  --inbox-prefix PREFIX    reply inboxes under PREFIX. instead of _INBOX. (env STUI_NATS_INBOX_PREFIX),
                           e.g. _INBOX_alice: see docs/security.md, "One inbox per user"`;

/** What parseArgs gives back; only the keys of `NATS_FLAG_OPTIONS` are read. */
export type FlagValues = Readonly<Record<string, string | boolean | ReadonlyArray<string | boolean> | undefined>>;

/** A flag's file could not be read, or flags contradict each other: a usage mistake. */
export class NatsFlagsError extends Error {
  override readonly name = "NatsFlagsError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

const flag = (values: FlagValues, key: keyof typeof NATS_FLAG_OPTIONS): string | undefined => {
  const value = values[key];
  return typeof value === "string" ? value : undefined;
};

/** An environment variable; empty counts as unset, as `stui serve` reads them. */
const variable = (env: NodeJS.ProcessEnv, name: string): string | undefined => {
  const value = env[name];
  return value === undefined || value === "" ? undefined : value;
};

function readSeed(file: string): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
    throw new NatsFlagsError(`--nkey-seed-file: cannot read ${file} (${reason})`, { cause: error });
  }
}

const splitServers = (text: string): string | string[] => {
  const list = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  return list.length === 1 ? (list[0] ?? text) : list;
};

/** The connection options that flags and environment ask for. Throws `NatsFlagsError`. */
export function natsOptionsFromFlags(values: FlagValues, env: NodeJS.ProcessEnv): NatsOptions {
  const flagUrl = flag(values, "server") ?? flag(values, "nats-url");
  const url = flagUrl ?? variable(env, "STUI_NATS_URL") ?? variable(env, "NATS_URL") ?? DEFAULT_NATS_URL;
  const servers = splitServers(url);
  const urlHasCredentials = flagUrl !== undefined && serversOf({ servers }).join(",") !== [servers].flat().join(",");
  const fromEnv = (name: string): string | undefined => (urlHasCredentials ? undefined : variable(env, name));
  const user = flag(values, "user") ?? fromEnv("STUI_NATS_USER");
  const pass = flag(values, "password") ?? fromEnv("STUI_NATS_PASS");
  const seedFile = flag(values, "nkey-seed-file");
  const nkeySeed = seedFile === undefined ? variable(env, "STUI_NATS_NKEY_SEED") : readSeed(seedFile);
  const tls: NatsTlsOptions = {
    ...optional("caFile", flag(values, "tls-ca")),
    ...optional("certFile", flag(values, "tls-cert")),
    ...optional("keyFile", flag(values, "tls-key")),
  };
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new NatsFlagsError("--tls-cert and --tls-key go together");
  }
  const inboxFlag = flag(values, "inbox-prefix");
  const inboxPrefix = inboxFlag ?? variable(env, "STUI_NATS_INBOX_PREFIX");
  const inboxProblem = inboxPrefix === undefined ? null : inboxPrefixProblem(inboxPrefix);
  if (inboxProblem !== null) {
    throw new NatsFlagsError(
      `${inboxFlag === undefined ? "STUI_NATS_INBOX_PREFIX" : "--inbox-prefix"}: ${inboxProblem}`,
    );
  }
  return {
    servers,
    ...optional("user", user),
    ...optional("pass", pass),
    ...optional("token", flag(values, "token") ?? variable(env, "STUI_NATS_TOKEN")),
    ...optional("nkeySeed", nkeySeed),
    ...optional("credsFile", flag(values, "creds") ?? variable(env, "STUI_NATS_CREDS_FILE")),
    ...(Object.keys(tls).length === 0 ? {} : { tls }),
    ...optional("inboxPrefix", inboxPrefix),
  };
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}
