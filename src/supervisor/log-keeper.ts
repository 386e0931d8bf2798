/**
 * @module supervisor/log-keeper
 *
 * The workers' log files, kept bounded on disk and relayed to `up`'s output
 * at a bounded rate. Each worker writes its stdout and stderr straight into
 * its slot's files (`<app>.<slot>.out.log`, `.err.log`: the process manager
 * opens them for it, see pm2-client.ts), so no process of the stack carries
 * the output and an app that floods its stdout is slowed by the disk, not
 * buffered in anyone's memory. This module, run by the supervisor, checks the
 * files every CHECK_MS:
 *
 * - a file past `maxBytes` is rotated the way logrotate's copytruncate does
 *   (the writer keeps its descriptor, opened for appending): `.1` becomes
 *   `.2` and so on, the oldest past `keep` is dropped, the file is copied to
 *   `.1` and truncated (see rotate: what the app writes in the microseconds
 *   between the last read and the truncation is lost); a file can pass
 *   `maxBytes` by what is written in one check period before it is rotated.
 * - with someone listening (`up` in the foreground), the lines appended since
 *   the last check are relayed — at most RELAY_BYTES of each file per check;
 *   past that, the newest RELAY_BYTES are relayed after a line saying how
 *   much was left out (the file has all of it). So the stack's memory and
 *   event loop never depend on how fast an app writes.
 */
import { appendFileSync, closeSync, ftruncateSync, openSync, readSync } from "node:fs";
import { appendFile, copyFile, open, readdir, rename, rm, stat, truncate } from "node:fs/promises";
import path from "node:path";

/** How much of its output a worker keeps on disk: the live file up to maxBytes, then `keep` rotated ones. */
export interface LogBound {
  maxBytes: number;
  keep: number;
}

/** 10 MiB a file and three rotated ones: at most ~40 MiB per slot and stream. */
export const DEFAULT_LOG_BOUND: LogBound = { maxBytes: 10 * 1024 * 1024, keep: 3 };

/** How often the files are checked: the most a file passes its bound by is what an app writes in this time. */
export const CHECK_MS = 250;
/** The most of one file relayed per check (256 KiB/s): beyond it lines are counted, not relayed. */
export const RELAY_BYTES = 64 * 1024;

/** A slot's log file name: `<app>.<slot>.<stream>.log` (rotated ones end in `.log.N` and do not match). */
export const SLOT_LOG_FILE = /^(?<app>[a-z][a-z0-9_-]*)\.(?<slot>\d+)\.(?<stream>out|err)\.log$/;

export interface RelayedLine {
  app: string;
  slot: number;
  stream: "out" | "err";
  text: string;
}

interface Tracked {
  app: string;
  slot: number;
  stream: "out" | "err";
  /** How far the file has been relayed (or skipped). */
  offset: number;
  /** The end of a line not yet ended. */
  partial: string;
}

/** The name of rotated file `n` of `file` (0 is the file itself). */
export function rotatedName(file: string, n: number): string {
  return n === 0 ? file : `${file}.${n}`;
}

/**
 * Rotates `file` as copytruncate does: .1 → .2 …, the oldest past `keep`
 * dropped, the file copied to .1 and emptied. The writer keeps appending
 * meanwhile, and what it writes between the last read of the file and the
 * truncation is lost (logrotate's copytruncate has the same hole). The copy of
 * a file of several MiB takes milliseconds, so the file is not emptied right
 * after it: what came during the copy is appended to .1 (a few rounds, while
 * it is large), then the last tail is read to the end of the file and the file
 * truncated in one synchronous step, which leaves a window of microseconds
 * instead of the copy's milliseconds.
 */
export async function rotate(file: string, keep: number): Promise<void> {
  if (keep === 0) {
    await truncate(file, 0);
    return;
  }
  await rm(rotatedName(file, keep), { force: true });
  for (let n = keep - 1; n >= 1; n--) await rename(rotatedName(file, n), rotatedName(file, n + 1)).catch(() => undefined);
  const rotated = rotatedName(file, 1);
  await copyFile(file, rotated);
  let copied = (await stat(rotated)).size;
  for (let round = 0; round < CATCH_UP_ROUNDS; round++) {
    const size = (await stat(file)).size;
    if (size - copied <= LAST_TAIL_BYTES) break;
    await appendFile(rotated, await readRange(file, copied, size));
    copied = size;
  }
  appendFileSync(rotated, readToEndAndEmpty(file, copied));
}

/** Async catch-up rounds after the copy: each appends what the writer added during the one before. */
const CATCH_UP_ROUNDS = 4;
/** A tail this small is read in the synchronous last step (tens of microseconds) rather than in another round. */
const LAST_TAIL_BYTES = 256 * 1024;
/** The most the synchronous last step reads (a few milliseconds of the event loop at worst). */
const LAST_STEP_MAX_BYTES = 8 * 1024 * 1024;

/** The bytes of `file` from `start` to `end` (fewer if it is shorter now). */
async function readRange(file: string, start: number, end: number): Promise<Buffer> {
  const handle = await open(file, "r");
  try {
    const buffer = Buffer.alloc(end - start);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Reads `file` from `start` to its end and empties it, with no await between
 * the read that finds the end and the truncation. A file shorter than
 * `start` (emptied by someone else) is emptied and nothing is returned. At
 * most LAST_STEP_MAX_BYTES are read: a writer faster than the reads cannot
 * hold the event loop here, it loses what is past them instead.
 */
function readToEndAndEmpty(file: string, start: number): Buffer {
  const fd = openSync(file, "r+");
  try {
    const chunks: Buffer[] = [];
    let position = start;
    while (position - start < LAST_STEP_MAX_BYTES) {
      const chunk = Buffer.alloc(64 * 1024);
      const bytesRead = readSync(fd, chunk, 0, chunk.length, position);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      position += bytesRead;
    }
    ftruncateSync(fd, 0);
    return Buffer.concat(chunks);
  } finally {
    closeSync(fd);
  }
}

export class LogKeeper {
  private readonly files = new Map<string, Tracked>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly dir: string,
    private readonly bound: LogBound,
    /** Relayed lines go here; undefined while nobody listens (then nothing is read, only sizes checked). */
    private readonly relay: () => ((line: RelayedLine) => void) | undefined,
  ) {}

  /** Starts checking. Output already in the files is not relayed: only what is written from now on. */
  start(): Promise<void> {
    if (this.timer) return this.running;
    // In the same chain as every check: a check asked for meanwhile runs after this first look, never beside it.
    this.running = this.running.then(() => this.scan(true)).catch(() => undefined);
    this.timer = setInterval(() => void this.check(), CHECK_MS);
    this.timer.unref();
    return this.running;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Checks now (after a check under way): a failure report calls it so the worker's last lines are relayed before it. */
  check(): Promise<void> {
    this.running = this.running.then(() => this.scan(false)).catch(() => undefined);
    return this.running;
  }

  private async scan(first: boolean): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const seen = new Set<string>();
    for (const name of names) {
      const match = SLOT_LOG_FILE.exec(name);
      if (!match) continue;
      const file = path.join(this.dir, name);
      seen.add(file);
      let tracked = this.files.get(file);
      if (!tracked) {
        const { app, slot, stream } = match.groups!;
        // A file there before we started holds earlier runs' output; one that appears later is all new.
        const offset = first ? await stat(file).then((s) => s.size, () => 0) : 0;
        tracked = { app: app!, slot: Number(slot), stream: stream as "out" | "err", offset, partial: "" };
        this.files.set(file, tracked);
      }
      await this.keep(file, tracked).catch(() => undefined);
    }
    for (const file of this.files.keys()) if (!seen.has(file)) this.files.delete(file);
  }

  private async keep(file: string, tracked: Tracked): Promise<void> {
    const size = (await stat(file)).size;
    // Emptied by someone else (or by a rotation of ours that failed half way): start from its beginning.
    if (size < tracked.offset) {
      tracked.offset = 0;
      tracked.partial = "";
    }
    const relay = this.relay();
    if (relay) await this.relayNew(file, tracked, size, relay);
    else tracked.offset = size;
    if (size > this.bound.maxBytes) {
      await rotate(file, this.bound.keep);
      tracked.offset = 0;
      tracked.partial = "";
    }
  }

  private async relayNew(file: string, tracked: Tracked, size: number, relay: (line: RelayedLine) => void): Promise<void> {
    const pending = size - tracked.offset;
    if (pending <= 0) return;
    const { app, slot, stream } = tracked;
    const skipped = Math.max(0, pending - RELAY_BYTES);
    const start = tracked.offset + skipped;
    const buffer = await readRange(file, start, size);
    tracked.offset = size;
    let text = buffer.toString("utf8");
    if (skipped > 0) {
      relay({ app, slot, stream, text: `[tsgi-stack: ${skipped} bytes of output not shown here; \`tsgi-stack logs\` reads the file]` });
      // The window began inside a line: its end is not worth showing.
      text = text.slice(text.indexOf("\n") + 1);
      tracked.partial = "";
    }
    const lines = (tracked.partial + text).split("\n");
    tracked.partial = lines.pop() ?? "";
    // A line that never ends is relayed in pieces, never held whole.
    if (tracked.partial.length > RELAY_BYTES) {
      lines.push(tracked.partial);
      tracked.partial = "";
    }
    for (const line of lines) if (line !== "") relay({ app, slot, stream, text: line });
  }
}
