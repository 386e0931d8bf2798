/**
 * @module stack/output
 *
 * The stack process's own output: its lines and the workers' lines it relays,
 * to the terminal — or, under `up -d`, to <state_dir>/stack.log, which is
 * where a full or read-only disk bites. Node's process.stdout on a file is a
 * stream that emits 'error' on the first failed write: with no listener the
 * stack process dies (and its proxy with it), and with one the stream is
 * destroyed, so the log would stay silent after the disk is freed. So a file
 * is written here with writeSync, each write on its own: one that fails is
 * dropped and counted (stack/log-writes.ts), and the next one tries again.
 * A terminal or a pipe keeps its stream, with an 'error' listener that counts
 * instead of crashing (a closed pipe: EPIPE).
 */
import { fstatSync, writeSync } from "node:fs";
import { LogWriteCounter, logWriteError } from "./log-writes.ts";

type Stream = "out" | "err";

const FD: Readonly<Record<Stream, number>> = { out: 1, err: 2 };

function isFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}

const lineCount = (text: string) => Math.max(1, text.split("\n").length - 1);

/**
 * An 'error' listener on process.stdout and process.stderr, so that a failed
 * write there (a full disk under a redirected output, a closed pipe) is
 * reported to `onError` rather than thrown as an unhandled 'error' event.
 * Every process of the stack calls it once, first thing: a Node warning
 * printed on a full disk must not end a proxy process either.
 */
export function guardStdio(onError: (error: Error) => void): void {
  for (const stream of [process.stdout, process.stderr]) stream.on("error", onError);
}

export class StackOutput {
  /** The lines this output could not write. */
  readonly failures = new LogWriteCounter();
  private readonly direct: Readonly<Record<Stream, boolean>> = { out: isFile(FD.out), err: isFile(FD.err) };

  constructor() {
    guardStdio((error) => this.failures.record(1, logWriteError(error)));
  }

  /** Writes `text` (whole lines, newline included); a failure is counted, never thrown. */
  write(stream: Stream, text: string): void {
    if (this.direct[stream]) return this.writeFile(FD[stream], text);
    const target = stream === "out" ? process.stdout : process.stderr;
    // A stream that failed once is destroyed and drops what it is given without a word: count it here.
    if (target.destroyed) {
      this.failures.record(lineCount(text), logWriteError(target.errored ?? new Error("the output stream is closed")));
      return;
    }
    target.write(text);
  }

  private writeFile(fd: number, text: string): void {
    let bytes = Buffer.from(text);
    try {
      // The file is opened O_APPEND (`up -d` opens it so): each write lands at its end.
      while (bytes.byteLength > 0) bytes = bytes.subarray(writeSync(fd, bytes));
    } catch (error) {
      this.failures.record(lineCount(text), logWriteError(error));
    }
  }
}
