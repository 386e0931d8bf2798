/**
 * @module test/helpers/log-lines
 *
 * Reading what the stack logs, whichever way it was written: `up`'s output
 * and stack.log are JSON records on a pipe or a file and pretty lines on a
 * terminal (stack/stack-log.ts), and a gateway worker's lines in its log
 * files start with an ISO time stamp (contract/line-stamp.ts). Tests find
 * the same words in either, instead of each parsing one format.
 */

/** One line of the stack's log: its message and, for a worker's relayed line, whose it is. */
export interface StackLogLine {
  msg: string;
  app?: string;
  slot?: number;
  stream?: "out" | "err";
  /** The time the worker stamped a relayed line with. */
  written?: string;
  /** Whether the line was a JSON record (false: a pretty or plain line). */
  json: boolean;
}

/** A worker line's stamp, `2026-12-06T12:00:00.123Z `, as a pattern to build a RegExp with. */
export const STAMPED = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `;
/** A worker line's stamp at the start of a line. */
export const STAMP = new RegExp(`^${STAMPED}`);

/** A stamped line without its stamp (unchanged when it has none). */
export const withoutStamp = (line: string) => line.replace(STAMP, "");

/** A pretty line: `[12:00:00.123] INFO: ` then the words, as `up` printed them before it had a logger. */
const PRETTY = /^\[[\d:.]+\] \w+: /;
/** The plain words of a relayed line: `app.slot | text`. */
const RELAYED = /^(?<app>[a-z][a-z0-9_-]*)\.(?<slot>\d+) \| (?<text>.*)$/;

/** One line of `up`'s output or stack.log, read as a JSON record or as a pretty or plain line. */
export function readStackLogLine(line: string): StackLogLine {
  if (line.startsWith("{")) {
    try {
      const record = JSON.parse(line) as Omit<StackLogLine, "json">;
      if (typeof record.msg === "string") return { ...record, json: true };
    } catch {
      // Not a record: read as a plain line below.
    }
  }
  const words = line.replace(PRETTY, "");
  const relayed = RELAYED.exec(words)?.groups;
  if (relayed) return { msg: relayed.text!, app: relayed.app!, slot: Number(relayed.slot), json: false };
  return { msg: words.replace(/^tsgi-stack: /, ""), json: false };
}

/** Every line of `output`, read. */
export function readStackLog(output: string): StackLogLine[] {
  return output
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map(readStackLogLine);
}
