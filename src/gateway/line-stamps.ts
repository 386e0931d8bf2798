/**
 * @module gateway/line-stamps
 *
 * Under the stack a worker's output is its slot's log files, and `tsgi-stack
 * logs` merges the files of an app's slots by time: so each line a gateway
 * worker writes starts with when it was written, `2026-12-06T12:00:00.123Z `
 * (ISO 8601, UTC: contract/line-stamp.ts). Writes are not lines: one write
 * may hold several lines, or end inside one that the next write finishes. A
 * LineStamper keeps, per stream, whether the next byte starts a line, and
 * stamps only there (a line written in pieces has the time of its first). It
 * works on bytes (a newline is 0x0a in UTF-8 whatever surrounds it), so a
 * character split across two writes is never broken.
 */
import { lineStamp } from "../contract/line-stamp.ts";

const NEWLINE = 0x0a;

export class LineStamper {
  /** Whether the next byte written starts a line: true at first, and after each newline. */
  private atLineStart = true;

  /** `bytes` with the stamp of `now` at the start of each line it begins. */
  stamp(bytes: Uint8Array, now: Date = new Date()): Buffer {
    if (bytes.byteLength === 0) return Buffer.from(bytes);
    const stamp = Buffer.from(lineStamp(now));
    const parts: Buffer[] = [];
    const source = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let start = 0;
    while (start < source.byteLength) {
      if (this.atLineStart) parts.push(stamp);
      const newline = source.indexOf(NEWLINE, start);
      const end = newline === -1 ? source.byteLength : newline + 1;
      parts.push(source.subarray(start, end));
      this.atLineStart = newline !== -1;
      start = end;
    }
    return Buffer.concat(parts);
  }
}
