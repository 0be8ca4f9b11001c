/**
 * The view of `stui demo --cluster`: the three instances (up or down) and the six images, each
 * with its status and its owner, the instance connecting it, and the events.
 *
 * The owner is read from the lease bucket itself (`KvLeaseStore.list()`, twice a second) and the
 * status from the events: an image's status is the last one its owner published (an event's
 * `source` is `/stui/<instance_id>`). A killed instance publishes nothing more, so while its
 * leases have not lapsed its images show `owner down`; an instance's statuses are forgotten when
 * it starts again. Without a terminal, a line `images: dev=Connected@a ...` is printed whenever an
 * image's status or owner changes: what the tests read.
 */
import type { EventFeed, ReplayedEvent } from "../client.js";
import type { Lease } from "../ports.js";
import type { StuiEvent } from "../protocol/index.js";
import { describeEvent } from "./client-commands.js";
import { describeError, isQuit, openScreen, toggle, type Sim, type Switchable } from "./demo-view.js";
import { table } from "./table.js";

/** One `stui serve` instance of the demo. */
export interface Instance extends Switchable {
  /** The node it connects to: `n1 nats://127.0.0.1:4567`. */
  readonly node: string;
  /** Its metrics URL, from its listening line. */
  metrics: string | null;
}

export interface ClusterViewOptions {
  readonly urls: readonly string[];
  readonly nodes: readonly string[];
  readonly images: readonly Sim[];
  readonly instances: readonly Instance[];
  readonly leases: { list(): Promise<Lease[]> };
  readonly events: EventFeed<ReplayedEvent>;
  readonly ttlMs: number;
  readonly tty: boolean;
  readonly quit: () => void;
}

/** What an instance last said about an image. */
interface Reported {
  status: string;
  health: string;
}

/** One image's row: `status` is the owner's word for it, or `owner down` / `no owner`. */
interface ImageRow {
  readonly id: string;
  readonly status: string;
  readonly health: string;
  readonly owner: string | null;
  /** Until the lease lapses unless renewed (negative: lapsed), `null` without a lease. */
  readonly leaseLeftMs: number | null;
  readonly address: string;
}

const LEASE_POLL_MS = 500;

/** `/stui/a` → `a`. */
const instanceOf = (event: StuiEvent): string => event.source.replace(/^\/stui\//, "");

export function clusterView(o: ClusterViewOptions): { input: (text: string) => void; close: () => Promise<void> } {
  /** image id → instance id → what it said last. */
  const reported = new Map<string, Map<string, Reported>>();
  let leases = new Map<string, Lease>();
  let leaseProblem: string | null = null;
  let closed = false;
  let summary = "";

  const instanceById = (id: string): Instance | undefined => o.instances.find((i) => i.id === id);
  const rows = (now = Date.now()): ImageRow[] =>
    o.images.map((image) => {
      const lease = leases.get(image.id) ?? null;
      const owner = lease?.owner ?? null;
      const said = owner === null ? undefined : reported.get(image.id)?.get(owner);
      const ownerUp = owner !== null && instanceById(owner)?.state.kind === "up";
      return {
        id: image.id,
        status: owner === null ? "no owner" : ownerUp ? (said?.status ?? "Unknown") : "owner down",
        health: ownerUp ? (said?.health ?? "-") : "-",
        owner,
        leaseLeftMs: lease === null ? null : lease.expiresAt - now,
        address: image.endpoint,
      };
    });

  /** Without a terminal: one line each time an image's status or owner changes. */
  const printSummary = (): void => {
    const next = `images: ${rows()
      .map((r) => `${r.id}=${r.status.replace(/ /g, "-")}@${r.owner ?? "-"}`)
      .join(" ")}`;
    if (next === summary) return;
    summary = next;
    screen.print(next);
  };

  const onEvent = (event: StuiEvent): void => {
    const from = instanceOf(event);
    const said = (imageId: string): Reported => {
      const byInstance = reported.get(imageId) ?? new Map<string, Reported>();
      reported.set(imageId, byInstance);
      const entry = byInstance.get(from) ?? { status: "Unknown", health: "-" };
      byInstance.set(from, entry);
      return entry;
    };
    switch (event.type) {
      case "io.stui.image.status.changed":
        said(event.data.image_id).status = event.data.status;
        break;
      case "io.stui.image.health.changed":
        said(event.data.image_id).health = event.data.health;
        break;
      case "io.stui.instance.started":
        // A new life: what the killed process said last is no longer true.
        for (const byInstance of reported.values()) byInstance.delete(event.data.instance_id);
        break;
      default:
        break;
    }
    screen.log(`[${from}] ${describeEvent(event)}`);
    printSummary();
  };

  const pollLeases = async (): Promise<void> => {
    while (!closed) {
      try {
        leases = new Map((await o.leases.list()).map((lease) => [lease.imageId, lease]));
        leaseProblem = null;
      } catch (error) {
        leaseProblem = describeError(error);
      }
      if (closed) return;
      printSummary();
      await new Promise((resolve) => setTimeout(resolve, LEASE_POLL_MS));
    }
  };

  const frame = ({ notice, events }: { notice: string; events: readonly string[] }): string => {
    const now = Date.now();
    const imageRows = rows(now);
    const instanceRows = o.instances.map((i) => [
      i.id,
      i.state.kind === "busy" ? i.state.doing : i.state.kind,
      i.state.kind === "up" ? String(i.state.child.pid) : "-",
      i.node,
      String(imageRows.filter((r) => r.owner === i.id && (r.leaseLeftMs ?? 0) > 0).length),
      i.state.kind === "up" ? (i.metrics ?? "-") : "-",
    ]);
    const imageTable = imageRows.map((r) => [
      r.id,
      r.status,
      r.health,
      r.owner === null ? "-" : instanceById(r.owner)?.state.kind === "up" ? r.owner : `${r.owner} (down)`,
      leaseText(r.leaseLeftMs),
      r.address,
    ]);
    return (
      `stui demo --cluster — NATS ${o.nodes.map((n, i) => `${n} ${o.urls[i] ?? ""}`).join(" · ")}\n` +
      `each image is connected by the instance holding its lease (TTL ${o.ttlMs / 1000} s)\n\n` +
      table(["INSTANCE", "STATE", "PID", "NATS NODE", "IMAGES", "METRICS"], instanceRows) +
      "\n\n" +
      table(["IMAGE", "STATUS", "HEALTH", "OWNER", "LEASE", "ADDRESS"], imageTable) +
      (leaseProblem === null ? "" : `\n(leases not read: ${leaseProblem})`) +
      `\n\nevents (stui.events.>, [instance]):\n${events.map((e) => `  ${e}`).join("\n")}\n\n` +
      `keys: a b c kill (SIGKILL) / restart an instance · q quit${notice === "" ? "" : `\n${notice}`}\n`
    );
  };

  /** A kill or start is a notice and an event line: it is part of the story the events tell. */
  const announce = (text: string): void => {
    if (o.tty) screen.log(`[demo] ${new Date().toISOString()} ${text}`);
    screen.say(text);
  };

  const act = async (command: string): Promise<void> => {
    const [verb = "", arg] = command.trim().split(/\s+/);
    if (isQuit(verb)) return o.quit();
    const want = verb === "kill" || verb === "start" ? verb : "toggle";
    const target = instanceById(want === "toggle" ? verb : (arg ?? ""));
    if (target !== undefined) return toggle(target, want, announce);
    if (!o.tty) announce(`unknown command: ${command} (kill a, start a, quit)`);
  };

  const screen = openScreen({ tty: o.tty, frame, act, commands: '"kill a", "start a", "quit"', eventLines: 14 });
  void (async () => {
    for await (const replayed of o.events) onEvent(replayed.event);
  })().catch(() => undefined);
  // Not waited for on the way out: a read in flight ends on its own (closed store or connection).
  void pollLeases();
  return {
    input: screen.input,
    close: async () => {
      closed = true;
      screen.close();
      await o.events.close();
    },
  };
}

function leaseText(leftMs: number | null): string {
  if (leftMs === null) return "-";
  return leftMs > 0 ? `${(leftMs / 1000).toFixed(1)} s left` : `lapsed ${(-leftMs / 1000).toFixed(1)} s ago`;
}
