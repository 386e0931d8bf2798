/**
 * @module proxy/access-log
 *
 * The front proxy's access log: one line per request, in nginx's "combined"
 * format with the stack's own fields appended (app, worker, upstream time,
 * request id), or as one JSON object per line. Written to a file with a
 * plain append stream: a fixed line format needs nothing a logging library
 * adds, and the stream buffers, so the request path never waits on the disk.
 */
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import path from "node:path";
import type { AccessEntry } from "./server.ts";

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

/** A header value as nginx logs it: "-" when absent, quotes escaped. */
const quoted = (value: string | undefined) => `"${(value ?? "-").replace(/["\\]/g, (c) => `\\${c}`)}"`;

/** `127.0.0.1 - - [time] "GET / HTTP/1.1" 200 12 "-" "curl/8" app=hello worker=hello.0 rt=0.003 rid=…` */
export function formatCombined(entry: AccessEntry, at: Date): string {
  const request = `${entry.method} ${entry.url} HTTP/${entry.httpVersion}`;
  return (
    `${entry.remoteAddr} - - [${timeLocal(at)}] ${quoted(request)} ${entry.status} ${entry.bytes} ` +
    `${quoted(entry.referer)} ${quoted(entry.userAgent)} app=${entry.app ?? "-"} worker=${entry.endpoint ?? "-"} ` +
    `rt=${(entry.ms / 1000).toFixed(3)} rid=${entry.requestId}`
  );
}

export function formatJson(entry: AccessEntry, at: Date): string {
  return JSON.stringify({ time: at.toISOString(), ...entry });
}

export class AccessLog {
  private readonly stream: WriteStream;
  private readonly format: (entry: AccessEntry, at: Date) => string;

  constructor(file: string, format: AccessLogFormat) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.stream = createWriteStream(file, { flags: "a" });
    this.format = format === "json" ? formatJson : formatCombined;
  }

  write(entry: AccessEntry): void {
    this.stream.write(`${this.format(entry, new Date())}\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.stream.end(resolve));
  }
}
