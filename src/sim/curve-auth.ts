/**
 * The simulated image's CURVE server: its socket options and, when only some clients are let in,
 * a ZAP handler (ZeroMQ's RFC 27) on `inproc://zeromq.zap.01` that answers each CURVE handshake
 * with 200 for a known client public key and 400 for any other, as a Pharo image's
 * authenticator would. Without a list of clients every CURVE client is let in: the link is still
 * encrypted, and only a peer holding the image's secret key can complete the handshake.
 */
import { Router } from "zeromq";
import { z85Encode, type CurveKeyPair } from "../curve.js";

export interface CurveServerOptions {
  readonly keys: CurveKeyPair;
  /** The client public keys (Z85) let in; `null`: any. */
  readonly clients: readonly string[] | null;
}

/** The ZAP domain the sim's socket asks its handler about. */
const ZAP_DOMAIN = "stui-image-sim";
const ZAP_ENDPOINT = "inproc://zeromq.zap.01";

/** The ROUTER options of a CURVE server with these keys (and the ZAP domain when clients are checked). */
export function curveServerOptions(options: CurveServerOptions): {
  curveServer: true;
  curvePublicKey: string;
  curveSecretKey: string;
  zapDomain?: string;
} {
  return {
    curveServer: true,
    curvePublicKey: options.keys.public_key,
    curveSecretKey: options.keys.secret_key,
    ...(options.clients === null ? {} : { zapDomain: ZAP_DOMAIN }),
  };
}

/**
 * Starts the ZAP handler for `clients` (one per process: the endpoint is the context's); calls
 * `onRefused` with each refused key. Resolves once bound, before the image's socket accepts
 * anyone; the returned function closes it.
 */
export async function startZapHandler(
  clients: readonly string[],
  onRefused: (publicKey: string) => void,
): Promise<() => void> {
  const allowed = new Set(clients);
  const socket = new Router({ linger: 0 });
  await socket.bind(ZAP_ENDPOINT);
  void (async () => {
    for (;;) {
      let frames: Buffer[];
      try {
        frames = await socket.receive();
      } catch {
        return;
      }
      // routing id, delimiter, version, request id, domain, address, identity, mechanism, credentials...
      const [routing, delimiter, version, requestId, , , , mechanism, key] = frames;
      if (routing === undefined || delimiter === undefined || version === undefined || requestId === undefined)
        continue;
      const publicKey = mechanism?.toString() === "CURVE" && key?.length === 32 ? z85Encode(key) : null;
      const ok = publicKey !== null && allowed.has(publicKey);
      if (!ok) onRefused(publicKey ?? "(not a CURVE key)");
      const reply = ok ? ["200", "OK"] : ["400", "this client's public key is not let in"];
      try {
        await socket.send([routing, delimiter, version, requestId, ...reply, "", ""]);
      } catch {
        return;
      }
    }
  })();
  return () => socket.close();
}
