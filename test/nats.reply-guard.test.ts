/**
 * No confused deputy: a NATS user allowed to publish on nothing but `stui.api.list_images` (and its
 * own inbox) names a reply subject it may not publish on itself, hoping the service answers there
 * with its own permissions. Against a real nats-server with users and permissions, the service
 * answers only to reply subjects under its accepted inbox prefixes, `$SRV.*` included; everything
 * else is not answered, counted and logged, and the event stream keeps every event.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RefusalReason } from "../src/actors/reply-guard.js";
import { refusalOf } from "../src/actors/reply-guard.js";
const EVENT_STREAM = "STUI_EVENTS";
import { startNatsServer, type NatsServerHandle } from "./helpers/nats-server.js";
import { stopAllProcesses } from "./helpers/processes.js";
import { startService, stopServices } from "./helpers/service.js";
import { cleanupManagers } from "./helpers/manager.js";

const USERS = `
authorization {
  users = [
    { user: admin, password: admin }
    { user: guest, password: guest,
      permissions: { publish: ["stui.api.list_images", "_INBOX.>"], subscribe: ["_INBOX.>"] } }
    { user: prober, password: prober,
      permissions: { publish: ["$SRV.>", "_INBOX.>"], subscribe: ["_INBOX.>"] } }
    { user: custom, password: custom,
      permissions: { publish: ["stui.api.list_images"], subscribe: ["_APP_INBOX.>"] } }
  ]
}
`;

/** Where a hostile reply subject would make the service publish, one per protected namespace. */
const HOSTILE_REPLIES = [
  "stui.events.image.dev.status",
  `$JS.API.STREAM.PURGE.${EVENT_STREAM}`,
  "$KV.stui_sessions.s1",
  "$SRV.PING.stui",
  "stui.api.list_images",
  "_INBOX", // the prefix's own token, without an inbox after it
];

let nats: NatsServerHandle;
let dir: string;
const connections: NatsConnection[] = [];

async function as(user: string, options: { inboxPrefix?: string } = {}): Promise<NatsConnection> {
  const nc = await connect({ servers: nats.url, user, pass: user, ...options });
  connections.push(nc);
  return nc;
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "stui-guard-"));
  const config = path.join(dir, "nats.conf");
  await writeFile(config, USERS);
  nats = await startNatsServer({ extraArgs: ["-c", config] });
});
afterEach(async () => {
  await Promise.all(connections.splice(0).map((nc) => nc.close()));
  await stopServices();
  await cleanupManagers();
  await stopAllProcesses();
  await nats.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Every message published on the given subjects while `during` runs, as the admin sees them. */
async function watched(
  admin: NatsConnection,
  subjects: readonly string[],
  during: () => Promise<void>,
): Promise<Msg[]> {
  const seen: Msg[] = [];
  const subs = subjects.map((s) => admin.subscribe(s, { callback: (_e, m) => void seen.push(m) }));
  await admin.flush();
  await during();
  // Anything the service was going to publish in answer has been published by now.
  await new Promise((resolve) => setTimeout(resolve, 300));
  await admin.flush();
  for (const sub of subs) sub.unsubscribe();
  return seen;
}

describe("reply guard", () => {
  it("reply guard - a guest cannot make the service publish on events, JetStream, KV, $SRV or the API", async () => {
    const refused: RefusalReason[] = [];
    const service = await startService({
      nats: { servers: nats.url, user: "admin", pass: "admin" },
      onRefused: (reason) => refused.push(reason),
    });
    const admin = await as("admin");
    const jsm = await jetstreamManager(admin);
    await service.client.switchImageContext({ client_id: "x", to_image_id: "nope" }); // an Error, no event
    const before = (await jsm.streams.info(EVENT_STREAM)).state.messages;
    expect(before).toBeGreaterThan(0); // instance.started at least

    const guest = await as("guest");
    const seen = await watched(admin, HOSTILE_REPLIES, async () => {
      for (const reply of HOSTILE_REPLIES) guest.publish("stui.api.list_images", "{}", { reply });
      await guest.flush();
    });
    // What was published there is the guest's own requests, and no answer of the service's.
    expect(seen.map((m) => `${m.subject} ${m.reply ?? ""}`)).toEqual(
      HOSTILE_REPLIES.map((reply) => `stui.api.list_images ${reply}`),
    );
    expect(refused).toEqual(HOSTILE_REPLIES.map(() => "reply_prefix"));

    // The same guest, asking properly, is answered: the guard refuses the reply, not the user.
    const answer = await guest.request("stui.api.list_images", "{}", { timeout: 5000 });
    expect(answer.json<Record<string, unknown>>()).toHaveProperty("Images");

    const after = await jsm.streams.info(EVENT_STREAM);
    expect(after.state.messages).toBe(before);
    const last = await jsm.streams.getMessage(EVENT_STREAM, { seq: after.state.last_seq });
    expect(last?.json<Record<string, unknown>>()).toHaveProperty("specversion", "1.0");

    // Logged at warn, once however many were refused in a row (rate-limited), with the count.
    const warnings = service.logged.filter((e) => e.level === "warn" && e.msg.startsWith("refused a request"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toContain("_INBOX.");
  });

  it("reply guard - $SRV.PING, INFO and STATS answer only to inboxes", async () => {
    const refused: RefusalReason[] = [];
    await startService({
      nats: { servers: nats.url, user: "admin", pass: "admin" },
      onRefused: (reason) => refused.push(reason),
    });
    const admin = await as("admin");
    const prober = await as("prober");
    const verbs = ["$SRV.PING", "$SRV.INFO", "$SRV.STATS", "$SRV.PING.stui", "$SRV.INFO.stui"];
    const seen = await watched(admin, ["stui.events.>", "$JS.>", "$KV.>"], async () => {
      for (const verb of verbs) prober.publish(verb, "", { reply: `stui.events.image.dev.${verb.length}` });
      prober.publish("$SRV.PING", ""); // no reply subject at all
      await prober.flush();
    });
    expect(seen.filter((m) => m.subject.startsWith("stui.events.image.dev."))).toEqual([]);
    expect(refused.filter((r) => r === "reply_prefix")).toHaveLength(verbs.length);
    expect(refused.filter((r) => r === "no_reply")).toHaveLength(1);
    const ping = await prober.request("$SRV.PING.stui", "", { timeout: 5000 });
    expect(ping.json<Record<string, unknown>>()).toHaveProperty("name", "stui");
  });

  it("reply guard - api.reply_prefixes lets clients with a custom inbox prefix in", async () => {
    const custom = async (): Promise<NatsConnection> => as("custom", { inboxPrefix: "_APP_INBOX" });
    const first = await startService({ nats: { servers: nats.url, user: "admin", pass: "admin" } });
    await expect((await custom()).request("stui.api.list_images", "{}", { timeout: 1000 })).rejects.toThrow();
    await first.stop();
    await startService({
      nats: { servers: nats.url, user: "admin", pass: "admin" },
      replyPrefixes: ["_INBOX.", "_APP_INBOX."],
    });
    const answer = await (await custom()).request("stui.api.list_images", "{}", { timeout: 5000 });
    expect(answer.json<Record<string, unknown>>()).toHaveProperty("Images");
  });

  it("reply guard - a prefix matches only with an inbox token after it", () => {
    expect(refusalOf("_INBOX.abc.1", ["_INBOX."])).toBeNull();
    expect(refusalOf("_INBOX.", ["_INBOX."])).toBe("reply_prefix");
    expect(refusalOf("_INBOXES.x", ["_INBOX."])).toBe("reply_prefix");
    expect(refusalOf(undefined, ["_INBOX."])).toBe("no_reply");
    expect(refusalOf("", ["_INBOX."])).toBe("no_reply");
  });
});
