/**
 * @module cli/commands/control
 *
 * The commands that act on a running stack through its control socket:
 * `status`, `down`, `reload [APP]`, `restart [APP]`, `scale APP N`. Each finds the stack by
 * its config file (the state dir is in it), and says so plainly when no stack
 * of that file is running.
 */
import path from "node:path";
import type { Command } from "commander";
import { callControl, ControlRequestFailed, controlSocketPath, type PoolOutcome, StackLeftBehind, StackNotRunning } from "../../stack/control.ts";
import { findLeftovers, stopLeftovers } from "../../stack/leftovers.ts";
import { isAlive } from "../../contract/pids.ts";
import { stackIdFor } from "../../stack/stack-id.ts";
import type { ReloadOutcome, StackStatus } from "../../stack/stack.ts";
import type { StackLogWrites } from "../../stack/log-writes.ts";
import type { StatusRow } from "../../supervisor/types.ts";
import { resolveConfigFile, stateDirOf } from "../config-file.ts";
import { NotAllReady, ReloadFailed, StopTimeout, UsageError } from "../usage-error.ts";

/** A rolling reload waits for every new worker to be ready and every old one to drain. */
const RELOAD_TIMEOUT_MS = 15 * 60_000;

/** What `reload` prints: the config's changes or errors, then each app's outcome. */
export function describeReload(outcome: ReloadOutcome): string[] {
  const lines: string[] = [];
  if (outcome.config === "invalid") {
    lines.push("the config file has errors; nothing was changed:");
    lines.push(...outcome.configErrors.map((line) => `  ${line}`));
    return lines;
  }
  lines.push(...outcome.changes.map((line) => `config: ${line}`));
  for (const report of outcome.reloads) {
    if (report.ok) lines.push(`${report.app}: reloaded ${report.replaced} worker${report.replaced === 1 ? "" : "s"} in ${report.ms} ms`);
    else {
      lines.push(`${report.app}: reload FAILED, the running workers keep serving: ${report.error?.message ?? "no detail"}`);
      lines.push(...(report.error?.stderr ?? []).slice(-10).map((line) => `    ${line}`));
    }
  }
  if (lines.length === 0) lines.push("nothing to reload");
  return lines;
}

async function control(configFlag: string | undefined, method: "GET" | "POST", route: string, timeoutMs?: number): Promise<any> {
  const file = resolveConfigFile(configFlag);
  const socket = controlSocketPath(stateDirOf(file));
  // Two config files in one folder share its .tsgi by default: the stack answering there must be this file's.
  const status = await callControl(socket, "GET", "/status", route === "/status" ? timeoutMs : undefined);
  if (!status) throw notRunning(file);
  const owner = status.body?.configFile as string | undefined;
  if (owner !== undefined && path.resolve(owner) !== path.resolve(file)) throw new StackNotRunning(file, owner);
  const answer = method === "GET" && route === "/status" ? status : await callControl(socket, method, route, timeoutMs);
  if (!answer) throw new StackNotRunning(file);
  if (answer.status !== 200) throw new ControlRequestFailed(answer.body?.error ?? `the stack answered ${answer.status}`, answer.status, answer.body?.code);
  return answer.body;
}

/** Why no stack answers: plainly not running, or its process died and left pm2's daemon and workers running. */
function notRunning(file: string): StackNotRunning | StackLeftBehind {
  const leftovers = findLeftovers(stateDirOf(file));
  return leftovers ? new StackLeftBehind(file, leftovers.daemonPid) : new StackNotRunning(file);
}

/** `restart` and `scale` fail, naming the app and why, when an app ended short of ready workers. */
function failIfShort(pools: readonly PoolOutcome[], what: string): void {
  const short = pools.filter((pool) => pool.error !== undefined || pool.ready < pool.instances);
  if (short.length === 0) return;
  const lines = short.map((pool) => `${pool.app}: ${pool.ready} of ${pool.instances} worker(s) ready${pool.error ? `: ${pool.error}` : ""}`);
  throw new NotAllReady(`${what} did not complete: ${lines.join("; ")}`);
}

function duration(ms: number): string {
  if (ms <= 0) return "-";
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

const mebibytes = (bytes: number) => (bytes > 0 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : "-");

/** The status table, like `pm2 ls`: one row per worker, then one per static app (served by the proxy: no pid of its own). */
export function renderStatus(status: StackStatus): string {
  const header = ["APP", "SLOT", "PID", "STATE", "UPTIME", "RESTARTS", "MEMORY", "CPU"];
  const rows = status.workers.map((row: StatusRow) => [
    row.app,
    String(row.slot),
    row.pid ? String(row.pid) : "-",
    row.state,
    duration(row.uptime),
    String(row.restarts),
    mebibytes(row.memory),
    `${row.cpu}%`,
  ]);
  // `apps` is absent in the answer of a stack started before it existed.
  const statics = (status.apps ?? []).filter((app) => app.kind === "static");
  for (const app of statics) rows.push([app.app, "-", "-", "static", "-", "-", "-", "-"]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd();
  const errors = status.pools.filter((pool) => pool.error).map((pool) => `${pool.app}: ${pool.error!.message}`);
  // A worker that is not serving says why (pm2 unable to restart it, say), next to its row's state.
  const stuck = status.workers.filter((row) => row.state !== "ready" && row.lastError).map((row) => `${row.app}.${row.slot}: ${row.lastError}`);
  return [
    `stack ${status.stackId} (pid ${status.pid}) serving ${status.listen.map((address) => `http://${address}`).join(", ")}`,
    line(header),
    ...rows.map(line),
    ...statics.map((app) => `${app.app}: static files from ${app.folder ?? "?"}, served by the proxy (no workers)`),
    ...errors,
    ...stuck,
    ...logWriteLines(status.logWrites),
  ].join("\n");
}

/** One line per log that lost lines to a failing disk (absent in the answer of a stack older than the count). */
function logWriteLines(logWrites: StackLogWrites | undefined): string[] {
  if (!logWrites) return [];
  const names: Record<keyof StackLogWrites, string> = { access: "access log", stack: "stack output" };
  return (Object.keys(names) as (keyof StackLogWrites)[])
    .filter((log) => logWrites[log].dropped > 0)
    .map((log) => {
      const { dropped, lastError } = logWrites[log];
      return `${names[log]}: ${dropped} line(s) not written${lastError ? ` (last at ${lastError.at}: ${lastError.message})` : ""}`;
    });
}

export function registerControlCommands(program: Command): void {
  program
    .command("status")
    .description("show every worker of the running stack (app, slot, pid, state, uptime, restarts, memory, cpu) and its static apps")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .option("--json", "print the status as JSON")
    .action(async (flags: { config?: string; json?: boolean }) => {
      const status = (await control(flags.config, "GET", "/status")) as StackStatus;
      process.stdout.write(`${flags.json ? JSON.stringify(status, null, 2) : renderStatus(status)}\n`);
    });

  program
    .command("down")
    .description("stop the running stack: drain and stop every worker, then the proxy")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .action(async (flags: { config?: string }) => {
      const file = resolveConfigFile(flags.config);
      const stateDir = stateDirOf(file);
      // A stack process that died left its workers under pm2's daemon: no stack to ask, so they are stopped from here.
      const leftovers = (await callControl(controlSocketPath(stateDir), "GET", "/status")) ? undefined : findLeftovers(stateDir);
      if (leftovers) {
        const stopped = await stopLeftovers(stackIdFor(file), stateDir);
        process.stdout.write(`tsgi-stack: the stack process of ${file} was gone; stopped what it left: ${stopped.length} worker(s) and pm2's daemon (pid ${leftovers.daemonPid})\n`);
        return;
      }
      const status = (await control(flags.config, "GET", "/status")) as StackStatus;
      await control(flags.config, "POST", "/down");
      // Wait for the stack process itself to be gone: `down` returning means nothing is left.
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline && isAlive(status.pid)) await new Promise((resolve) => setTimeout(resolve, 100));
      if (isAlive(status.pid)) throw new StopTimeout(`the stack (pid ${status.pid}) is still stopping after 120 s`, status.pid);
      process.stdout.write(`tsgi-stack: stopped stack ${status.stackId}\n`);
    });

  program
    .command("restart")
    .description("replace the workers of one app (or of every app) on the running config, each new one ready before its old one goes")
    .argument("[app]", "the app to restart (default: every app)")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .action(async (app: string | undefined, flags: { config?: string }) => {
      const query = app ? `?app=${encodeURIComponent(app)}` : "";
      const { restarted, pools } = await control(flags.config, "POST", `/restart${query}`);
      failIfShort((pools ?? []) as PoolOutcome[], "restart");
      process.stdout.write(`tsgi-stack: restarted ${(restarted as string[]).join(", ")}\n`);
    });

  program
    .command("reload")
    .description("re-read the config file and apply its changes, then replace the workers of one app (or of every app) with no downtime: new workers ready before old ones go")
    .argument("[app]", "the app to reload (default: every app)")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .action(async (app: string | undefined, flags: { config?: string }) => {
      const query = app ? `?app=${encodeURIComponent(app)}` : "";
      const outcome = (await control(flags.config, "POST", `/reload${query}`, RELOAD_TIMEOUT_MS)) as ReloadOutcome;
      const lines = describeReload(outcome);
      process.stdout.write(lines.map((line) => `tsgi-stack: ${line}\n`).join(""));
      const failed = outcome.config === "invalid" || outcome.reloads.some((report) => !report.ok);
      if (failed) throw new ReloadFailed("reload failed: the running workers and config keep serving");
    });

  program
    .command("scale")
    .description("run N workers for an app")
    .argument("<app>", "the app")
    .argument("<n>", "the number of workers")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .action(async (app: string, count: string, flags: { config?: string }) => {
      if (!/^\d+$/.test(count) || Number(count) < 1) throw new UsageError(`scale ${app} ${count}: N must be a whole number >= 1`);
      const { pool } = await control(flags.config, "POST", `/scale?app=${encodeURIComponent(app)}&n=${count}`);
      if (pool) failIfShort([pool as PoolOutcome], `scale ${app} ${count}`);
      process.stdout.write(`tsgi-stack: ${app} now runs ${count} worker(s)\n`);
    });
}
