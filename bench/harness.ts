/**
 * Small measuring helpers shared by the benchmarks: they print figures and ratios against a
 * baseline measured in the same run, never a pass/fail on time.
 */
import { performance } from "node:perf_hooks";

export interface Throughput {
  readonly name: string;
  /** Operations per second, median over the rounds. */
  readonly opsPerSec: number;
  /** Mean nanoseconds per operation, from the median round. */
  readonly nsPerOp: number;
}

/**
 * Runs `op` in timed rounds of `iterations` each, after a warm-up round, and reports the median.
 * Interleaving several candidates round by round (see `compareThroughput`) spreads the noise of a
 * shared machine evenly over them.
 */
function round(op: () => unknown, iterations: number): number {
  const start = performance.now();
  for (let i = 0; i < iterations; i++) op();
  return performance.now() - start;
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};

/** Measures candidates interleaved, round by round. */
export function compareThroughput(
  candidates: readonly { name: string; op: () => unknown }[],
  { iterations = 50_000, rounds = 9 }: { iterations?: number; rounds?: number } = {},
): Throughput[] {
  for (const c of candidates) round(c.op, iterations);
  const times = candidates.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    candidates.forEach((c, i) => times[i]?.push(round(c.op, iterations)));
  }
  return candidates.map((c, i) => {
    const ms = median(times[i] ?? []);
    return { name: c.name, opsPerSec: (iterations / ms) * 1000, nsPerOp: (ms * 1e6) / iterations };
  });
}

/** Percentile (0..100) of a sample, nearest rank. */
export function percentile(sample: readonly number[], p: number): number {
  const sorted = [...sample].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export const fmt = (n: number, digits = 0): string =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** `[name, n, p50, p99, max]` of a sample in ms, for figures whose worst case matters. */
export function summaryRow(name: string, sample: readonly number[], digits = 1): string[] {
  const cell = (ms: number): string => `${fmt(ms, digits)} ms`;
  return [
    name,
    String(sample.length),
    cell(percentile(sample, 50)),
    cell(percentile(sample, 99)),
    cell(Math.max(...sample)),
  ];
}

export const SUMMARY_HEADER = ["", "n", "p50", "p99", "max"];

export function printTable(rows: readonly (readonly string[])[]): void {
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? "").length))) ?? [];
  for (const row of rows) {
    console.log(
      row.map((cell, col) => (col === 0 ? cell.padEnd(widths[col] ?? 0) : cell.padStart(widths[col] ?? 0))).join("  "),
    );
  }
}
