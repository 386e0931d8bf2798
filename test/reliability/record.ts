/**
 * @module test/reliability/record
 *
 * The one call a test makes to put a row in the reliability table:
 *
 *   record({ id: "R1", done: "10 rolling reloads at 200 req/s", figure: "0/12000 failed, p50 2 ms, p99 9 ms", pass });
 *
 * The row is appended as one JSON line to the file named by RELIABILITY_REPORT
 * (set by `npm run reliability`); without it, record() does nothing, so a test
 * in the normal suite may call it freely. The record is for the table only: the
 * test still asserts its goal with expect(), and a row whose test failed is
 * shown failed whatever it recorded.
 *
 * Any test file may import it (disk faults, log flood, fuzzers): it has no
 * dependency on the rest of the suite.
 */
import { appendFileSync } from "node:fs";
import path from "node:path";
import { expect } from "vitest";

export interface ReliabilityRow {
  /** The matrix id ("R1", "L3", ...) or a new id of the caller's ("DISK1"). */
  id: string;
  /** What was done, in a few words: the fault and the load. */
  done: string;
  /** The figure: "failed / total" plus p50/p99, or the row's own measure. */
  figure: string;
  /** Whether the figure meets the row's goal (the test asserts the same). */
  pass: boolean;
}

/** Appends `row` to $RELIABILITY_REPORT (a JSON line, with when and by which file); a no-op when unset. */
export function record(row: ReliabilityRow): void {
  const report = process.env.RELIABILITY_REPORT;
  if (!report) return;
  // The test that recorded it, so that the table can say how to run it again.
  const { testPath, currentTestName } = expect.getState();
  const file = testPath ? path.relative(process.cwd(), testPath) : undefined;
  // Written as vitest's JSON report names a test (describe titles and title joined by spaces), to match it there.
  const test = currentTestName?.split(" > ").join(" ");
  const line = { ...row, at: new Date().toISOString(), file, test };
  // appendFileSync of one short line: lines from parallel vitest workers do not interleave (O_APPEND).
  appendFileSync(report, `${JSON.stringify(line)}\n`);
}

/** "0 / 12000 failed, p50 2 ms, p99 9 ms": the figure as the table writes it. */
export function failedFigure(failed: number, total: number, latenciesMs?: readonly number[]): string {
  const base = `${failed} / ${total} failed`;
  if (!latenciesMs || latenciesMs.length === 0) return base;
  return `${base}, p50 ${ms(percentile(latenciesMs, 0.5))}, p99 ${ms(percentile(latenciesMs, 0.99))}`;
}

/** The q-quantile (0..1) of `values` (nearest rank); 0 for none. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** A duration in ms, short: "0.8 ms", "12 ms". */
export function ms(value: number): string {
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
}
