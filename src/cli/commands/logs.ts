/**
 * @module cli/commands/logs
 *
 * `tsgi-stack logs [APP] [-f] [-n LINES]`: the workers' output, read from the
 * log files the supervisor writes in <state_dir>/logs (`<app>.<slot>.out.log`
 * and `.err.log`), each line prefixed by app and slot, the files of all
 * slots and both streams merged by time (cli/logs/by-time.ts). Works whether
 * the stack runs or not; `-f` follows the files as they grow (and picks up
 * new slots, and starts a file over when it is rotated), like `tail -F`,
 * merging what each look finds by time. Only the end of each file is read:
 * `-n 3` of a 1 GB file reads a few kilobytes (cli/logs/tail.ts).
 *
 * `--access` reads the front proxy's access log instead (`proxy.access_log`),
 * with APP keeping that app's requests.
 */
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import type { StackConfig } from "../../config/schema.ts";
import { accessLogFile } from "../../stack/proxy-settings.ts";
import { SLOT_LOG_FILE } from "../../supervisor/log-keeper.ts";
import { resolveConfigFile } from "../config-file.ts";
import { loadOrFail } from "../load-config.ts";
import { UsageError } from "../usage-error.ts";
import { appOfAccessLine } from "../logs/access-lines.ts";
import { mergeByTime, type TimedLine, timeLines } from "../logs/by-time.ts";
import { FollowedFile, readLastLines } from "../logs/tail.ts";

const FOLLOW_POLL_MS = 250;
/** `--access APP -n N` reads back this many lines at most to find N of the app's. */
const ACCESS_SCAN_MAX_LINES = 1_000_000;

interface SlotLog {
  follower: FollowedFile;
  prefix: string;
  stream: "out" | "err";
  /** The time of the file's last stamped line read so far (by-time.ts). */
  lastStamp: number;
  /** Lines `-f` read but holds for the next look (see linesBefore). */
  held: TimedLine<SlotLog>[];
}

interface LogsFlags {
  config?: string;
  follow?: boolean;
  lines: string;
  access?: boolean;
}

function slotLogsOf(logDir: string, app: string | undefined): SlotLog[] {
  if (!existsSync(logDir)) return [];
  return readdirSync(logDir)
    .map((name) => ({ name, match: SLOT_LOG_FILE.exec(name) }))
    .filter(({ match }) => match && (!app || match.groups!.app === app))
    .sort((a, b) => a.name.localeCompare(b.name))
    .map(({ name, match }) => ({
      follower: new FollowedFile(path.join(logDir, name)),
      prefix: `${match!.groups!.app}.${match!.groups!.slot}`,
      stream: match!.groups!.stream as "out" | "err",
      lastStamp: -Infinity,
      held: [],
    }));
}

function print(lines: readonly TimedLine<SlotLog>[]): void {
  for (const { source, text } of lines) (source.stream === "err" ? process.stderr : process.stdout).write(`${source.prefix} | ${text}\n`);
}

/** The last `count` lines of a slot's file, taking the rest from its newest rotated file when it was just rotated. */
function lastLinesOf(log: SlotLog, count: number): string[] {
  const { lines, size } = readLastLines(log.follower.file, count);
  log.follower.fromEnd(size);
  const rotated = `${log.follower.file}.1`;
  const earlier = lines.length < count && existsSync(rotated) ? readLastLines(rotated, count - lines.length).lines : [];
  return [...earlier, ...lines];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The lines of `log` stamped before `cutoff` (when the look began), and the
 * unstamped ones after them; the rest are held for the next look. The files
 * are read one after the other: a line stamped after the look began may have
 * been written after an earlier file was read, and that file's line of the
 * same moment would then come a look later, out of order.
 */
function linesBefore(log: SlotLog, cutoff: number): TimedLine<SlotLog>[] {
  const lines = [...log.held, ...timeLines(log, log.follower.readNew())];
  const later = lines.findIndex((line) => line.at >= cutoff);
  log.held = later === -1 ? [] : lines.slice(later);
  return later === -1 ? lines : lines.slice(0, later);
}

async function showWorkerLogs(logDir: string, app: string | undefined, count: number, follow: boolean): Promise<void> {
  const logs = slotLogsOf(logDir, app);
  // Each file's last `count` lines hold the last `count` of all of them, whatever the order.
  print(mergeByTime(logs.map((log) => timeLines(log, lastLinesOf(log, count)))).slice(-count));
  if (!follow) return;
  const known = new Map(logs.map((log) => [log.follower.file, log]));
  for (;;) {
    for (const log of slotLogsOf(logDir, app)) if (!known.has(log.follower.file)) known.set(log.follower.file, log);
    const cutoff = Date.now();
    print(mergeByTime([...known.values()].map((log) => linesBefore(log, cutoff))));
    await sleep(FOLLOW_POLL_MS);
  }
}

/** The access log's file, or a one-line refusal when the config turns it off. */
function accessLogOf(config: StackConfig): string {
  if (config.proxy.access_log === "off") {
    throw new UsageError("proxy.access_log is off in the config: the front proxy keeps no access log to read", 1);
  }
  return accessLogFile(config);
}

/** The last `count` lines of the access log, of `app` alone when one is named: read back further until enough are found. */
function lastAccessLines(file: string, count: number, app: string | undefined): { lines: string[]; size: number } {
  const ofApp = (lines: string[]) => (app ? lines.filter((line) => appOfAccessLine(line) === app) : lines);
  for (let scan = count; ; scan *= 4) {
    const read = readLastLines(file, scan);
    const lines = ofApp(read.lines);
    if (lines.length >= count || read.lines.length < scan || scan >= ACCESS_SCAN_MAX_LINES) return { lines: lines.slice(-count), size: read.size };
  }
}

async function showAccessLog(config: StackConfig, app: string | undefined, count: number, follow: boolean): Promise<void> {
  const file = accessLogOf(config);
  const follower = new FollowedFile(file);
  const write = (lines: string[]) => {
    for (const line of lines) if (!app || appOfAccessLine(line) === app) process.stdout.write(`${line}\n`);
  };
  if (existsSync(file)) {
    const { lines, size } = lastAccessLines(file, count, app);
    follower.fromEnd(size);
    write(lines);
  }
  if (!follow) return;
  for (;;) {
    write(follower.readNew());
    await sleep(FOLLOW_POLL_MS);
  }
}

export function registerLogs(program: Command): void {
  program
    .command("logs")
    .description("show the workers' output (of one app, or of all), merged by time; or the access log")
    .argument("[app]", "only this app")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .option("-f, --follow", "keep printing new lines")
    .option("-n, --lines <n>", "lines to show first (the last of all files together)", "50")
    .option("--access", "the front proxy's access log (proxy.access_log) instead of the workers' output")
    .action(async (app: string | undefined, flags: LogsFlags) => {
      const config = loadOrFail(resolveConfigFile(flags.config));
      if (app && !(app in config.apps)) throw new UsageError(`no app named "${app}" (apps: ${Object.keys(config.apps).join(", ")})`, 1);
      const count = Number(flags.lines);
      if (!Number.isInteger(count) || count < 0) throw new UsageError(`-n ${flags.lines}: the number of lines is a whole number`);
      if (flags.access) return showAccessLog(config, app, count, flags.follow ?? false);
      return showWorkerLogs(path.join(config.state_dir, "logs"), app, count, flags.follow ?? false);
    });
}
