/**
 * `npm run bench -- protocol`: decode + validate throughput of a typical request against the same
 * run's bare `JSON.parse` of the same bytes.
 */
import { decodeRequest, decodeResponse, encodeRequest, type Request } from "../src/protocol/index.js";
import { compareThroughput, fmt, printTable } from "./harness.js";

export function run(): void {
  const request: Request = {
    type: "SwitchImageContext",
    client_id: "alice-tui",
    from_image_id: "dev",
    to_image_id: "staging",
    preserve_context: true,
  };
  const text = encodeRequest(request);
  const bytes = Buffer.from(text);
  const sessions = Array.from({ length: 20 }, (_, i) => ({
    session_id: `8f14e45f-ceea-4e67-a5a4-0b1c2d3e4f${String(i).padStart(2, "0")}`,
    client_id: "alice-tui",
    session_name: `session ${i}`,
    description: null,
    created_at: "2026-11-25T09:00:00.000Z",
    last_activity: "2026-11-25T09:30:00.000Z",
    is_active: true,
    orphaned_at: null,
    image_id: "dev",
    image_address: "tcp://127.0.0.1:5555",
    image_name: "Pharo-12.0",
    image_version: "12.0.0",
    connection_status: "Connected",
  }));
  const listing = JSON.stringify({ ImageSessions: { sessions } });

  const check = decodeRequest(bytes);
  if (!check.ok) throw check.error;

  console.log(`protocol: typical request ${text.length} bytes: ${text}`);
  const small = compareThroughput([
    { name: "JSON.parse (baseline)", op: () => JSON.parse(text) as unknown },
    { name: "decodeRequest (string)", op: () => decodeRequest(text) },
    { name: "decodeRequest (bytes)", op: () => decodeRequest(bytes) },
  ]);
  report(small);

  console.log(`\nprotocol: ImageSessions response with 20 sessions, ${listing.length} bytes`);
  report(
    compareThroughput(
      [
        { name: "JSON.parse (baseline)", op: () => JSON.parse(listing) as unknown },
        { name: "decodeResponse (string)", op: () => decodeResponse(listing) },
      ],
      { iterations: 5_000 },
    ),
  );
}

function report(results: readonly { name: string; opsPerSec: number; nsPerOp: number }[]): void {
  const baseline = results[0]?.opsPerSec ?? Number.NaN;
  printTable([
    ["", "ops/s", "ns/op", "time vs JSON.parse"],
    ...results.map((r) => [r.name, fmt(r.opsPerSec), fmt(r.nsPerOp), `${fmt(baseline / r.opsPerSec, 2)}x`]),
  ]);
}
