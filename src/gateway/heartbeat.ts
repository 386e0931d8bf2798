/**
 * @module gateway/heartbeat
 *
 * The blocked-event-loop check done from outside, as Gunicorn does it: the
 * worker touches a file every beat (`serve --heartbeat-file`, Gunicorn's
 * WorkerTmp.notify), and its supervisor kills the worker when the file's
 * time is older than the timeout (the arbiter's murder_workers). A worker run
 * this way starts no watchdog thread (gateway/watchdog.ts): the thread is a
 * second V8 isolate, ~8 MiB of every worker, and a supervisor that already
 * watches every worker can do its job for all of them.
 *
 * The file's rules (pid first, touched every beatPeriodMs, stale after
 * staleAfterMs) are the contract in contract/heartbeat.ts.
 *
 * The beat is a timer on the worker's event loop, so it stops exactly when
 * the loop is blocked; futimes on an open descriptor is one cheap system call.
 */
import { closeSync, futimesSync, openSync, unlinkSync, writeSync } from "node:fs";
import { beatPeriodMs } from "../contract/heartbeat.ts";

export interface Heartbeat {
  stop(): void;
}

/**
 * Writes this process's pid to `file`, then touches it every beat until
 * stop(), which removes it; the timer never keeps the process alive.
 */
export function startHeartbeat(file: string, timeoutMs: number): Heartbeat {
  let fd: number;
  try {
    fd = openSync(file, "w");
    writeSync(fd, `${process.pid}\n`);
  } catch (error) {
    // A read-only or full state dir: the worker serves unwatched (the supervisor skips a file not of this pid).
    process.stderr.write(`tsgi worker ${process.pid}: no heartbeat, ${file} cannot be written: ${(error as Error).message}\n`);
    return { stop() {} };
  }
  const timer = setInterval(() => {
    const now = new Date();
    try {
      futimesSync(fd, now, now);
    } catch {
      // A disk turned read-only refuses the beat: a missed beat, never an uncaught error that ends the worker.
    }
  }, beatPeriodMs(timeoutMs));
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      closeSync(fd);
      try {
        unlinkSync(file);
      } catch {
        // Removed already: nothing to clean.
      }
    },
  };
}
