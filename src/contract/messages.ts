/**
 * @module contract/messages
 *
 * The IPC messages between a gateway worker and the process that runs it
 * (`process.send` under pm2 or the standalone arbiter). One copy of their
 * names and shapes: the worker sends them (gateway/worker.ts), the arbiter
 * (gateway/arbiter.ts) and the supervisor (supervisor/supervisor.ts, through
 * pm2's bus, which publishes a `{ type, data }` message under its own `type`)
 * read them.
 *
 * Worker → parent, at boot, once every listener is bound:
 *   - READY_SIGNAL, the bare string pm2's wait_ready waits for;
 *   - ReadyMessage, with the pid and the bound addresses (port 0 becomes a
 *     real port), which our supervisor and arbiter wait for.
 * Worker → parent, when it must leave (--max-requests, --timeout) while the
 * arbiter holds its sockets: RetiringMessage; it keeps serving, every
 * response closing its connection, until the parent's SIGTERM.
 * Parent → worker: SHUTDOWN_MESSAGE asks for a graceful stop, as SIGTERM does
 * (pm2's shutdown_with_message, where signals are not delivered).
 */

/** What pm2's wait_ready waits for. */
export const READY_SIGNAL = "ready";
/** Parent → worker: stop gracefully (as SIGTERM). */
export const SHUTDOWN_MESSAGE = "shutdown";

export const READY_MESSAGE = "tsgi:ready";
export const RETIRING_MESSAGE = "tsgi:retiring";

export interface ReadyMessage {
  type: typeof READY_MESSAGE;
  /** `listeners`: the bound addresses as the worker prints them (`http://127.0.0.1:8000`, `http+unix:/path`). */
  data: { pid: number; listeners: string[] };
}

export interface RetiringMessage {
  type: typeof RETIRING_MESSAGE;
  /** `code`: the exit code the worker will stop with (contract/exit-codes.ts). */
  data: { pid: number; code: number };
}

export type WorkerMessage = ReadyMessage | RetiringMessage;

export function readyMessage(pid: number, listeners: string[]): ReadyMessage {
  return { type: READY_MESSAGE, data: { pid, listeners } };
}

export function retiringMessage(pid: number, code: number): RetiringMessage {
  return { type: RETIRING_MESSAGE, data: { pid, code } };
}

/** The pid a ReadyMessage's `data` carries, as it arrives from another process (0 when it has none). */
export function readyPid(data: unknown): number {
  return typeof data === "object" && data !== null && "pid" in data ? Number(data.pid) : 0;
}
