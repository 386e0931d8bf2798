/**
 * @module contract/line-stamp
 *
 * The time at the start of each line a gateway worker writes to its log
 * files: `2026-12-06T12:00:00.123Z ` (ISO 8601, UTC, then one space). The
 * worker writes it (gateway/line-stamps.ts), `tsgi-stack logs` merges an
 * app's files by it, and the supervisor takes it off the lines it quotes in
 * an error. Here, with no import, so each of them reads the one format.
 */

/** A stamp at the start of a line; group 1 is the time. */
export const LINE_STAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) /;

/** The stamp for a line written at `at`. */
export function lineStamp(at: Date): string {
  return `${at.toISOString()} `;
}

/** The time a line was stamped with (ms since the epoch), or undefined for a line with no stamp. */
export function lineStampOf(line: string): number | undefined {
  const match = LINE_STAMP.exec(line);
  return match ? Date.parse(match[1]!) : undefined;
}

/** The line without its stamp (unchanged when it has none). */
export function withoutLineStamp(line: string): string {
  return line.replace(LINE_STAMP, "");
}
