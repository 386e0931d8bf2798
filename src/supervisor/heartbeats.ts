/**
 * @module supervisor/heartbeats
 *
 * Gunicorn's murder_workers for pm2's gateway workers. Each worker of a
 * module app with a timeout runs with `--heartbeat-file` and touches its file
 * every beat (gateway/heartbeat.ts) from its event loop; a file older than
 * the timeout (plus one beat of slack) means the loop is blocked — an
 * infinite loop in a request, where no timer of the worker's can run — and
 * the supervisor SIGKILLs the worker for pm2 to replace, as uWSGI's harakiri
 * does. Slow requests that merely await are the worker's own business: it
 * drops them at the timeout and leaves gracefully.
 *
 * The verdict is a pure function of the workers and their files' times, so
 * it is tested without processes; the supervisor reads the files and kills.
 *
 * The file's rules — the worker's beat period, when a file counts as stale —
 * are the worker contract in contract/heartbeat.ts, shared with the worker.
 */
import path from "node:path";
import { beatPeriodMs, staleAfterMs, unresponsiveAfterMs } from "../contract/heartbeat.ts";
import type { StatePaths } from "./slots.ts";

/** The heartbeat file of a worker process, by its pm2 name (one per slot and launch). */
export function heartbeatFile(paths: StatePaths, processName: string): string {
  return path.join(paths.heartbeats, `${processName.replace(/[^A-Za-z0-9_.-]/g, "_")}.beat`);
}

/** A worker that should be beating. */
export interface BeatingWorker {
  app: string;
  slot: number;
  pid: number;
  file: string;
  timeoutMs: number;
}

/** What the supervisor found of a worker's file: its time, and the pid written in it (the generation that made it). */
export interface BeatReading {
  mtimeMs: number;
  pid: number;
}

export interface BlockedWorker extends BeatingWorker {
  silentMs: number;
}

/**
 * The workers whose heartbeat is older than their timeout plus one beat. A
 * file not there yet (the worker is still booting) or written by another
 * process (the slot's previous generation) says nothing about this one.
 */
export function blockedWorkers(workers: readonly BeatingWorker[], read: (file: string) => BeatReading | undefined, now: number): BlockedWorker[] {
  const blocked: BlockedWorker[] = [];
  for (const worker of workers) {
    const reading = read(worker.file);
    if (!reading || reading.pid !== worker.pid) continue;
    const silentMs = now - reading.mtimeMs;
    if (silentMs > staleAfterMs(worker.timeoutMs)) blocked.push({ ...worker, silentMs: Math.round(silentMs) });
  }
  return blocked;
}

/**
 * Each worker's heartbeat, read as "is it turning its event loop now?": true
 * for a file silent past unresponsiveAfterMs (the worker leaves balancing
 * until it beats again), false for a fresh one; a worker with no file of its
 * own yet is left out of the map (it says nothing either way).
 */
export function responsiveness(workers: readonly BeatingWorker[], read: (file: string) => BeatReading | undefined, now: number): Map<BeatingWorker, boolean> {
  const found = new Map<BeatingWorker, boolean>();
  for (const worker of workers) {
    const reading = read(worker.file);
    if (!reading || reading.pid !== worker.pid) continue;
    found.set(worker, now - reading.mtimeMs > unresponsiveAfterMs(worker.timeoutMs));
  }
  return found;
}

/** How often the supervisor looks: as often as the most frequent beat among its workers, at most once a second. */
export function checkPeriodMs(workers: readonly BeatingWorker[]): number {
  return Math.min(1000, ...workers.map((worker) => beatPeriodMs(worker.timeoutMs)));
}
