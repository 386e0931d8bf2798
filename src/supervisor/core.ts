/**
 * @module supervisor/core
 *
 * What the parts of the Supervisor share: the pools, the one event loop and
 * its event type, the connection to the process manager, the listeners, and
 * the few helpers every part needs — above all `current()`, the one place
 * that decides whether an event is still about the worker it names (a
 * probe, deadline or gate answer armed for one launch of a slot must never
 * judge the next).
 *
 * The parts (supervisor.ts the public face and the loop's dispatch,
 * workers.ts one worker's life, reload-driver.ts rolling reloads,
 * commands.ts scale/restart/remove/stop) all write this state, but only from
 * the loop's handlers: there is one writer at a time.
 */
import { DEFAULT_WORKER_BIN, type LaunchContext } from "./launch.ts";
import { EventLoop } from "../contract/event-loop.ts";
import type { Pool, Slot } from "./pool.ts";
import type { Pm2Event, ProcessInfo, ProcessManager } from "./process-manager.ts";
import type { PoolCommand } from "./reload.ts";
import { checkNamePart, parseProcessName, type StatePaths, statePaths } from "./slots.ts";
import type { Adoptee, LogListener, MembershipListener, PoolSpec, SupervisorEvent, SupervisorListener, SupervisorOptions } from "./types.ts";
import { readyEndpoints } from "./pool.ts";
import { DEFAULT_LOG_BOUND, LogKeeper } from "./log-keeper.ts";

export type LoopEvent =
  | { type: "pm2"; event: Pm2Event }
  | { type: "start"; pools: PoolSpec[]; ports: number[]; adopted: ReadonlyMap<string, Adoptee[]> }
  | PoolCommand
  | { type: "remove"; app: string }
  | { type: "stop" }
  | { type: "launched"; app: string; slot: number; pid: number; error?: string }
  | { type: "removed"; app: string; slot: number }
  | { type: "probed"; app: string; slot: number; startedAt: number; launch: number; ok: boolean; pid: number; afterMs: number }
  | { type: "deadline"; app: string; slot: number; launch: number; startedAt: number }
  | { type: "halt-detail"; app: string; stderr: string[] }
  | { type: "sampled"; processes: ProcessInfo[] }
  | { type: "gated"; app: string; slot: number; launch: number; pid: number; ok: boolean; reason?: string }
  | { type: "reload-deadline"; app: string; slot: number; launch: number }
  | { type: "reload-detail"; app: string; pass: number; stderr: string[] }
  | { type: "ports"; app: string; pass: number; ports: number[]; error?: string }
  | { type: "heartbeat"; app: string; slot: number; pid: number; unresponsive: boolean; silentMs: number }
  | { type: "socket-lost"; app: string; slot: number; pid: number; path: string }
  | { type: "retry"; app: string; slot: number; launch: number }
  | { type: "relaunch-all" }
  | { type: "restart-check"; app: string; slot: number; launch: number; startedAt: number; exitedAt: number }
  | { type: "restart-status"; app: string; slot: number; launch: number; startedAt: number; exitedAt: number; status?: string; error?: string };

export interface Found {
  pool: Pool;
  slot: Slot;
}

/** An event's claim about one launch of one slot: `launch` (ours) and `startedAt` (pm2's) when it carries them. */
export interface SlotRef {
  app: string;
  slot: number;
  launch?: number;
  startedAt?: number;
}

export class SupervisorCore {
  readonly stackId: string;
  readonly paths: StatePaths;
  readonly context: LaunchContext;
  readonly options: SupervisorOptions;
  readonly loop: EventLoop<LoopEvent>;
  readonly byName = new Map<string, Pool>();
  readonly membershipListeners = new Set<MembershipListener>();
  readonly eventListeners = new Set<SupervisorListener>();
  readonly logListeners = new Set<LogListener>();
  /** Bounds the workers' log files and relays their lines to logListeners (log-keeper.ts). */
  readonly logKeeper: LogKeeper;
  /** The process manager, once connected; undefined after stop() or detach(). */
  client: Promise<ProcessManager> | undefined;
  /** Launches numbered across the supervisor (see `current`). */
  launches = 0;
  /** Reload passes numbered across the supervisor. */
  passes = 0;

  constructor(options: SupervisorOptions, dispatch: (event: LoopEvent) => void, afterDrain: () => void) {
    checkNamePart("stack id", options.stackId);
    this.options = options;
    this.stackId = options.stackId;
    this.paths = statePaths(options.stateDir);
    this.context = {
      stackId: options.stackId,
      paths: this.paths,
      workerBin: options.workerBin ?? DEFAULT_WORKER_BIN,
      nodePath: options.nodePath ?? process.execPath,
      shell: options.shell ?? "/bin/sh",
      uwsgi: options.uwsgiSockets ?? false,
    };
    this.logKeeper = new LogKeeper(this.paths.logs, options.logBound ?? DEFAULT_LOG_BOUND, () =>
      this.logListeners.size === 0 ? undefined : (line) => {
        for (const listener of this.logListeners) this.guard(() => listener(line));
      },
    );
    this.loop = new EventLoop<LoopEvent>(dispatch, afterDrain, (error, event) =>
      this.emit({ type: "supervisor-error", message: `handling ${event.type}: ${(error as Error).stack ?? String(error)}` }),
    );
  }

  /**
   * The pool and slot an event is about — or undefined when the event is
   * stale: the slot is gone, or it has been launched again since the event
   * was armed (`launch`), or pm2 has started another generation of it
   * (`startedAt`). Slot numbers are reused by reloads and launches are
   * numbered across the supervisor, so a match is always the same worker.
   */
  current(ref: SlotRef): Found | undefined {
    const pool = this.byName.get(ref.app);
    const slot = pool?.slots.get(ref.slot);
    if (!pool || !slot) return undefined;
    if (ref.launch !== undefined && slot.launch !== ref.launch) return undefined;
    if (ref.startedAt !== undefined && slot.startedAt !== ref.startedAt) return undefined;
    return { pool, slot };
  }

  /** The pool and slot a pm2 process name is, if it is one of ours. */
  find(name: string): Found | undefined {
    const parsed = parseProcessName(this.stackId, name);
    return parsed ? this.current({ app: parsed.app, slot: parsed.slot }) : undefined;
  }

  /** A pool by app name, for the public methods: an unknown app is the caller's mistake. */
  pool(app: string): Pool {
    const pool = this.byName.get(app);
    if (!pool) throw new TypeError(`no app named ${JSON.stringify(app)} in stack ${this.stackId}`);
    return pool;
  }

  /** Runs one process-manager call for a slot after the ones before it; its outcome comes back as an event. */
  runOp<T>(slot: Slot, op: (client: ProcessManager) => Promise<T>, toEvent: (value: T | undefined, error?: string) => LoopEvent | undefined): void {
    slot.ops = slot.ops.then(async () => {
      let event: LoopEvent | undefined;
      try {
        // Never reconnect from here: after stop() or detach() a late op must not spawn a new daemon.
        if (!this.client) throw new Error("the supervisor is not connected to pm2");
        event = toEvent(await op(await this.client));
      } catch (error) {
        event = toEvent(undefined, (error as Error).message);
      }
      if (event) this.loop.enqueue(event);
    });
  }

  /** Tells membership listeners about each pool whose ready workers changed since they last heard. */
  publishMembership(): void {
    for (const pool of this.byName.values()) {
      const ready = readyEndpoints(pool);
      const key = JSON.stringify(ready);
      if (key === pool.membershipKey) continue;
      pool.membership = ready;
      pool.membershipKey = key;
      for (const listener of this.membershipListeners) this.guard(() => listener(pool.spec.name, ready));
    }
  }

  emit(event: SupervisorEvent): void {
    for (const listener of this.eventListeners) this.guard(() => listener(event), event.type === "supervisor-error");
  }

  /** A listener that throws must not stop the loop: it is reported as a supervisor-error event instead. */
  guard(fn: () => void, quiet = false): void {
    try {
      fn();
    } catch (error) {
      if (!quiet) this.emit({ type: "supervisor-error", message: `a listener threw: ${(error as Error).stack ?? String(error)}` });
    }
  }
}
