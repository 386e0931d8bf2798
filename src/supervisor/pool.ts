/**
 * @module supervisor/pool
 *
 * A pool — one app's N slots — as the supervisor sees it, and the plain-data
 * views derived from it: its report, its membership (the ready workers the
 * proxy may use), whether it has settled, its status rows. Only the loop's
 * handlers (supervisor.ts) write these objects; everything here just reads.
 */
import type { PoolCommand, ReloadPass } from "./reload.ts";
import type { PoolError, PoolReport, PoolSpec, PoolState, SlotState, StatusRow, WorkerAddress, WorkerEndpoint } from "./types.ts";

/** What pm2 last sampled for a slot's process (its monitor runs every few seconds). */
export interface Sample {
  memory: number;
  cpu: number;
  restarts: number;
}

export interface Slot {
  readonly slot: number;
  /** pm2 process name: tsgi:<stack>:<app>:<slot>. */
  readonly name: string;
  readonly address: WorkerAddress;
  state: SlotState;
  /** 0 while not running (or not yet known). */
  pid: number;
  /** pm2's pm_uptime of the current generation: tells one run of this slot from the next. */
  startedAt: number;
  /** Local time the current generation went online (or was launched). */
  since: number;
  /** Crashes in a row (see crash-policy). */
  crashes: number;
  /** Generations we asked pm2 to stop: their exit events are expected, not crashes. */
  readonly retiring: Set<number>;
  /** Generations whose exit was already judged: pm2 reports a stop's exit twice. */
  readonly judged: Set<number>;
  /** Ready, or failed at least once, since it was last launched: what start() and scale() wait for. */
  settled: boolean;
  /** pm2 flagged "restart overlimit": it will not restart this slot again. */
  pm2GaveUp: boolean;
  /**
   * pm2 failed to restart or launch this slot (it could not open its log files): its entry is stuck
   * ("waiting restart" with nothing running, and a start of the same name starts nothing), so the next
   * launch deletes it first.
   */
  pm2Stuck: boolean;
  /** Bumped on each launch/restart we ask for, so a stale deadline timer is recognised. */
  launch: number;
  lastError?: string;
  /** The signal that ended the slot's last generation, when a signal did. */
  lastSignal?: string;
  /** This slot's pm2 calls, one at a time and in order (a delete never overtakes its start). */
  ops: Promise<void>;
  sample: Sample;
  /** A ready worker whose heartbeat went silent (stopped or stuck): out of the membership until it beats again. */
  unresponsive: boolean;
  /** A reload's new worker that is ready and waits for the health gate's answer (it stays "starting"). */
  gating: boolean;
  /** A reload's new worker: the size of its stderr log when it was launched, where its own lines begin. */
  errLogStart?: Promise<number>;
}

export interface Pool {
  spec: PoolSpec;
  readonly slots: Map<number, Slot>;
  halted: boolean;
  /** A worker of this pool has been ready since it was last started or revived: its code loads. */
  loadedOnce: boolean;
  error?: PoolError;
  /** The halt's stderr lines are still being read: the error is not reported yet. */
  errorPending: boolean;
  stopping: boolean;
  stopped: boolean;
  /** The membership last published, to publish only changes. */
  membership: readonly WorkerEndpoint[];
  membershipKey: string;
  /** The reload pass under way (supervisor/reload.ts). */
  reload?: ReloadPass;
  /**
   * Slot numbers whose process pm2 deleted lately, and when: a reload does
   * not give their name to a new worker for a while, because pm2's bus can
   * still deliver the old process's last events under that name.
   */
  readonly retired: Map<number, number>;
  /** Commands that wait for the pool: behind a reload pass, or a reload waiting for the pool to be quiet. */
  readonly deferred: PoolCommand[];
  /** remove(): once stopped, the pool is forgotten (it leaves pools() and status()). */
  removing: boolean;
}

export function newSlot(slot: number, name: string, address: WorkerAddress): Slot {
  return {
    slot,
    name,
    address,
    state: "starting",
    pid: 0,
    startedAt: 0,
    since: Date.now(),
    crashes: 0,
    retiring: new Set(),
    judged: new Set(),
    settled: false,
    pm2GaveUp: false,
    pm2Stuck: false,
    launch: 0,
    ops: Promise.resolve(),
    sample: { memory: 0, cpu: 0, restarts: 0 },
    gating: false,
    unresponsive: false,
  };
}

export function newPool(spec: PoolSpec): Pool {
  return {
    spec,
    slots: new Map(),
    retired: new Map(),
    halted: false,
    loadedOnce: false,
    errorPending: false,
    stopping: false,
    stopped: false,
    membership: [],
    membershipKey: "[]",
    deferred: [],
    removing: false,
  };
}

/** Slots that still count toward the pool (not on their way out). */
export function liveSlots(pool: Pool): Slot[] {
  return [...pool.slots.values()].filter((slot) => slot.state !== "stopping" && slot.state !== "stopped").sort((a, b) => a.slot - b.slot);
}

/** The slots that count toward the pool's state: a reload's new worker does not until it has replaced an old one. */
function countedSlots(pool: Pool): Slot[] {
  const fresh = pool.reload?.fresh;
  return liveSlots(pool).filter((slot) => slot.slot !== fresh || slot.state === "ready");
}

export function poolState(pool: Pool): PoolState {
  if (pool.stopped) return "stopped";
  if (pool.stopping) return "stopping";
  if (pool.halted) return "errored";
  const live = countedSlots(pool);
  if (live.some((slot) => !slot.settled)) return "starting";
  return live.every((slot) => slot.state === "ready") ? "running" : "degraded";
}

/**
 * Nothing more will happen to this pool without a new event from outside:
 * start() and friends may answer. Without countDraining, workers on their way
 * out (a reload's old ones) do not hold the answer back.
 */
export function isSettled(pool: Pool, countDraining = true): boolean {
  if (pool.stopped) return true;
  if (pool.stopping) return false;
  if (pool.reload !== undefined || pool.deferred.length > 0) return false;
  if (pool.halted) return !pool.errorPending;
  if (countDraining && [...pool.slots.values()].some((slot) => slot.state === "stopping")) return false;
  return liveSlots(pool).every((slot) => slot.settled);
}

/** No pass or launch under way: a reload may start (old workers still draining do not count). */
export function isQuiet(pool: Pool): boolean {
  return pool.reload === undefined && !pool.errorPending && liveSlots(pool).every((slot) => slot.settled);
}

export function report(pool: Pool): PoolReport {
  const live = liveSlots(pool);
  return {
    app: pool.spec.name,
    state: poolState(pool),
    instances: pool.spec.instances,
    ready: live.filter((slot) => slot.state === "ready").length,
    ...(pool.error && !pool.errorPending ? { error: pool.error } : {}),
  };
}

/** The workers that take traffic: ready ones only, in slot order, frozen for the proxy. */
export function readyEndpoints(pool: Pool): readonly WorkerEndpoint[] {
  return Object.freeze(
    liveSlots(pool)
      .filter((slot) => slot.state === "ready" && !slot.unresponsive)
      .map((slot) => Object.freeze({ slot: slot.slot, pid: slot.pid, address: slot.address })),
  );
}

/** Slot states in which a process of this generation is running. */
const RUNNING: ReadonlySet<SlotState> = new Set(["starting", "ready"]);

export function statusRows(pool: Pool, now: number): StatusRow[] {
  return [...pool.slots.values()]
    .sort((a, b) => a.slot - b.slot)
    .map((slot) => {
      const running = RUNNING.has(slot.state) && slot.startedAt > 0;
      return {
        app: pool.spec.name,
        slot: slot.slot,
        name: slot.name,
        pid: slot.pid,
        // Ready but silent (stopped, or stuck): not taking requests, and status says so.
        state: slot.state === "ready" && slot.unresponsive ? "unresponsive" : slot.state,
        uptime: running ? Math.max(0, now - slot.startedAt) : 0,
        restarts: slot.sample.restarts,
        memory: running ? slot.sample.memory : 0,
        cpu: running ? slot.sample.cpu : 0,
        address: slot.address,
        ...(slot.lastError ? { lastError: slot.lastError } : {}),
      };
    });
}
