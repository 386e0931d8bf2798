/**
 * @module gateway/watchdog
 *
 * The last line of --timeout: a request stuck in synchronous code (an
 * infinite loop) blocks the event loop, so no timer in the worker can notice
 * it. A small thread watches a heartbeat the main thread writes into shared
 * memory; when the heartbeat is older than the timeout, the thread writes one
 * line to stderr and SIGKILLs the process, and the supervisor replaces it —
 * what Gunicorn's arbiter does to a worker that stops notifying, and uWSGI's
 * harakiri. Requests that are merely slow (awaiting I/O) are handled by the
 * worker's own timer, which can stop them gracefully.
 */
import { Worker } from "node:worker_threads";
import { beatPeriodMs } from "../contract/heartbeat.ts";

export interface Watchdog {
  stop(): void;
}

// Runs in the watchdog thread; plain JavaScript, evaluated as CommonJS.
const WATCHDOG_SOURCE = `
const { workerData } = require("node:worker_threads");
const { writeSync } = require("node:fs");
const beat = new Float64Array(workerData.heartbeat);
setInterval(() => {
  const silentFor = Date.now() - beat[0];
  if (silentFor <= workerData.timeoutMs) return;
  writeSync(2, "tsgi worker " + process.pid + ": event loop blocked for " + silentFor +
    " ms (timeout " + workerData.timeoutMs + " ms): killing the worker for replacement\\n");
  process.kill(process.pid, "SIGKILL");
}, workerData.checkEveryMs);
`;

/** Starts the watchdog thread; the heartbeat timer and the thread never keep the process alive. */
export function startWatchdog(timeoutMs: number): Watchdog {
  const heartbeat = new SharedArrayBuffer(Float64Array.BYTES_PER_ELEMENT);
  const beat = new Float64Array(heartbeat);
  beat[0] = Date.now();
  // Beat and check often enough that a kill lands within ~10% of the timeout, but never busier than 50 ms.
  const period = beatPeriodMs(timeoutMs);
  const timer = setInterval(() => (beat[0] = Date.now()), period);
  timer.unref();
  const thread = new Worker(WATCHDOG_SOURCE, {
    eval: true,
    workerData: { heartbeat, timeoutMs, checkEveryMs: period },
    // The thread needs almost nothing: keep its heap small.
    resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 },
  });
  thread.unref();
  return {
    stop() {
      clearInterval(timer);
      void thread.terminate();
    },
  };
}
