/**
 * @module contract/pids
 *
 * Whether a process runs, as every part of the stack must judge it: the
 * supervisor reaping workers, the stack finding what a dead stack process
 * left, the CLI waiting for a stack to stop. A zombie counts as gone — pm2's
 * daemon is a child of init once detached, and init may take its time to
 * reap it. Here, with no import, so that the CLI can ask without loading
 * the supervisor.
 */
import { readFileSync } from "node:fs";

/** True while `pid` runs. A zombie (exited, not yet reaped by its parent) counts as gone. */
export function isAlive(pid: number): boolean {
  if (!pid) return false;
  return answersSignal(pid) && !isZombie(pid);
}

/**
 * The fields of /proc/PID/stat that follow the parenthesised command name
 * (which may hold spaces and parentheses): [0] is the state (field 3 of
 * proc(5)), [1] the parent's pid, [19] the start time. Undefined when there
 * is no such entry (the process is gone, or this is not Linux).
 */
export function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

function isZombie(pid: number): boolean {
  const fields = procStat(pid);
  // No /proc (not Linux): nothing tells a zombie, so the signal's answer stands. On Linux the entry also vanishes
  // when the zombie is reaped between the signal and the read: asked again, the signal says so.
  if (fields === undefined) return !answersSignal(pid);
  return fields[0] === "Z";
}

function answersSignal(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
