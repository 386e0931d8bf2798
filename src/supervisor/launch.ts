/**
 * @module supervisor/launch
 *
 * One slot of a pool as a pm2 process: the command line, environment, limits
 * and log files. Pure: the same pool, slot and address always give the same
 * ProcessSpec, which the tests check without starting anything.
 *
 * - module apps run one gateway worker each:
 *   `node <package>/dist/cli/bin.js serve MODULE --no-arbiter --socket PATH --multiprocess …`,
 *   and pm2 waits for its `process.send("ready")` (wait_ready).
 * - command apps run through the shell with PORT set; pm2 cannot know when
 *   they listen, so readiness is ours (the port accepts a connection).
 */
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { killTimeoutMs } from "../contract/stopping.ts";
import { formatHostPort } from "../contract/address.ts";
import { SCRIPT_NAME_HEADER } from "../contract/script-name.ts";
import { uwsgiSocketBeside } from "../contract/state-dir.ts";
import { settingArgs } from "../contract/worker-settings.ts";
import type { ProcessSpec } from "./pm2-client.ts";
import { pm2Limits } from "./crash-policy.ts";
import { formatWorkerAddress, logFiles, type StatePaths } from "./slots.ts";
import { heartbeatFile } from "./heartbeats.ts";
import type { PoolSpec, WorkerAddress } from "./types.ts";

/**
 * The built CLI entry point, which runs `tsgi-stack serve` for a worker and
 * `tsgi-stack up` for a detached stack. Built, this module is
 * dist/supervisor/launch.js and the entry point its neighbour; when our
 * sources run unbuilt (the test suite imports them), it is still the built one
 * in dist/, which `npm test` builds first: Node runs no .ts entry point.
 */
export const CLI_BIN = fileURLToPath(
  new URL(import.meta.url.endsWith(".ts") ? "../../dist/cli/bin.js" : "../cli/bin.js", import.meta.url),
);

/** The program a module app's workers run. */
export const DEFAULT_WORKER_BIN = CLI_BIN;

export interface LaunchContext {
  stackId: string;
  paths: StatePaths;
  workerBin: string;
  nodePath: string;
  shell: string;
  /** Module workers also serve uwsgi, on a socket beside their HTTP one (a stack run without its proxy, for nginx's uwsgi_pass). */
  uwsgi?: boolean;
}

/**
 * A command that is one simple command runs as `exec COMMAND`, so the shell
 * becomes the server: its pid is the server's, pm2 measures the server's
 * memory (max_memory_restart works) and the kill signal reaches it directly.
 * Anything with shell syntax (`cd x && node server.js`, pipes, variables set
 * in front) runs as written; pm2's tree kill still stops all of it.
 */
const SHELL_SYNTAX = /[;&|()`\n]|^\s*[A-Za-z_][A-Za-z0-9_]*=|^\s*(exec|cd|export|if|for|while|case|until|set|\{|!)\b/;
/**
 * Shell builtins that `exec` cannot run (no program of that name exists, or
 * it would not do the same): `exit 1` as a command runs as written, rather
 * than failing with "exec: exit: not found".
 */
const BUILTIN = /^\s*(exit|return|:|\.|source|eval|trap|unset|shift|readonly|times|wait|ulimit|umask|alias|break|continue)(\s|$)/;

/** Quoted text is an argument, whatever it contains (`node -e "f(x)"`). */
const QUOTED = /'[^']*'|"(?:[^"\\]|\\.)*"/g;

export function shellCommand(command: string): string {
  const unquoted = command.replace(QUOTED, "''");
  return SHELL_SYNTAX.test(unquoted) || BUILTIN.test(unquoted) ? command : `exec ${command.trimStart()}`;
}

function listenArgs(address: WorkerAddress): string[] {
  return address.kind === "unix" ? ["--socket", address.path] : ["--http", formatHostPort(address)];
}


/**
 * `serve`'s arguments for one worker of a module app. With a timeout, the
 * worker beats into `heartbeat` (when given) and the supervisor watches it,
 * instead of each worker running a watchdog thread (supervisor/heartbeats.ts).
 */
export function serveArgs(pool: PoolSpec, address: WorkerAddress, heartbeat?: string, uwsgi = false): string[] {
  if (!pool.module) throw new TypeError(`app ${pool.name}: kind "module" needs a module`);
  return [
    "serve",
    pool.module,
    "--no-arbiter",
    ...listenArgs(address),
    ...(uwsgi && address.kind === "unix" ? ["--uwsgi", uwsgiSocketBeside(address.path)] : []),
    "--interface",
    pool.interface ?? "auto",
    // The configured worker settings, written by the same table that serve parses them with.
    ...settingArgs(pool),
    // Set even for one instance: a pool can be scaled, and the flag says "a supervisor runs several".
    "--multiprocess",
    // The front proxy says where a path route mounts the app; only it reaches the worker's socket.
    "--script-name-header",
    SCRIPT_NAME_HEADER,
    // TRACE is the front proxy's to refuse or let through (an app's allow_trace): only it reaches the worker.
    "--allow-trace",
    ...(heartbeat && pool.timeoutMs > 0 ? ["--heartbeat-file", heartbeat] : []),
  ];
}

/**
 * The `KEY=value` pairs that every process launched for this stack carries in
 * its environment (TSGI_STACK from slotEnv; PM2_HOME from the stack's own pm2
 * daemon), narrowed to one app's slot when given: what finds a worker that
 * pm2 lost track of (probes.processesMarked).
 */
export function workerMarks(stackId: string, pm2Home: string, slot?: { app: string; slot: number }): string[] {
  const marks = [`TSGI_STACK=${stackId}`, `PM2_HOME=${pm2Home}`];
  return slot ? [...marks, `TSGI_APP=${slot.app}`, `TSGI_SLOT=${slot.slot}`] : marks;
}

function slotEnv(context: LaunchContext, pool: PoolSpec, slot: number, address: WorkerAddress): Record<string, string> {
  const env: Record<string, string> = {
    ...pool.env,
    TSGI_STACK: context.stackId,
    TSGI_APP: pool.name,
    TSGI_SLOT: String(slot),
    // Read back by `status` for a stack this process did not start (e.g. after `up --detach`).
    TSGI_ADDRESS: formatWorkerAddress(address),
    // Read back by a new stack process that finds this worker running: it adopts only what it would launch itself.
    TSGI_POOL_DIGEST: poolDigest(context, pool),
  };
  if (address.kind === "tcp" && pool.kind === "command") env.PORT = String(address.port);
  return env;
}

/**
 * What a worker of `pool` runs as, in one string: the pool's spec (but not
 * its instance count, which scaling changes without replacing anyone) and
 * the programs that run it. Equal digests mean a running worker is one this
 * stack would launch now.
 */
export function poolDigest(context: LaunchContext, pool: PoolSpec): string {
  const { instances: _instances, ...spec } = pool;
  const what = JSON.stringify([spec, context.nodePath, context.workerBin, context.shell, ...(context.uwsgi ? ["uwsgi"] : [])]);
  return createHash("sha1").update(what).digest("hex").slice(0, 16);
}

export function processSpec(context: LaunchContext, pool: PoolSpec, slot: number, name: string, address: WorkerAddress): ProcessSpec {
  const logs = logFiles(context.paths, pool.name, slot);
  const module = pool.kind === "module";
  if (!module && !pool.command) throw new TypeError(`app ${pool.name}: kind "command" needs a command`);
  return {
    name,
    executable: module ? context.nodePath : context.shell,
    args: module ? [context.workerBin, ...serveArgs(pool, address, heartbeatFile(context.paths, name), context.uwsgi)] : ["-c", shellCommand(pool.command!)],
    cwd: pool.cwd,
    env: slotEnv(context, pool, slot, address),
    waitReady: module,
    listenTimeoutMs: pool.readyTimeoutMs,
    killTimeoutMs: killTimeoutMs(pool.gracefulTimeoutMs),
    ...(pool.maxMemoryBytes ? { maxMemoryBytes: pool.maxMemoryBytes } : {}),
    ...pm2Limits(pool.restart),
    outFile: logs.out,
    errFile: logs.err,
  };
}
