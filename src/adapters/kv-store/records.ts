/**
 * How the KV store's messages read back: a bucket's last message per key (what `load()` sees) and
 * one message as a session or a context, a removal, or a corrupt record. Decoding never throws: a
 * message that does not decode is a `StoreProblem`, left in place (a stream keeps no "aside").
 */
import { DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import { DecodeError } from "../../protocol/index.js";
import { CorruptRecordError } from "../../errors.js";
import type { StoreProblem, StoredContext, StoredSession } from "../../ports.js";
import { decodeContextRecord, decodeStoredSession } from "../file-store/envelope.js";
import { decodeKey, isRemoval, type Bucket } from "./bucket.js";

export type Decoded<T> =
  | ({ readonly kind: "value" } & T)
  | { readonly kind: "removed"; readonly id: string }
  | { readonly kind: "corrupt"; readonly problem: StoreProblem };

/** Every key's last message in stream order, read with an ordered consumer (`LastPerSubject`). */
export async function readLastPerKey(bucket: Bucket): Promise<JsMsg[]> {
  if ((await bucket.untilAnswered("counting the keys", () => bucket.messageCount())) === 0) return [];
  const messages = await bucket.untilAnswered("reading the keys", async () => {
    const consumer = await bucket.js.consumers.get(bucket.stream, { deliver_policy: DeliverPolicy.LastPerSubject });
    return consumer.consume();
  });
  const found: JsMsg[] = [];
  try {
    for await (const message of messages) {
      found.push(message);
      if (message.info.pending === 0) break;
    }
  } finally {
    await messages.close();
  }
  return found;
}

function corrupt(subject: string, error: Error): { kind: "corrupt"; problem: StoreProblem } {
  return {
    kind: "corrupt",
    problem: { kind: "CorruptRecord", file: subject, movedTo: null, error: new CorruptRecordError(subject, error) },
  };
}

/** The message's id (from its key) and whether it removes the key; an unknown key is corrupt. */
function identify(
  message: JsMsg,
  prefix: string,
): { id: string; removed: boolean } | { kind: "corrupt"; problem: StoreProblem } {
  const id = message.subject.startsWith(prefix) ? decodeKey(message.subject.slice(prefix.length)) : null;
  if (id === null) return corrupt(message.subject, new DecodeError("Invalid", "", "the key is not a base64url id"));
  return { id, removed: isRemoval(message.headers?.get("KV-Operation") || undefined) };
}

export function decodeSessionMessage(message: JsMsg, prefix: string): Decoded<{ readonly stored: StoredSession }> {
  const key = identify(message, prefix);
  if ("kind" in key) return key;
  if (key.removed) return { kind: "removed", id: key.id };
  const decoded = decodeStoredSession(message.data);
  if (!decoded.ok) return corrupt(message.subject, decoded.error);
  if (decoded.value.session.session_id !== key.id) {
    const id = JSON.stringify(decoded.value.session.session_id);
    return corrupt(message.subject, new DecodeError("Invalid", "", `the id ${id} does not match the key`));
  }
  // The stream sequence is the revision (the envelope's own equals it when this store wrote it).
  return { kind: "value", stored: { ...decoded.value, revision: message.seq } };
}

export function decodeContextMessage(
  message: JsMsg,
  prefix: string,
): Decoded<{ readonly clientId: string; readonly context: StoredContext }> {
  const key = identify(message, prefix);
  if ("kind" in key) return key;
  if (key.removed) return { kind: "removed", id: key.id };
  const decoded = decodeContextRecord(message.data);
  if (!decoded.ok) return corrupt(message.subject, decoded.error);
  if (decoded.value.client_id !== key.id) {
    const id = JSON.stringify(decoded.value.client_id);
    return corrupt(message.subject, new DecodeError("Invalid", "", `the id ${id} does not match the key`));
  }
  return { kind: "value", clientId: key.id, context: { imageId: decoded.value.image_id, revision: message.seq } };
}
