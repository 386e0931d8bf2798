/**
 * @module gateway/output-guard
 *
 * Under the stack a worker's stdout and stderr are files (its slot's log
 * files, opened by the launch wrapper). Node writes to a file synchronously,
 * and a write that fails there — a full disk, one turned read-only — is an
 * unhandled 'error' event that ends the process: an app that logs a line per
 * request would die on its next request. Here such a write costs the line,
 * never the worker: the lines are dropped and counted, and the first line
 * that gets through again says how many were lost. Each line written to such
 * a file starts with the time it was written (gateway/line-stamps.ts), so an
 * app's files can be read merged by time; console.log and console.error
 * write through the same stream, so theirs are stamped too.
 */
import { fstatSync, writeSync } from "node:fs";
import { LineStamper } from "./line-stamps.ts";

type Chunk = string | Uint8Array;
type Callback = (error?: Error | null) => void;

/** Makes `stream`'s writes safe and its lines stamped when it is a file; a pipe or a terminal is left as Node made it. */
export function guardOutput(stream: NodeJS.WriteStream): void {
  const fd = (stream as { fd?: number }).fd;
  if (fd === undefined || !isFile(fd)) return;
  let dropped = 0;
  const lines = new LineStamper();
  const write = (chunk: Chunk, encoding?: BufferEncoding | Callback, callback?: Callback): boolean => {
    const done = typeof encoding === "function" ? encoding : callback;
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, typeof encoding === "string" ? encoding : "utf8") : chunk;
    try {
      if (dropped > 0) writeSync(fd, lines.stamp(Buffer.from(`tsgi: ${dropped} write(s) to this log were lost (the disk refused them)\n`)));
      dropped = 0;
      writeSync(fd, lines.stamp(bytes));
    } catch {
      dropped += 1;
    }
    done?.();
    return true;
  };
  stream.write = write as NodeJS.WriteStream["write"];
  // Anything that still reaches the stream's own machinery must not end the process either.
  stream.on("error", () => undefined);
}

function isFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}
