/**
 * @module cli/commands/up
 *
 * `tsgi-stack up [-c FILE] [--watch] [--detach]`: validate the config, start
 * the front proxy and every pool (each worker's ready line as it comes), print
 * one line per app as it stands then (cli/up-summary.ts) and the URL to open,
 * then stream the workers' output prefixed by app and slot. SIGHUP reloads
 * (the config's changes, then every app's workers, with no downtime), as
 * `tsgi-stack reload` does; `--watch` reloads an app when its files change. Ctrl-C (SIGINT) or
 * SIGTERM drains and stops everything it started; a second signal says how
 * long the drain may take, a third leaves at once. `--detach` runs the same stack in
 * the background (its own lines in <state_dir>/stack.log; the workers' output
 * only in their log files) and returns once it serves; `down` stops it.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { type Command, Option } from "commander";
import type { StackConfig } from "../../config/schema.ts";
import { Stack } from "../../stack/stack.ts";
import { eventWords } from "../../stack/event-words.ts";
import { adminHandler } from "../../admin/server.ts";
import { StackOutput } from "../../stack/output.ts";
import { createStackLog, printedLine, stackLogFormat } from "../../stack/stack-log.ts";
import { callControl, controlSocketPath } from "../../stack/control.ts";
import { DetachedStartFailed, StackAlreadyRunning, StackStartError, StateDirInUse } from "../../stack/errors.ts";
import { openStackLog, prepareStateDir } from "../../stack/state-dir.ts";
import { TsgiStackError } from "../../errors.ts";
import type { SupervisorEvent } from "../../supervisor/types.ts";
import type { StackStatus } from "../../stack/status.ts";
import type { RelayedLine as LogLine } from "../../supervisor/log-keeper.ts";
import { CLI_BIN } from "../../supervisor/launch.ts";
import { resolveConfigFile } from "../config-file.ts";
import { loadOrFail } from "../load-config.ts";
import { UsageError } from "../usage-error.ts";
import { ExitTally, summaryLines } from "../up-summary.ts";
import { readyLine, type WorkerSnapshot, workerChanges } from "../worker-progress.ts";

const DETACH_READY_TIMEOUT_MS = 60_000;

const say = (line: string) => process.stdout.write(`tsgi-stack: ${line}\n`);

/** The line `up` prints for an event: reloads are said by the reloader itself (stack/reload.ts), with their error's source. */
function upEventLine(event: SupervisorEvent): string | undefined {
  return event.type === "reload-done" || event.type === "reload-failed" ? undefined : eventWords(event);
}

/** What `up --watch` says when no app has anything to watch: otherwise the flag would do nothing, silently. */
export function watchNotice(file: string, config: StackConfig, watch: boolean): string | undefined {
  if (!watch || Object.values(config.apps).some((app) => (app.watch ?? []).length > 0)) return undefined;
  return `--watch: no app in ${path.basename(file)} has \`watch\` globs, so nothing is watched (add \`watch: ["src/**"]\` to an app)`;
}

/** What `up` runs besides the config: the flags that the detached stack is given again. */
interface UpMode {
  watch: boolean;
  /** `--no-proxy`: the workers and the admin listener only; a front such as nginx reaches the workers (stack/upstream-links.ts). */
  noProxy: boolean;
}

/** The last line of a start: where the stack serves (or, without its proxy, where a front reaches it). */
function servingLine(status: StackStatus): string {
  const admin = `status page http://${status.admin}/, JSON at /status, metrics at /metrics`;
  if (status.upstreams !== undefined) {
    return `serving without a front proxy: nginx (\`tsgi-stack export nginx\`) reaches the workers through ${status.upstreams}/  (${admin}; Ctrl-C stops)`;
  }
  const urls = [...status.listen.map((address) => `http://${address}/`), ...status.listenTls.map((address) => `https://${address}/`)];
  return `serving on ${urls.join(", ")}  (${admin}; Ctrl-C stops)`;
}

async function runForeground(file: string, config: StackConfig, { watch, noProxy }: UpMode, workerOutput: boolean): Promise<void> {
  prepareStateDir(config.state_dir);
  // From here on, the stack's output may be stack.log on a disk that fills: written and counted, never thrown.
  const output = new StackOutput();
  // The stack's own lines and the relayed ones, as pino records: pretty on a terminal, JSON lines elsewhere.
  const log = createStackLog(output, stackLogFormat());
  const say = log.say;
  const notice = watchNotice(file, config, watch);
  if (notice) say(notice);
  // The summary says how each app stands when it is printed, exits since up included (cli/up-summary.ts).
  const exits = new ExitTally();
  const currentWorkers = (): WorkerSnapshot[] => {
    try {
      return stack.status().workers;
    } catch {
      return []; // a ready line without its time rather than none
    }
  };
  const stack = new Stack({
    configFile: file,
    config,
    watch,
    noProxy,
    say,
    outputFailures: () => output.failures.snapshot(),
    admin: adminHandler,
    // The workers' lines, relayed from their log files at a bounded rate (supervisor/log-keeper.ts).
    ...(workerOutput ? { onLog: (line: LogLine) => log.relay(line) } : {}),
    onEvent: (event) => {
      exits.note(event);
      const line = event.type === "worker-ready" ? readyLine(event, currentWorkers()) : upEventLine(event);
      if (line) say(line);
    },
  });
  let signals = 0;
  let stopAskedAt = 0;
  const onSignal = (signal: string) => {
    signals += 1;
    if (signals === 2) {
      const longest = Math.max(0, ...Object.values(config.apps).map((app) => app.graceful_timeout));
      const left = Math.max(0, longest - (Date.now() - stopAskedAt));
      say(`still stopping: the workers' drain may take ${(left / 1000).toFixed(1)} s more; ${signal} once more abandons them (they keep running under pm2)`);
      return;
    }
    if (signals > 2) {
      say(`${signal} again: leaving now; \`tsgi-stack up\` again cleans up what is left`);
      process.exit(130);
    }
    say(`${signal}: stopping`);
    stopAskedAt = Date.now();
    void stack.stop();
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  // nginx's and Gunicorn's reload signal.
  process.on("SIGHUP", () => {
    say("SIGHUP: reloading");
    void stack.reload().catch((error: Error) => say(`reload: ${error.message}`));
  });

  try {
    await stack.start();
  } catch (error) {
    // Each failed app's own output and its "halted" line are above: the last word says only which, once.
    if (error instanceof StackStartError) {
      throw new StackStartError(
        error.reports.map((report) => `app "${report.app}" did not start (why is above); nothing was left running`),
        error.reports,
      );
    }
    throw error instanceof TsgiStackError ? error : new UsageError((error as Error).message, 1);
  }
  say(`stack ${stack.stackId} (pid ${process.pid}), state in ${path.relative(process.cwd(), stack.stateDir) || stack.stateDir}`);
  const status = stack.status();
  for (const line of summaryLines(config, status, exits.exits)) log.summary(line);
  say(servingLine(status));
  await stack.stopped;
  say("stopped");
  process.exit(0);
}

async function runDetached(file: string, config: StackConfig, { watch, noProxy }: UpMode): Promise<void> {
  prepareStateDir(config.state_dir);
  const { file: logFile, fd: out } = openStackLog(config.state_dir);
  // The workers' output is in their own log files already: stack.log keeps the stack's own lines, not a second copy.
  const args = [CLI_BIN, "up", "-c", file, "--no-worker-output", ...(watch ? ["--watch"] : []), ...(noProxy ? ["--no-proxy"] : [])];
  const child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", out, out], cwd: process.cwd() });
  child.unref();
  let exited: number | null | undefined;
  child.once("exit", (code) => (exited = code));
  const deadline = Date.now() + DETACH_READY_TIMEOUT_MS;
  // Each worker as it comes up, from the status read while waiting (cli/worker-progress.ts).
  let seen: WorkerSnapshot[] = [];
  while (Date.now() < deadline && exited === undefined) {
    const answer = await callControl(controlSocketPath(config.state_dir), "GET", "/status", 2000);
    if (answer?.status === 200) {
      const workers = (answer.body as StackStatus).workers;
      for (const line of workerChanges(seen, workers)) say(line);
      seen = workers;
    }
    if (answer?.status === 200 && answer.body.state === "running") {
      for (const line of summaryLines(config, answer.body as StackStatus)) process.stdout.write(`${line}\n`);
      say(`running in the background (pid ${child.pid}); logs: ${logFile}; \`tsgi-stack down -c ${path.relative(process.cwd(), file)}\` stops it`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  // stack.log holds JSON records: the last ones are shown in their words.
  const tail = readFileSync(logFile, "utf8").split("\n").slice(-20).map(printedLine).join("\n");
  if (exited === undefined && child.pid) process.kill(child.pid, "SIGTERM");
  throw new DetachedStartFailed(`the detached stack did not start${exited !== undefined ? ` (exit ${exited})` : ""}:\n${tail}`, { at: logFile });
}

export function registerUp(program: Command): void {
  program
    .command("up")
    .description("start the whole stack from the YAML config: front proxy and every app's workers")
    .option("-c, --config <file>", "the config file (default ./tsgi.yaml)")
    .option("-w, --watch", "development: reload an app's workers when its `watch` files change (a broken save keeps the old workers serving)")
    .option("-d, --detach", "run in the background; `tsgi-stack down` stops it")
    .option("--no-proxy", "no front proxy: run the workers (serving HTTP and uwsgi) and the admin listener, for nginx in front (`tsgi-stack export nginx`)")
    // What --detach runs in the background: its stack.log is not to hold the workers' output a second time.
    .addOption(new Option("--no-worker-output", "do not print the workers' output (it is in their log files)").hideHelp())
    .action(async (flags: { config?: string; detach?: boolean; watch?: boolean; proxy?: boolean; workerOutput?: boolean }) => {
      const file = resolveConfigFile(flags.config);
      const config = loadOrFail(file);
      const running = await callControl(controlSocketPath(config.state_dir), "GET", "/status", 5000);
      const other = running?.body?.configFile as string | undefined;
      if (running && other !== undefined && path.resolve(other) !== path.resolve(file)) {
        throw new StateDirInUse(path.relative(path.dirname(file), config.state_dir) || config.state_dir, file, other, running.body?.pid);
      }
      if (running) {
        throw new StackAlreadyRunning(`the stack of ${file} is already running (pid ${running.body?.pid}); \`tsgi-stack status\` shows it`, file);
      }
      const mode: UpMode = { watch: flags.watch ?? false, noProxy: flags.proxy === false };
      if (flags.detach) await runDetached(file, config, mode);
      else await runForeground(file, config, mode, flags.workerOutput ?? true);
    });
}
