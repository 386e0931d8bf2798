/**
 * @module contract/crash-policy
 *
 * What a worker's unasked-for exit means, for both our arbiters — the
 * supervisor and `serve`'s own master — as pure verdicts (gunicorn's Arbiter
 * halts on WORKER_BOOT_ERROR / APP_LOAD_ERROR instead of restart-looping):
 *
 * - exit code 3 (BOOT_ERROR) or 4 (APP_LOAD_ERROR): halt now — a restart
 *   would fail the same way;
 * - an exit before minUptimeMs is a crash; more than maxRestarts crashes in a
 *   row halt ("crash-loop");
 * - anything else (a recycle, a timeout, a signal) is replaced, and a worker
 *   that lived minUptimeMs resets the count.
 */
import { ExitCode } from "./exit-codes.ts";

/** How many crashes in a row are restarted, and what counts as one. */
export interface RestartPolicy {
  /** Crashes (uptime below minUptimeMs) in a row that are restarted; one more and the pool halts. */
  maxRestarts: number;
  /** First restart delay (ms); it grows while workers keep crashing. */
  backoffMs: number;
  /** A worker that lived this long (ms) was not crash-looping: its crash count starts again. */
  minUptimeMs: number;
}

/** Why the workers of an app stopped being restarted. */
export type HaltReason = "app-load-error" | "boot-error" | "crash-loop";

export interface ExitFacts {
  exitCode: number;
  /** How long this generation of the worker ran (ms). */
  uptimeMs: number;
  /** Crashes in a row before this exit. */
  crashesSoFar: number;
}

export type Verdict =
  /** Stop the pool and report why. */
  | { action: "halt"; reason: HaltReason; crashes: number }
  /** The worker is replaced; `crashes` is the new count in a row. */
  | { action: "replace"; crashes: number };

export function judgeExit(facts: ExitFacts, policy: RestartPolicy): Verdict {
  if (facts.exitCode === ExitCode.APP_LOAD_ERROR) return { action: "halt", reason: "app-load-error", crashes: facts.crashesSoFar + 1 };
  if (facts.exitCode === ExitCode.BOOT_ERROR) return { action: "halt", reason: "boot-error", crashes: facts.crashesSoFar + 1 };
  const crashes = facts.uptimeMs < policy.minUptimeMs ? facts.crashesSoFar + 1 : 0;
  if (crashes > policy.maxRestarts) return { action: "halt", reason: "crash-loop", crashes };
  return { action: "replace", crashes };
}

/** A worker that never became ready counts as a crash (it is restarted, or the pool halts). */
export function judgeNotReady(crashesSoFar: number, policy: RestartPolicy): Verdict {
  const crashes = crashesSoFar + 1;
  return crashes > policy.maxRestarts ? { action: "halt", reason: "crash-loop", crashes } : { action: "replace", crashes };
}

