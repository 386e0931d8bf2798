/**
 * @module supervisor/supervisor
 *
 * The Supervisor: desired pools vs. actual pm2 processes (gunicorn's Arbiter,
 * with pm2 doing the spawning). Each app is a pool of N pm2 processes in fork
 * mode, `tsgi:<stackId>:<app>:<slot>`, one gateway worker (or command) each on
 * its own unix socket or loopback port. pm2 does what it does well — spawn,
 * wait_ready, restart with exponential back-off, max_memory_restart,
 * kill_timeout, log files, the event bus — and the supervisor keeps what pm2
 * cannot: which workers are *ready* (the proxy's membership), the crash
 * policy (halt on boot/app-load errors, stop a crash loop), and reports.
 *
 * Shape (STYLE habit 9): every callback — pm2's bus, probes, finished pm2
 * calls, the public methods — only enqueues an event; one loop dispatches each
 * to a synchronous handleX method. Handlers start slow work and never await
 * it; the work reports back through the queue. Public methods enqueue a
 * command and wait until the loop says the pools concerned have settled.
 *
 * Errors are data: a pool that halts is reported in pools(), status() and a
 * "pool-errored" event, with its worker's last stderr lines; nothing throws
 * for a worker's failure. Methods throw only for caller mistakes (an unknown
 * app, a bad spec).
 */
import { mkdirSync } from "node:fs";
import { describeHalt, judgeExit, judgeNotReady, type Verdict } from "./crash-policy.ts";
import { DEFAULT_WORKER_BIN, type LaunchContext, processSpec } from "./launch.ts";
import { EventLoop } from "./loop.ts";
import { type Pm2Event, Pm2Client, type ProcessInfo } from "./pm2-client.ts";
import { accepts, freeLoopbackPort, processTree, reap, tailLines, waitUntilAccepting } from "./probes.ts";
import {
  appPrefix,
  checkNamePart,
  freeSlots,
  logFiles,
  MAX_SOCKET_PATH,
  parseProcessName,
  processName,
  socketPath,
  stackPrefix,
  type StatePaths,
  statePaths,
} from "./slots.ts";
import { isSettled, liveSlots, newPool, newSlot, type Pool, readyEndpoints, report, type Slot, statusRows } from "./pool.ts";
import type {
  LogListener,
  MembershipListener,
  PoolErrorReason,
  PoolReport,
  PoolSpec,
  StatusRow,
  SupervisorEvent,
  SupervisorListener,
  SupervisorOptions,
  WorkerAddress,
  WorkerEndpoint,
} from "./types.ts";

/** After pm2 calls a module worker online, how long we wait for its tsgi:ready before probing its socket instead. */
const FALLBACK_PROBE_DELAY_MS = 300;
/** How long that fallback probe tries the socket. */
const FALLBACK_PROBE_MS = 1000;
/** A launch that produced no online/exit at all within readyTimeout + this is treated as not ready. */
const LAUNCH_DEADLINE_MARGIN_MS = 5000;
/** pm2 writes log files through streams: give the last stderr lines this long to reach the file. */
const STDERR_SETTLE_MS = 200;
/** After pm2's deletes, how long the supervisor waits for the pids to be gone before it SIGKILLs them itself. */
const STOP_VERIFY_MS = 3000;

type LoopEvent =
  | { type: "pm2"; event: Pm2Event }
  | { type: "start"; pools: PoolSpec[]; ports: number[] }
  | { type: "scale"; app: string; instances: number; ports: number[] }
  | { type: "restart"; apps: string[] }
  | { type: "stop" }
  | { type: "launched"; app: string; slot: number; pid: number; error?: string }
  | { type: "removed"; app: string; slot: number }
  | { type: "probed"; app: string; slot: number; startedAt: number; ok: boolean; pid: number; afterMs: number }
  | { type: "deadline"; app: string; slot: number; launch: number; startedAt: number }
  | { type: "halt-detail"; app: string; stderr: string[] }
  | { type: "sampled"; processes: ProcessInfo[] };

interface Waiter {
  check: () => boolean;
  resolve: () => void;
}

export interface StopReport {
  /** pm2 process names that were deleted. */
  deleted: string[];
  /** Pids that outlived pm2's kill and were SIGKILLed by the supervisor. */
  forced: number[];
  /** True if the stack's pm2 daemon was stopped too (it had nothing else to run). */
  daemonStopped: boolean;
}

export class Supervisor {
  readonly stackId: string;
  readonly paths: StatePaths;
  private readonly context: LaunchContext;
  private readonly options: SupervisorOptions;
  private readonly loop: EventLoop<LoopEvent>;
  private readonly byName = new Map<string, Pool>();
  private readonly waiters: Waiter[] = [];
  private readonly membershipListeners = new Set<MembershipListener>();
  private readonly eventListeners = new Set<SupervisorListener>();
  private readonly logListeners = new Set<LogListener>();
  private client: Promise<Pm2Client> | undefined;
  private sampler: NodeJS.Timeout | undefined;
  private readonly monitorIntervalMs: number;

  constructor(options: SupervisorOptions) {
    checkNamePart("stack id", options.stackId);
    this.options = options;
    this.monitorIntervalMs = options.monitorIntervalMs ?? 5000;
    this.stackId = options.stackId;
    this.paths = statePaths(options.stateDir);
    this.context = {
      stackId: options.stackId,
      paths: this.paths,
      workerBin: options.workerBin ?? DEFAULT_WORKER_BIN,
      nodePath: options.nodePath ?? process.execPath,
      shell: options.shell ?? "/bin/sh",
    };
    this.loop = new EventLoop<LoopEvent>(
      (event) => this.dispatch(event),
      () => this.afterDrain(),
      (error, event) => this.emit({ type: "supervisor-error", message: `handling ${event.type}: ${(error as Error).stack ?? String(error)}` }),
    );
  }

  /** The pid of a stack's pm2 daemon, if one is running (e.g. `up` refusing a second start, `status` of a detached stack). */
  static daemonPid(stateDir: string): number | undefined {
    return Pm2Client.daemonPid(statePaths(stateDir).pm2Home);
  }

  // ---- public API: each call enqueues, then waits for the loop ----

  /** Starts pools; resolves once every worker is ready or has reported a failure. */
  async start(pools: PoolSpec[]): Promise<PoolReport[]> {
    this.checkNewPools(pools);
    const client = await this.connect();
    mkdirSync(this.paths.sockets, { recursive: true });
    mkdirSync(this.paths.logs, { recursive: true });
    // A process of ours left by a supervisor that died is replaced, not adopted: its spec may be stale.
    for (const pool of pools) await this.deleteMatching(client, appPrefix(this.stackId, pool.name));
    const ports = await this.portsFor(pools.reduce((sum, pool) => sum + this.portsNeeded(pool, pool.instances), 0));
    this.loop.enqueue({ type: "start", pools, ports });
    const apps = pools.map((pool) => pool.name);
    await this.until(() => apps.every((app) => this.settled(app)));
    await this.sample();
    return apps.map((app) => report(this.pool(app)));
  }

  /** Sets a pool's instance count: new slots start (resolves once they are ready or failed), extra ones drain and go. */
  async scale(app: string, instances: number): Promise<PoolReport> {
    const pool = this.pool(app);
    if (!Number.isInteger(instances) || instances < 0) throw new TypeError(`scale ${app}: instances must be a whole number, got ${instances}`);
    const ports = await this.portsFor(this.portsNeeded(pool.spec, Math.max(0, instances - liveSlots(pool).length)));
    this.loop.enqueue({ type: "scale", app, instances, ports });
    await this.until(() => this.settled(app));
    return report(this.pool(app));
  }

  /**
   * Restarts one app's workers, or every app's, one slot at a time: a slot
   * leaves the membership, restarts, and the next one goes once it is ready
   * (or failed). An errored pool is started again from scratch.
   */
  async restart(app?: string): Promise<PoolReport[]> {
    const apps = app === undefined ? [...this.byName.keys()].filter((name) => !this.pool(name).stopped) : [this.pool(app).spec.name];
    this.loop.enqueue({ type: "restart", apps });
    await this.until(() => apps.every((name) => this.settled(name)));
    return apps.map((name) => report(this.pool(name)));
  }

  /**
   * Stops the whole stack gracefully: every worker gets SIGTERM and drains
   * within its graceful timeout (pm2 SIGKILLs it after kill_timeout), every
   * process named tsgi:<stackId>:* is deleted from pm2 — including ones this
   * object did not start — and the pids are checked gone (SIGKILL for any
   * survivor). The stack's daemon is stopped when it has nothing left to run.
   */
  async stop(): Promise<StopReport> {
    if (!this.client && Supervisor.daemonPid(this.options.stateDir) === undefined) {
      return { deleted: [], forced: [], daemonStopped: false };
    }
    const client = await this.connect();
    const listed = await client.list(stackPrefix(this.stackId));
    const pids = this.knownPids(listed.map((process) => process.pid));
    const deleted = listed.map((process) => process.name);
    this.loop.enqueue({ type: "stop" });
    await this.until(() => [...this.byName.values()].every((pool) => pool.stopped));
    await this.deleteMatching(client, stackPrefix(this.stackId));
    const forced = await reap(pids, STOP_VERIFY_MS);
    // The daemon is the stack's own (its home is in the state dir): with nothing left to run, it goes too.
    const daemonStopped = (await client.list()).length === 0;
    await this.release(client, daemonStopped);
    return { deleted, forced, daemonStopped };
  }

  /** Lets go of pm2 and leaves the workers running under its daemon (`up --detach`). */
  async detach(): Promise<void> {
    if (this.client) await this.release(await this.client, false);
  }

  /**
   * One row per worker: plain data from memory, no I/O (STYLE habit 15).
   * Memory, CPU and restart counts are pm2's, sampled every monitorIntervalMs.
   */
  status(): StatusRow[] {
    const now = Date.now();
    return [...this.byName.values()].flatMap((pool) => statusRows(pool, now));
  }

  /** Samples pm2 now, then returns status(). */
  async refreshStatus(): Promise<StatusRow[]> {
    if (await this.sample()) await this.until(() => true);
    return this.status();
  }

  /** Each pool's state, plain data. */
  pools(): PoolReport[] {
    return [...this.byName.values()].map(report);
  }

  /** The ready workers of an app: what the proxy may send traffic to. */
  membership(app: string): readonly WorkerEndpoint[] {
    return this.byName.get(app)?.membership ?? [];
  }

  /** Called with an app's ready workers each time that set changes. Returns the unsubscribe function. */
  onMembership(listener: MembershipListener): () => void {
    this.membershipListeners.add(listener);
    return () => this.membershipListeners.delete(listener);
  }

  onEvent(listener: SupervisorListener): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** The workers' stdout/stderr lines, as pm2 relays them. */
  onLog(listener: LogListener): () => void {
    this.logListeners.add(listener);
    return () => this.logListeners.delete(listener);
  }

  // ---- the loop: dispatch to one handler per event ----

  private dispatch(event: LoopEvent): void {
    switch (event.type) {
      case "pm2":
        return this.handlePm2(event.event);
      case "start":
        return this.handleStart(event.pools, event.ports);
      case "scale":
        return this.handleScale(event.app, event.instances, event.ports);
      case "restart":
        return this.handleRestart(event.apps);
      case "stop":
        return this.handleStop();
      case "launched":
        return this.handleLaunched(event.app, event.slot, event.pid, event.error);
      case "removed":
        return this.handleRemoved(event.app, event.slot);
      case "probed":
        return this.handleProbed(event);
      case "deadline":
        return this.handleDeadline(event);
      case "halt-detail":
        return this.handleHaltDetail(event.app, event.stderr);
      case "sampled":
        return this.handleSampled(event.processes);
    }
  }

  private handlePm2(event: Pm2Event): void {
    switch (event.kind) {
      case "online":
        return this.handleOnline(event.name, event.startedAt);
      case "exit":
        return this.handleExit(event.name, event.startedAt, event.exitCode, event.at - event.startedAt);
      case "overlimit":
        return this.handleOverlimit(event.name);
      case "message":
        if (event.type === "tsgi:ready") return this.handleReadyMessage(event.name, event.data);
        return;
      case "log":
        return this.handleLog(event.name, event.stream, event.data);
      case "daemon-exit":
        return this.handleDaemonExit();
      case "raw":
        return;
    }
  }

  private handleStart(specs: PoolSpec[], ports: number[]): void {
    for (const spec of specs) {
      const pool = newPool(spec);
      this.byName.set(spec.name, pool);
      for (let slot = 0; slot < spec.instances; slot++) this.launchSlot(pool, slot, ports);
    }
  }

  private handleScale(app: string, instances: number, ports: number[]): void {
    const pool = this.byName.get(app);
    if (!pool || pool.stopping || pool.stopped) return;
    pool.spec = { ...pool.spec, instances };
    // A halted pool keeps its new size for its next restart(); nothing runs meanwhile.
    if (pool.halted) return;
    const live = liveSlots(pool);
    for (const slot of freeSlots(pool.slots.keys(), Math.max(0, instances - live.length))) this.launchSlot(pool, slot, ports);
    for (const slot of live.slice(instances)) this.removeSlot(pool, slot);
  }

  private handleRestart(apps: string[]): void {
    for (const app of apps) {
      const pool = this.byName.get(app);
      if (!pool || pool.stopping || pool.stopped) continue;
      if (pool.halted) this.revive(pool);
      else {
        pool.rolling = liveSlots(pool).map((slot) => slot.slot);
        pool.rollingSlot = undefined;
        this.advanceRolling(pool);
      }
    }
  }

  private handleStop(): void {
    for (const pool of this.byName.values()) {
      if (pool.stopped) continue;
      pool.stopping = true;
      pool.rolling = undefined;
      for (const slot of pool.slots.values()) if (slot.state !== "stopping") this.removeSlot(pool, slot);
      this.checkStopped(pool);
    }
  }

  private handleLaunched(app: string, slotNo: number, pid: number, error: string | undefined): void {
    const pool = this.byName.get(app);
    const slot = pool?.slots.get(slotNo);
    if (!pool || !slot) return;
    if (error !== undefined) {
      slot.lastError = `pm2 could not launch it: ${error}`;
      slot.settled = true;
      if (!pool.halted && !pool.stopping) this.halt(pool, "launch-failed", slot, undefined);
      return;
    }
    if (slot.pid === 0 && slot.state === "ready") slot.pid = pid;
  }

  private handleRemoved(app: string, slotNo: number): void {
    const pool = this.byName.get(app);
    if (!pool) return;
    pool.slots.delete(slotNo);
    this.checkStopped(pool);
  }

  private handleOnline(name: string, startedAt: number): void {
    const found = this.find(name);
    if (!found) return;
    const { pool, slot } = found;
    if (pool.halted || pool.stopping || slot.state === "stopping" || slot.state === "stopped") return;
    slot.state = "starting";
    slot.startedAt = startedAt;
    slot.since = Date.now();
    slot.pid = 0;
    this.probeReadiness(pool, slot);
  }

  private handleExit(name: string, startedAt: number, exitCode: number, uptimeMs: number): void {
    const found = this.find(name);
    if (!found) return;
    const { pool, slot } = found;
    if (pool.halted || pool.stopping || slot.retiring.has(startedAt) || slot.judged.has(startedAt)) return;
    if (slot.state === "stopping" || slot.state === "stopped") return;
    slot.judged.add(startedAt);
    slot.state = "down";
    slot.pid = 0;
    slot.settled = true;
    slot.lastError = `exited with code ${exitCode} after ${uptimeMs} ms`;
    this.emit({ type: "worker-exit", app: pool.spec.name, slot: slot.slot, exitCode, uptimeMs });
    const verdict = judgeExit({ exitCode, uptimeMs, crashesSoFar: slot.crashes }, pool.spec.restart);
    this.apply(pool, slot, verdict, exitCode);
  }

  /** pm2 gave up on a slot; its exit event follows at once and decides (see crash-policy pm2Limits). */
  private handleOverlimit(name: string): void {
    const found = this.find(name);
    if (found) found.slot.pm2GaveUp = true;
  }

  private handleReadyMessage(name: string, data: unknown): void {
    const found = this.find(name);
    if (!found) return;
    const { pool, slot } = found;
    if (pool.halted || pool.stopping || (slot.state !== "starting" && slot.state !== "down")) return;
    const pid = typeof data === "object" && data !== null && "pid" in data ? Number(data.pid) : 0;
    this.markReady(pool, slot, pid);
  }

  private handleProbed(event: Extract<LoopEvent, { type: "probed" }>): void {
    const found = this.findSlot(event.app, event.slot);
    if (!found) return;
    const { pool, slot } = found;
    if (pool.halted || pool.stopping || slot.state !== "starting" || slot.startedAt !== event.startedAt) return;
    if (event.ok) this.markReady(pool, slot, event.pid);
    else this.notReady(pool, slot, event.afterMs);
  }

  /** A launch that pm2 never called online (nor saw exit): once it comes online, its readiness probe decides instead. */
  private handleDeadline(event: Extract<LoopEvent, { type: "deadline" }>): void {
    const found = this.findSlot(event.app, event.slot);
    if (!found) return;
    const { pool, slot } = found;
    if (pool.halted || pool.stopping || slot.state !== "starting") return;
    if (slot.launch !== event.launch || slot.startedAt !== event.startedAt) return;
    this.notReady(pool, slot, Date.now() - slot.since);
  }

  private handleHaltDetail(app: string, stderr: string[]): void {
    const pool = this.byName.get(app);
    if (!pool?.error) return;
    const error = pool.error;
    const lastLine = [...stderr].reverse().find((line) => line.startsWith("tsgi-stack:")) ?? stderr.at(-1);
    error.stderr = stderr;
    error.message = describeHalt(error.reason, error.slot, error.exitCode, this.pool(app).slots.get(error.slot)?.crashes ?? 0, lastLine);
    pool.errorPending = false;
    this.emit({ type: "pool-errored", app, error });
  }

  private handleSampled(processes: ProcessInfo[]): void {
    for (const info of processes) {
      const found = this.find(info.name);
      if (!found) continue;
      const { slot } = found;
      slot.sample = { memory: info.memory, cpu: info.cpu, restarts: info.restarts };
      // A command app's pid is only known from pm2's list.
      if (slot.pid === 0 && slot.state === "ready" && info.status === "online") slot.pid = info.pid;
    }
  }

  private handleLog(name: string, stream: "out" | "err", data: string): void {
    const parsed = parseProcessName(this.stackId, name);
    if (!parsed || this.logListeners.size === 0) return;
    for (const text of data.split("\n")) {
      if (text === "") continue;
      for (const listener of this.logListeners) listener({ ...parsed, stream, text });
    }
  }

  /** The daemon went away while we were running: every worker went with it. */
  private handleDaemonExit(): void {
    const stopping = [...this.byName.values()].every((pool) => pool.stopping || pool.stopped);
    if (stopping) return;
    this.emit({ type: "supervisor-error", message: "the pm2 daemon stopped: every worker of this stack is gone" });
    for (const pool of this.byName.values()) {
      for (const slot of pool.slots.values()) {
        slot.state = "down";
        slot.pid = 0;
        slot.settled = true;
      }
    }
  }

  // ---- what handlers do ----

  private launchSlot(pool: Pool, slotNo: number, ports: number[]): void {
    const address = this.addressFor(pool.spec, slotNo, ports);
    const name = processName(this.stackId, pool.spec.name, slotNo);
    const slot = newSlot(slotNo, name, address);
    pool.slots.set(slotNo, slot);
    this.relaunch(pool, slot, "start");
  }

  /** Starts (or restarts) a slot's process in pm2 and arms its deadline; readiness arrives as events. */
  private relaunch(pool: Pool, slot: Slot, how: "start" | "restart"): void {
    if (slot.startedAt) slot.retiring.add(slot.startedAt);
    slot.state = "starting";
    slot.settled = false;
    slot.pid = 0;
    slot.since = Date.now();
    slot.launch += 1;
    const spec = processSpec(this.context, pool.spec, slot.slot, slot.name, slot.address);
    const app = pool.spec.name;
    this.runOp(
      slot,
      async (client) => (how === "start" ? (await client.start(spec)).pid : (await client.restart(slot.name), 0)),
      (pid, error) => ({ type: "launched", app, slot: slot.slot, pid: pid ?? 0, ...(error ? { error } : {}) }),
    );
    const deadline: LoopEvent = { type: "deadline", app, slot: slot.slot, launch: slot.launch, startedAt: slot.startedAt };
    setTimeout(() => this.loop.enqueue(deadline), pool.spec.readyTimeoutMs + LAUNCH_DEADLINE_MARGIN_MS).unref();
  }

  /** Takes a slot out of the membership now, then has pm2 stop it gracefully and forget it. */
  private removeSlot(pool: Pool, slot: Slot): void {
    if (slot.startedAt) slot.retiring.add(slot.startedAt);
    slot.state = "stopping";
    const app = pool.spec.name;
    this.runOp(
      slot,
      (client) => client.delete(slot.name),
      () => ({ type: "removed", app, slot: slot.slot }),
    );
  }

  private markReady(pool: Pool, slot: Slot, pid: number): void {
    slot.state = "ready";
    slot.pid = pid;
    slot.settled = true;
    slot.lastError = undefined;
    this.emit({ type: "worker-ready", app: pool.spec.name, slot: slot.slot, pid, address: slot.address });
    this.advanceRolling(pool);
  }

  private notReady(pool: Pool, slot: Slot, afterMs: number): void {
    slot.settled = true;
    slot.lastError = `not ready after ${afterMs} ms`;
    this.emit({ type: "worker-not-ready", app: pool.spec.name, slot: slot.slot, afterMs });
    const verdict = judgeNotReady(slot.crashes, pool.spec.restart);
    if (verdict.action === "replace") {
      slot.crashes = verdict.crashes;
      this.relaunch(pool, slot, "restart");
      // The replacement is under way; this slot has reported its failure, so waiters may go on.
      slot.settled = true;
      this.advanceRolling(pool);
      return;
    }
    this.apply(pool, slot, verdict, undefined);
  }

  private apply(pool: Pool, slot: Slot, verdict: Verdict, exitCode: number | undefined): void {
    slot.crashes = verdict.crashes;
    if (verdict.action === "halt") return this.halt(pool, verdict.reason, slot, exitCode);
    if (slot.pm2GaveUp) return this.halt(pool, "crash-loop", slot, exitCode);
    // pm2 restarts the slot after its back-off; we wait for its "online".
    this.advanceRolling(pool);
  }

  /** Stops every worker of the pool in pm2 (so pm2 does not loop) and reports why, with the failing worker's stderr. */
  private halt(pool: Pool, reason: PoolErrorReason, failed: Slot, exitCode: number | undefined): void {
    pool.halted = true;
    pool.rolling = undefined;
    pool.errorPending = true;
    pool.error = {
      reason,
      message: describeHalt(reason, failed.slot, exitCode, failed.crashes, undefined),
      slot: failed.slot,
      ...(exitCode !== undefined ? { exitCode } : {}),
      stderr: [],
    };
    for (const slot of pool.slots.values()) {
      if (slot.state === "stopping") continue;
      if (slot.startedAt) slot.retiring.add(slot.startedAt);
      slot.state = "errored";
      slot.pid = 0;
      slot.settled = true;
      this.runOp(slot, (client) => client.stop(slot.name), () => undefined);
    }
    const errFile = logFiles(this.paths, pool.spec.name, failed.slot).err;
    const lines = this.options.stderrLines ?? 20;
    const app = pool.spec.name;
    void new Promise((resolve) => setTimeout(resolve, STDERR_SETTLE_MS))
      .then(() => tailLines(errFile, lines))
      .catch(() => [] as string[])
      .then((stderr) => this.loop.enqueue({ type: "halt-detail", app, stderr }));
  }

  /** An errored pool, started again: fresh crash counts, every slot launched with its current spec. */
  private revive(pool: Pool): void {
    pool.halted = false;
    pool.error = undefined;
    pool.errorPending = false;
    const live = liveSlots(pool);
    for (const slot of live.slice(pool.spec.instances)) this.removeSlot(pool, slot);
    for (const slot of live.slice(0, pool.spec.instances)) {
      slot.crashes = 0;
      slot.pm2GaveUp = false;
      // start, not restart: pm2 restarts an existing name with the spec we give it.
      this.relaunch(pool, slot, "start");
    }
    const missing = Math.max(0, pool.spec.instances - live.length);
    for (const slotNo of freeSlots(pool.slots.keys(), missing)) this.launchSlot(pool, slotNo, []);
  }

  /** One slot at a time: the next restarts once the current one is ready or has failed. */
  private advanceRolling(pool: Pool): void {
    if (!pool.rolling) return;
    const current = pool.rollingSlot === undefined ? undefined : pool.slots.get(pool.rollingSlot);
    if (current && !current.settled && current.state === "starting") return;
    const next = pool.rolling.shift();
    pool.rollingSlot = next;
    if (next === undefined) {
      pool.rolling = undefined;
      return;
    }
    const slot = pool.slots.get(next);
    if (!slot || slot.state === "stopping") return this.advanceRolling(pool);
    slot.crashes = 0;
    this.relaunch(pool, slot, "restart");
  }

  private checkStopped(pool: Pool): void {
    if (!pool.stopping || pool.stopped || pool.slots.size > 0) return;
    pool.stopped = true;
    this.emit({ type: "pool-stopped", app: pool.spec.name });
  }

  /**
   * Module workers announce themselves (tsgi:ready, right after pm2's
   * "online"); the socket is probed only if that message does not come.
   * Command apps say nothing: their port is probed until it accepts.
   */
  private probeReadiness(pool: Pool, slot: Slot): void {
    const startedAt = slot.startedAt;
    const stillWanted = () => slot.startedAt === startedAt && slot.state === "starting";
    const command = pool.spec.kind === "command";
    const app = pool.spec.name;
    const begin = Date.now();
    const probe = async (): Promise<boolean> => {
      if (command) return waitUntilAccepting(slot.address, begin + pool.spec.readyTimeoutMs, stillWanted);
      await new Promise((resolve) => setTimeout(resolve, FALLBACK_PROBE_DELAY_MS));
      if (!stillWanted()) return false;
      return (await accepts(slot.address)) || waitUntilAccepting(slot.address, Date.now() + FALLBACK_PROBE_MS, stillWanted);
    };
    void probe()
      .then(async (ok) => ({ ok, pid: ok && stillWanted() ? await this.pidOf(slot.name) : 0 }))
      .catch(() => ({ ok: false, pid: 0 }))
      .then(({ ok, pid }) => {
        if (stillWanted()) this.loop.enqueue({ type: "probed", app, slot: slot.slot, startedAt, ok, pid, afterMs: Date.now() - begin });
      });
  }

  // ---- plumbing ----

  /** Runs one pm2 call for a slot after the ones before it; its outcome comes back as an event. */
  private runOp<T>(slot: Slot, op: (client: Pm2Client) => Promise<T>, toEvent: (value: T | undefined, error?: string) => LoopEvent | undefined): void {
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

  private afterDrain(): void {
    this.publishMembership();
    for (const waiter of [...this.waiters]) {
      if (!waiter.check()) continue;
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  }

  private publishMembership(): void {
    for (const pool of this.byName.values()) {
      const ready = readyEndpoints(pool);
      const key = JSON.stringify(ready);
      if (key === pool.membershipKey) continue;
      pool.membership = ready;
      pool.membershipKey = key;
      for (const listener of this.membershipListeners) this.guard(() => listener(pool.spec.name, ready));
    }
  }

  private until(check: () => boolean): Promise<void> {
    return new Promise((resolve) => this.waiters.push({ check, resolve }));
  }

  private settled(app: string): boolean {
    const pool = this.byName.get(app);
    return pool === undefined || isSettled(pool);
  }

  private emit(event: SupervisorEvent): void {
    for (const listener of this.eventListeners) this.guard(() => listener(event), event.type === "supervisor-error");
  }

  /** A listener that throws must not stop the loop: it is reported as a supervisor-error event instead. */
  private guard(fn: () => void, quiet = false): void {
    try {
      fn();
    } catch (error) {
      if (!quiet) this.emit({ type: "supervisor-error", message: `a listener threw: ${(error as Error).stack ?? String(error)}` });
    }
  }

  private connect(): Promise<Pm2Client> {
    this.client ??= Pm2Client.connect({ home: this.paths.pm2Home, monitorIntervalMs: this.monitorIntervalMs }).then((client) => {
      client.onEvent((event) => this.loop.enqueue({ type: "pm2", event }));
      this.sampler = setInterval(() => void this.sample(), this.monitorIntervalMs);
      this.sampler.unref();
      return client;
    });
    return this.client;
  }

  /** Lets go of pm2: no more events, samples or calls from this object until it connects again. */
  private async release(client: Pm2Client, killDaemon: boolean): Promise<void> {
    clearInterval(this.sampler);
    this.client = undefined;
    if (killDaemon) await client.killDaemon();
    else await client.disconnect();
  }

  /** Asks pm2 for memory, CPU and restart counts; the answer comes back through the loop. False if it could not ask. */
  private async sample(): Promise<boolean> {
    if (!this.client) return false;
    try {
      const processes = await (await this.client).list(stackPrefix(this.stackId));
      this.loop.enqueue({ type: "sampled", processes });
      return true;
    } catch {
      // A sample is best effort: the next one will do.
      return false;
    }
  }

  private pool(app: string): Pool {
    const pool = this.byName.get(app);
    if (!pool) throw new TypeError(`no app named ${JSON.stringify(app)} in stack ${this.stackId}`);
    return pool;
  }

  private find(name: string): { pool: Pool; slot: Slot } | undefined {
    const parsed = parseProcessName(this.stackId, name);
    return parsed ? this.findSlot(parsed.app, parsed.slot) : undefined;
  }

  private findSlot(app: string, slotNo: number): { pool: Pool; slot: Slot } | undefined {
    const pool = this.byName.get(app);
    const slot = pool?.slots.get(slotNo);
    return pool && slot ? { pool, slot } : undefined;
  }

  private checkNewPools(pools: PoolSpec[]): void {
    const names = new Set<string>();
    for (const pool of pools) {
      checkNamePart("app name", pool.name);
      if (names.has(pool.name)) throw new TypeError(`app ${pool.name} is given twice`);
      names.add(pool.name);
      const running = this.byName.get(pool.name);
      if (running && !running.stopped) throw new TypeError(`app ${pool.name} is already running in stack ${this.stackId}`);
      if (!Number.isInteger(pool.instances) || pool.instances < 0) throw new TypeError(`app ${pool.name}: instances must be a whole number`);
      if (pool.kind === "module" && !pool.module) throw new TypeError(`app ${pool.name}: kind "module" needs a module`);
      if (pool.kind === "command" && !pool.command) throw new TypeError(`app ${pool.name}: kind "command" needs a command`);
    }
  }

  /** Module workers listen on a unix socket, unless its path is too long to bind; commands on a loopback port. */
  private addressFor(spec: PoolSpec, slot: number, ports: number[]): WorkerAddress {
    const path = socketPath(this.paths, spec.name, slot);
    if (spec.kind === "module" && Buffer.byteLength(path) <= MAX_SOCKET_PATH) return { kind: "unix", path };
    const port = ports.shift();
    if (port === undefined) throw new Error(`no port was set aside for ${spec.name}.${slot}`);
    return { kind: "tcp", host: "127.0.0.1", port };
  }

  private portsNeeded(spec: PoolSpec, slots: number): number {
    const socketsFit = Buffer.byteLength(socketPath(this.paths, spec.name, 9999)) <= MAX_SOCKET_PATH;
    return spec.kind === "command" || !socketsFit ? slots : 0;
  }

  private async portsFor(count: number): Promise<number[]> {
    const ports = new Set<number>();
    while (ports.size < count) ports.add(await freeLoopbackPort());
    return [...ports];
  }

  private async pidOf(name: string): Promise<number> {
    if (!this.client) return 0;
    const client = await this.client;
    return (await client.list(name)).find((process) => process.name === name)?.pid ?? 0;
  }

  private async deleteMatching(client: Pm2Client, prefix: string): Promise<void> {
    for (const process of await client.list(prefix)) await client.delete(process.name).catch(() => undefined);
  }

  /** Every pid this stack runs, with descendants (a command's server runs under its shell). */
  private knownPids(listed: number[]): number[] {
    const roots = new Set(listed.filter(Boolean));
    for (const pool of this.byName.values()) for (const slot of pool.slots.values()) if (slot.pid) roots.add(slot.pid);
    return [...new Set([...roots].flatMap((pid) => processTree(pid)))];
  }
}
