/**
 * @module contract/heartbeat
 *
 * The heartbeat file between a gateway worker and its supervisor, Gunicorn's
 * WorkerTmp.notify / murder_workers:
 *
 *   - a worker run with `--heartbeat-file FILE` and a timeout T writes its pid
 *     on the file's first line, then touches the file (its mtime) at least
 *     every beatPeriodMs(T), from a timer on its event loop
 *     (gateway/heartbeat.ts), and removes it when it stops;
 *   - the supervisor (supervisor/heartbeats.ts) reads a file whose mtime is
 *     older than staleAfterMs(T) as a blocked event loop — never a late beat —
 *     and SIGKILLs the worker, whose pid is in the file, for pm2 to replace. A
 *     file with another pid is the slot's previous process and says nothing.
 *
 * The period is one function here, so the worker's beat and the supervisor's
 * slack cannot drift apart.
 */

/** How often a worker with this timeout beats (and how often its watchdog thread checks): ~10% of the timeout, 50 ms to 1 s. */
export function beatPeriodMs(timeoutMs: number): number {
  return Math.max(50, Math.min(1000, Math.floor(timeoutMs / 10)));
}

/**
 * A heartbeat file silent for longer than this, though not yet stale, is a
 * worker that is not turning its event loop — stopped (SIGSTOP), or stuck —
 * so it takes no new requests until it beats again: three beats, at least
 * 2 s (a GC pause or a busy second is not a hang), and never later than
 * staleAfterMs. Well inside 5 s for every timeout.
 */
export function unresponsiveAfterMs(timeoutMs: number): number {
  return Math.min(staleAfterMs(timeoutMs), Math.max(2000, 3 * beatPeriodMs(timeoutMs)));
}

/** A heartbeat file silent for longer than this belongs to a blocked worker: the timeout plus one beat of slack. */
export function staleAfterMs(timeoutMs: number): number {
  return timeoutMs + beatPeriodMs(timeoutMs);
}
