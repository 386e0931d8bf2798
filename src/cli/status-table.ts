/**
 * @module cli/status-table
 *
 * `tsgi-stack status` as text: one row per worker, like `pm2 ls`, then one per
 * static app, then what a person needs to act on, each under the table until
 * it is gone — a worker out of the proxy's pool and why, a worker that is not
 * running and why, a pool halted, an app running more or fewer workers than
 * the config says, a config file saved with errors, a reload that failed,
 * log lines lost to the disk — and the last few things the stack did.
 *
 * Plain data in (StackStatus, the control API's answer), text out: the
 * renderer knows nothing of sockets or terminals. Colour comes from the
 * caller's painter (cli/colour.ts) and only repeats the words: every state is
 * a word, so the table reads the same piped, with NO_COLOR, or in a log.
 */
import type { ActivityEntry, AppTraffic, PoolStatus, StackStatus, WorkerStatus } from "../stack/status.ts";
import type { StackLogWrites } from "../stack/log-writes.ts";
import { noColour, type Paint, type Tone } from "./colour.ts";

export interface RenderOptions {
  /** Colours for states and health (cli/colour.ts painterFor); none by default. */
  paint?: Paint;
  /** How many of the newest activity entries are listed (default 5; 0: none). */
  activity?: number;
}

/** One cell: its text, and the tone it is painted in when colour is on. */
interface Cell {
  text: string;
  tone?: Tone;
}

const HEADER = ["APP", "SLOT", "PID", "STATE", "HEALTH", "POOL", "UPTIME", "RESTARTS", "MEMORY", "CPU", "REQS", "ERRS"];

/** How long, in the coarsest unit that is not zero: 42s, 5m, 3h, 2d. */
export function duration(ms: number): string {
  if (ms <= 0) return "-";
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

/** pm2 reports RSS in bytes; shown in MiB (2^20 bytes), and labelled so. */
export function mebibytes(bytes: number): string {
  return bytes > 0 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : "-";
}

/** The tone of a slot state: ready is good; on the way up or down is in between; not running when it should is bad. */
function stateTone(state: string): Tone {
  if (state === "ready" || state === "online") return "good";
  if (state === "starting" || state === "stopping" || state === "launching") return "warn";
  if (state === "stopped") return "dim";
  return "bad";
}

function workerRow(row: WorkerStatus): Cell[] {
  const ready = row.state === "ready";
  return [
    { text: row.app },
    { text: String(row.slot) },
    { text: row.pid ? String(row.pid) : "-" },
    { text: row.state, tone: stateTone(row.state) },
    row.health === "unchecked" ? { text: "-", tone: "dim" } : { text: row.health, tone: row.health === "passing" ? "good" : "bad" },
    // A worker that is not ready is out for that reason (its state says it); only a ready one out of the pool is news.
    row.inPool ? { text: "in", tone: "good" } : { text: "out", tone: ready ? "bad" : "dim" },
    { text: duration(row.uptime) },
    { text: String(row.restarts), ...(row.restarts > 0 ? { tone: "warn" as const } : {}) },
    { text: mebibytes(row.memory) },
    { text: `${row.cpu}%` },
    { text: String(row.requests ?? 0) },
    { text: String(row.errors ?? 0), ...((row.errors ?? 0) > 0 ? { tone: "bad" as const } : {}) },
  ];
}

function staticRow(app: string, kind: string): Cell[] {
  return HEADER.map((_, column) => ({ text: column === 0 ? app : column === 3 ? kind : "-" }));
}

/** The table itself, its columns as wide as their widest cell (colour escapes do not count). */
function table(rows: Cell[][], paint: Paint): string[] {
  const all: Cell[][] = [HEADER.map((text) => ({ text })), ...rows];
  const widths = HEADER.map((_, column) => Math.max(...all.map((row) => row[column]!.text.length)));
  return all.map((row) =>
    row
      .map((cell, column) => {
        const padding = column === row.length - 1 ? "" : " ".repeat(widths[column]! - cell.text.length);
        return (cell.tone ? paint(cell.tone, cell.text) : cell.text) + padding;
      })
      .join("  ")
      .trimEnd(),
  );
}

/**
 * An app running another number of workers than the config says: a runtime
 * `scale`. `reload` keeps it (it rolls the workers that run, at their number);
 * the config's number comes back with `scale APP N`, a saved change to the
 * app in the file (stack/diff.ts: a roll or a resize to the file's), or the
 * next `up`.
 */
export function scaledLine(pool: PoolStatus): string | undefined {
  if (pool.configured === undefined || pool.configured === pool.instances) return undefined;
  return (
    `${pool.app}: ${pool.instances} worker(s) running, the config says ${pool.configured} ` +
    `(scaled at run time: \`reload\` keeps ${pool.instances}; \`scale ${pool.app} ${pool.configured}\`, a saved change to ${pool.app} in the file, or the next \`up\` returns to ${pool.configured})`
  );
}

/** Fewer workers in the proxy's balancing than ready: some failed their health check, or stopped answering. */
function poolLine(pool: PoolStatus, paint: Paint): string | undefined {
  if (pool.error) return `${pool.app}: ${paint("bad", "halted")}: ${pool.error.message}`;
  if (pool.inPool !== undefined && pool.inPool < pool.ready) {
    return `${pool.app}: ${paint("bad", `${pool.inPool} of ${pool.ready} ready worker(s) in the pool`)}`;
  }
  return undefined;
}

function trafficLine(traffic: AppTraffic): string {
  return `${traffic.app}: ${traffic.requests} request(s), ${traffic.errors} error(s), ${traffic.rate.toFixed(1)}/s, p50 ${traffic.p50Ms} ms, p95 ${traffic.p95Ms} ms`;
}

function activityLine(entry: ActivityEntry, paint: Paint): string {
  const time = entry.at.length >= 19 ? entry.at.slice(11, 19) : entry.at;
  return `  ${time}  ${entry.app ? `${entry.app} ` : ""}${entry.kind} ${entry.ok ? paint("good", "ok") : paint("bad", "FAILED")}: ${entry.message}`;
}

/** A titled block of lines, or nothing when there are none. */
function section(title: string, lines: string[]): string[] {
  return lines.length === 0 ? [] : [title, ...lines];
}

/** One line per log that lost lines to a failing disk (absent in the answer of a stack older than the count). */
export function logWriteLines(logWrites: StackLogWrites | undefined): string[] {
  if (!logWrites) return [];
  const names: Record<keyof StackLogWrites, string> = { access: "access log", stack: "stack output" };
  return (Object.keys(names) as (keyof StackLogWrites)[])
    .filter((log) => logWrites[log].dropped > 0)
    .map((log) => {
      const { dropped, lastError } = logWrites[log];
      return `${names[log]}: ${dropped} line(s) not written${lastError ? ` (last at ${lastError.at}: ${lastError.message})` : ""}`;
    });
}

/** The status table and what goes under it. Fields a stack older than this CLI does not send are taken as empty. */
export function renderStatus(status: StackStatus, options: RenderOptions = {}): string {
  const paint = options.paint ?? noColour;
  const workers = status.workers.map((row) => ({ ...row, inPool: row.inPool ?? row.state === "ready", health: row.health ?? "unchecked" }));
  const statics = (status.apps ?? []).filter((app) => app.kind === "static" || app.kind === "redirect");
  const rows = [...workers.map(workerRow), ...statics.map((app) => staticRow(app.app, app.kind))];
  const stateNote = status.state === "running" ? "" : ` ${paint("warn", status.state)}`;

  const outOfPool = workers
    .filter((row) => row.state === "ready" && !row.inPool)
    .map((row) => `${row.app}.${row.slot}: ${paint("bad", "out of the pool")}: ${row.outReason ?? (row.health === "failing" ? "failing its health check" : "no reason given")}`);
  // A worker that is not serving says why (pm2 unable to restart it, say), next to its row's state.
  const stuck = workers.filter((row) => row.state !== "ready" && row.lastError).map((row) => `${row.app}.${row.slot}: ${row.lastError}`);
  const pools = status.pools.flatMap((pool) => [poolLine(pool, paint), scaledLine(pool)].filter((line): line is string => line !== undefined));
  const configErrors = status.configErrors ?? [];
  const reloadErrors = Object.entries(status.reloadErrors ?? {});
  const activity = options.activity ?? 5;

  return [
    `stack ${status.stackId} (pid ${status.pid})${stateNote} ${
      status.upstreams === undefined
        ? `serving ${status.listen.map((address) => `http://${address}`).join(", ")}`
        : `without a front proxy: its workers are reached through ${status.upstreams}/`
    }`,
    ...table(rows, paint),
    ...statics.map((app) => `${app.app}: static files from ${app.folder ?? "?"}, ${status.upstreams === undefined ? "served by the proxy" : "for the front to serve (nginx: alias)"} (no workers)`),
    ...pools,
    ...outOfPool,
    ...stuck,
    ...section(
      `${paint("bad", "config file has errors")}; the running config stays until they are fixed:`,
      configErrors.map((line) => `  ${line}`),
    ),
    ...reloadErrors.flatMap(([app, failure]) => [
      `${app}: ${paint("bad", "reload failed")} at ${failure.at}, the running workers keep serving: ${failure.message}`,
      ...(failure.frame ? failure.frame.split("\n").map((line) => `    ${line}`) : []),
    ]),
    ...logWriteLines(status.logWrites),
    ...section("traffic:", (status.traffic ?? []).map((traffic) => `  ${trafficLine(traffic)}`)),
    ...section(
      "recent activity:",
      activity > 0 ? (status.activity ?? []).slice(-activity).map((entry) => activityLine(entry, paint)) : [],
    ),
  ].join("\n");
}
