/**
 * CURVE keys for image links (ZeroMQ's CurveZMQ: Curve25519 keys written in Z85). A key file is
 * JSON `{"public_key": "<z85>", "secret_key": "<z85>"}`, mode 0600: `stui keygen` writes one, the
 * service (its `images[].curve.client_key_file`) and `stui image-sim --curve-secret-key` read one.
 * A file readable by anyone but its owner is refused, and no error, log line or answer ever holds
 * a secret key: `CurveClient` keeps its own in a private field and says only its public parts.
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import { constants } from "node:fs";
import { open, readFile, stat, unlink } from "node:fs/promises";
import { curveKeyPair } from "zeromq";
import { z } from "zod";

const Z85_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
const Z85_INDEX = new Map([...Z85_ALPHABET].map((c, i) => [c, i]));

/** A Curve25519 key in Z85: 40 characters for its 32 bytes. */
export const Z85Key = z.string().refine((s) => s.length === 40 && [...s].every((c) => Z85_INDEX.has(c)), {
  message: "expected a CURVE key: 40 characters of Z85",
});

/** A key pair as a key file holds it. */
export interface CurveKeyPair {
  readonly public_key: string;
  readonly secret_key: string;
}

const KeyFile = z.object({ public_key: Z85Key, secret_key: Z85Key }).strict();

/** A key file that cannot be used: the message names the file and what is wrong, never a key. */
export class KeyFileError extends Error {
  override readonly name = "KeyFileError";
}

/** Decodes 40 Z85 characters into 32 bytes (the input is a valid `Z85Key`). */
function z85Decode(text: string): Buffer {
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let value = 0;
    for (let j = 0; j < 5; j++) value = value * 85 + (Z85_INDEX.get(text[i + j] ?? "") ?? 0);
    out.writeUInt32BE(value >>> 0, (i / 5) * 4);
  }
  return out;
}

/** Encodes bytes (a multiple of 4) in Z85. */
export function z85Encode(bytes: Buffer): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 4) {
    let value = bytes.readUInt32BE(i);
    const chunk: string[] = [];
    for (let j = 0; j < 5; j++) {
      chunk.unshift(Z85_ALPHABET[value % 85] ?? "");
      value = Math.floor(value / 85);
    }
    out += chunk.join("");
  }
  return out;
}

/** The public key that belongs to a secret key (X25519), in Z85. */
export function publicKeyOf(secretKey: string): string {
  const d = z85Decode(secretKey).toString("base64url");
  const x = createPublicKey(createPrivateKey({ key: { kty: "OKP", crv: "X25519", d, x: "" }, format: "jwk" })).export({
    format: "jwk",
  }).x;
  return z85Encode(Buffer.from(x ?? "", "base64url"));
}

/** A new key pair (libsodium's, through libzmq). */
export function generateKeyPair(): CurveKeyPair {
  const { publicKey, secretKey } = curveKeyPair();
  return { public_key: publicKey, secret_key: secretKey };
}

/**
 * Writes a key pair to a new file, mode 0600, and fsyncs it. An existing file is never replaced:
 * a key pair lost by accident cannot be had back.
 */
export async function writeKeyFile(file: string, pair: CurveKeyPair): Promise<void> {
  let handle;
  try {
    handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new KeyFileError(`${file} exists: a key file is never overwritten (remove it first)`);
    throw new KeyFileError(`cannot create ${file}: ${(error as Error).message}`);
  }
  try {
    await handle.chmod(0o600);
    await handle.writeFile(`${JSON.stringify(pair, null, 2)}\n`);
    await handle.sync();
  } catch (error) {
    // Half a key file is no key file: it would only stop the next keygen.
    await handle.close();
    await unlink(file).catch(() => undefined);
    throw new KeyFileError(`cannot write ${file}: ${(error as Error).message}`);
  }
  await handle.close();
}

/**
 * Reads and checks a key file: a regular file, mode 0600 or stricter, the JSON of a key pair
 * whose public key is its secret key's.
 */
export async function readKeyFile(file: string): Promise<CurveKeyPair> {
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new KeyFileError(
      code === "ENOENT" ? `key file ${file} does not exist` : `cannot read key file ${file}: ${code}`,
    );
  }
  if (!info.isFile()) throw new KeyFileError(`key file ${file} is not a regular file`);
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
    throw new KeyFileError(
      `key file ${file} has mode ${mode}: others than its owner may read it; refused (chmod 600 ${file})`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, "utf8"));
  } catch {
    throw new KeyFileError(`key file ${file} is not JSON {"public_key": "<z85>", "secret_key": "<z85>"}`);
  }
  const pair = KeyFile.safeParse(parsed);
  if (!pair.success) {
    const problems = pair.error.issues.map((i) => `${i.path.join(".") || "the file"}: ${i.message}`).join("; ");
    throw new KeyFileError(`key file ${file}: ${problems}`);
  }
  if (publicKeyOf(pair.data.secret_key) !== pair.data.public_key) {
    throw new KeyFileError(`key file ${file}: public_key is not the public key of secret_key`);
  }
  return pair.data;
}

/** The CURVE side of an image link: the image's pinned public key and this service's key pair. */
export class CurveClient {
  readonly #secretKey: string;

  constructor(
    /** The image's public key: a peer without its secret key cannot complete the handshake. */
    readonly serverPublicKey: string,
    pair: CurveKeyPair,
    /** Where the pair was read from, for messages. */
    readonly keyFile: string,
  ) {
    this.publicKey = pair.public_key;
    this.#secretKey = pair.secret_key;
  }

  readonly publicKey: string;

  /** The DEALER socket options of a CURVE client with these keys. */
  socketOptions(): { curveServerKey: string; curvePublicKey: string; curveSecretKey: string } {
    return { curveServerKey: this.serverPublicKey, curvePublicKey: this.publicKey, curveSecretKey: this.#secretKey };
  }

  /** What may be shown of it: the public keys and the file (logs, inspection, answers). */
  toJSON(): { server_public_key: string; public_key: string; client_key_file: string } {
    return { server_public_key: this.serverPublicKey, public_key: this.publicKey, client_key_file: this.keyFile };
  }
}
