/**
 * @module stack/leftovers
 *
 * What a stack process that died (SIGKILL, the OOM killer, a crash) leaves in
 * its state dir: pm2's daemon, still running the workers. No stack answers on
 * the control socket then, yet the workers hold their sockets and memory, so
 * `status` must not say a plain "not running" and `down` must stop them.
 *
 * Finding them reads the daemon's pid file only; stopping them connects to
 * that daemon (pm2 is imported then, not before: `status` stays light).
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { isAlive } from "../contract/pids.ts";
import { statePaths } from "../contract/state-dir.ts";

export interface Leftovers {
  /** The stack's pm2 daemon, alive with no stack process to drive it. */
  daemonPid: number;
}

/** The leftovers of a dead stack process in `stateDir`, or undefined when its pm2 daemon does not run. */
export function findLeftovers(stateDir: string): Leftovers | undefined {
  const pidFile = path.join(statePaths(stateDir).pm2Home, "pm2.pid");
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  return Number.isInteger(pid) && isAlive(pid) ? { daemonPid: pid } : undefined;
}

/** Stops what a dead stack process left: its workers (drained as at `down`) and pm2's daemon. Resolves with the workers' pm2 names. */
export async function stopLeftovers(stackId: string, stateDir: string): Promise<string[]> {
  const { Supervisor } = await import("../supervisor/supervisor.ts");
  const report = await new Supervisor({ stackId, stateDir }).stop();
  // Without its proxy, the stack kept links to its workers for nginx: they lead nowhere now.
  rmSync(statePaths(stateDir).upstreams, { recursive: true, force: true });
  return report.deleted;
}
