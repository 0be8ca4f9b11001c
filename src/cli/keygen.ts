/**
 * `stui keygen --out FILE`: a new CURVE key pair for an image link, written as a key file (mode
 * 0600, never over an existing file); prints the public key, which is all the other side needs.
 */
import { parseArgs } from "node:util";
import { generateKeyPair, KeyFileError, writeKeyFile } from "../curve.js";

const USAGE = `usage: stui keygen --out FILE

Writes a new CURVE key pair to FILE as JSON {"public_key": "<z85>", "secret_key": "<z85>"}, mode
0600 (an existing FILE is never overwritten), and prints its public key.

An image's pair: stui image-sim --curve-secret-key FILE (a Pharo image: its CURVE server key);
the service pins its public key as images[].curve.server_public_key.
The service's pair: images[].curve.client_key_file; an image that lets in only known clients
is given its public key (stui image-sim --curve-client-key=KEY).`;

export async function run(argv: string[]): Promise<number> {
  let out: string;
  try {
    const { values } = parseArgs({
      args: argv,
      options: { out: { type: "string" }, help: { type: "boolean", short: "h", default: false } },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    if (values.out === undefined || values.out === "") throw new TypeError("--out FILE is required");
    out = values.out;
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    console.error(`stui keygen: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  const pair = generateKeyPair();
  try {
    await writeKeyFile(out, pair);
  } catch (error) {
    if (!(error instanceof KeyFileError)) throw error;
    console.error(`stui keygen: ${error.message}`);
    return 1;
  }
  console.log(pair.public_key);
  return 0;
}
