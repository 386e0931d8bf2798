/**
 * @module test/helpers/stack
 *
 * A whole stack for the integration tests, started as a user starts one: a
 * temp dir holding a tsgi.yaml (`stackDir`), `tsgi-stack up -c FILE` run in
 * that dir and waited for until it prints its "serving on" line (`up`),
 * `tsgi-stack status -c FILE --json` (`statusJson`), and the pid of the
 * stack's pm2 daemon, read from its state dir (`pm2DaemonPid`).
 *
 * Nothing here stops what it starts: `up` hands each child to `onSpawn` as
 * soon as it is spawned (so that a stack that fails to start is still known),
 * and the test stops it by its pid and checks that its pids are gone.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "vitest";
import { BIN, runCli, sleep } from "./serve.ts";

/** A new temp dir (named `prefix` + random) holding `tsgi.yaml` with `config`. */
export function stackDir(config: string, prefix = "tsgi-stack-"): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const file = path.join(dir, "tsgi.yaml");
  writeFileSync(file, config);
  return { dir, file };
}

/** The "serving on" line of `up`: group 1 is the proxy's first URL, without the trailing slash. */
export const SERVING = /serving on (http:\/\/[^/\s]+)\//;

export interface Up {
  child: ChildProcess;
  /** "http://127.0.0.1:PORT" of the front proxy, as printed. */
  url: string;
  /** What matched the `serving` pattern: [1] is `url`, then any group of the caller's pattern. */
  match: RegExpExecArray;
  /** Everything `up` has printed so far, stdout and stderr together. */
  output: () => string;
  /** Resolves with the exit code once `up` is gone. */
  exited: Promise<number | null>;
}

/**
 * Runs `tsgi-stack up -c FILE` in FILE's folder and resolves once its output
 * matches `serving` (by default SERVING; a pattern of the caller's must keep
 * the URL as group 1). Throws with the output if `up` exits first or
 * `timeoutMs` passes.
 */
export async function up(
  file: string,
  {
    timeoutMs = 60_000,
    serving = SERVING,
    onSpawn,
    args = [],
    keepOutput = Infinity,
    env,
  }: {
    timeoutMs?: number;
    serving?: RegExp;
    onSpawn?: (child: ChildProcess) => void;
    args?: string[];
    /** Keep only the last this many characters of the output (a flooding app's test must not hold all of it). */
    keepOutput?: number;
    /** Variables added to the stack's environment. */
    env?: Record<string, string>;
  } = {},
): Promise<Up> {
  const child = spawn(process.execPath, [BIN, "up", "-c", file, ...args], {
    cwd: path.dirname(file),
    stdio: ["ignore", "pipe", "pipe"],
    ...(env ? { env: { ...process.env, ...env } } : {}),
  });
  onSpawn?.(child);
  let output = "";
  const found: { match?: RegExpExecArray | null } = {};
  const add = (data: Buffer) => {
    output += data;
    // Matched before trimming: a long output must not lose the line waited for.
    found.match ??= serving.exec(output);
    if (output.length > keepOutput) output = output.slice(-keepOutput);
  };
  child.stdout!.on("data", add);
  child.stderr!.on("data", add);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = found.match;
    if (match) return { child, url: match[1]!, match, output: () => output, exited };
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`up did not start:\n${output}`);
    await sleep(100);
  }
}

/** `tsgi-stack status -c FILE --json`, which must exit 0: its answer, parsed. */
export async function statusJson(file: string): Promise<any> {
  const result = await runCli(["status", "-c", file, "--json"]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

/**
 * The pid in the pm2 daemon's pid file, for a stack whose tsgi.yaml in `dir`
 * has state_dir .tsgi (the default); undefined while there is no such file.
 */
export function pm2DaemonPid(dir: string): number | undefined {
  const pidFile = path.join(dir, ".tsgi", "pm2", "pm2.pid");
  return existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8")) : undefined;
}

/**
 * What an integration file's afterAll does: a stack a failed test left up is
 * stopped with Ctrl-C first (so that it stops its own workers and pm2), then
 * SIGKILLed; every pid seen (workers, pm2 daemons) is killed if still alive;
 * the temp dirs go.
 */
export async function cleanUpStacks(started: Set<ChildProcess>, seenPids: Set<number>, dirs: string[]): Promise<void> {
  const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;
  for (const child of started) if (running(child)) process.kill(child.pid!, "SIGINT");
  const deadline = Date.now() + 30_000;
  while ([...started].some(running) && Date.now() < deadline) await sleep(100);
  for (const child of started) if (running(child)) process.kill(child.pid!, "SIGKILL");
  for (const dir of dirs) {
    const daemon = pm2DaemonPid(dir);
    if (daemon !== undefined) seenPids.add(daemon);
  }
  for (const pid of seenPids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone already (it may exit between a check and the kill).
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
