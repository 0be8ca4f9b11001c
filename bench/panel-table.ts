/**
 * The `panel` benchmark's baseline view: a bare ink table of the images, as plain as ink allows
 * (one `Text` per cell, the status in color, lines cut to the width), nothing but the visible rows,
 * `height - 1` lines in all like the panel. Only `frame`, shown in the header, changes between
 * renders, so that every frame is drawn and one line goes to the terminal. `q` quits.
 */
import { createElement as h, type ReactElement } from "react";
import { Box, Text, useApp, useInput } from "ink";
import type { ImageConnectionStatus } from "../src/protocol/index.js";

export interface StaticTableProps {
  readonly images: readonly ImageConnectionStatus[];
  readonly width: number;
  readonly height: number;
  readonly frame: number;
}

const COLUMNS: readonly { title: string; cell: (i: ImageConnectionStatus) => string; right?: boolean }[] = [
  { title: "IMAGE", cell: (i) => i.image_id },
  { title: "STATUS", cell: (i) => `● ${i.status}` },
  { title: "HEALTH", cell: (i) => i.connection_health },
  { title: "ACT/ORPH/ALL", cell: (i) => `${i.active_sessions}/${i.orphaned_sessions}/${i.session_count}`, right: true },
  { title: "RTT ms", cell: (i) => (i.rtt_ms === null ? "-" : i.rtt_ms.toFixed(1)), right: true },
  { title: "LAST SEEN", cell: (i) => (i.last_seen === null ? "-" : i.last_seen.slice(11, 19)) },
  { title: "OWNER", cell: (i) => i.owner ?? "-" },
  { title: "NAME", cell: (i) => i.name ?? "-" },
];

const GAP = "  ";
const pad = (text: string, width: number, right = false): string => (right ? text.padStart(width) : text.padEnd(width));

export function StaticTable(props: StaticTableProps): ReactElement {
  const { exit } = useApp();
  useInput((input) => {
    if (input === "q") exit();
  });
  const rows = Math.max(1, props.height - 3);
  const shown = props.images.slice(0, rows);
  const widths = COLUMNS.map((c) => Math.max(c.title.length, ...props.images.map((i) => c.cell(i).length)));
  const cut = (line: string): string => line.slice(0, props.width);
  const head = `  ${COLUMNS.map((c, n) => pad(c.title, widths[n] ?? 0, c.right)).join(GAP)}`;
  return h(
    Box,
    { flexDirection: "column", width: props.width },
    h(Text, { wrap: "truncate" }, cut(`NATS ● connected  ${props.images.length} images  frame ${props.frame}`)),
    h(Text, { wrap: "truncate", bold: true }, cut(head)),
    ...shown.map((image, row) =>
      h(
        Text,
        { key: image.image_id, wrap: "truncate" },
        h(Text, null, row === 0 ? "› " : "  "),
        ...COLUMNS.map((c, n) =>
          h(
            Text,
            { key: c.title, ...(c.title === "STATUS" ? { color: "green" } : {}) },
            pad(c.cell(image), widths[n] ?? 0, c.right) + (n < COLUMNS.length - 1 ? GAP : ""),
          ),
        ),
      ),
    ),
  );
}
