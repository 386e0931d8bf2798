/**
 * @module contract/stopping
 *
 * How a gateway worker is stopped, and how long it has: the kill escalation
 * the worker and its supervisor both count on.
 *
 *   1. SIGTERM, SIGINT or SHUTDOWN_MESSAGE (contract/messages.ts): the worker
 *      stops accepting, answers its in-flight requests with
 *      `Connection: close` and waits for them up to --graceful-timeout; then
 *      it drops what is left and exits by itself (code 0, or TIMEOUT when it
 *      was leaving after a timed-out request). A second signal exits at once.
 *   2. The supervisor (pm2's kill_timeout) SIGKILLs a worker still running
 *      KILL_MARGIN_MS after its graceful timeout: the margin covers the
 *      worker's last writes and its exit, so a healthy worker never meets it.
 *   3. A worker whose event loop is blocked cannot run step 1: the heartbeat
 *      (contract/heartbeat.ts) or the watchdog thread catches it instead.
 */

/** How long after its graceful timeout a stopping worker is SIGKILLed. */
export const KILL_MARGIN_MS = 2000;

/** The supervisor's kill timeout for a worker with this graceful timeout (ms). */
export function killTimeoutMs(gracefulTimeoutMs: number): number {
  return gracefulTimeoutMs + KILL_MARGIN_MS;
}
