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
import { StringDecoder } from "node:string_decoder";

/**
 * Following reads at most this much of a file per call (one poll): a
 * flooding writer costs the reader no more memory than this, and what it
 * could not read yet is read by the next polls. A line longer than this is
 * cut into pieces of this size.
 */
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
  /** Keeps a character whose bytes are split between two reads whole. */
  private decoder = new StringDecoder("utf8");

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

  /** The whole lines appended since the last call, up to FOLLOW_CHUNK of them ([] when the file is gone). */
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
      this.decoder = new StringDecoder("utf8");
    }
    this.inode = stats.ino;
    if (stats.size === this.offset) return [];
    const fd = openSync(this.file, "r");
    try {
      const buffer = Buffer.alloc(Math.min(FOLLOW_CHUNK, stats.size - this.offset));
      const read = readSync(fd, buffer, 0, buffer.length, this.offset);
      this.offset += read;
      const lines = (this.partial + this.decoder.write(buffer.subarray(0, read))).split("\n");
      this.partial = lines.pop() ?? "";
      // A line that never ends is not held without bound: its first FOLLOW_CHUNK goes out as a line.
      if (this.partial.length >= FOLLOW_CHUNK) {
        lines.push(this.partial);
        this.partial = "";
      }
      return lines;
    } finally {
      closeSync(fd);
    }
  }
}
