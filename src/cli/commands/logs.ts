/**
 * @module cli/commands/logs
 *
 * `tsgi-stack logs [APP] [-f] [-n LINES]`: the workers' output, read from the
 * log files the supervisor writes in <state_dir>/logs (`<app>.<slot>.out.log`
 * and `.err.log`), each line prefixed by app and slot. Works whether the
 * stack runs or not; `-f` follows the files as they grow (and picks up new
 * slots), like `tail -F`.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { resolveConfigFile } from "../config-file.ts";
import { loadOrFail } from "../load-config.ts";
import { UsageError } from "../usage-error.ts";

const LOG_FILE = /^(?<app>[a-z][a-z0-9_-]*)\.(?<slot>\d+)\.(?<stream>out|err)\.log$/;
const FOLLOW_POLL_MS = 250;

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
    .map((name) => ({ name, match: LOG_FILE.exec(name) }))
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

/** Reads what was appended to `log` since its offset. */
function readNew(log: LogFile): void {
  const size = statSync(log.file).size;
  if (size < log.offset) log.offset = 0; // truncated or rotated: start over
  if (size === log.offset) return;
  const buffer = Buffer.alloc(size - log.offset);
  const fd = openSync(log.file, "r");
  try {
    readSync(fd, buffer, 0, buffer.length, log.offset);
  } finally {
    closeSync(fd);
  }
  log.offset = size;
  print(log, buffer.toString("utf8"));
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
        const text = readFileSync(log.file, "utf8");
        log.offset = Buffer.byteLength(text);
        const lines = text.split("\n").filter((line, index, all) => line !== "" || index < all.length - 1);
        print(log, lines.slice(-keep).join("\n") + (lines.length ? "\n" : ""));
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
