/**
 * The listing and housekeeping client commands: `stui images`, `stui sessions`, `stui switch`,
 * `stui cleanup`. The others: `session-commands.ts`, `image-commands.ts`, `events-command.ts`;
 * what they share: `client-run.ts`.
 */
import { selectCleanup } from "../machines/session-registry.js";
import type { ImageConnectionStatus, SessionMetadata } from "../protocol/index.js";
import { dash, EXIT, required, runClientCommand, show, str, UsageError } from "./client-run.js";
import { table } from "./table.js";

export { describeEvent, events, parseSince } from "./events-command.js";

export const images = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage:
      "usage: stui images [--json]\n\n" +
      "The images, the instance that owns (connects) each, their connection status and their\n" +
      "sessions: active, orphaned, total.",
    run: async ({ client, json }) => show(await client.listImages(), json, imagesTable),
  });

/** The images as `stui images` (and `stui panel --once`) print them. */
export const imagesTable = (r: { readonly images: readonly ImageConnectionStatus[] }): string =>
  table(
    ["IMAGE", "NAME", "ADDRESS", "OWNER", "STATUS", "HEALTH", "RTT ms", "ACTIVE", "ORPHANED", "TOTAL", "VERSION"],
    r.images.map((i) => [
      i.image_id,
      dash(i.name),
      i.address,
      dash(i.owner),
      i.status,
      i.connection_health,
      i.rtt_ms === null ? "-" : i.rtt_ms.toFixed(1),
      String(i.active_sessions),
      String(i.orphaned_sessions),
      String(i.session_count),
      dash(i.image_version),
    ]),
  );

/** A listed session's state in one word: a session is never both active and orphaned. */
export const stateOfSession = (s: Pick<SessionMetadata, "is_active" | "orphaned_at">): string =>
  s.orphaned_at !== null ? "orphaned" : s.is_active ? "active" : "closed";

export const sessions = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage:
      "usage: stui sessions [--image ID] [--connected] [--json]\n\n" +
      "Stored sessions (of one image); --connected: only live ones on connected images.",
    options: { image: { type: "string" }, connected: { type: "boolean", default: false } },
    run: async ({ client, values, json }) =>
      show(
        await client.listImageSessions({
          image_id: str(values, "image") ?? null,
          include_disconnected: values["connected"] !== true,
        }),
        json,
        (r) =>
          table(
            ["SESSION", "CLIENT", "IMAGE", "IMAGE STATUS", "STATE", "ORPHANED AT", "LAST ACTIVITY"],
            r.sessions.map((s) => [
              s.session_id,
              s.client_id,
              s.image_id,
              s.connection_status,
              stateOfSession(s),
              dash(s.orphaned_at),
              s.last_activity,
            ]),
          ),
      ),
  });

export const switchContext = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage:
      "usage: stui switch --client C --to ID [--from ID] [--close-sessions] [--json]\n\n" +
      "Switches a client's current image. --from: refuse unless the client is there now;\n" +
      "--close-sessions: close the client's sessions on the image it leaves.",
    options: {
      client: { type: "string" },
      to: { type: "string" },
      from: { type: "string" },
      "close-sessions": { type: "boolean" },
    },
    run: async ({ client, values, json }) =>
      show(
        await client.switchImageContext({
          client_id: required(values, "client"),
          to_image_id: required(values, "to"),
          from_image_id: str(values, "from") ?? null,
          preserve_context: values["close-sessions"] !== true,
        }),
        json,
        (r) => `${r.client_id}: ${r.from_image_id ?? "(none)"} → ${r.to_image_id}`,
      ),
  });

export const cleanup = (argv: string[]): Promise<number> =>
  runClientCommand(argv, {
    usage:
      "usage: stui cleanup --image ID [--force] [--include-active] [--max-age-hours N] [--dry-run] [--json]\n\n" +
      "Removes the image's orphaned sessions; --force: any session; active ones only with --include-active.\n" +
      "--dry-run: list what would be removed, remove nothing (ages by this machine's clock).",
    options: {
      image: { type: "string" },
      force: { type: "boolean", default: false },
      "include-active": { type: "boolean", default: false },
      "max-age-hours": { type: "string" },
      "dry-run": { type: "boolean", default: false },
    },
    run: async ({ client, values, json }) => {
      const age = str(values, "max-age-hours");
      if (age !== undefined && !(Number(age) >= 0)) throw new UsageError(`--max-age-hours: not a number: ${age}`);
      const criteria = {
        image_id: required(values, "image"),
        force: values["force"] === true,
        preserve_active: values["include-active"] !== true,
        max_age_hours: age === undefined ? null : Number(age),
      };
      if (values["dry-run"] !== true) {
        return show(
          await client.cleanupImageSessions(criteria),
          json,
          (r) =>
            `${r.image_id}: removed ${r.removed_session_ids.length} session(s), ${r.remaining_sessions} remain` +
            r.removed_session_ids.map((id) => `\n  ${id}`).join(""),
        );
      }
      const listed = await client.listImageSessions({ image_id: criteria.image_id, include_disconnected: true });
      if (listed.type === "Error") return show(listed, json, () => "");
      const ids = selectCleanup(listed.sessions, criteria, Date.now());
      const remaining = listed.sessions.length - ids.length;
      if (json) {
        const dryRun = {
          image_id: criteria.image_id,
          dry_run: true,
          would_remove_session_ids: ids,
          remaining_sessions: remaining,
        };
        console.log(JSON.stringify(dryRun, null, 2));
        return EXIT.done;
      }
      const byId = new Map(listed.sessions.map((s) => [s.session_id, s]));
      console.log(
        `${criteria.image_id}: would remove ${ids.length} session(s), ${remaining} would remain (dry run: nothing removed)` +
          ids
            .map(
              (id) =>
                `\n  ${id}  ${byId.get(id)?.client_id ?? ""}  ${stateOfSession(byId.get(id) ?? { is_active: false, orphaned_at: null })}`,
            )
            .join(""),
      );
      return EXIT.done;
    },
  });
