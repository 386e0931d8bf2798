/**
 * @module cli/logs/tail
 *
 * Reading log files the way `tail -n` and `tail -F` do, for `tsgi-stack
 * logs`: only the end of a file (`-n 3` of a 1 GB file reads a few
 * kilobytes), and then what is appended to it, a bounded chunk at a time,
 * starting the file over when it was rotated — emptied in place (the workers'
 * files: copytruncate, supervisor/log-keeper.ts) or replaced by a new file of
 * the same name (logrotate's default, for the access log).
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from "node:fs";

/** Following prints what was appended this much at a time: a flooding writer costs the reader no more memory than this. */
const FOLLOW_CHUNK = 1024 * 1024;
/** The end of a file is read this much at a time, backwards, and never more than TAIL_MAX_BYTES in all. */
const TAIL_CHUNK = 64 * 1024;
const TAIL_MAX_BYTES = 16 * 1024 * 1024;

/**
 * The end of `file` holding its last `count` lines: read backwards a chunk at
 * a time, so a 1 GB file costs what its last lines weigh — at most
 * TAIL_MAX_BYTES (longer lines are cut at the front). Returns the lines and
 * the file's size when read.
 */
export function readLastLines(file: string, count: number): { lines: string[]; size: number } {
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    if (count <= 0) return { lines: [], size };
    const chunks: Buffer[] = [];
    let start = size;
    let newlines = 0;
    // One newline more than lines wanted (the file's last one ends the last line), unless the file starts first.
    while (start > 0 && newlines <= count && size - start < TAIL_MAX_BYTES) {
      const length = Math.min(TAIL_CHUNK, start);
      start -= length;
      const chunk = Buffer.alloc(length);
      readSync(fd, chunk, 0, length, start);
      chunks.unshift(chunk);
      for (const byte of chunk) if (byte === 0x0a) newlines += 1;
    }
    const lines = Buffer.concat(chunks).toString("utf8").split("\n");
    if (lines.at(-1) === "") lines.pop();
    // The first line is cut unless the read began at the start of the file.
    if (start > 0 && lines.length > count) lines.shift();
    return { lines: lines.slice(-count), size };
  } finally {
    closeSync(fd);
  }
}

/** A file followed from an offset: the whole lines appended since, as they come. */
export class FollowedFile {
  private offset = 0;
  private inode: number | undefined;
  /** The end of a line not yet ended. */
  private partial = "";

  constructor(readonly file: string) {}

  /** Follows from the file's current end (or its start when it is not there yet). */
  fromEnd(size?: number): this {
    try {
      const stats = statSync(this.file);
      this.offset = size ?? stats.size;
      this.inode = stats.ino;
    } catch {
      this.offset = 0;
    }
    return this;
  }

  /** The whole lines appended since the last call ([] when the file is gone). */
  readNew(): string[] {
    let stats;
    try {
      stats = statSync(this.file);
    } catch {
      return [];
    }
    // Emptied in place (copytruncate) or replaced by a new file: start over at its beginning.
    if (stats.size < this.offset || (this.inode !== undefined && stats.ino !== this.inode)) {
      this.offset = 0;
      this.partial = "";
    }
    this.inode = stats.ino;
    if (stats.size === this.offset) return [];
    const lines: string[] = [];
    const fd = openSync(this.file, "r");
    try {
      while (this.offset < stats.size) {
        const buffer = Buffer.alloc(Math.min(FOLLOW_CHUNK, stats.size - this.offset));
        const read = readSync(fd, buffer, 0, buffer.length, this.offset);
        if (read === 0) break;
        this.offset += read;
        const pieces = (this.partial + buffer.subarray(0, read).toString("utf8")).split("\n");
        this.partial = pieces.pop() ?? "";
        lines.push(...pieces);
      }
    } finally {
      closeSync(fd);
    }
    return lines;
  }
}
