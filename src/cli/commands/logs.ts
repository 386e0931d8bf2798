/**
 * @module cli/commands/logs
 *
 * `tsgi-stack logs [APP] [-f] [-n LINES]`: the workers' output, read from the
 * log files the supervisor writes in <state_dir>/logs (`<app>.<slot>.out.log`
 * and `.err.log`), each line prefixed by app and slot. Works whether the
 * stack runs or not; `-f` follows the files as they grow (and picks up new
 * slots, and starts a file over when it is rotated), like `tail -F`. Only the
 * end of each file is read: `-n 3` of a 1 GB file reads a few kilobytes.
 */
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { resolveConfigFile } from "../config-file.ts";
import { loadOrFail } from "../load-config.ts";
import { UsageError } from "../usage-error.ts";
import { SLOT_LOG_FILE } from "../../supervisor/log-keeper.ts";

const FOLLOW_POLL_MS = 250;
/** `-f` prints what was appended this much at a time: a flooding app costs the reader no more memory than this. */
const FOLLOW_CHUNK = 1024 * 1024;
/** `-n` reads the end of a file this much at a time, backwards, and never more than TAIL_MAX_BYTES in all. */
const TAIL_CHUNK = 64 * 1024;
const TAIL_MAX_BYTES = 16 * 1024 * 1024;

interface LogFile {
  file: string;
  prefix: string;
  stream: "out" | "err";
  offset: number;
  partial: string;
}

function logFilesOf(logDir: string, app: string | undefined): LogFile[] {
  if (!existsSync(logDir)) return [];
  return readdirSync(logDir)
    .map((name) => ({ name, match: SLOT_LOG_FILE.exec(name) }))
    .filter(({ match }) => match && (!app || match.groups!.app === app))
    .sort((a, b) => a.name.localeCompare(b.name))
    .map(({ name, match }) => ({
      file: path.join(logDir, name),
      prefix: `${match!.groups!.app}.${match!.groups!.slot}`,
      stream: match!.groups!.stream as "out" | "err",
      offset: 0,
      partial: "",
    }));
}

function print(log: LogFile, text: string): void {
  const lines = (log.partial + text).split("\n");
  log.partial = lines.pop() ?? "";
  const out = log.stream === "err" ? process.stderr : process.stdout;
  for (const line of lines) out.write(`${log.prefix} | ${line}\n`);
}

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

/** Reads what was appended to `log` since its offset, FOLLOW_CHUNK at a time. */
function readNew(log: LogFile): void {
  const size = statSync(log.file).size;
  if (size < log.offset) log.offset = 0; // truncated or rotated: start over
  if (size === log.offset) return;
  const fd = openSync(log.file, "r");
  try {
    while (log.offset < size) {
      const buffer = Buffer.alloc(Math.min(FOLLOW_CHUNK, size - log.offset));
      const read = readSync(fd, buffer, 0, buffer.length, log.offset);
      if (read === 0) break;
      log.offset += read;
      print(log, buffer.subarray(0, read).toString("utf8"));
    }
  } finally {
    closeSync(fd);
  }
}

export function registerLogs(program: Command): void {
  program
    .command("logs")
    .description("show the workers' output (of one app, or of all)")
    .argument("[app]", "only this app")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .option("-f, --follow", "keep printing new lines")
    .option("-n, --lines <n>", "lines of each file to show first", "50")
    .action(async (app: string | undefined, flags: { config?: string; follow?: boolean; lines: string }) => {
      const config = loadOrFail(resolveConfigFile(flags.config));
      if (app && !(app in config.apps)) throw new UsageError(`no app named "${app}" (apps: ${Object.keys(config.apps).join(", ")})`, 1);
      const logDir = path.join(config.state_dir, "logs");
      const keep = Number(flags.lines);
      const logs = logFilesOf(logDir, app);
      for (const log of logs) {
        const { lines, size } = readLastLines(log.file, keep);
        log.offset = size;
        // Just rotated, the file holds fewer lines than asked for: the rest are the last of its newest rotated file.
        const rotated = `${log.file}.1`;
        const earlier = lines.length < keep && existsSync(rotated) ? readLastLines(rotated, keep - lines.length).lines : [];
        const all = [...earlier, ...lines];
        print(log, all.length ? `${all.join("\n")}\n` : "");
      }
      if (!flags.follow) return;
      const known = new Map(logs.map((log) => [log.file, log]));
      for (;;) {
        for (const log of logFilesOf(logDir, app)) if (!known.has(log.file)) known.set(log.file, log);
        for (const log of known.values()) if (existsSync(log.file)) readNew(log);
        await new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS));
      }
    });
}
