/**
 * The client commands about images and instances: `stui image connect | disconnect | retry`,
 * `stui health`, `stui stats`, `stui instances`.
 */
import type { ImageConnectionStatus } from "../protocol/index.js";
import { dash, EXIT, required, runClientCommand, show, str, UsageError } from "./client-run.js";
import { runGroup } from "./group.js";
import { table } from "./table.js";

const statusLine = (i: ImageConnectionStatus): string =>
  `${i.image_id}: ${i.status} (${i.connection_health}) at ${i.address}` +
  `; sessions ${i.active_sessions} active / ${i.orphaned_sessions} orphaned / ${i.session_count} total`;

const connect = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage:
      "usage: stui image connect --image ID --address tcp://HOST:PORT [--name N] [--json]\n\n" +
      "Adds an image and connects to it; answers once it is Connected or its first attempt failed.",
    options: { image: { type: "string" }, address: { type: "string" }, name: { type: "string" } },
    run: async ({ client, values, json }) =>
      show(
        await client.connectImage({
          image_id: required(values, "image"),
          address: required(values, "address"),
          name: str(values, "name") ?? null,
        }),
        json,
        statusLine,
      ),
  });

const disconnect = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage:
      "usage: stui image disconnect --image ID [--json]\n\n" +
      "Closes the connection and removes the image; its sessions become orphaned.",
    options: { image: { type: "string" } },
    run: async ({ client, values, json }) =>
      show(
        await client.disconnectImage({ image_id: required(values, "image") }),
        json,
        (r) => `${r.image_id}: disconnected`,
      ),
  });

const retry = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage:
      "usage: stui image retry (--image ID | --all) [--json]\n\n" +
      "Tries the image's link now, as a network change does: a Connected image is probed at once, a\n" +
      "Reconnecting one attempts now with its backoff reset, a Failed one starts over. --all: every image.",
    options: { image: { type: "string" }, all: { type: "boolean" } },
    check: (values) => {
      if ((str(values, "image") === undefined) === (values["all"] !== true))
        throw new UsageError("give --image ID or --all");
    },
    run: async ({ client, values, json }) => {
      const one = str(values, "image");
      if (one !== undefined) return show(await client.retryImage({ image_id: one }), json, statusLine);
      const listed = await client.listImages();
      if (listed.type === "Error") return show(listed, json, () => "");
      const answers = await Promise.all(listed.images.map((i) => client.retryImage({ image_id: i.image_id })));
      if (json) console.log(JSON.stringify(answers, null, 2));
      else for (const a of answers) console.log(a.type === "Error" ? `error: ${a.code}: ${a.message}` : statusLine(a));
      return answers.some((a) => a.type === "Error") ? EXIT.answeredError : EXIT.done;
    },
  });

export const image = (argv: string[]): Promise<number> =>
  runGroup(argv, "image", {
    connect: { summary: "add and connect an image: --image ID --address tcp://... [--name N]", run: connect },
    disconnect: { summary: "disconnect and remove an image: --image ID", run: disconnect },
    retry: {
      summary: "try an image's link now (probe, or retry with the backoff reset): --image ID | --all",
      run: retry,
    },
  });

export const health = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage: "usage: stui health [--json]\n\nThe connection health summary: images by status and health, the NATS link.",
    run: async ({ client, json }) =>
      show(await client.getConnectionHealthSummary(), json, (r) => {
        const counts = (record: Readonly<Record<string, number>>): string =>
          Object.entries(record)
            .filter(([, n]) => n > 0)
            .map(([k, n]) => `${n} ${k}`)
            .join(", ") || "none";
        const store = r.store.writable
          ? "store: writable"
          : `store: NOT WRITABLE since ${r.store.degraded_since ?? "?"} (${r.store.reason ?? "unknown"}): writes are refused`;
        const nats =
          r.nats === null
            ? "nats: (service runs without NATS)"
            : `nats: ${r.nats.status}${r.nats.server === null ? "" : ` to ${r.nats.server}`}, ` +
              `${r.nats.buffered_events} event(s) buffered, ${r.nats.dropped_events} dropped`;
        const rows = r.images.map((i) => [
          i.image_id,
          i.status,
          i.connection_health,
          i.rtt_ms === null ? "-" : i.rtt_ms.toFixed(1),
        ]);
        return [
          `images: ${r.total_images} (${counts(r.by_status)})`,
          `health: ${counts(r.by_health)}`,
          nats,
          store,
          "",
          table(["IMAGE", "STATUS", "HEALTH", "RTT ms"], rows),
        ].join("\n");
      }),
  });

export const stats = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage: "usage: stui stats --image ID [--json]\n\nThe image's session figures.",
    options: { image: { type: "string" } },
    run: async ({ client, values, json }) =>
      show(
        await client.getImageSessionStats({ image_id: required(values, "image") }),
        json,
        (r) =>
          `${r.image_id}: ${r.total_sessions} session(s): ${r.active_sessions} active, ` +
          `${r.orphaned_sessions} orphaned; last activity ${dash(r.last_activity)}`,
      ),
  });

export const instances = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage:
      "usage: stui instances [--json]\n\n" +
      "The live stui serve instances on this NATS: id, version, start, requests, and the images each\n" +
      "owns with when its lease on each lapses unless renewed (shared images).",
    run: async ({ client, json }) => {
      const [live, listed] = await Promise.all([client.instances(), client.listImages()]);
      const images = listed.type === "Images" ? listed.images : [];
      const owned = live.map((i) => ({
        ...i,
        images: images
          .filter((image) => image.owner === i.instance_id)
          .map((image) => ({ image_id: image.image_id, lease_expires_at: image.lease_expires_at })),
      }));
      if (json) {
        console.log(JSON.stringify(owned, null, 2));
        return EXIT.done;
      }
      if (live.length === 0) {
        console.log("no stui instance answers on this NATS");
        return EXIT.done;
      }
      const rows = owned.map((i) => [
        i.instance_id,
        i.version,
        dash(i.started),
        String(i.requests ?? "-"),
        i.images.length === 0 ? "-" : i.images.map((image) => image.image_id).join(" "),
      ]);
      console.log(table(["INSTANCE", "VERSION", "STARTED", "REQUESTS", "IMAGES"], rows));
      const leases = owned.flatMap((i) =>
        i.images.flatMap((image) =>
          image.lease_expires_at === null ? [] : [[image.image_id, i.instance_id, image.lease_expires_at]],
        ),
      );
      if (leases.length > 0) console.log(`\n${table(["IMAGE", "OWNER", "LEASE EXPIRES"], leases)}`);
      const unowned = images.filter((image) => image.owner === null).map((image) => image.image_id);
      if (unowned.length > 0) console.log(`\nnot owned right now: ${unowned.join(" ")}`);
      return EXIT.done;
    },
  });
