/**
 * @module stack/state-dir
 *
 * `up`'s first step: state_dir made and checked writable — itself and each
 * folder of it the stack writes to (pm2's home, sockets/, heartbeats/,
 * logs/), room on its disk, and stack.log for `up -d` — before anything starts. Otherwise a
 * read-only or full disk fails later and worse: pm2 cannot open a worker's
 * log and the pool halts with no cause, or the stack dies on a raw EROFS
 * stack trace. The error names the path at fault and the system's reason.
 */
import { accessSync, constants, existsSync, mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { statePaths } from "../supervisor/slots.ts";
import { StateDirUnwritable } from "./errors.ts";

/**
 * Why `dir` could not be made: mkdir's recursive mode reports ENOENT for a
 * read-only parent (it retries the parent and gives that error), so the
 * nearest folder that exists is asked itself; its EROFS or EACCES is the cause.
 */
function causeOf(dir: string, error: Error): { at: string; cause: Error } {
  let existing = path.dirname(dir);
  while (!existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  try {
    accessSync(existing, constants.W_OK);
  } catch (denied) {
    return { at: existing, cause: denied as Error };
  }
  return { at: dir, cause: error };
}

function checkWritable(stateDir: string, dir: string): void {
  try {
    accessSync(dir, constants.W_OK);
  } catch (error) {
    throw new StateDirUnwritable(stateDir, error as Error, dir);
  }
}

/** A write probe of one page: a disk with no room for it cannot hold pm2's pid and config files either. */
const PROBE_BYTES = 4096;

/**
 * Writes and removes a file in state_dir: a full disk passes every access
 * check, and then pm2 fails half-way (an empty JSON file, a daemon with no
 * pid file) and the workers never come up. ENOSPC is told here instead.
 */
function probeWrite(stateDir: string): void {
  const probe = path.join(stateDir, `.write-probe-${process.pid}`);
  try {
    writeFileSync(probe, Buffer.alloc(PROBE_BYTES));
  } catch (error) {
    throw new StateDirUnwritable(stateDir, error as Error);
  } finally {
    rmSync(probe, { force: true });
  }
}

/** Makes state_dir if need be and checks that the stack can write in it; throws StateDirUnwritable naming the path at fault. */
export function prepareStateDir(stateDir: string): void {
  try {
    mkdirSync(stateDir, { recursive: true });
  } catch (error) {
    const { at, cause } = causeOf(path.resolve(stateDir), error as Error);
    throw new StateDirUnwritable(stateDir, cause, at);
  }
  checkWritable(stateDir, stateDir);
  // A folder of it may be a mount of its own (logs/ on another disk): each one there is checked too.
  const { pm2Home, sockets, heartbeats, logs } = statePaths(stateDir);
  for (const dir of [pm2Home, sockets, heartbeats, logs]) if (existsSync(dir)) checkWritable(stateDir, dir);
  probeWrite(stateDir);
}

/** Opens `<state_dir>/stack.log` for appending (`up -d`'s output); the error names the file. */
export function openStackLog(stateDir: string): { file: string; fd: number } {
  const file = path.join(stateDir, "stack.log");
  try {
    return { file, fd: openSync(file, "a") };
  } catch (error) {
    throw new StateDirUnwritable(stateDir, error as Error, file);
  }
}
