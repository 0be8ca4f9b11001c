/**
 * CURVE on image links, with real key files, real `stui image-sim` processes serving CURVE and the
 * connection actor's real DEALER: the right keys connect and evaluate; a wrong image key, a
 * client key the image refuses, a plaintext image where CURVE is configured and a CURVE image
 * where none is each end in `Failed` with `AuthFailed` within a second, and nothing retries
 * until asked. Also the key files themselves: written 0600, never overwritten, looser modes and
 * broken contents refused with what is wrong and no key in the message.
 */
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startImageConnection, waitForStatus, type ImageConnection } from "../src/actors/image-connection.js";
import {
  CurveClient,
  generateKeyPair,
  KeyFileError,
  publicKeyOf,
  readKeyFile,
  writeKeyFile,
  type CurveKeyPair,
} from "../src/curve.js";
import { systemClock } from "../src/clock.js";
import type { ImageStatusChanged } from "../src/protocol/index.js";
import { cleanupFaults, isRoot, mountTmpfs } from "./helpers/faults.js";
import { startImageSim, type ImageSimHandle } from "./helpers/image-sim.js";
import { TEST_CONNECTION } from "./helpers/manager.js";
import { runStui } from "./helpers/cli.js";
import { stopAllProcesses } from "./helpers/processes.js";

let dir = "";
let imageKeys: CurveKeyPair;
let serviceKeys: CurveKeyPair;
const imageKeyFile = (): string => path.join(dir, "image.json");
const serviceKeyFile = (): string => path.join(dir, "service.json");

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "stui-curve-"));
  imageKeys = generateKeyPair();
  serviceKeys = generateKeyPair();
  await writeKeyFile(imageKeyFile(), imageKeys);
  await writeKeyFile(serviceKeyFile(), serviceKeys);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const connections: ImageConnection[] = [];
afterEach(async () => {
  for (const c of connections.splice(0)) c.stop();
  await stopAllProcesses();
  await cleanupFaults();
});

function connect(address: string, curve: CurveClient | null) {
  const conn = startImageConnection({ imageId: "secure", address, policy: TEST_CONNECTION, curve });
  connections.push(conn);
  const changes: ImageStatusChanged[] = [];
  conn.actor.on("status", ({ data }) => changes.push(data));
  return { conn, changes, started: systemClock.monotonic() };
}

const client = (serverKey = imageKeys.public_key, pair = serviceKeys): CurveClient =>
  new CurveClient(serverKey, pair, serviceKeyFile());

const curveSim = (extra: readonly string[] = []): Promise<ImageSimHandle> =>
  startImageSim({ peerLog: true, extraArgs: ["--curve-secret-key", imageKeyFile(), ...extra] });

/** Reaches `Failed` with `AuthFailed` within a second of starting, and stays there without reconnecting. */
async function expectAuthFailed(
  { conn, changes, started }: ReturnType<typeof connect>,
  sim: ImageSimHandle,
  reason: RegExp,
): Promise<void> {
  const failedAt = await waitForStatus(conn.actor, "Failed", 5000);
  expect(failedAt - started).toBeLessThan(1000);
  expect(conn.status()).toMatchObject({ status: "Failed", failure: "AuthFailed" });
  const failed = changes.at(-1);
  expect(failed).toMatchObject({ status: "Failed", failure: "AuthFailed" });
  expect(failed?.reason).toMatch(/^AuthFailed: /);
  expect(failed?.reason).toMatch(reason);
  // Straight to Failed: no Reconnecting on the way, no attempts afterwards.
  expect(changes.map((c) => `${c.status} ${c.reason}`)).toEqual([`Failed ${failed?.reason}`]);
  // At most the two handshakes it took to tell, however long it is left (a loop would retry
  // every 100 ms).
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect(sim.peerLog().filter((e) => e.event === "accepted").length).toBeLessThanOrEqual(2);
  expect(conn.status().status).toBe("Failed");
  for (const change of changes) {
    expect(JSON.stringify(change)).not.toContain(serviceKeys.secret_key);
  }
}

describe("image links over CURVE - real sockets", () => {
  it("connects with the image's pinned key and this service's pair, and evaluates", async () => {
    const sim = await curveSim([`--curve-client-key=${serviceKeys.public_key}`]);
    const { conn } = connect(sim.endpoint, client());
    await waitForStatus(conn.actor, "Connected", 15_000);
    expect(await conn.request("evaluate", { code: "3 + 4" })).toMatchObject({ result: "7" });
    expect(conn.status().failure).toBeNull();
    // What is shown of the keys: the public parts only.
    expect(JSON.stringify(client())).not.toContain(serviceKeys.secret_key);
    expect(JSON.parse(JSON.stringify(client()))).toEqual({
      server_public_key: imageKeys.public_key,
      public_key: serviceKeys.public_key,
      client_key_file: serviceKeyFile(),
    });
  });

  it("a wrong image key: AuthFailed within a second, no reconnect loop", async () => {
    const sim = await curveSim();
    const other = generateKeyPair();
    await expectAuthFailed(connect(sim.endpoint, client(other.public_key)), sim, /server_public_key/);
  });

  it("a client key the image does not let in: AuthFailed (ZAP 400)", async () => {
    const sim = await curveSim([`--curve-client-key=${generateKeyPair().public_key}`]);
    await expectAuthFailed(connect(sim.endpoint, client()), sim, /refused this service's CURVE key \(ZAP status 400\)/);
  });

  it("a plaintext image where CURVE is configured: AuthFailed", async () => {
    const sim = await startImageSim({ peerLog: true });
    await expectAuthFailed(connect(sim.endpoint, client()), sim, /does not speak CURVE/);
  });

  it("a CURVE image and no key configured here: AuthFailed", async () => {
    const sim = await curveSim();
    await expectAuthFailed(connect(sim.endpoint, null), sim, /none is configured/);
  });

  it("RETRY from AuthFailed tries once more, and fails the same way without looping", async () => {
    const sim = await curveSim();
    const attempt = connect(sim.endpoint, client(generateKeyPair().public_key));
    await waitForStatus(attempt.conn.actor, "Failed", 5000);
    attempt.conn.actor.send({ type: "RETRY" });
    await expect.poll(() => attempt.changes.map((c) => c.status)).toEqual(["Failed", "Reconnecting", "Failed"]);
    expect(attempt.conn.status().failure).toBe("AuthFailed");
  });
});

describe("CURVE key files", () => {
  it("are written 0600, read back, and never overwritten", async () => {
    expect((await stat(serviceKeyFile())).mode & 0o777).toBe(0o600);
    expect(await readKeyFile(serviceKeyFile())).toEqual(serviceKeys);
    expect(publicKeyOf(serviceKeys.secret_key)).toBe(serviceKeys.public_key);
    await expect(writeKeyFile(serviceKeyFile(), generateKeyPair())).rejects.toThrow(
      /exists: a key file is never overwritten/,
    );
    expect(await readKeyFile(serviceKeyFile())).toEqual(serviceKeys);
  });

  it("refuses a looser mode, a mismatched pair and broken contents, naming the file and never a key", async () => {
    const file = path.join(dir, "loose.json");
    await writeFile(file, JSON.stringify(serviceKeys), { mode: 0o644 });
    await chmod(file, 0o644);
    const problems: string[] = [];
    const refused = async (): Promise<string> => {
      const error: unknown = await readKeyFile(file).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyFileError);
      const message = (error as KeyFileError).message;
      problems.push(message);
      return message;
    };
    expect(await refused()).toBe(
      `key file ${file} has mode 0644: others than its owner may read it; refused (chmod 600 ${file})`,
    );
    await chmod(file, 0o600);
    await writeFile(file, JSON.stringify({ ...serviceKeys, public_key: imageKeys.public_key }));
    expect(await refused()).toContain("public_key is not the public key of secret_key");
    await writeFile(file, JSON.stringify({ public_key: serviceKeys.public_key, secret_key: "short" }));
    expect(await refused()).toContain("secret_key: expected a CURVE key: 40 characters of Z85");
    await writeFile(file, "{not json");
    expect(await refused()).toContain("is not JSON");
    await rm(file);
    expect(await refused()).toBe(`key file ${file} does not exist`);
    for (const message of problems) {
      expect(message).not.toContain(serviceKeys.secret_key);
      expect(message).not.toContain(imageKeys.secret_key);
    }
  });

  it.skipIf(!isRoot())("on a full disk (a tmpfs): refused, and no half-written key file is left", async () => {
    const mount = await mountTmpfs(64);
    await writeFile(path.join(mount, "filler"), Buffer.alloc(1024 * 1024)).catch(() => undefined);
    const file = path.join(mount, "key.json");
    await expect(writeKeyFile(file, generateKeyPair())).rejects.toThrow(`cannot write ${file}: ENOSPC`);
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
  });

  it("stui image-sim takes a client key that starts with a dash, given with =", async () => {
    const dashed = `-${"a".repeat(39)}`;
    const sim = await curveSim([`--curve-client-key=${dashed}`]);
    expect(sim.endpoint).toMatch(/^tcp:/);
  });

  it("stui keygen writes a pair, prints its public key, refuses to overwrite", async () => {
    const out = path.join(dir, "keygen.json");
    const made = await runStui(["keygen", "--out", out]);
    expect(made.code).toBe(0);
    const pair = JSON.parse(await readFile(out, "utf8")) as CurveKeyPair;
    expect(made.stdout.trim()).toBe(pair.public_key);
    expect(made.stdout).not.toContain(pair.secret_key);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    const again = await runStui(["keygen", "--out", out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("exists: a key file is never overwritten");
    expect((await runStui(["keygen"])).code).toBe(2);
  });
});
