/**
 * @module proxy/access-log
 *
 * The front proxy's access log: one line per request, in nginx's "combined"
 * format with the stack's own fields appended (app, worker, upstream time,
 * request id), or as one JSON object per line. A fixed line format needs
 * nothing a logging library adds: the lines of one event-loop turn are
 * written with one append to the file at the end of the turn (see flush),
 * the time string is formatted once a second, and a write that fails is
 * counted and reported, never thrown.
 */
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import path from "node:path";
import type { AccessEntry } from "./exchange.ts";

export type AccessLogFormat = "combined" | "json";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad = (value: number, width = 2) => String(value).padStart(width, "0");

/** nginx's $time_local: `22/Nov/2026:01:53:26 +0000`. */
export function timeLocal(date: Date): string {
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const zone = `${sign}${pad(Math.floor(Math.abs(offset) / 60))}${pad(Math.abs(offset) % 60)}`;
  return `${pad(date.getDate())}/${MONTHS[date.getMonth()]}/${date.getFullYear()}:${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())} ${zone}`;
}

/** $time_local changes once a second: formatted once a second (nginx caches its time the same way). */
let cachedSecond = -1;
let cachedTime = "";
function timeLocalCached(date: Date): string {
  const second = Math.floor(date.getTime() / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedTime = timeLocal(date);
  }
  return cachedTime;
}

/** A header value as nginx logs it: "-" when absent, quotes escaped (the regex only when there is one). */
const quoted = (value: string | undefined) =>
  value === undefined ? '"-"' : value.includes('"') || value.includes("\\") ? `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"` : `"${value}"`;

/** `127.0.0.1 - - [time] "GET / HTTP/1.1" 200 12 "-" "curl/8" app=hello worker=hello.0 rt=0.003 rid=…`, and `err=CODE` when the proxy answered itself. */
export function formatCombined(entry: AccessEntry, at: Date): string {
  const request = `${entry.method} ${entry.url} HTTP/${entry.httpVersion}`;
  return (
    `${entry.remoteAddr} - - [${timeLocalCached(at)}] ${quoted(request)} ${entry.status} ${entry.bytes} ` +
    `${quoted(entry.referer)} ${quoted(entry.userAgent)} app=${entry.app ?? "-"} worker=${entry.endpoint ?? "-"} ` +
    `rt=${(entry.ms / 1000).toFixed(3)} rid=${entry.requestId}${entry.error === undefined ? "" : ` err=${entry.error}`}`
  );
}

export function formatJson(entry: AccessEntry, at: Date): string {
  return JSON.stringify({ time: at.toISOString(), ...entry });
}

/** Told when the log cannot be written (a full or read-only disk): the lines are dropped, serving goes on. */
export type AccessLogErrorListener = (error: NodeJS.ErrnoException, droppedLines: number) => void;

export class AccessLog {
  private fd: number | undefined;
  private readonly format: (entry: AccessEntry, at: Date) => string;
  /** The lines of the current event-loop turn, written together at its end. */
  private pending = "";
  private pendingLines = 0;
  private scheduled = false;
  /** Lines lost to write errors since the log was opened. */
  dropped = 0;

  /** Throws if the file cannot be opened (the caller says so and serves without a log). */
  constructor(
    file: string,
    format: AccessLogFormat,
    private readonly onError: AccessLogErrorListener = () => undefined,
  ) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.fd = openSync(file, "a");
    this.format = format === "json" ? formatJson : formatCombined;
  }

  write(entry: AccessEntry): void {
    if (this.fd === undefined) return;
    this.pending += `${this.format(entry, new Date())}\n`;
    this.pendingLines += 1;
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  /**
   * One write() per event-loop turn, straight to the page cache as nginx
   * writes its log: no threadpool round trip (futex, eventfd) per line as
   * with a WriteStream. O_APPEND: each write() lands whole at the end of the
   * file, so the lines of several proxy processes never interleave. A write
   * that fails (ENOSPC, EROFS, EIO) drops that turn's lines and is reported:
   * a full disk must never take the proxy down.
   */
  private readonly flush = (): void => {
    this.scheduled = false;
    let text = Buffer.from(this.pending);
    const lines = this.pendingLines;
    this.pending = "";
    this.pendingLines = 0;
    if (this.fd === undefined || text.byteLength === 0) return;
    try {
      while (text.byteLength > 0) text = text.subarray(writeSync(this.fd, text));
    } catch (error) {
      this.dropped += lines;
      this.onError(error as NodeJS.ErrnoException, lines);
    }
  };

  close(): Promise<void> {
    this.flush();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    return Promise.resolve();
  }
}
