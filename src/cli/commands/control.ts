/**
 * @module cli/commands/control
 *
 * The commands that act on a running stack through its control socket:
 * `status [--watch]`, `down`, `reload [APP]`, `restart [APP]`, `scale APP N|+K|-K`.
 * Each finds the stack by its config file (the state dir is in it), and says
 * so plainly when no stack of that file is running. `reload`, `restart` and
 * `scale` print each worker as it comes and goes while the stack works (the
 * control API answers only at the end). The table is cli/status-table.ts.
 */
import path from "node:path";
import type { Command } from "commander";
import {
  callControl,
  ControlRequestFailed,
  controlSocketPath,
  type PoolOutcome,
  StackLeftBehind,
  StackNotRunning,
} from "../../stack/control.ts";
import { findLeftovers, stopLeftovers } from "../../stack/leftovers.ts";
import { isAlive } from "../../contract/pids.ts";
import { stackIdFor } from "../../stack/stack-id.ts";
import type { ReloadOutcome, StackStatus } from "../../stack/stack.ts";
import { resolveConfigFile, stateDirOf } from "../config-file.ts";
import { NotAllReady, ReloadFailed, StopTimeout, UsageError } from "../usage-error.ts";
import { painterFor } from "../colour.ts";
import { renderStatus } from "../status-table.ts";
import { type WorkerSnapshot, withWorkerProgress } from "../worker-progress.ts";
import { parseScaleCount, targetInstances } from "../scale-count.ts";
import { watchStatus } from "../status-watch.ts";

export { renderStatus } from "../status-table.ts";

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

export function registerControlCommands(program: Command): void {
  program
    .command("status")
    .description(
      "show every worker of the running stack (app, slot, pid, state, health, pool, uptime, restarts, memory, cpu, requests, errors), its static apps, " +
        "and under the table what needs attention: workers out of the pool, halts, config and reload errors",
    )
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .option("--json", "print the status as JSON")
    .option("-w, --watch", "show it again every interval, in place on a terminal, until Ctrl-C")
    .option("--interval <seconds>", "between two refreshes of --watch", "2")
    .action(async (flags: { config?: string; json?: boolean; watch?: boolean; interval: string }) => {
      const paint = painterFor(process.stdout);
      const render = (status: StackStatus) => (flags.json ? JSON.stringify(status, null, flags.watch ? undefined : 2) : renderStatus(status, { paint }));
      if (!flags.watch) {
        process.stdout.write(`${render((await control(flags.config, "GET", "/status")) as StackStatus)}\n`);
        return;
      }
      const seconds = Number(flags.interval);
      if (!Number.isFinite(seconds) || seconds < 0.1) throw new UsageError(`status --interval ${flags.interval}: seconds, a number from 0.1 up`);
      resolveConfigFile(flags.config); // a missing file fails now, not in every frame
      // Ctrl-C stops watching; so does a reader that went away (`status --watch | head`): both are an exit 0.
      const stop = new Promise<void>((resolve) => {
        process.once("SIGINT", () => resolve());
        process.stdout.on("error", (error: NodeJS.ErrnoException) => {
          if (error.code !== "EPIPE") throw error;
          resolve();
        });
      });
      await watchStatus({
        // A stack that is gone (or not yet up) is a frame that says so: watching goes on until Ctrl-C.
        frame: () => control(flags.config, "GET", "/status").then(render, (error: Error) => `tsgi-stack: ${error.message}`),
        intervalMs: seconds * 1000,
        out: process.stdout,
        // --json --watch is one document per line, for programs: never drawn in place.
        inPlace: process.stdout.isTTY === true && !flags.json,
        stop,
      });
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
      const { restarted, pools } = await withProgress(flags.config, () => control(flags.config, "POST", `/restart${query}`));
      failIfShort((pools ?? []) as PoolOutcome[], "restart");
      say(`restarted ${(restarted as string[]).join(", ")}`);
    });

  program
    .command("reload")
    .description("re-read the config file and apply its changes, then replace the workers of one app (or of every app) with no downtime: new workers ready before old ones go")
    .argument("[app]", "the app to reload (default: every app)")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .action(async (app: string | undefined, flags: { config?: string }) => {
      const query = app ? `?app=${encodeURIComponent(app)}` : "";
      const outcome = (await withProgress(flags.config, () => control(flags.config, "POST", `/reload${query}`, RELOAD_TIMEOUT_MS))) as ReloadOutcome;
      for (const line of describeReload(outcome)) say(line);
      const failed = outcome.config === "invalid" || outcome.reloads.some((report) => !report.ok);
      if (failed) throw new ReloadFailed("reload failed: the running workers and config keep serving");
    });

  program
    .command("scale")
    .description("run N workers for an app, or +K / -K more or fewer than it runs now (`scale web +1`)")
    .argument("<app>", "the app")
    .argument("<n>", "the number of workers, or +K / -K")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .action(async (app: string, text: string, flags: { config?: string }) => {
      const count = parseScaleCount(app, text);
      const before = (await control(flags.config, "GET", "/status")) as StackStatus;
      const instances = targetInstances(app, count, before);
      const was = before.pools.find((pool) => pool.app === app)?.instances;
      const { pool } = await withProgress(flags.config, () => control(flags.config, "POST", `/scale?app=${encodeURIComponent(app)}&n=${instances}`));
      if (pool) failIfShort([pool as PoolOutcome], `scale ${app} ${text}`);
      say(`${app} now runs ${instances} worker(s)${count.kind === "relative" && was !== undefined ? ` (was ${was})` : ""}`);
    });
}

const say = (line: string) => process.stdout.write(`tsgi-stack: ${line}\n`);

/**
 * Runs a control request and prints each worker that comes, goes or changes
 * state meanwhile (cli/worker-progress.ts), on a terminal and in a log alike.
 */
function withProgress<T>(configFlag: string | undefined, work: () => Promise<T>): Promise<T> {
  const socket = controlSocketPath(stateDirOf(resolveConfigFile(configFlag)));
  const read = async () => {
    const answer = await callControl(socket, "GET", "/status", 2000);
    return answer?.status === 200 ? (answer.body.workers as WorkerSnapshot[]) : undefined;
  };
  return withWorkerProgress(work, { read, print: say });
}
