/**
 * NATS authentication against a real nats-server that requires it. Each method the service offers
 * (user and password, token, nkey seed, creds file; TLS with a CA file) is passed through to
 * nats.js: the service starts, answers a client using the same credentials, and reconnects with
 * them after a server restart; a wrong or missing secret is refused with a `NatsConnectError` that
 * names the server. No secret ever reaches the log or an error message.
 */
import { execFile, spawnSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { inspect, promisify } from "node:util";
// Not a direct dependency: installed with @nats-io/transport-node, which signs with it.
import { createAccount, createOperator, createUser, NKeysError, type KeyPair } from "@nats-io/nkeys";
import { AuthorizationError } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FileSessionStore } from "../src/adapters/file-store/store.js";
import type { NatsOptions } from "../src/actors/nats-link.js";
import { NatsConnectError } from "../src/errors.js";
import type { Logger } from "../src/logger.js";
import { apiSubject } from "../src/protocol/index.js";
import { StuiService } from "../src/service.js";
import { cleanupManagers, makeStoreDir } from "./helpers/manager.js";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { stopAllProcesses } from "./helpers/processes.js";
import { startService, stopServices, type ServiceHarness } from "./helpers/service.js";

// Each test starts its own server, with the flags its method needs; all are stopped after it.
const servers: NatsServerHandle[] = [];
async function natsServer(extraArgs: readonly string[]): Promise<NatsServerHandle> {
  const server = await startNatsServer({ extraArgs });
  servers.push(server);
  return server;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "stui-auth-"));
});
afterEach(async () => {
  await stopServices();
  await cleanupManagers();
  await stopAllProcesses();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Distinctive, so that finding it anywhere in a log is never a coincidence. */
const secret = (): string => `s3cr3t-${randomUUID()}`;
const seedOf = (pair: KeyPair): string => new TextDecoder().decode(pair.getSeed());

type ErrorClass = new (...args: never[]) => Error;

interface Setup {
  /** The flags that make the server require the method. */
  readonly serverArgs: string[];
  /** The credentials that are let in. */
  readonly good: Partial<NatsOptions>;
  /** Credentials that are not, each with the error nats.js gives for them. */
  readonly wrong: readonly { readonly credentials: Partial<NatsOptions>; readonly cause: ErrorClass }[];
}

interface Method {
  readonly name: string;
  /** Writes the files the method needs (into a fresh directory) and says how to use it. */
  readonly setUp: (into: string) => Promise<Setup>;
  /** Everything that must never be logged. */
  readonly secrets: readonly string[];
}

function userPassword(): Method {
  const pass = secret();
  const other = secret();
  return {
    name: "user and password",
    setUp: () =>
      Promise.resolve({
        serverArgs: ["--user", "stui", "--pass", pass],
        good: { user: "stui", pass },
        wrong: [
          { credentials: { user: "stui", pass: other }, cause: AuthorizationError },
          { credentials: { user: "someone", pass }, cause: AuthorizationError },
          { credentials: {}, cause: AuthorizationError },
        ],
      }),
    secrets: [pass, other],
  };
}

function token(): Method {
  const good = secret();
  const other = secret();
  return {
    name: "token",
    setUp: () =>
      Promise.resolve({
        serverArgs: ["--auth", good],
        good: { token: good },
        wrong: [
          { credentials: { token: other }, cause: AuthorizationError },
          { credentials: {}, cause: AuthorizationError },
        ],
      }),
    secrets: [good, other],
  };
}

function nkey(): Method {
  const user = createUser();
  const stranger = createUser();
  const malformed = `SU${secret()}`;
  return {
    name: "nkey seed",
    setUp: async (into) => {
      const config = path.join(into, "nkey.conf");
      await writeFile(config, `authorization { users = [ { nkey: ${user.getPublicKey()} } ] }\n`);
      return {
        serverArgs: ["-c", config],
        good: { nkeySeed: seedOf(user) },
        wrong: [
          // A valid seed whose public key the server does not know.
          { credentials: { nkeySeed: seedOf(stranger) }, cause: AuthorizationError },
          // Not a seed at all: nats.js refuses it before connecting; it is still a secret.
          { credentials: { nkeySeed: malformed }, cause: NKeysError },
          { credentials: {}, cause: AuthorizationError },
        ],
      };
    },
    secrets: [seedOf(user), seedOf(stranger), malformed],
  };
}

/**
 * A decentralized-auth server (operator, system account, one account with JetStream, all JWTs
 * preloaded) and a creds file for one user of it. The JWTs are signed here with nkeys, as
 * `nsc` would: header and claims in base64url, an ed25519 signature by the issuer.
 */
function credsFile(): Method {
  const operator = createOperator();
  const system = createAccount();
  const account = createAccount();
  const user = createUser();
  // A user of an account the server has never heard of.
  const strangerAccount = createAccount();
  const stranger = createUser();
  const userJwt = signJwt(account, user.getPublicKey(), { type: "user", pub: {}, sub: {}, ...UNLIMITED_USER });
  const strangerJwt = signJwt(strangerAccount, stranger.getPublicKey(), { type: "user", ...UNLIMITED_USER });
  return {
    name: "creds file",
    setUp: async (into) => {
      const accountJwt = (pair: KeyPair, limits: object) =>
        signJwt(operator, pair.getPublicKey(), { type: "account", limits });
      const operatorJwt = signJwt(operator, operator.getPublicKey(), {
        type: "operator",
        system_account: system.getPublicKey(),
      });
      const config = path.join(into, "operator.conf");
      await writeFile(
        config,
        [
          `operator: ${operatorJwt}`,
          `system_account: ${system.getPublicKey()}`,
          "resolver: MEMORY",
          "resolver_preload: {",
          `  ${system.getPublicKey()}: ${accountJwt(system, UNLIMITED_ACCOUNT)}`,
          `  ${account.getPublicKey()}: ${accountJwt(account, { ...UNLIMITED_ACCOUNT, ...UNLIMITED_JETSTREAM })}`,
          "}",
          "",
        ].join("\n"),
      );
      const good = path.join(into, "user.creds");
      const wrong = path.join(into, "stranger.creds");
      await writeFile(good, credsText(userJwt, user), { mode: 0o600 });
      await writeFile(wrong, credsText(strangerJwt, stranger), { mode: 0o600 });
      return {
        serverArgs: ["-c", config],
        good: { credsFile: good },
        wrong: [
          { credentials: { credsFile: wrong }, cause: AuthorizationError },
          { credentials: {}, cause: AuthorizationError },
        ],
      };
    },
    secrets: [seedOf(user), userJwt, seedOf(stranger), strangerJwt],
  };
}

const UNLIMITED_USER = { subs: -1, data: -1, payload: -1 };
const UNLIMITED_ACCOUNT = { ...UNLIMITED_USER, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
const UNLIMITED_JETSTREAM = { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 };

function signJwt(issuer: KeyPair, subject: string, nats: Record<string, unknown>): string {
  const base64url = (data: string | Uint8Array): string => Buffer.from(data).toString("base64url");
  const claims = {
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  const jti = createHash("sha512-256").update(JSON.stringify(claims)).digest("base64url");
  const header = { typ: "JWT", alg: "ed25519-nkey" };
  const signed = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify({ jti, ...claims }))}`;
  return `${signed}.${base64url(issuer.sign(new TextEncoder().encode(signed)))}`;
}

const credsText = (jwt: string, user: KeyPair): string =>
  [
    "-----BEGIN NATS USER JWT-----",
    jwt,
    "------END NATS USER JWT------",
    "",
    "-----BEGIN USER NKEY SEED-----",
    seedOf(user),
    "------END USER NKEY SEED------",
    "",
  ].join("\n");

/** Everything an error carries: message, stack, causes and own properties. */
const errorText = (error: unknown): string => inspect(error, { depth: 10, showHidden: true });

/** `StuiService.start` with its log recorded; a service that starts is stopped again at once. */
async function tryStart(options: NatsOptions): Promise<{ error: unknown; log: string }> {
  const logged: { level: string; msg: string; obj: object }[] = [];
  const logger: Logger = {
    error: (obj, msg) => logged.push({ level: "error", msg, obj }),
    warn: (obj, msg) => logged.push({ level: "warn", msg, obj }),
    info: (obj, msg) => logged.push({ level: "info", msg, obj }),
    debug: (obj, msg) => logged.push({ level: "debug", msg, obj }),
  };
  const store = await FileSessionStore.open({ dir: await makeStoreDir(), logger });
  let error: unknown;
  try {
    const service = await StuiService.start({ instanceId: "auth", nats: options, store, images: [], logger });
    await service.stop(1000);
  } catch (caught) {
    error = caught;
  } finally {
    await store.close();
  }
  return { error, log: logged.map((e) => `${e.level} ${e.msg} ${errorText(e.obj)}`).join("\n") };
}

/** `StuiService.start` with options that must be refused: its error, and the log. */
async function refusedStart(options: NatsOptions): Promise<{ error: Error; log: string }> {
  const { error, log } = await tryStart(options);
  if (!(error instanceof Error)) throw new Error(`StuiService.start did not reject with an error: ${String(error)}`);
  return { error, log };
}

/** Fails with the lines of each text (the log, an error) that hold a secret. */
function expectNoSecrets(texts: Record<string, string>, secrets: readonly string[]): void {
  const found = Object.fromEntries(
    Object.entries(texts).map(([where, text]) => [
      where,
      text
        .split("\n")
        .filter((line) => secrets.some((s) => line.includes(s)))
        .map((line) => line.trim().slice(0, 300)),
    ]),
  );
  expect(found, "secrets found").toEqual(Object.fromEntries(Object.keys(texts).map((where) => [where, []])));
}

async function expectServing(h: ServiceHarness): Promise<void> {
  expect(await h.client.listImages()).toEqual({ type: "Images", images: [] });
}

describe.each([userPassword(), token(), nkey(), credsFile()])("NATS auth - $name", (method) => {
  let setup: Setup;
  beforeEach(async () => {
    setup = await method.setUp(await mkdtemp(path.join(dir, "method-")));
  });

  it("the service starts with it, answers a client using it, and keeps it across a server restart, never logging it", async () => {
    const nats = await natsServer(setup.serverArgs);
    const h = await startService({ nats: { servers: nats.url, ...setup.good } });
    await expectServing(h);

    const statuses: string[] = [];
    h.service.link.onChange((status) => statuses.push(status));
    await nats.restart();
    await expect.poll(() => statuses, { timeout: 10_000 }).toEqual(["Reconnecting", "Connected"]);
    // A request sent while the client is still reconnecting is lost, so each try waits briefly.
    const listImages = () => h.client.nc.request(apiSubject("ListImages"), "", { timeout: 1000 });
    await expect.poll(() => listImages().then(() => "answered", errorText), { timeout: 10_000 }).toBe("answered");
    await expectServing(h);
    await h.stop();

    expect(h.logText()).toContain(nats.url);
    expectNoSecrets({ log: h.logText() }, method.secrets);
  });

  it("a wrong or missing secret makes StuiService.start reject with a NatsConnectError naming the server and no secret", async () => {
    const nats = await natsServer(setup.serverArgs);
    for (const { credentials, cause } of setup.wrong) {
      const { error, log } = await refusedStart({ servers: nats.url, ...credentials });
      expect(error).toBeInstanceOf(NatsConnectError);
      expect(error.message).toContain(nats.url);
      expect(error.cause).toBeInstanceOf(cause);
      expectNoSecrets({ error: errorText(error), log }, method.secrets);
    }
  });
});

describe("NATS auth - credentials in a server URL", () => {
  // nats.js 3 does not take credentials from a URL, so the start is refused; but people write
  // them there, and whatever the outcome the password must not show.
  it("a password written into the server URL is never logged or put in an error message", async () => {
    const pass = secret();
    const nats = await natsServer(["--user", "stui", "--pass", pass]);
    const { error, log } = await tryStart({ servers: `nats://stui:${pass}@127.0.0.1:${nats.port}` });
    expectNoSecrets({ error: errorText(error), log }, [pass]);
  });
});

const run = promisify(execFile);

interface Certificates {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** A CA, and a certificate for 127.0.0.1 signed by it, made with openssl. */
async function makeCertificates(into: string): Promise<Certificates> {
  await mkdir(into, { recursive: true });
  const openssl = (args: string) => run("openssl", args.split(" "), { cwd: into });
  const ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1";
  const ca = "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign";
  await openssl(`req -x509 ${ec} ${ca} -subj /CN=stui-test-CA -keyout ca-key.pem -out ca.pem`);
  await openssl(`req ${ec} -subj /CN=127.0.0.1 -keyout server-key.pem -out server.csr`);
  await writeFile(path.join(into, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await openssl(
    "x509 -req -days 1 -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -extfile server.ext -out server.pem",
  );
  const file = (name: string): string => path.join(into, name);
  return { ca: file("ca.pem"), cert: file("server.pem"), key: file("server-key.pem") };
}

const hasOpenssl = spawnSync("openssl", ["version"]).status === 0;

// Node cannot make a certificate by itself; a machine without openssl skips these.
describe.skipIf(!hasOpenssl)("NATS auth - TLS", () => {
  let certs: Certificates;
  let nats: NatsServerHandle;
  let pass: string;
  beforeAll(async () => {
    certs = await makeCertificates(path.join(dir, "tls"));
  });
  beforeEach(async () => {
    pass = secret();
    const tls = ["--tls", "--tlscert", certs.cert, "--tlskey", certs.key];
    nats = await natsServer([...tls, "--user", "stui", "--pass", pass]);
  });

  it("the service connects with tls.caFile and a password, and answers a client doing the same, never logging the password", async () => {
    const h = await startService({ nats: { servers: nats.url, tls: { caFile: certs.ca }, user: "stui", pass } });
    await expectServing(h);
    await h.stop();
    expect(h.logText()).toContain(certs.ca);
    expectNoSecrets({ log: h.logText() }, [pass]);
  });

  it("without the CA the server is not trusted: StuiService.start rejects with a NatsConnectError naming the server", async () => {
    const { error, log } = await refusedStart({ servers: nats.url, user: "stui", pass });
    expect(error).toBeInstanceOf(NatsConnectError);
    expect(error.message).toContain(nats.url);
    expect(error.message).toMatch(/certificate/);
    expectNoSecrets({ error: errorText(error), log }, [pass]);
  });
});
