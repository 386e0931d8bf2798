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
 * The class is the public face and the loop's dispatch; the work is in
 * parts that share supervisor/core.ts: workers.ts (one worker's life:
 * launch, readiness, crash verdicts, halt), reload-driver.ts (rolling
 * reloads), commands.ts (scale, restart, remove, stop), blocked-workers.ts
 * (the heartbeat check), ports.ts (where workers listen). The process
 * manager is reached only through the ProcessManager interface
 * (process-manager.ts; pm2 by default, a fake in tests of the rules).
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
 *
 * Why ~430 lines: its 15 public methods are the supervisor's whole API, each
 * documented where it is; the work they start is in the modules listed above.
 */
import { BlockedWorkerWatch } from "./blocked-workers.ts";
import { PoolCommands } from "./commands.ts";
import { type LoopEvent, SupervisorCore } from "./core.ts";
import { poolDigest, workerMarks } from "./launch.ts";
import { Pm2Client } from "./pm2-client.ts";
import { isSettled, liveSlots, report, statusRows } from "./pool.ts";
import { freePorts, portsNeeded } from "./ports.ts";
import type { ProcessManager } from "./process-manager.ts";
import { isAlive, processesMarked, processTree, reap, terminate } from "./probes.ts";
import type { ReloadTicket } from "./reload.ts";
import { ReloadDriver } from "./reload-driver.ts";
import { appPrefix, checkNamePart, ensureStateDirs, parseProcessName, parseWorkerAddress, stackPrefix, type StatePaths, statePaths } from "./slots.ts";
import type {
  Adoptee,
  LogListener,
  MembershipListener,
  PoolReport,
  PoolSpec,
  ReloadError,
  ReloadReport,
  StatusRow,
  SupervisorListener,
  SupervisorOptions,
  WorkerEndpoint,
} from "./types.ts";
import { WorkerDriver } from "./workers.ts";

/** How often the supervisor checks that pm2's daemon still runs. */
const DAEMON_CHECK_MS = 1000;
/** A daemon whose pid file looks gone but that answers a list() within this is alive. */
const DAEMON_ANSWER_MS = 2000;
/** After pm2's deletes, how long the supervisor waits for the pids to be gone before it SIGKILLs them itself. */
const STOP_VERIFY_MS = 3000;

interface Waiter {
  check: () => boolean;
  resolve: () => void;
}

/** A restart's outcome per app: the pool as it is after it, and why the restart stopped short, if it did. */
export interface RestartReport extends PoolReport {
  /** Old workers replaced by new ones. */
  replaced: number;
  /** The new worker that could not take over (the old ones serve on), as a reload reports it. */
  failed?: ReloadError;
}

export interface StopReport {
  /** pm2 process names that were deleted. */
  deleted: string[];
  /** Pids that outlived pm2's kill and were SIGKILLed by the supervisor. */
  forced: number[];
  /** True if the stack's pm2 daemon was stopped too (it had nothing else to run). */
  daemonStopped: boolean;
  /**
   * Workers of this stack that pm2 no longer listed but still ran — found by
   * their environment once pm2 was done, and stopped (SIGTERM, then SIGKILL).
   * pm2 can lose one when its own restart (max_memory_restart) races a delete.
   */
  strays: number[];
}

export class Supervisor {
  readonly stackId: string;
  readonly paths: StatePaths;
  private readonly core: SupervisorCore;
  private readonly workers: WorkerDriver;
  private readonly reloads: ReloadDriver;
  private readonly commands: PoolCommands;
  private readonly blocked: BlockedWorkerWatch;
  private readonly waiters: Waiter[] = [];
  private sampler: NodeJS.Timeout | undefined;
  private daemonWatch: NodeJS.Timeout | undefined;
  /** A lost daemon being confirmed and replaced (recoverDaemon): one at a time, and stop() waits for it. */
  private recovery: Promise<void> | undefined;

  constructor(options: SupervisorOptions) {
    this.core = new SupervisorCore(
      options,
      (event) => this.dispatch(event),
      () => this.afterDrain(),
    );
    this.stackId = this.core.stackId;
    this.paths = this.core.paths;
    this.workers = new WorkerDriver(this.core);
    this.reloads = new ReloadDriver(this.core, this.workers);
    this.workers.reloads = this.reloads;
    this.commands = new PoolCommands(this.core, this.workers, this.reloads);
    this.blocked = new BlockedWorkerWatch(this.core);
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
    checkNewPools(this.core, pools);
    const client = await this.connect();
    ensureStateDirs(this.paths);
    const adopted = await this.adoptable(client, pools);
    const toLaunch = (pool: PoolSpec) => pool.instances - (adopted.get(pool.name)?.length ?? 0);
    const ports = await freePorts(pools.reduce((sum, pool) => sum + portsNeeded(this.paths, pool, toLaunch(pool)), 0));
    this.core.loop.enqueue({ type: "start", pools, ports, adopted });
    const apps = pools.map((pool) => pool.name);
    await this.until(() => apps.every((app) => this.settled(app)));
    await this.sample();
    return apps.map((app) => report(this.core.pool(app)));
  }

  /**
   * Workers of these pools that a stack process which died left running
   * under pm2 (`up` again after a crash or a SIGKILL of `up -d`): each one
   * running exactly what this stack would launch into a slot it wants (same
   * pool digest, see launch.ts) is adopted as it is, with no restart and no
   * gap in serving; any other is deleted, since its spec is stale.
   */
  private async adoptable(client: ProcessManager, pools: PoolSpec[]): Promise<Map<string, Adoptee[]>> {
    const adopted = new Map<string, Adoptee[]>();
    for (const pool of pools) {
      const digest = poolDigest(this.core.context, pool);
      const keep: Adoptee[] = [];
      for (const process of await client.list(appPrefix(this.stackId, pool.name))) {
        const slot = parseProcessName(this.stackId, process.name)?.slot;
        const address = parseWorkerAddress(process.env.TSGI_ADDRESS);
        const fits =
          slot !== undefined && slot < pool.instances && process.status === "online" && isAlive(process.pid) && process.env.TSGI_POOL_DIGEST === digest && address !== null;
        if (fits) keep.push({ slot, pid: process.pid, startedAt: process.startedAt, address });
        else await client.delete(process.name).catch(() => undefined);
      }
      adopted.set(pool.name, keep);
    }
    return adopted;
  }

  /** Sets a pool's instance count: new slots start (resolves once they are ready or failed), extra ones drain and go. */
  async scale(app: string, instances: number): Promise<PoolReport> {
    const pool = this.core.pool(app);
    if (!Number.isInteger(instances) || instances < 0) throw new TypeError(`scale ${app}: instances must be a whole number, got ${instances}`);
    const ports = await freePorts(portsNeeded(this.paths, pool.spec, Math.max(0, instances - liveSlots(pool).length)));
    this.core.loop.enqueue({ type: "scale", app, instances, ports });
    await this.until(() => this.settled(app));
    return report(this.core.pool(app));
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
        ? [...this.core.byName.values()].filter((pool) => !pool.stopped && !pool.stopping && !pool.halted).map((pool) => pool.spec.name)
        : [this.core.pool(app).spec.name];
    const tickets = apps.map((name) => {
      const ticket: ReloadTicket = {};
      this.core.loop.enqueue({ type: "reload", app: name, tickets: [ticket] });
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
    const pool = this.core.pool(spec.name);
    checkSpec(spec);
    if (pool.stopping || pool.stopped) throw new TypeError(`app ${spec.name} is stopped in stack ${this.stackId}`);
    const copy: PoolSpec = { ...spec, env: { ...spec.env }, restart: { ...spec.restart } };
    // A roll asks for the ports its new workers need as it goes; a plain update may scale at once.
    const growth = Math.max(0, copy.instances - liveSlots(pool).length);
    const ports = options.roll ? [] : await freePorts(portsNeeded(this.paths, copy, growth));
    const ticket: ReloadTicket = {};
    this.core.loop.enqueue({ type: "update", app: copy.name, spec: copy, roll: options.roll, ports, tickets: options.roll ? [ticket] : [] });
    await this.until(() => (!options.roll || ticket.report !== undefined) && this.settled(copy.name, false));
    if (options.roll) return ticket.report!;
    return report(this.core.byName.get(copy.name) ?? pool);
  }

  /**
   * Drains and removes a whole pool: its workers leave the membership at
   * once, drain within their graceful timeout (pm2 SIGKILLs them after), and
   * the pool leaves pools() and status(). A reload under way or waiting is
   * cut short (its report says so). Resolves once every worker is gone.
   */
  async remove(app: string): Promise<void> {
    const pool = this.core.pool(app);
    this.core.loop.enqueue({ type: "remove", app });
    await this.until(() => this.core.byName.get(app) !== pool);
    // Like start(): a process of this app that pm2 runs and we did not know goes too.
    if (this.core.client) await deleteMatching(await this.core.client, appPrefix(this.stackId, app));
  }

  /**
   * Restarts one app's workers, or every app's, on the spec they run: each
   * one replaced as reload() replaces it — the new worker ready (and in the
   * membership) before the old one leaves, so a new worker that cannot load
   * stops the restart with the old ones still serving, and the report says
   * so. An errored pool is started again from scratch. Resolves once each
   * app has settled.
   */
  async restart(app?: string): Promise<RestartReport[]> {
    const apps = app === undefined ? [...this.core.byName.keys()].filter((name) => !this.core.pool(name).stopped) : [this.core.pool(app).spec.name];
    const tickets = apps.map((name) => {
      const ticket: ReloadTicket = {};
      this.core.loop.enqueue({ type: "restart", app: name, tickets: [ticket] });
      return ticket;
    });
    await this.until(() => tickets.every((ticket) => ticket.report !== undefined) && apps.every((name) => this.settled(name)));
    return apps.map((name, index) => {
      const pass = tickets[index]!.report!;
      return { ...report(this.core.pool(name)), replaced: pass.replaced, ...(pass.ok ? {} : { failed: pass.error ?? { message: "not every worker was replaced", stderr: [] } }) };
    });
  }

  /**
   * Stops the whole stack gracefully: every worker gets SIGTERM and drains
   * within its graceful timeout (pm2 SIGKILLs it after kill_timeout), every
   * process named tsgi:<stackId>:* is deleted from pm2 — including ones this
   * object did not start — and the pids are checked gone (SIGKILL for any
   * survivor). The stack's daemon is stopped when it has nothing left to run.
   * Last, any process still carrying this stack's marks is stopped too.
   */
  async stop(): Promise<StopReport> {
    await this.recovery;
    if (!this.core.client && Supervisor.daemonPid(this.core.options.stateDir) === undefined) {
      return { deleted: [], forced: [], daemonStopped: false, strays: await this.stopStrays() };
    }
    const client = await this.connect();
    const listed = await client.list(stackPrefix(this.stackId));
    const pids = knownPids(this.core, listed.map((process) => process.pid));
    const deleted = listed.map((process) => process.name);
    this.core.loop.enqueue({ type: "stop" });
    await this.until(() => [...this.core.byName.values()].every((pool) => pool.stopped));
    await deleteMatching(client, stackPrefix(this.stackId));
    const forced = await reap(pids, STOP_VERIFY_MS);
    // The daemon is the stack's own (its home is in the state dir): with nothing left to run, it goes too.
    const daemonStopped = (await client.list()).length === 0;
    await this.release(client, daemonStopped);
    return { deleted, forced, daemonStopped, strays: await this.stopStrays() };
  }

  /** Processes launched for this stack (its id and pm2 home in their environment) that outlived pm2's part of stop(). */
  private async stopStrays(): Promise<number[]> {
    const strays = this.markedWorkers();
    if (strays.length > 0) await terminate(strays, STOP_VERIFY_MS);
    return strays;
  }

  /** Live processes with this stack's marks in their environment: its workers, whether pm2 lists them or not. */
  private markedWorkers(): number[] {
    // The daemon has PM2_HOME too, and TSGI_STACK if the stack itself was started with it set: it is never a worker.
    const daemon = Supervisor.daemonPid(this.core.options.stateDir);
    return processesMarked(workerMarks(this.stackId, this.paths.pm2Home)).filter((pid) => pid !== daemon);
  }

  /** Lets go of pm2 and leaves the workers running under its daemon (`up --detach`). */
  async detach(): Promise<void> {
    await this.recovery;
    if (this.core.client) await this.release(await this.core.client, false);
  }

  /**
   * One row per worker: plain data from memory, no I/O.
   * Memory, CPU and restart counts are pm2's, sampled every monitorIntervalMs.
   */
  status(): StatusRow[] {
    const now = Date.now();
    return [...this.core.byName.values()].flatMap((pool) => statusRows(pool, now));
  }

  /** Samples pm2 now, then returns status(). */
  async refreshStatus(): Promise<StatusRow[]> {
    if (await this.sample()) await this.until(() => true);
    return this.status();
  }

  /** Each pool's state, plain data. */
  pools(): PoolReport[] {
    return [...this.core.byName.values()].map(report);
  }

  /** The ready workers of an app: what the proxy may send traffic to. */
  membership(app: string): readonly WorkerEndpoint[] {
    return this.core.byName.get(app)?.membership ?? [];
  }

  /** Called with an app's ready workers each time that set changes. Returns the unsubscribe function. */
  onMembership(listener: MembershipListener): () => void {
    this.core.membershipListeners.add(listener);
    return () => this.core.membershipListeners.delete(listener);
  }

  onEvent(listener: SupervisorListener): () => void {
    this.core.eventListeners.add(listener);
    return () => this.core.eventListeners.delete(listener);
  }

  /** The workers' stdout/stderr lines, read from their log files at a bounded rate (log-keeper.ts). */
  onLog(listener: LogListener): () => void {
    this.core.logListeners.add(listener);
    return () => this.core.logListeners.delete(listener);
  }

  // ---- the loop: dispatch to one handler per event ----

  /** One handler per event; then a pool that became quiet runs the next command it kept waiting, and a revival that settled reports. */
  private dispatch(event: LoopEvent): void {
    this.route(event);
    for (const pool of this.core.byName.values()) {
      this.reloads.checkRevived(pool);
      this.commands.runDeferred(pool);
    }
  }

  private route(event: LoopEvent): void {
    const { workers, reloads, commands } = this;
    switch (event.type) {
      case "pm2":
        return workers.handlePm2(event.event);
      case "start":
        return commands.handleStart(event.pools, event.ports, event.adopted);
      case "scale":
      case "restart":
      case "reload":
      case "update":
        return commands.handleCommand(event);
      case "remove":
        return commands.handleRemove(event.app);
      case "stop":
        return commands.handleStop();
      case "launched":
        return workers.handleLaunched(event.app, event.slot, event.pid, event.error);
      case "removed":
        return commands.handleRemoved(event.app, event.slot);
      case "probed":
        return workers.handleProbed(event);
      case "deadline":
        return workers.handleDeadline(event);
      case "halt-detail":
        return workers.handleHaltDetail(event.app, event.stderr);
      case "sampled":
        return workers.handleSampled(event.processes);
      case "gated":
        return reloads.handleGated(event);
      case "reload-deadline":
        return reloads.handleReloadDeadline(event);
      case "reload-detail":
        return reloads.handleReloadDetail(event.app, event.pass, event.stderr);
      case "ports":
        return reloads.handlePorts(event);
      case "heartbeat":
        return workers.handleHeartbeat(event);
      case "socket-lost":
        return workers.handleSocketLost(event);
      case "retry":
        return workers.handleRetry(event);
      case "relaunch-all":
        return workers.handleRelaunchAll();
      case "restart-check":
        return workers.handleRestartCheck(event);
      case "restart-status":
        return workers.handleRestartStatus(event);
    }
  }

  /** After each drain of the loop: listeners hear of membership changes, then callers whose wait is over go on. */
  private afterDrain(): void {
    this.core.publishMembership();
    for (const waiter of [...this.waiters]) {
      if (!waiter.check()) continue;
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  }

  private until(check: () => boolean): Promise<void> {
    return new Promise((resolve) => this.waiters.push({ check, resolve }));
  }

  private settled(app: string, countDraining = true): boolean {
    const pool = this.core.byName.get(app);
    return pool === undefined || isSettled(pool, countDraining);
  }

  private connect(): Promise<ProcessManager> {
    const { options } = this.core;
    const connect = options.connectProcessManager ?? ((connectOptions) => Pm2Client.connect(connectOptions));
    const monitorIntervalMs = options.monitorIntervalMs ?? 5000;
    this.core.client ??= connect({ home: this.paths.pm2Home, monitorIntervalMs }).then((client) => {
      client.onEvent((event) => this.core.loop.enqueue({ type: "pm2", event }));
      this.sampler = setInterval(() => void this.sample(), monitorIntervalMs);
      this.sampler.unref();
      // pm2's daemon can die without a word (SIGKILL, the OOM killer): looked for every second.
      this.daemonWatch = setInterval(() => {
        if (this.recovery || client.daemonAlive()) return;
        this.recovery = this.recoverDaemon(client).finally(() => (this.recovery = undefined));
      }, DAEMON_CHECK_MS);
      this.daemonWatch.unref();
      this.blocked.start();
      void this.core.logKeeper.start();
      return client;
    });
    return this.core.client;
  }

  /** Lets go of the process manager: no more events, samples or calls from this object until it connects again. */
  private async release(client: ProcessManager, killDaemon: boolean): Promise<void> {
    clearInterval(this.sampler);
    clearInterval(this.daemonWatch);
    this.blocked.stop();
    this.core.logKeeper.stop();
    this.core.client = undefined;
    if (killDaemon) await client.killDaemon();
    else await client.disconnect();
  }

  /**
   * pm2's daemon is gone while the stack runs: its workers are orphans (still
   * holding their sockets) or dead, and no event will ever say so. The
   * workers it ran are killed by pid, a new daemon is started, and every
   * pool that was running is launched again on it — as pm2 would have
   * restarted them — while `status` says they are down.
   *
   * The pid file is only the first sign: a daemon that still answers a
   * list() within DAEMON_ANSWER_MS is alive whatever the file says (it is
   * rewritten, not atomically, whenever a daemon starts).
   */
  private async recoverDaemon(lost: ProcessManager): Promise<void> {
    const running = () => [...this.core.byName.values()].some((pool) => !pool.stopping && !pool.stopped);
    if (!running() || (await answers(lost, DAEMON_ANSWER_MS))) return;
    if (!running() || this.core.client === undefined) return;
    try {
      // Those the pools know, and any other the daemon ran (one its own restart started that we had not seen yet).
      const orphans = [...new Set([...knownPids(this.core, []), ...this.markedWorkers()])];
      this.core.loop.enqueue({ type: "pm2", event: { kind: "daemon-exit" } });
      await reap(orphans, 0);
      clearInterval(this.sampler);
      clearInterval(this.daemonWatch);
      this.blocked.stop();
      this.core.client = undefined;
      void lost.disconnect().catch(() => undefined);
      await this.connect();
      this.core.loop.enqueue({ type: "relaunch-all" });
    } catch (error) {
      this.core.emit({ type: "supervisor-error", message: `pm2's daemon is gone and a new one did not start: ${(error as Error).message}` });
    }
  }

  /** Asks pm2 for memory, CPU and restart counts; the answer comes back through the loop. False if it could not ask. */
  private async sample(): Promise<boolean> {
    if (!this.core.client) return false;
    try {
      const processes = await (await this.core.client).list(stackPrefix(this.stackId));
      this.core.loop.enqueue({ type: "sampled", processes });
      return true;
    } catch {
      // A sample is best effort: the next one will do.
      return false;
    }
  }
}

function checkNewPools(core: SupervisorCore, pools: PoolSpec[]): void {
  const names = new Set<string>();
  for (const pool of pools) {
    checkSpec(pool);
    if (names.has(pool.name)) throw new TypeError(`app ${pool.name} is given twice`);
    names.add(pool.name);
    const running = core.byName.get(pool.name);
    if (running && !running.stopped) throw new TypeError(`app ${pool.name} is already running in stack ${core.stackId}`);
  }
}

function checkSpec(pool: PoolSpec): void {
  checkNamePart("app name", pool.name);
  if (!Number.isInteger(pool.instances) || pool.instances < 0) throw new TypeError(`app ${pool.name}: instances must be a whole number`);
  if (pool.kind === "module" && !pool.module) throw new TypeError(`app ${pool.name}: kind "module" needs a module`);
  if (pool.kind === "command" && !pool.command) throw new TypeError(`app ${pool.name}: kind "command" needs a command`);
}

/** Deletes every process whose name starts with `prefix` (each for good: see Pm2Client.delete). */
async function deleteMatching(client: ProcessManager, prefix: string): Promise<void> {
  const listed = await client.list(prefix);
  await Promise.all(listed.map((process) => client.delete(process.name).catch(() => undefined)));
}

/** Every pid this stack runs, with descendants (a command's server runs under its shell). */
function knownPids(core: SupervisorCore, listed: number[]): number[] {
  const roots = new Set(listed.filter(Boolean));
  for (const pool of core.byName.values()) for (const slot of pool.slots.values()) if (slot.pid) roots.add(slot.pid);
  return [...new Set([...roots].flatMap((pid) => processTree(pid)))];
}

/** Whether the process manager answers a list() within `ms`: a dead daemon's RPC socket reconnects forever instead. */
async function answers(client: ProcessManager, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([client.list().then(() => true, () => false), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
