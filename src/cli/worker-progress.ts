/**
 * @module cli/worker-progress
 *
 * What a person watching `reload`, `restart`, `scale` or `up -d` wants to see
 * while it runs: each worker as it comes and goes — `web.3 ready (pid 1234,
 * 850 ms)`, `web.0 stopping (pid 1200)`, `web.0 gone (pid 1200)`. The control
 * API answers those requests only at the end, so the CLI reads GET /status
 * meanwhile and prints what changed between two reads. A read is every
 * quarter second: a worker that starts and is ready between two reads is
 * printed once, ready; the time it took is its uptime when it was first seen
 * ready (the worker's own clock, within one read's interval).
 */
import type { WorkerStatus } from "../stack/status.ts";

/** The fields of a worker a progress line is made of. */
export type WorkerSnapshot = Pick<WorkerStatus, "app" | "slot" | "pid" | "state" | "uptime"> & { lastError?: string };

const key = (worker: WorkerSnapshot) => `${worker.app}.${worker.slot}`;

/** One line per worker whose pid or state differs between two reads; a worker in only one read came or went. */
export function workerChanges(before: readonly WorkerSnapshot[], after: readonly WorkerSnapshot[]): string[] {
  const earlier = new Map(before.map((worker) => [key(worker), worker]));
  const later = new Set(after.map(key));
  const lines: string[] = [];
  for (const worker of after) {
    const was = earlier.get(key(worker));
    if (was && was.pid === worker.pid && was.state === worker.state) continue;
    lines.push(describeWorker(worker));
  }
  for (const worker of before) if (!later.has(key(worker))) lines.push(`${key(worker)} gone${worker.pid ? ` (pid ${worker.pid})` : ""}`);
  return lines;
}

/** A worker's state as one line: ready ones with the time they took, failed ones with why. */
export function describeWorker(worker: WorkerSnapshot): string {
  const pid = worker.pid ? `pid ${worker.pid}` : "";
  if (worker.state === "ready" && worker.uptime > 0) return `${key(worker)} ready (${pid}, ${worker.uptime} ms)`;
  const why = worker.state !== "ready" && worker.lastError ? `: ${worker.lastError}` : "";
  return `${key(worker)} ${worker.state}${pid ? ` (${pid})` : ""}${why}`;
}

export interface ProgressOptions {
  /** Reads the workers now; undefined when the stack did not answer (it is busy, or gone). */
  read: () => Promise<readonly WorkerSnapshot[] | undefined>;
  /** Prints one progress line. */
  print: (line: string) => void;
  /** Between two reads (default 250 ms). */
  intervalMs?: number;
}

/**
 * Runs `work` (the control request) and prints, until it settles, each change
 * of the workers: read once before it starts, then every interval, and once
 * more after it ends so that the last swap is not missed. Resolves or rejects
 * as `work` does; a failed read is skipped, never the command's failure.
 */
export async function withWorkerProgress<T>(work: () => Promise<T>, options: ProgressOptions): Promise<T> {
  const { read, print, intervalMs = 250 } = options;
  const safeRead = () => read().catch(() => undefined);
  let last = await safeRead();
  const update = async () => {
    const now = await safeRead();
    if (!now) return;
    if (last) for (const line of workerChanges(last, now)) print(line);
    last = now;
  };
  let done = false;
  const running = work().finally(() => (done = true));
  const polling = (async () => {
    while (!done) {
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
      if (!done) await update();
    }
  })();
  try {
    return await running;
  } finally {
    await polling;
    await update();
  }
}

/**
 * `up`'s line for a worker that became ready (the supervisor's worker-ready
 * event), with the time it took: its uptime in the status read now, which
 * counts from its own start, whether `up`, a restart, a reload or a scale
 * started it.
 */
export function readyLine(worker: { app: string; slot: number; pid: number }, workers: readonly WorkerSnapshot[]): string {
  const row = workers.find((candidate) => candidate.app === worker.app && candidate.slot === worker.slot);
  return describeWorker({ ...worker, state: "ready", uptime: row?.pid === worker.pid ? row.uptime : 0 });
}
