/**
 * @module supervisor/reload
 *
 * The zero-downtime reload (issue #5, item 1) as data and pure rules; the
 * Supervisor's handlers drive it. A pass replaces each live slot of one app in
 * turn by a NEW slot — a fresh slot number, so its own pm2 process and socket
 * or port, while the old worker keeps serving:
 *
 *   launch the new worker → ready (tsgi:ready, or the port probe) → health
 *   gate (SupervisorOptions.healthGate, if any) → it joins the membership →
 *   THEN the old one leaves the membership and drains (pm2 delete: SIGTERM,
 *   SIGKILL after its graceful timeout) → the next old slot.
 *
 * So the membership never loses a ready worker before its replacement is in:
 * listeners see the new endpoint added, then the old one removed. pm2's own
 * reload kills the old worker after listen_timeout whether or not the new one
 * became ready (the reliability matrix, R4); a pass waits for the new one, and when it
 * fails — exits with any code (APP_LOAD_ERROR included), is not ready within
 * readyTimeoutMs, fails the health gate — the pass stops there:
 *
 * - the new worker is removed; the old workers not yet replaced keep serving;
 * - no crash-policy verdict applies: the pool is not halted;
 * - the report is `ok: false` with the new worker's own stderr lines (read
 *   from where its log file ended at its launch) and a one-line message;
 * - slots replaced before the failure stay (they passed the same checks),
 *   and a later reload may try again.
 *
 * Concurrency (item 4). While a pass runs, the pool takes no other command:
 * scale, restart and updateSpec wait for it, in the order they came. A reload
 * asked for while the pool is busy (a pass, new workers of a
 * scale still starting) waits until the pool is quiet, and every reload asked
 * for meanwhile joins that waiting one. So two bursts of file saves under
 * `--watch` give the pass under way plus ONE more full pass after it (which
 * loads whatever the files hold by then) — never overlapping passes, never a
 * backlog of N. Each caller gets the report of the first pass that started
 * after its call.
 *
 * Slot numbers: a new worker takes the lowest number no slot of the pool uses
 * (freeSlots), counting old workers still draining; so a 2-worker pool
 * reloads 0,1 → 2,3 and the next reload goes back to 0,1.
 */
import { describeEnd, telltaleLine } from "./crash-policy.ts";
import type { PoolSpec, ReloadError, ReloadReport } from "./types.ts";

/** A caller's reply slot: the loop writes into it the report of the pass that served the request. */
export interface ReloadTicket {
  report?: ReloadReport;
}

/** What the Supervisor's loop is asked to do to one pool; a command for a busy pool waits in the pool's queue. */
export type PoolCommand =
  | { type: "scale"; app: string; instances: number; ports: number[] }
  /** Replaces every worker as a reload does (new one ready before the old one goes), on the spec the pool runs. */
  | { type: "restart"; app: string; tickets: ReloadTicket[] }
  | { type: "reload"; app: string; tickets: ReloadTicket[] }
  /** updateSpec: the pool's new spec, rolled onto new workers (roll) or used from the next launch on. */
  | { type: "update"; app: string; spec: PoolSpec; roll: boolean; ports: number[]; tickets: ReloadTicket[] };

/** How a reload's new worker failed: the kind decides whether its last stderr line goes into the message. */
export type ReloadFailureKind = "exit" | "not-ready" | "gate" | "launch";

export interface ReloadFailure {
  kind: ReloadFailureKind;
  slot: number;
  /** What happened to the worker, e.g. `exited with code 4 (APP_LOAD_ERROR) before it was ready`. */
  what: string;
}

/** One pass of a reload over one pool, owned by the Supervisor's loop. */
export interface ReloadPass {
  /** Tells this pass's late events (ports, stderr) from a later pass's. */
  readonly id: number;
  /** Local time the pass started. */
  readonly startedAt: number;
  /** Old slots still to replace, in order. */
  readonly queue: number[];
  /** The old slot being replaced now, and its new slot; both undefined between steps. */
  old?: number;
  fresh?: number;
  replaced: number;
  readonly tickets: ReloadTicket[];
  /** updateSpec: the spec before it, put back if the roll fails (the running config stays). */
  readonly previousSpec?: PoolSpec;
  /** updateSpec: once every kept slot is replaced, the old slots past the new instance count go and missing ones start. */
  readonly resize: boolean;
  readonly dropAfter: readonly number[];
  /** Loopback ports set aside for new command workers, asked for as the pass needs them. */
  readonly ports: number[];
  askingPorts: boolean;
  /** The pool was halted: this pass started it again in place (as restart() does) and ends when it settles. */
  readonly revive: boolean;
  /** The new worker failed: the pass ends once that worker's stderr is read. */
  failure?: ReloadFailure;
}

export function newPass(
  id: number,
  startedAt: number,
  options: { queue?: number[]; tickets: ReloadTicket[]; previousSpec?: PoolSpec; dropAfter?: number[]; revive?: boolean },
): ReloadPass {
  return {
    id,
    startedAt,
    queue: [...(options.queue ?? [])],
    replaced: 0,
    tickets: options.tickets,
    ...(options.previousSpec ? { previousSpec: options.previousSpec } : {}),
    resize: options.previousSpec !== undefined,
    dropAfter: options.dropAfter ?? [],
    ports: [],
    askingPorts: false,
    revive: options.revive ?? false,
  };
}

/** Reloads and rolling updates wait for a quiet pool; the other commands only for the end of a pass. */
export function rolls(command: PoolCommand): boolean {
  return command.type === "reload" || command.type === "restart" || (command.type === "update" && command.roll);
}

/** Queues a command for a busy pool; a reload joins a reload that is already waiting (one more full pass serves both). */
export function defer(queue: PoolCommand[], command: PoolCommand): void {
  if (command.type === "reload") {
    const waiting = queue.find((queued) => queued.type === "reload");
    if (waiting?.type === "reload") {
      waiting.tickets.push(...command.tickets);
      return;
    }
  }
  queue.push(command);
}

export function passReport(app: string, pass: ReloadPass, now: number, error: ReloadError | undefined): ReloadReport {
  return { app, ok: error === undefined, replaced: pass.replaced, ...(error ? { error } : {}), ms: Math.max(0, now - pass.startedAt) };
}

/** What a new worker that exited did, in the report's words (`was killed by SIGKILL` when a signal ended it). */
export function describeEarlyExit(exitCode: number, signal?: string): string {
  return `${signal ? "was " : ""}${describeEnd(exitCode, signal)} before it was ready`;
}

/**
 * The report's error for a failed new worker: one line naming the worker and
 * what happened, with its telltale stderr line when it died or never listened
 * (a health-gate failure's stderr is kept in `stderr` only: the worker was up).
 */
export function failureError(failure: ReloadFailure, stderr: string[]): ReloadError {
  const line = failure.kind === "exit" || failure.kind === "not-ready" ? telltaleLine(stderr) : undefined;
  const message = `new worker ${failure.slot} ${failure.what}${line ? `: ${line}` : ""}`;
  return { message, stderr, slot: failure.slot };
}
