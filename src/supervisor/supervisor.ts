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
 * Shape: every callback — pm2's bus, probes, finished pm2
 * calls, the public methods — only enqueues an event; one loop dispatches each
 * to a synchronous handleX method. Handlers start slow work and never await
 * it; the work reports back through the queue. Public methods enqueue a
 * command and wait until the loop says the pools concerned have settled.
 *
 * Errors are data: a pool that halts is reported in pools(), status() and a
 * "pool-errored" event, with its worker's last stderr lines; nothing throws
 * for a worker's failure. Methods throw only for caller mistakes (an unknown
 * app, a bad spec).
 *
 * restart() replaces each slot in place (same pm2 name, a gap for a
 * 1-worker pool); reload() rolls a pool onto NEW slots, each ready before the
 * old one goes, and stops without halting when a new worker fails — the rules,
 * and how concurrent commands queue, are in reload.ts. updateSpec() rolls a
 * pool onto a changed spec the same way; start() adds pools to a running
 * supervisor and remove() drains one away: what a config hot reload needs.
 */
import { appendFileSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { type BeatingWorker, type BeatReading, blockedWorkers, checkPeriodMs, heartbeatFile } from "./heartbeats.ts";
import { describeHalt, judgeExit, judgeNotReady, telltaleLine, type Verdict } from "./crash-policy.ts";
import { DEFAULT_WORKER_BIN, type LaunchContext, processSpec } from "./launch.ts";
import { EventLoop } from "./loop.ts";
import { Pm2Client } from "./pm2-client.ts";
import type { Pm2Event, ProcessInfo, ProcessManager } from "./process-manager.ts";
import { accepts, fileSize, freeLoopbackPort, processTree, reap, tailLines, waitUntilAccepting } from "./probes.ts";
import {
  defer,
  describeEarlyExit,
  type ReloadFailureKind,
  failureError,
  newPass,
  passReport,
  type PoolCommand,
  type ReloadPass,
  type ReloadTicket,
  rolls,
} from "./reload.ts";
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
import { isQuiet, isSettled, liveSlots, newPool, newSlot, type Pool, readyEndpoints, report, type Slot, statusRows } from "./pool.ts";
import type {
  HealthGate,
  LogListener,
  MembershipListener,
  PoolErrorReason,
  PoolReport,
  PoolSpec,
  ReloadError,
  ReloadReport,
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
/** How long a deleted worker's slot number (its pm2 name) is not given to a reload's new worker. */
const RETIRED_NAME_MS = 15_000;
/** After pm2's deletes, how long the supervisor waits for the pids to be gone before it SIGKILLs them itself. */
const STOP_VERIFY_MS = 3000;

type LoopEvent =
  | { type: "pm2"; event: Pm2Event }
  | { type: "start"; pools: PoolSpec[]; ports: number[] }
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
  | { type: "ports"; app: string; pass: number; ports: number[]; error?: string };

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
  private client: Promise<ProcessManager> | undefined;
  private sampler: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** Pids killed for a blocked event loop: each killed and reported once. */
  private readonly killedBlocked = new Set<number>();
  private passes = 0;
  private launches = 0;
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

  /**
   * Starts pools — at first, or added to a running supervisor (a config hot
   * reload's new app); resolves once every worker is ready or has reported a
   * failure. A name in use by a pool that is not stopped is refused.
   */
  async start(pools: PoolSpec[]): Promise<PoolReport[]> {
    this.checkNewPools(pools);
    const client = await this.connect();
    mkdirSync(this.paths.sockets, { recursive: true });
    mkdirSync(this.paths.logs, { recursive: true });
    mkdirSync(this.paths.heartbeats, { recursive: true });
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
   * Rolls one app, or every running app (halted ones are left alone), onto
   * new workers with no downtime: per app, one slot at a time, a NEW slot is
   * launched, becomes ready, passes the health gate, joins the membership —
   * and only then the old slot leaves it and drains. A new worker that fails
   * stops that app's pass: the old workers it did not reach keep serving, the
   * pool is not halted, and the report says why with the worker's own stderr.
   * A halted app named here is started again in place, as restart() does.
   * Resolves with one report per app once its last new worker is in (the old
   * ones may still be draining: status shows them "stopping"). A reload asked
   * for while the app is busy waits, joined by any other asked meanwhile (see
   * reload.ts).
   */
  async reload(app?: string): Promise<ReloadReport[]> {
    const apps =
      app === undefined
        ? [...this.byName.values()].filter((pool) => !pool.stopped && !pool.stopping && !pool.halted).map((pool) => pool.spec.name)
        : [this.pool(app).spec.name];
    const tickets = apps.map((name) => {
      const ticket: ReloadTicket = {};
      this.loop.enqueue({ type: "reload", app: name, tickets: [ticket] });
      return ticket;
    });
    await this.until(() => tickets.every((ticket) => ticket.report !== undefined));
    return tickets.map((ticket) => ticket.report!);
  }

  /**
   * Gives a pool a new spec (module, command, env, cwd, timeouts, instances…),
   * for a config hot reload. With roll, the pool is rolled onto it like
   * reload() does — new workers from the new spec; the instance count changes
   * once the roll is done (old workers past it go, missing ones start) — and
   * the reload's report comes back; if the roll fails, the pool keeps its old
   * spec (the workers already replaced stay). Without roll, the spec is used
   * from the next launch on, an instance change is applied as scale() does,
   * and the pool's report comes back. Waits for a reload under way.
   */
  async updateSpec(spec: PoolSpec, options: { roll: true }): Promise<ReloadReport>;
  async updateSpec(spec: PoolSpec, options: { roll: false }): Promise<PoolReport>;
  async updateSpec(spec: PoolSpec, options: { roll: boolean }): Promise<ReloadReport | PoolReport>;
  async updateSpec(spec: PoolSpec, options: { roll: boolean }): Promise<ReloadReport | PoolReport> {
    const pool = this.pool(spec.name);
    this.checkSpec(spec);
    if (pool.stopping || pool.stopped) throw new TypeError(`app ${spec.name} is stopped in stack ${this.stackId}`);
    const copy: PoolSpec = { ...spec, env: { ...spec.env }, restart: { ...spec.restart } };
    // A roll asks for the ports its new workers need as it goes; a plain update may scale at once.
    const growth = Math.max(0, copy.instances - liveSlots(pool).length);
    const ports = options.roll ? [] : await this.portsFor(this.portsNeeded(copy, growth));
    const ticket: ReloadTicket = {};
    this.loop.enqueue({ type: "update", app: copy.name, spec: copy, roll: options.roll, ports, tickets: options.roll ? [ticket] : [] });
    await this.until(() => (!options.roll || ticket.report !== undefined) && this.settled(copy.name, false));
    if (options.roll) return ticket.report!;
    return report(this.byName.get(copy.name) ?? pool);
  }

  /**
   * Drains and removes a whole pool: its workers leave the membership at
   * once, drain within their graceful timeout (pm2 SIGKILLs them after), and
   * the pool leaves pools() and status(). A reload under way or waiting is
   * cut short (its report says so). Resolves once every worker is gone.
   */
  async remove(app: string): Promise<void> {
    const pool = this.pool(app);
    this.loop.enqueue({ type: "remove", app });
    await this.until(() => this.byName.get(app) !== pool);
    // Like start(): a process of this app that pm2 runs and we did not know goes too.
    if (this.client) await this.deleteMatching(await this.client, appPrefix(this.stackId, app));
  }

  /**
   * Restarts one app's workers, or every app's, one slot at a time: a slot
   * leaves the membership, restarts, and the next one goes once it is ready
   * (or failed). An errored pool is started again from scratch.
   */
  async restart(app?: string): Promise<PoolReport[]> {
    const apps = app === undefined ? [...this.byName.keys()].filter((name) => !this.pool(name).stopped) : [this.pool(app).spec.name];
    for (const name of apps) this.loop.enqueue({ type: "restart", app: name });
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
   * One row per worker: plain data from memory, no I/O.
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

  /** One handler per event; then a pool that became quiet runs the next command it kept waiting, and a revival that settled reports. */
  private dispatch(event: LoopEvent): void {
    this.route(event);
    for (const pool of this.byName.values()) {
      this.checkRevived(pool);
      this.runDeferred(pool);
    }
  }

  private route(event: LoopEvent): void {
    switch (event.type) {
      case "pm2":
        return this.handlePm2(event.event);
      case "start":
        return this.handleStart(event.pools, event.ports);
      case "scale":
      case "restart":
      case "reload":
      case "update":
        return this.handleCommand(event);
      case "remove":
        return this.handleRemove(event.app);
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
      case "gated":
        return this.handleGated(event);
      case "reload-deadline":
        return this.handleReloadDeadline(event);
      case "reload-detail":
        return this.handleReloadDetail(event.app, event.pass, event.stderr);
      case "ports":
        return this.handlePorts(event);
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

  /** A command for one pool: run now, or kept in the pool's queue while a reload needs the pool to itself (reload.ts). */
  private handleCommand(command: PoolCommand): void {
    const pool = this.byName.get(command.app);
    if (!pool || pool.stopping || pool.stopped) return this.drop(command, `app ${command.app} is not running`);
    if (pool.deferred.length > 0 || !this.canRun(pool, command)) return defer(pool.deferred, command);
    this.runCommand(pool, command);
  }

  private canRun(pool: Pool, command: PoolCommand): boolean {
    return rolls(command) ? isQuiet(pool) : pool.reload === undefined;
  }

  private runCommand(pool: Pool, command: PoolCommand): void {
    switch (command.type) {
      case "scale":
        return this.scalePool(pool, command.instances, command.ports);
      case "restart":
        return this.restartPool(pool);
      case "reload":
        return this.startReload(pool, command.tickets, undefined);
      case "update":
        if (command.roll) return this.startReload(pool, command.tickets, command.spec);
        pool.spec = command.spec;
        return this.scalePool(pool, command.spec.instances, command.ports);
    }
  }

  private runDeferred(pool: Pool): void {
    if (pool.stopping || pool.stopped) return;
    while (pool.deferred.length > 0 && this.canRun(pool, pool.deferred[0]!)) this.runCommand(pool, pool.deferred.shift()!);
  }

  /** A command that will never run: its callers hear why (scale and restart callers wait on the pool, which is gone). */
  private drop(command: PoolCommand, why: string): void {
    if (command.type !== "reload" && command.type !== "update") return;
    const reply: ReloadReport = { app: command.app, ok: false, replaced: 0, error: { message: why, stderr: [] }, ms: 0 };
    for (const ticket of command.tickets) ticket.report = reply;
  }

  private scalePool(pool: Pool, instances: number, ports: number[]): void {
    pool.spec = { ...pool.spec, instances };
    // A halted pool keeps its new size for its next restart(); nothing runs meanwhile.
    if (pool.halted) return;
    const live = liveSlots(pool);
    for (const slot of freeSlots(pool.slots.keys(), Math.max(0, instances - live.length))) this.launchSlot(pool, slot, ports);
    for (const slot of live.slice(instances)) this.removeSlot(pool, slot);
  }

  private restartPool(pool: Pool): void {
    if (pool.halted) return this.revive(pool);
    pool.rolling = liveSlots(pool).map((slot) => slot.slot);
    pool.rollingSlot = undefined;
    this.advanceRolling(pool);
  }

  private handleStop(): void {
    for (const pool of this.byName.values()) this.drain(pool, "the stack is stopping");
  }

  /** remove(): the pool drains like at stop(), then is forgotten. */
  private handleRemove(app: string): void {
    const pool = this.byName.get(app);
    if (!pool) return;
    pool.removing = true;
    this.drain(pool, `app ${app} was removed`);
  }

  /** Every slot leaves the membership now and drains; a reload under way or waiting ends with `why`. */
  private drain(pool: Pool, why: string): void {
    if (pool.stopped) return this.checkStopped(pool);
    pool.stopping = true;
    pool.rolling = undefined;
    if (pool.reload) this.finishReload(pool, { message: `reload of ${pool.spec.name} cut short: ${why}`, stderr: [] });
    for (const command of pool.deferred.splice(0)) this.drop(command, `reload of ${pool.spec.name} not started: ${why}`);
    for (const slot of pool.slots.values()) if (slot.state !== "stopping") this.removeSlot(pool, slot);
    this.checkStopped(pool);
  }

  private handleLaunched(app: string, slotNo: number, pid: number, error: string | undefined): void {
    const pool = this.byName.get(app);
    const slot = pool?.slots.get(slotNo);
    if (!pool || !slot) return;
    if (error !== undefined) {
      slot.lastError = `pm2 could not launch it: ${error}`;
      slot.settled = true;
      if (this.isIncoming(pool, slot)) return this.failReload(pool, slot, "launch", `could not be launched: ${error}`);
      if (!pool.halted && !pool.stopping) this.halt(pool, "launch-failed", slot, undefined);
      return;
    }
    if (slot.pid === 0 && slot.state === "ready") slot.pid = pid;
  }

  private handleRemoved(app: string, slotNo: number): void {
    const pool = this.byName.get(app);
    if (!pool) return;
    pool.slots.delete(slotNo);
    pool.retired.set(slotNo, Date.now());
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
    // A reload's new worker is not judged: its reload stops, and the old workers serve on (reload.ts).
    if (this.isIncoming(pool, slot)) return this.failReload(pool, slot, "exit", describeEarlyExit(exitCode));
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
    this.workerReady(pool, slot, pid);
  }

  private handleProbed(event: Extract<LoopEvent, { type: "probed" }>): void {
    const found = this.findSlot(event.app, event.slot);
    if (!found) return;
    const { pool, slot } = found;
    if (pool.halted || pool.stopping || slot.state !== "starting" || slot.startedAt !== event.startedAt || slot.launch !== event.launch) return;
    if (event.ok) this.workerReady(pool, slot, event.pid);
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
    const lastLine = telltaleLine(stderr);
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

  /** The health gate answered for a reload's new worker. */
  private handleGated(event: Extract<LoopEvent, { type: "gated" }>): void {
    const found = this.findSlot(event.app, event.slot);
    if (!found) return;
    const { pool, slot } = found;
    if (!slot.gating || slot.launch !== event.launch || slot.state !== "starting" || !this.isIncoming(pool, slot)) return;
    slot.gating = false;
    if (event.ok) return this.markReady(pool, slot, event.pid);
    this.failReload(pool, slot, "gate", `failed the health gate${event.reason ? ` (${event.reason})` : ""}`);
  }

  /** A reload's new worker has had readyTimeoutMs since its launch to be ready and through the gate. */
  private handleReloadDeadline(event: Extract<LoopEvent, { type: "reload-deadline" }>): void {
    const found = this.findSlot(event.app, event.slot);
    if (!found) return;
    const { pool, slot } = found;
    if (slot.launch !== event.launch || slot.state === "ready" || !this.isIncoming(pool, slot)) return;
    const ms = pool.spec.readyTimeoutMs;
    if (slot.gating) this.failReload(pool, slot, "gate", `did not pass the health gate within ${ms} ms`);
    else this.failReload(pool, slot, "not-ready", `was not ready within ${ms} ms`);
  }

  /** A failed new worker's stderr has been read: its reload ends. */
  private handleReloadDetail(app: string, passId: number, stderr: string[]): void {
    const pool = this.byName.get(app);
    const pass = pool?.reload;
    if (!pool || !pass || pass.id !== passId || !pass.failure) return;
    this.finishReload(pool, failureError(pass.failure, stderr));
  }

  private handlePorts(event: Extract<LoopEvent, { type: "ports" }>): void {
    const pool = this.byName.get(event.app);
    const pass = pool?.reload;
    if (!pool || !pass || pass.id !== event.pass) return;
    pass.askingPorts = false;
    if (event.error !== undefined) return this.finishReload(pool, { message: `no free loopback port for a new worker: ${event.error}`, stderr: [] });
    pass.ports.push(...event.ports);
    this.advanceReload(pool);
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

  /**
   * A new slot, launched. With markLog (a reload's new worker), its launch
   * waits until the size of its stderr log is known: a failure report reads
   * that worker's own lines, not those of an earlier worker of the same number.
   */
  private launchSlot(pool: Pool, slotNo: number, ports: number[], markLog = false): Slot {
    const address = this.addressFor(pool.spec, slotNo, ports);
    const name = processName(this.stackId, pool.spec.name, slotNo);
    const slot = newSlot(slotNo, name, address);
    if (markLog) {
      slot.errLogStart = fileSize(logFiles(this.paths, pool.spec.name, slotNo).err);
      slot.ops = slot.errLogStart.then(() => undefined);
    }
    pool.slots.set(slotNo, slot);
    this.relaunch(pool, slot, "start");
    return slot;
  }

  /** Starts (or restarts) a slot's process in pm2 and arms its deadline; readiness arrives as events. */
  private relaunch(pool: Pool, slot: Slot, how: "start" | "restart"): void {
    if (slot.startedAt) slot.retiring.add(slot.startedAt);
    slot.state = "starting";
    slot.settled = false;
    slot.pid = 0;
    slot.since = Date.now();
    // Numbered across the supervisor, not per slot: a slot number reused by a reload starts a new Slot, and a
    // deadline or probe armed for the earlier one must never match the new worker.
    slot.launch = ++this.launches;
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

  /** A worker said it is ready (or its socket accepts): a reload's new one goes through the health gate first. */
  private workerReady(pool: Pool, slot: Slot, pid: number): void {
    if (slot.gating) return;
    const gate = this.options.healthGate;
    if (gate && this.isIncoming(pool, slot)) return this.startGate(pool, slot, pid, gate);
    this.markReady(pool, slot, pid);
  }

  private markReady(pool: Pool, slot: Slot, pid: number): void {
    slot.state = "ready";
    slot.pid = pid;
    slot.settled = true;
    slot.lastError = undefined;
    this.emit({ type: "worker-ready", app: pool.spec.name, slot: slot.slot, pid, address: slot.address });
    this.advanceRolling(pool);
    this.advanceReload(pool);
  }

  /** Asks the health gate about a reload's new worker; it stays "starting", out of the membership, until the answer. */
  private startGate(pool: Pool, slot: Slot, pid: number, gate: HealthGate): void {
    slot.gating = true;
    slot.pid = pid;
    const app = pool.spec.name;
    const { launch } = slot;
    const endpoint: WorkerEndpoint = Object.freeze({ slot: slot.slot, pid, address: slot.address });
    void Promise.resolve()
      .then(() => gate(app, endpoint))
      .then(
        (ok) => ({ ok: ok === true }),
        (error: unknown) => ({ ok: false, reason: `it threw: ${(error as Error)?.message ?? String(error)}` }),
      )
      .then((answer) => this.loop.enqueue({ type: "gated", app, slot: slot.slot, launch, pid, ...answer }));
  }

  private notReady(pool: Pool, slot: Slot, afterMs: number): void {
    // A reload's new worker has its whole ready_timeout (the reload deadline decides): a slow boot under
    // load is not a failed deploy, and failing it early would abort a good reload.
    if (this.isIncoming(pool, slot)) return;
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
    const pass = pool.reload;
    if (pass && !pass.revive) {
      // An old worker halted the pool in the middle of a reload: the new one goes, and the reload ends with the pool.
      const fresh = pass.fresh === undefined ? undefined : pool.slots.get(pass.fresh);
      if (fresh && fresh.state !== "stopping") this.removeSlot(pool, fresh);
      const message = `reload of ${pool.spec.name} cut short: worker ${failed.slot} halted the pool (${reason})`;
      this.finishReload(pool, { message, stderr: [], slot: failed.slot });
    }
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
    if (!pool.stopped) {
      if (!pool.stopping || pool.slots.size > 0) return;
      pool.stopped = true;
      this.emit({ type: "pool-stopped", app: pool.spec.name });
    }
    if (pool.removing) this.forget(pool);
  }

  /** A removed pool leaves pools() and status(); membership listeners that knew workers of it hear that none is left. */
  private forget(pool: Pool): void {
    const app = pool.spec.name;
    if (this.byName.get(app) !== pool) return;
    this.byName.delete(app);
    if (pool.membershipKey === "[]") return;
    pool.membership = Object.freeze([]);
    pool.membershipKey = "[]";
    for (const listener of this.membershipListeners) this.guard(() => listener(app, pool.membership));
  }

  // ---- reload (the rules are in reload.ts) ----

  /** True for the new worker a reload pass is waiting on (not yet failed). */
  private isIncoming(pool: Pool, slot: Slot): boolean {
    const pass = pool.reload;
    return pass !== undefined && pass.fresh === slot.slot && pass.failure === undefined;
  }

  /** Starts a pass over the pool's live slots; with a spec (updateSpec), onto that spec. A halted pool is revived in place. */
  private startReload(pool: Pool, tickets: ReloadTicket[], spec: PoolSpec | undefined): void {
    const app = pool.spec.name;
    const id = ++this.passes;
    if (pool.halted) {
      if (spec) pool.spec = spec;
      pool.reload = newPass(id, Date.now(), { tickets, revive: true });
      this.emit({ type: "reload-started", app, workers: pool.spec.instances });
      this.revive(pool);
      return;
    }
    const live = liveSlots(pool).map((slot) => slot.slot);
    const previousSpec = spec ? pool.spec : undefined;
    if (spec) pool.spec = spec;
    // updateSpec to fewer instances: the old slots past the new count serve on through the roll, then go.
    const keep = spec ? live.slice(0, spec.instances) : live;
    const dropAfter = spec ? live.slice(spec.instances) : [];
    pool.reload = newPass(id, Date.now(), { queue: keep, tickets, ...(previousSpec ? { previousSpec } : {}), dropAfter });
    this.emit({ type: "reload-started", app, workers: keep.length });
    this.advanceReload(pool);
  }

  /** One step of a pass: swap in a new worker that is ready, launch the next one, or end the pass. */
  private advanceReload(pool: Pool): void {
    const pass = pool.reload;
    if (!pass || pass.revive || pass.failure) return;
    if (pass.fresh !== undefined) {
      const fresh = pool.slots.get(pass.fresh);
      if (!fresh || fresh.state !== "ready") return;
      this.swap(pool, pass);
    }
    const old = this.nextOld(pool, pass);
    if (old) {
      if (this.portsReady(pool, pass, 1)) this.launchIncoming(pool, pass, old);
      return;
    }
    if (pass.resize && !this.resizeAfterRoll(pool, pass)) return;
    this.finishReload(pool, undefined);
  }

  /** The new worker is in: publish that now, then the old one leaves the membership and drains. */
  private swap(pool: Pool, pass: ReloadPass): void {
    // Not at the end of the drain: listeners must see the new endpoint added before the old one removed (issue #5).
    this.publishMembership();
    const old = pass.old === undefined ? undefined : pool.slots.get(pass.old);
    if (old && old.state !== "stopping" && old.state !== "stopped") this.removeSlot(pool, old);
    pass.replaced += 1;
    pass.old = undefined;
    pass.fresh = undefined;
  }

  /** The next old slot still to replace; ones that went meanwhile are skipped. */
  private nextOld(pool: Pool, pass: ReloadPass): Slot | undefined {
    while (pass.queue.length > 0) {
      const slot = pool.slots.get(pass.queue[0]!);
      if (slot && slot.state !== "stopping" && slot.state !== "stopped") return slot;
      pass.queue.shift();
    }
    return undefined;
  }

  private launchIncoming(pool: Pool, pass: ReloadPass, old: Slot): void {
    pass.queue.shift();
    const now = Date.now();
    for (const [number, at] of pool.retired) if (now - at > RETIRED_NAME_MS) pool.retired.delete(number);
    const [slotNo] = freeSlots([...pool.slots.keys(), ...pool.retired.keys()], 1);
    const slot = this.launchSlot(pool, slotNo!, pass.ports, true);
    pass.old = old.slot;
    pass.fresh = slot.slot;
    const deadline: LoopEvent = { type: "reload-deadline", app: pool.spec.name, slot: slot.slot, launch: slot.launch };
    setTimeout(() => this.loop.enqueue(deadline), pool.spec.readyTimeoutMs).unref();
  }

  /** True if the pass has the loopback ports its next launches need (command apps); else asks for them, and the answer resumes the pass. */
  private portsReady(pool: Pool, pass: ReloadPass, count: number): boolean {
    const needed = this.portsNeeded(pool.spec, count);
    if (pass.ports.length >= needed) return true;
    if (!pass.askingPorts) {
      pass.askingPorts = true;
      const app = pool.spec.name;
      const { id } = pass;
      void this.portsFor(needed - pass.ports.length).then(
        (ports) => this.loop.enqueue({ type: "ports", app, pass: id, ports }),
        (error: Error) => this.loop.enqueue({ type: "ports", app, pass: id, ports: [], error: error.message }),
      );
    }
    return false;
  }

  /** updateSpec, once the roll is done: old slots past the new instance count go, missing ones start (as scale() does). */
  private resizeAfterRoll(pool: Pool, pass: ReloadPass): boolean {
    const live = liveSlots(pool);
    const drop = live.filter((slot) => pass.dropAfter.includes(slot.slot));
    const missing = Math.max(0, pool.spec.instances - (live.length - drop.length));
    if (!this.portsReady(pool, pass, missing)) return false;
    for (const slot of drop) this.removeSlot(pool, slot);
    for (const slotNo of freeSlots(pool.slots.keys(), missing)) this.launchSlot(pool, slotNo, pass.ports);
    return true;
  }

  /**
   * The new worker failed: it is removed (it never joined the membership),
   * the old workers stay as they are, and the pass ends once the worker's own
   * stderr is read (after pm2's log stream had time to write it).
   */
  private failReload(pool: Pool, slot: Slot, kind: ReloadFailureKind, what: string): void {
    const pass = pool.reload;
    if (!pass || pass.failure || pass.fresh !== slot.slot) return;
    pass.failure = { kind, slot: slot.slot, what };
    slot.gating = false;
    slot.settled = true;
    slot.lastError = what;
    if (kind === "not-ready") this.emit({ type: "worker-not-ready", app: pool.spec.name, slot: slot.slot, afterMs: Date.now() - slot.since });
    this.removeSlot(pool, slot);
    const errFile = logFiles(this.paths, pool.spec.name, slot.slot).err;
    const from = slot.errLogStart ?? Promise.resolve(0);
    const lines = this.options.stderrLines ?? 20;
    const app = pool.spec.name;
    const { id } = pass;
    void new Promise((resolve) => setTimeout(resolve, STDERR_SETTLE_MS))
      .then(() => from)
      .then((offset) => tailLines(errFile, lines, offset))
      .catch(() => [] as string[])
      .then((stderr) => this.loop.enqueue({ type: "reload-detail", app, pass: id, stderr }));
  }

  /** Ends the pass: its callers get the report, listeners the event. A failed roll puts the pool's previous spec back. */
  private finishReload(pool: Pool, error: ReloadError | undefined): void {
    const pass = pool.reload;
    if (!pass) return;
    pool.reload = undefined;
    if (error && pass.previousSpec) pool.spec = pass.previousSpec;
    const app = pool.spec.name;
    const done = passReport(app, pass, Date.now(), error);
    for (const ticket of pass.tickets) ticket.report = done;
    this.emit(error ? { type: "reload-failed", app, report: done } : { type: "reload-done", app, report: done });
  }

  /** A halted pool that a reload started again: the pass ends once it has settled, ready or halted again. */
  private checkRevived(pool: Pool): void {
    const pass = pool.reload;
    if (!pass?.revive) return;
    if (pool.halted) {
      if (pool.errorPending || !pool.error) return;
      const { message, stderr, slot } = pool.error;
      return this.finishReload(pool, { message, stderr, slot });
    }
    const live = liveSlots(pool);
    if (live.some((slot) => !slot.settled)) return;
    pass.replaced = live.filter((slot) => slot.state === "ready").length;
    const bad = live.find((slot) => slot.state !== "ready");
    this.finishReload(pool, bad ? { message: `worker ${bad.slot} ${bad.lastError ?? "is not ready"}`, stderr: [], slot: bad.slot } : undefined);
  }

  /**
   * Module workers announce themselves (tsgi:ready, right after pm2's
   * "online"); the socket is probed only if that message does not come.
   * Command apps say nothing: their port is probed until it accepts.
   */
  private probeReadiness(pool: Pool, slot: Slot): void {
    // Both tell this generation from the next: pm2 restarts change startedAt, and a relaunch of ours (which keeps
    // startedAt until pm2 calls the new process online) changes launch — a probe of a worker that died at boot
    // must not judge the one relaunched right after it.
    const { startedAt, launch } = slot;
    const stillWanted = () => slot.startedAt === startedAt && slot.launch === launch && slot.state === "starting" && !slot.gating;
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
        if (stillWanted()) this.loop.enqueue({ type: "probed", app, slot: slot.slot, startedAt, launch, ok, pid, afterMs: Date.now() - begin });
      });
  }

  // ---- plumbing ----

  /** Runs one pm2 call for a slot after the ones before it; its outcome comes back as an event. */
  private runOp<T>(slot: Slot, op: (client: ProcessManager) => Promise<T>, toEvent: (value: T | undefined, error?: string) => LoopEvent | undefined): void {
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

  private settled(app: string, countDraining = true): boolean {
    const pool = this.byName.get(app);
    return pool === undefined || isSettled(pool, countDraining);
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

  private connect(): Promise<ProcessManager> {
    const connect = this.options.connectProcessManager ?? ((options) => Pm2Client.connect(options));
    this.client ??= connect({ home: this.paths.pm2Home, monitorIntervalMs: this.monitorIntervalMs }).then((client) => {
      client.onEvent((event) => this.loop.enqueue({ type: "pm2", event }));
      this.sampler = setInterval(() => void this.sample(), this.monitorIntervalMs);
      this.sampler.unref();
      this.scheduleHeartbeatCheck();
      return client;
    });
    return this.client;
  }

  /** Lets go of pm2: no more events, samples or calls from this object until it connects again. */
  private async release(client: ProcessManager, killDaemon: boolean): Promise<void> {
    clearInterval(this.sampler);
    clearTimeout(this.heartbeatTimer);
    this.client = undefined;
    if (killDaemon) await client.killDaemon();
    else await client.disconnect();
  }

  /** The gateway workers that beat: running slots of module pools with a timeout. */
  private beatingWorkers(): BeatingWorker[] {
    const workers: BeatingWorker[] = [];
    for (const pool of this.byName.values()) {
      if (pool.spec.kind !== "module" || pool.spec.timeoutMs <= 0) continue;
      for (const slot of pool.slots.values()) {
        if (slot.pid <= 0 || !(slot.state === "starting" || slot.state === "ready" || slot.state === "stopping")) continue;
        workers.push({ app: pool.spec.name, slot: slot.slot, pid: slot.pid, file: heartbeatFile(this.paths, slot.name), timeoutMs: pool.spec.timeoutMs });
      }
    }
    return workers;
  }

  private scheduleHeartbeatCheck(): void {
    this.heartbeatTimer = setTimeout(() => {
      this.guard(() => this.killBlockedWorkers());
      this.scheduleHeartbeatCheck();
    }, checkPeriodMs(this.beatingWorkers()));
    this.heartbeatTimer.unref();
  }

  /**
   * SIGKILLs each worker whose heartbeat went stale; pm2 sees it die and the
   * loop handles that as any crash. Reads state and signals, changes none.
   */
  private killBlockedWorkers(): void {
    const workers = this.beatingWorkers();
    for (const pid of this.killedBlocked) if (!workers.some((worker) => worker.pid === pid)) this.killedBlocked.delete(pid);
    for (const worker of blockedWorkers(workers, readBeat, Date.now())) {
      if (this.killedBlocked.has(worker.pid)) continue;
      this.killedBlocked.add(worker.pid);
      const { app, slot, pid, silentMs, timeoutMs } = worker;
      // The worker's own log says why it died, as its watchdog thread's line would.
      const line = `tsgi worker ${pid}: event loop blocked for ${silentMs} ms (timeout ${timeoutMs} ms): killed by the supervisor for replacement`;
      try {
        appendFileSync(logFiles(this.paths, app, slot).err, `${line}\n`);
      } catch {
        // The log is a courtesy; the kill is what matters.
      }
      this.emit({ type: "worker-blocked", app, slot, pid, silentMs, timeoutMs });
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
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
      this.checkSpec(pool);
      if (names.has(pool.name)) throw new TypeError(`app ${pool.name} is given twice`);
      names.add(pool.name);
      const running = this.byName.get(pool.name);
      if (running && !running.stopped) throw new TypeError(`app ${pool.name} is already running in stack ${this.stackId}`);
    }
  }

  private checkSpec(pool: PoolSpec): void {
    checkNamePart("app name", pool.name);
    if (!Number.isInteger(pool.instances) || pool.instances < 0) throw new TypeError(`app ${pool.name}: instances must be a whole number`);
    if (pool.kind === "module" && !pool.module) throw new TypeError(`app ${pool.name}: kind "module" needs a module`);
    if (pool.kind === "command" && !pool.command) throw new TypeError(`app ${pool.name}: kind "command" needs a command`);
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

  private async deleteMatching(client: ProcessManager, prefix: string): Promise<void> {
    for (const process of await client.list(prefix)) await client.delete(process.name).catch(() => undefined);
  }

  /** Every pid this stack runs, with descendants (a command's server runs under its shell). */
  private knownPids(listed: number[]): number[] {
    const roots = new Set(listed.filter(Boolean));
    for (const pool of this.byName.values()) for (const slot of pool.slots.values()) if (slot.pid) roots.add(slot.pid);
    return [...new Set([...roots].flatMap((pid) => processTree(pid)))];
  }
}

/** A heartbeat file's time and the pid written in it; undefined while there is none (or it cannot be read). */
function readBeat(file: string): BeatReading | undefined {
  try {
    const { mtimeMs } = statSync(file);
    return { mtimeMs, pid: Number.parseInt(readFileSync(file, "utf8"), 10) };
  } catch {
    return undefined;
  }
}
