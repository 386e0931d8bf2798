/**
 * @module supervisor/crash-policy
 *
 * What to do when a worker exits without being asked to (the reliability matrix, R5;
 * gunicorn's Arbiter halts on WORKER_BOOT_ERROR / APP_LOAD_ERROR instead of
 * restart-looping). The verdicts themselves are contract/crash-policy.ts,
 * shared with `serve`'s own arbiter; this module adds pm2's side of them and
 * how a halt is told. Pure functions over plain facts, so every rule is
 * tested without a process:
 *
 * - exit code 3 (BOOT_ERROR) or 4 (APP_LOAD_ERROR): halt the pool now — a
 *   restart would fail the same way. pm2 is told not to restart on these codes
 *   (stop_exit_codes), so it does not even try once.
 * - an exit before minUptimeMs is a crash; more than maxRestarts crashes in a
 *   row halt the pool ("crash-loop"). pm2 backs off between the restarts.
 * - anything else (a recycle, a timeout, SIGKILL — which pm2 reports as code 0)
 *   is replaced by pm2, and a worker that lived minUptimeMs resets the count.
 *
 * We count crashes ourselves rather than trust pm2's max_restarts: pm2 counts
 * only within min_uptime × max_restarts of the process's creation, and with
 * its growing back-off a crash loop soon falls outside that window and then
 * restarts forever (every 15 s).
 */
import { constants as osConstants } from "node:os";
import { exitCodeName, FATAL_EXIT_CODES } from "../contract/exit-codes.ts";
import type { PoolErrorReason, RestartPolicy } from "./types.ts";

export { type ExitFacts, judgeExit, judgeNotReady, type Verdict } from "../contract/crash-policy.ts";

/** pm2's schema refuses a min_uptime under 100 ms (the start fails); our own count uses the real value. */
const PM2_MIN_UPTIME_FLOOR_MS = 100;

/**
 * pm2's own limits, set so that pm2 never gives up before we do: it flags
 * "restart overlimit" when its unstable count reaches max_restarts, which is
 * the same exit on which judgeExit halts.
 */
export function pm2Limits(policy: RestartPolicy): { maxRestarts: number; minUptimeMs: number; backoffMs: number; stopExitCodes: number[] } {
  return {
    maxRestarts: policy.maxRestarts + 1,
    minUptimeMs: Math.max(PM2_MIN_UPTIME_FLOOR_MS, policy.minUptimeMs),
    backoffMs: Math.max(1, policy.backoffMs),
    stopExitCodes: [...FATAL_EXIT_CODES],
  };
}

/** `code 4 (APP_LOAD_ERROR)`, `code 1`: an exit code with its name when it is one of the worker's. */
export function describeExitCode(exitCode: number): string {
  const name = exitCodeName(exitCode);
  return `code ${exitCode}${name ? ` (${name})` : ""}`;
}

/**
 * The line of a failed worker's stderr that says best what went wrong: the
 * gateway worker's own `tsgi-stack:` line; else, for any other program (a
 * command app), the last error Node (or another runtime) printed, such as
 * `Error: listen EADDRINUSE …` — not the `Node.js v20…` trailer, a stack
 * frame, a source excerpt or a caret under it; else the last line with
 * something in it.
 */
export function telltaleLine(stderr: readonly string[]): string | undefined {
  const reversed = [...stderr].reverse();
  const ours = reversed.find((line) => line.startsWith("tsgi-stack:"));
  if (ours) return ours;
  const error = reversed.find((line) => ERROR_LINE.test(line));
  if (error) return error.trim();
  return reversed.find((line) => line.trim() !== "" && !NOISE.some((noise) => noise.test(line)))?.trim() ?? stderr.at(-1);
}

/** `Error: …`, `TypeError [ERR_X]: …`, `node:events:497 … Error: …`, `Uncaught …`: a line that names an error and says what it was. */
const ERROR_LINE = /^(?:Uncaught )?(?:[A-Z][A-Za-z]*)?(?:Error|Exception)(?: \[[A-Z_0-9]+\])?: \S/;

/** Lines that are never the reason: the runtime's version trailer, stack frames, and the caret under a source excerpt. */
const NOISE: readonly RegExp[] = [/^Node\.js v\d/, /^\s+at /, /^\s*\^+\s*$/, /^\s*throw /];

/**
 * How a worker ended, in words: `killed by SIGKILL` when a signal ended it
 * (never "exited with code 0", which is how pm2 reports a signal), else
 * `exited with code 1`.
 */
export function describeEnd(exitCode: number, signal: string | undefined): string {
  return signal ? `killed by ${signal}` : `exited with ${describeExitCode(exitCode)}`;
}

/**
 * The signal a shell reports in its exit code (128 + n, as sh does for a
 * child killed by signal n): how a `command:` app's server, run under
 * /bin/sh -c, tells that it was killed. Undefined for any other code.
 */
export function signalOfShellCode(exitCode: number): string | undefined {
  if (exitCode <= 128 || exitCode > 128 + 64) return undefined;
  const number = exitCode - 128;
  return Object.entries(osConstants.signals).find(([, value]) => value === number)?.[0];
}

/** One line for a pool error, e.g. `worker 0 exited with code 4 (APP_LOAD_ERROR): tsgi-stack: cannot load app …`. */
export function describeHalt(
  reason: PoolErrorReason,
  slot: number,
  exitCode: number | undefined,
  crashes: number,
  lastLine: string | undefined,
  signal?: string,
): string {
  const code = signal ? ` (killed by ${signal})` : exitCode === undefined ? "" : ` with ${describeExitCode(exitCode)}`;
  const what =
    reason === "crash-loop"
      ? `worker ${slot} crashed ${crashes} times in a row (last exit${code || " without becoming ready"}): crash loop, pool stopped`
      : reason === "launch-failed"
        ? `worker ${slot} could not be launched`
        : `worker ${slot} exited${code}: pool halted instead of restarting`;
  return lastLine ? `${what}: ${lastLine}` : what;
}
