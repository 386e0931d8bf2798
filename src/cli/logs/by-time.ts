/**
 * @module cli/logs/by-time
 *
 * An app's log files merged into one sequence by time, for `tsgi-stack logs`:
 * its slots' stdout and stderr, each file in its own order. A gateway
 * worker's lines carry their time (contract/line-stamp.ts); a command app's
 * carry none, so such a line takes the time of the last stamped line before
 * it in its file and keeps its place after that line (before any, it sorts
 * first). A k-way merge, not a sort: a file's lines are never reordered, even
 * when its clock stepped back.
 */
import { lineStampOf } from "../../contract/line-stamp.ts";

/** One line of a file, with the time it sorts by. */
export interface TimedLine<Source> {
  source: Source;
  text: string;
  /** ms since the epoch; -Infinity for an unstamped line with no stamped line before it. */
  at: number;
}

/** The time of a file's last stamped line so far, carried from one read of it to the next. */
export interface TimeCursor {
  lastStamp: number;
}

/** `lines` of one file in order, timed: a line with no stamp takes the time of the stamped line before it. */
export function timeLines<Source extends TimeCursor>(source: Source, lines: readonly string[]): TimedLine<Source>[] {
  return lines.map((text) => {
    source.lastStamp = lineStampOf(text) ?? source.lastStamp;
    return { source, text, at: source.lastStamp };
  });
}

/** The files' lines merged by time: the earliest head first, ties to the file listed first. */
export function mergeByTime<Source>(files: readonly (readonly TimedLine<Source>[])[]): TimedLine<Source>[] {
  const next = files.map(() => 0);
  const merged: TimedLine<Source>[] = [];
  for (;;) {
    let pick = -1;
    for (let index = 0; index < files.length; index++) {
      const head = files[index]![next[index]!];
      if (head && (pick === -1 || head.at < files[pick]![next[pick]!]!.at)) pick = index;
    }
    if (pick === -1) return merged;
    merged.push(files[pick]![next[pick]!]!);
    next[pick]! += 1;
  }
}
