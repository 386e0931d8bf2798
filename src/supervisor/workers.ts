/**
 * @module supervisor/workers
 *
 * One worker's life, as the supervisor drives it: launched (or relaunched)
 * in pm2, probed until ready (its tsgi:ready message, or its socket), judged
 * when it exits or is not ready in time (crash-policy.ts gives the verdict),
 * revived from scratch when halted (restart and reload roll through reload-driver.ts), and the whole pool halted —
 * every worker stopped in pm2, the failing worker's stderr read — when the
 * verdict says a restart would only loop. Handlers here are called by the
 * loop (supervisor.ts) and never wait; slow work reports back as events.
 *
 * A reload's new worker ("incoming") is not judged here: its failure ends
 * the reload instead (reload-driver.ts, reached through ReloadHooks).
 *
 * An exit pm2 is to restart is followed up: pm2 cannot restart a worker
 * whose log files it cannot open (a read-only disk) and says nothing, so a
 * slot still down after pm2's back-off is asked about, its cause found and
 * shown, and the slot started again by the supervisor until it runs.
 *
 * Why ~570 lines: one worker's life, from launch to halt, is one sequence of
 * small handlers that call each other; split, a reader would hop files to
 * follow one worker.
 */
import { READY_MESSAGE, readyPid } from "../contract/messages.ts";
import { killTimeoutMs } from "../contract/stopping.ts";
import { describeHalt, judgeExit, judgeNotReady, signalOfShellCode, telltaleLine, type Verdict } from "./crash-policy.ts";
import type { LoopEvent, SupervisorCore } from "./core.ts";
import { processSpec, workerMarks } from "./launch.ts";
import { liveSlots, newSlot, type Pool, type Slot } from "./pool.ts";
import { addressFor } from "./ports.ts";
import type { Pm2Event, ProcessInfo } from "./process-manager.ts";
import { accepts, fileSize, isAlive, logFileProblem, processesMarked, tailLines, terminate, waitUntilAccepting } from "./probes.ts";
import { describeEarlyExit, type ReloadFailureKind } from "./reload.ts";
import { ensureStateDirs, freeSlots, logFiles, parseProcessName, parseWorkerAddress, processName, socketPath } from "./slots.ts";
import type { Adoptee, HealthGate, PoolErrorReason, ReloadError, WorkerEndpoint } from "./types.ts";

/** After pm2 calls a module worker online, how long we wait for its tsgi:ready before probing its socket instead. */
const FALLBACK_PROBE_DELAY_MS = 300;
/** How long that fallback probe tries the socket. */
const FALLBACK_PROBE_MS = 1000;
/** A launch that produced no online/exit at all within readyTimeout + this is treated as not ready. */
const LAUNCH_DEADLINE_MARGIN_MS = 5000;
/** The longest wait between two tries of a slot whose once-loaded code does not load now. */
const RETRY_MAX_MS = 15_000;
/** pm2's restart back-off grows ×1.5 per crash up to this (process-manager.ts): a restart later than that plus a margin is not coming. */
const PM2_MAX_BACKOFF_MS = 15_000;
/** A worker's last stderr lines are in its file once it exited; this leaves a shell wrapper's or a child's last writes time to land. */
export const STDERR_SETTLE_MS = 200;

/** What a worker's life needs to know of the reload under way (reload-driver.ts). */
export interface ReloadHooks {
  /** True for the new worker a reload pass is waiting on (not yet failed). */
  isIncoming(pool: Pool, slot: Slot): boolean;
  fail(pool: Pool, slot: Slot, kind: ReloadFailureKind, what: string): void;
  advance(pool: Pool): void;
  finish(pool: Pool, error: ReloadError | undefined): void;
}

export class WorkerDriver {
  /** Set once the reload driver exists (the two call each other). */
  reloads!: ReloadHooks;

  constructor(private readonly core: SupervisorCore) {}

  handleLaunched(app: string, slotNo: number, pid: number, error: string | undefined): void {
    const found = this.core.current({ app, slot: slotNo });
    if (!found) return;
    const { pool, slot } = found;
    if (error !== undefined) {
      const before = slot.lastError;
      // pm2's answer may not say why ("started nothing"): the worker's log files it must open first are asked.
      slot.lastError = `pm2 could not launch it: ${logFileProblem(logFiles(this.core.paths, app, slotNo)) ?? error}`;
      slot.settled = true;
      if (this.reloads.isIncoming(pool, slot)) return this.reloads.fail(pool, slot, "launch", `could not be launched: ${error}`);
      if (pool.halted || pool.stopping) return;
      // An app that was serving is not a bad deploy: a launch that fails now (pm2 cannot open the worker's log
      // on a read-only disk) is tried again with back-off, and the other workers serve on.
      if (pool.loadedOnce) {
        slot.state = "down";
        slot.pm2Stuck = true;
        slot.crashes += 1;
        const retryInMs = this.retryLater(pool, slot);
        if (slot.lastError !== before) {
          this.core.emit({ type: "worker-not-restarted", app: pool.spec.name, slot: slot.slot, reason: slot.lastError, retryInMs });
        }
        return;
      }
      this.halt(pool, "launch-failed", slot, undefined);
      return;
    }
    if (slot.pid === 0 && slot.state === "ready") slot.pid = pid;
  }

  handleOnline(name: string, startedAt: number): void {
    const found = this.core.find(name);
    if (!found) return;
    const { pool, slot } = found;
    if (pool.halted || pool.stopping || slot.state === "stopping" || slot.state === "stopped") return;
    slot.state = "starting";
    slot.startedAt = startedAt;
    slot.since = Date.now();
    slot.pid = 0;
    // A new generation (pm2 restarted it): the last one's silence says nothing about this one.
    slot.unresponsive = false;
    this.probeReadiness(pool, slot);
  }

  handleExit(name: string, startedAt: number, exitCode: number, uptimeMs: number, reportedSignal?: string): void {
    const found = this.core.find(name);
    if (!found) return;
    const { pool, slot } = found;
    if (pool.halted || pool.stopping || slot.retiring.has(startedAt) || slot.judged.has(startedAt)) return;
    if (slot.state === "stopping" || slot.state === "stopped") return;
    slot.judged.add(startedAt);
    slot.state = "down";
    slot.pid = 0;
    slot.settled = true;
    // pm2 reports a signal as code 0 (and we read it back from its log); a command's shell reports 128 + n.
    const signal = reportedSignal ?? (pool.spec.kind === "command" ? signalOfShellCode(exitCode) : undefined);
    // Its output may be lost (a read-only or full state dir: the launch wrapper sends it to /dev/null then), so
    // the state dir's own trouble is named here, where status shows it.
    const trouble = logFileProblem(logFiles(this.core.paths, pool.spec.name, slot.slot));
    slot.lastError = `${signal ? `killed by ${signal}` : `exited with code ${exitCode}`} after ${uptimeMs} ms${trouble ? `; ${trouble}` : ""}`;
    slot.lastSignal = signal;
    this.core.emit({ type: "worker-exit", app: pool.spec.name, slot: slot.slot, exitCode, uptimeMs, ...(signal ? { signal } : {}) });
    // A reload's new worker is not judged: its reload stops, and the old workers serve on (reload.ts).
    if (this.reloads.isIncoming(pool, slot)) return this.reloads.fail(pool, slot, "exit", describeEarlyExit(exitCode, signal));
    const verdict = judgeExit({ exitCode, uptimeMs, crashesSoFar: slot.crashes }, pool.spec.restart);
    this.apply(pool, slot, verdict, exitCode);
  }

  /** pm2 gave up on a slot; its exit event follows at once and decides (see crash-policy pm2Limits). */
  handleOverlimit(name: string): void {
    const found = this.core.find(name);
    if (found) found.slot.pm2GaveUp = true;
  }

  handleReadyMessage(name: string, data: unknown): void {
    const found = this.core.find(name);
    if (!found) return;
    const { pool, slot } = found;
    if (pool.halted || pool.stopping || (slot.state !== "starting" && slot.state !== "down")) return;
    const pid = readyPid(data);
    this.workerReady(pool, slot, pid);
  }

  handleProbed(event: Extract<LoopEvent, { type: "probed" }>): void {
    const found = this.core.current(event);
    if (!found) return;
    const { pool, slot } = found;
    if (pool.halted || pool.stopping || slot.state !== "starting") return;
    if (event.ok) this.workerReady(pool, slot, event.pid);
    else this.notReady(pool, slot, event.afterMs);
  }

  /** A launch that pm2 never called online (nor saw exit): once it comes online, its readiness probe decides instead. */
  handleDeadline(event: Extract<LoopEvent, { type: "deadline" }>): void {
    const found = this.core.current(event);
    if (!found) return;
    const { pool, slot } = found;
    if (pool.halted || pool.stopping || slot.state !== "starting") return;
    this.notReady(pool, slot, Date.now() - slot.since);
  }

  /**
   * A ready worker's unix socket file is gone (its folder was removed): the
   * proxy can no longer reach it, so it leaves the membership and is
   * restarted in place, binding a new socket — rather than the app going to
   * 503 until someone restarts it by hand.
   */
  handleSocketLost(event: Extract<LoopEvent, { type: "socket-lost" }>): void {
    const found = this.core.current({ app: event.app, slot: event.slot });
    if (!found || found.slot.pid !== event.pid || found.slot.state !== "ready") return;
    const { pool, slot } = found;
    this.core.emit({ type: "worker-socket-lost", app: pool.spec.name, slot: slot.slot, pid: slot.pid, path: event.path });
    this.relaunch(pool, slot, "restart");
  }

  /** A worker's heartbeat went silent, or came back (blocked-workers.ts reports; the membership follows after this drain). */
  handleHeartbeat(event: Extract<LoopEvent, { type: "heartbeat" }>): void {
    const found = this.core.current({ app: event.app, slot: event.slot });
    if (!found || found.slot.pid !== event.pid || found.slot.unresponsive === event.unresponsive) return;
    const { pool, slot } = found;
    slot.unresponsive = event.unresponsive;
    const app = pool.spec.name;
    this.core.emit(
      event.unresponsive
        ? { type: "worker-unresponsive", app, slot: slot.slot, pid: slot.pid, silentMs: event.silentMs }
        : { type: "worker-responsive", app, slot: slot.slot, pid: slot.pid },
    );
  }

  handleHaltDetail(app: string, stderr: string[]): void {
    const pool = this.core.byName.get(app);
    if (!pool?.error) return;
    const error = pool.error;
    const failed = this.core.pool(app).slots.get(error.slot);
    // A worker pm2 could not even launch wrote nothing: pm2's own reason (a log file it cannot open) is the line.
    const lastLine = telltaleLine(stderr) ?? (error.reason === "launch-failed" ? failed?.lastError : undefined);
    error.stderr = stderr;
    const crashes = failed?.crashes ?? 0;
    error.message = describeHalt(error.reason, error.slot, error.exitCode, crashes, lastLine, error.signal);
    error.summary = describeHalt(error.reason, error.slot, error.exitCode, crashes, undefined, error.signal);
    pool.errorPending = false;
    this.core.emit({ type: "pool-errored", app, error });
  }

  /** The daemon went away while we were running: every worker went with it. */
  handleDaemonExit(): void {
    const stopping = [...this.core.byName.values()].every((pool) => pool.stopping || pool.stopped);
    if (stopping) return;
    this.core.emit({ type: "supervisor-error", message: "the pm2 daemon stopped: every worker of this stack is gone; starting a new daemon" });
    for (const pool of this.core.byName.values()) {
      for (const slot of pool.slots.values()) {
        slot.state = "down";
        slot.pid = 0;
        slot.settled = true;
      }
    }
  }

  /** After a lost daemon was replaced: every slot of every running pool is launched again on the new one. */
  handleRelaunchAll(): void {
    let count = 0;
    for (const pool of this.core.byName.values()) {
      if (pool.stopping || pool.stopped) continue;
      if (pool.halted && pool.error?.reason === "launch-failed") {
        // pm2 could not launch a worker while its daemon was gone: the daemon's failure, not the app's.
        const loadedOnce = pool.loadedOnce;
        this.revive(pool);
        pool.loadedOnce = loadedOnce;
        count += pool.spec.instances;
        continue;
      }
      if (pool.halted) continue;
      for (const slot of liveSlots(pool)) {
        slot.crashes = 0;
        this.relaunch(pool, slot, "start");
        count++;
      }
    }
    this.core.emit({ type: "supervisor-error", message: `pm2's daemon was gone: a new one runs, and ${count} worker(s) are starting on it` });
  }

  /** A new slot, launched. */
  launchSlot(pool: Pool, slotNo: number, ports: number[]): Slot {
    const address = addressFor(this.core.paths, pool.spec, slotNo, ports);
    const name = processName(this.core.stackId, pool.spec.name, slotNo);
    const slot = newSlot(slotNo, name, address);
    pool.slots.set(slotNo, slot);
    this.relaunch(pool, slot, "start");
    return slot;
  }

  /** A worker a dead stack process left running in this slot, taken over as it runs: it joins once its socket accepts. */
  adoptSlot(pool: Pool, adoptee: Adoptee): Slot {
    const slot = newSlot(adoptee.slot, processName(this.core.stackId, pool.spec.name, adoptee.slot), adoptee.address);
    pool.slots.set(adoptee.slot, slot);
    slot.pid = adoptee.pid;
    slot.startedAt = adoptee.startedAt;
    slot.since = Date.now();
    slot.launch = ++this.core.launches;
    this.core.emit({ type: "worker-adopted", app: pool.spec.name, slot: adoptee.slot, pid: adoptee.pid });
    this.probeReadiness(pool, slot);
    return slot;
  }

  /** Starts (or restarts) a slot's process in pm2 and arms its deadline; readiness arrives as events. */
  private relaunch(pool: Pool, slot: Slot, how: "start" | "restart" | "fresh"): void {
    slot.unresponsive = false;
    // What the stack owns in its state dir is made again if something removed it (a cleanup, a user):
    // a worker must never fail to bind for want of its sockets/ folder.
    ensureStateDirs(this.core.paths);
    if (how !== "restart") {
      // Where this run's stderr begins in the slot's log (appended across runs and stacks): a failure
      // report — a halt, a failed reload — quotes this run's lines, never an earlier worker's. The
      // launch waits for the size, so the worker cannot write first.
      const errLogStart = fileSize(logFiles(this.core.paths, pool.spec.name, slot.slot).err);
      slot.errLogStart = errLogStart;
      slot.ops = slot.ops.then(() => errLogStart).then(() => undefined);
    }
    if (slot.startedAt) slot.retiring.add(slot.startedAt);
    slot.state = "starting";
    slot.settled = false;
    slot.pid = 0;
    slot.since = Date.now();
    // Numbered across the supervisor, not per slot: a slot number reused by a reload starts a new Slot, and a
    // deadline or probe armed for the earlier one must never match the new worker.
    slot.launch = ++this.core.launches;
    const spec = processSpec(this.core.context, pool.spec, slot.slot, slot.name, slot.address);
    const app = pool.spec.name;
    this.core.runOp(
      slot,
      async (client) => {
        if (how === "restart") {
          await client.restart(slot.name);
          return 0;
        }
        // A stuck entry is forgotten first: pm2 answers a start of its name with nothing started.
        if (how === "fresh") await client.delete(slot.name).catch(() => undefined);
        return (await client.start(spec)).pid;
      },
      (pid, error) => ({ type: "launched", app, slot: slot.slot, pid: pid ?? 0, ...(error ? { error } : {}) }),
    );
    const deadline: LoopEvent = { type: "deadline", app, slot: slot.slot, launch: slot.launch, startedAt: slot.startedAt };
    setTimeout(() => this.core.loop.enqueue(deadline), pool.spec.readyTimeoutMs + LAUNCH_DEADLINE_MARGIN_MS).unref();
  }

  /** Takes a slot out of the membership now, then has pm2 stop it gracefully and forget it. */
  removeSlot(pool: Pool, slot: Slot): void {
    if (slot.startedAt) slot.retiring.add(slot.startedAt);
    slot.state = "stopping";
    const app = pool.spec.name;
    const marks = workerMarks(this.core.stackId, this.core.paths.pm2Home, { app, slot: slot.slot });
    this.core.runOp(
      slot,
      async (client) => {
        await client.delete(slot.name);
        // pm2 waited for the process to exit: one still marked as this slot's is a worker pm2 lost in a restart race.
        const strays = processesMarked(marks);
        if (strays.length > 0) await terminate(strays, killTimeoutMs(pool.spec.gracefulTimeoutMs));
      },
      () => ({ type: "removed", app, slot: slot.slot }),
    );
  }

  /**
   * pm2 lists a live process for a slot its pool no longer has: pm2's own
   * restart of it (max_memory_restart) raced our delete and put it back (see
   * Pm2Client.delete). It is removed again — as a slot that holds its number
   * until it is gone, so that no new worker is given that name meanwhile.
   */
  private removeLost(info: ProcessInfo): void {
    const parsed = parseProcessName(this.core.stackId, info.name);
    const pool = parsed && this.core.byName.get(parsed.app);
    // A pool that is stopping deletes every name of the stack itself; one not started yet may adopt the process.
    if (!parsed || !pool || pool.stopping || pool.slots.has(parsed.slot) || !isAlive(info.pid)) return;
    const slot = newSlot(parsed.slot, info.name, parseWorkerAddress(info.env.TSGI_ADDRESS) ?? { kind: "unix", path: socketPath(this.core.paths, parsed.app, parsed.slot) });
    slot.startedAt = info.startedAt;
    pool.slots.set(parsed.slot, slot);
    this.removeSlot(pool, slot);
  }

  /** A worker said it is ready (or its socket accepts): a reload's new one goes through the health gate first. */
  private workerReady(pool: Pool, slot: Slot, pid: number): void {
    if (slot.gating) return;
    const gate = this.core.options.healthGate;
    if (gate && this.reloads.isIncoming(pool, slot)) return this.startGate(pool, slot, pid, gate);
    this.markReady(pool, slot, pid);
  }

  markReady(pool: Pool, slot: Slot, pid: number): void {
    pool.loadedOnce = true;
    slot.pm2Stuck = false;
    slot.state = "ready";
    slot.pid = pid;
    slot.settled = true;
    slot.lastError = undefined;
    this.core.emit({ type: "worker-ready", app: pool.spec.name, slot: slot.slot, pid, address: slot.address });
    this.reloads.advance(pool);
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
      .then((answer) => this.core.loop.enqueue({ type: "gated", app, slot: slot.slot, launch, pid, ...answer }));
  }

  private notReady(pool: Pool, slot: Slot, afterMs: number): void {
    // A reload's new worker has its whole ready_timeout (the reload deadline decides): a slow boot under
    // load is not a failed deploy, and failing it early would abort a good reload.
    if (this.reloads.isIncoming(pool, slot)) return;
    slot.settled = true;
    slot.lastError = `not ready after ${afterMs} ms`;
    this.core.emit({ type: "worker-not-ready", app: pool.spec.name, slot: slot.slot, afterMs });
    const verdict = judgeNotReady(slot.crashes, pool.spec.restart);
    if (verdict.action === "replace") {
      slot.crashes = verdict.crashes;
      this.relaunch(pool, slot, "restart");
      // The replacement is under way; this slot has reported its failure, so waiters may go on.
      slot.settled = true;
      return;
    }
    this.apply(pool, slot, verdict, undefined);
  }

  private apply(pool: Pool, slot: Slot, verdict: Verdict, exitCode: number | undefined): void {
    slot.crashes = verdict.crashes;
    // Code that loaded before and fails to load now (a dependency briefly down, when a scale, restart or
    // recycle starts a new worker) is not a bad deploy: the other workers serve on, and this slot is
    // tried again with a growing back-off until it loads, instead of halting the pool.
    if (verdict.action === "halt" && verdict.reason !== "crash-loop" && pool.loadedOnce) {
      this.retryLater(pool, slot);
      return;
    }
    if (verdict.action === "halt") return this.halt(pool, verdict.reason, slot, exitCode);
    if (slot.pm2GaveUp) return this.halt(pool, "crash-loop", slot, exitCode);
    // pm2 restarts the slot after its back-off; we wait for its "online" — and check that it came.
    this.expectRestart(pool, slot);
  }

  /**
   * pm2 restarts an exited worker on its own, unless it cannot: it opens the
   * worker's log files first, and when that fails (a read-only or full disk)
   * it leaves the process down with a trace in its own log and no event. So
   * a slot still down once pm2's back-off has passed is asked about.
   */
  private expectRestart(pool: Pool, slot: Slot): void {
    const event: LoopEvent = { type: "restart-check", app: pool.spec.name, slot: slot.slot, launch: slot.launch, startedAt: slot.startedAt, exitedAt: Date.now() };
    const delay = Math.min(PM2_MAX_BACKOFF_MS, pool.spec.restart.backoffMs * 1.5 ** slot.crashes) + LAUNCH_DEADLINE_MARGIN_MS;
    setTimeout(() => this.core.loop.enqueue(event), delay).unref();
  }

  /** The restart check is due: if the slot is still down in the same generation, pm2's own status decides. */
  handleRestartCheck(event: Extract<LoopEvent, { type: "restart-check" }>): void {
    const found = this.core.current(event);
    if (!found) return;
    const { pool, slot } = found;
    if (pool.halted || pool.stopping || slot.state !== "down") return;
    const { app, launch, startedAt, exitedAt } = event;
    this.core.runOp(
      slot,
      async (client) => (await client.list(slot.name)).find((process) => process.name === slot.name)?.status,
      (status, error) => ({ type: "restart-status", app, slot: slot.slot, launch, startedAt, exitedAt, ...(status ? { status } : {}), ...(error ? { error } : {}) }),
    );
  }

  /**
   * pm2's answer about a slot that did not come back. Coming online: its
   * event follows. Stuck — its log files cannot be opened (pm2 fails the
   * same way, and leaves the status it had: "waiting restart"), or pm2
   * still has not restarted it after its longest back-off: the cause is
   * shown in `status` as the slot's lastError, and the supervisor starts it
   * itself, with back-off, until it runs again.
   */
  handleRestartStatus(event: Extract<LoopEvent, { type: "restart-status" }>): void {
    const found = this.core.current(event);
    if (!found) return;
    const { pool, slot } = found;
    if (pool.halted || pool.stopping || slot.state !== "down" || event.status === "online") return;
    const problem = logFileProblem(logFiles(this.core.paths, pool.spec.name, slot.slot));
    const waited = Date.now() - event.exitedAt;
    const overdue = waited >= PM2_MAX_BACKOFF_MS + LAUNCH_DEADLINE_MARGIN_MS;
    if (!problem && event.status === "waiting restart" && !overdue) {
      // Asked again once pm2's longest back-off is over.
      const again: LoopEvent = { ...event, type: "restart-check" };
      setTimeout(() => this.core.loop.enqueue(again), PM2_MAX_BACKOFF_MS + LAUNCH_DEADLINE_MARGIN_MS - waited).unref();
      return;
    }
    const cause = problem ?? (event.error ? `pm2: ${event.error}` : `pm2 left it ${event.status ?? "gone"}`);
    slot.lastError = `pm2 did not restart it: ${cause}`;
    slot.pm2Stuck = true;
    const retryInMs = this.retryLater(pool, slot);
    this.core.emit({ type: "worker-not-restarted", app: pool.spec.name, slot: slot.slot, reason: slot.lastError, retryInMs });
  }

  /**
   * Launches the slot again after a back-off that doubles with its crashes in
   * a row, up to RETRY_MAX_MS (pm2 will not: the exit code is one of its
   * stop_exit_codes). Waiters see the slot settled meanwhile: `scale` and
   * `restart` report it short of ready.
   */
  private retryLater(pool: Pool, slot: Slot): number {
    slot.settled = true;
    const delay = Math.min(RETRY_MAX_MS, Math.max(1, pool.spec.restart.backoffMs) * 2 ** Math.max(0, slot.crashes - 1));
    const event: LoopEvent = { type: "retry", app: pool.spec.name, slot: slot.slot, launch: slot.launch };
    setTimeout(() => this.core.loop.enqueue(event), delay).unref();
    return delay;
  }

  /** A slot's retry is due (retryLater): started again, unless it was launched or removed meanwhile. */
  handleRetry(event: Extract<LoopEvent, { type: "retry" }>): void {
    const found = this.core.current(event);
    if (!found) return;
    const { pool, slot } = found;
    if (pool.halted || pool.stopping || slot.state !== "down") return;
    this.relaunch(pool, slot, slot.pm2Stuck ? "fresh" : "start");
  }

  /** Stops every worker of the pool in pm2 (so pm2 does not loop) and reports why, with the failing worker's stderr. */
  halt(pool: Pool, reason: PoolErrorReason, failed: Slot, exitCode: number | undefined): void {
    const pass = pool.reload;
    if (pass && !pass.revive) {
      // An old worker halted the pool in the middle of a reload: the new one goes, and the reload ends with the pool.
      const fresh = pass.fresh === undefined ? undefined : pool.slots.get(pass.fresh);
      if (fresh && fresh.state !== "stopping") this.removeSlot(pool, fresh);
      const message = `reload of ${pool.spec.name} cut short: worker ${failed.slot} halted the pool (${reason})`;
      this.reloads.finish(pool, { message, stderr: [], slot: failed.slot });
    }
    pool.halted = true;
    pool.errorPending = true;
    pool.error = {
      reason,
      message: describeHalt(reason, failed.slot, exitCode, failed.crashes, undefined, exitCode === undefined ? undefined : failed.lastSignal),
      summary: describeHalt(reason, failed.slot, exitCode, failed.crashes, undefined, exitCode === undefined ? undefined : failed.lastSignal),
      slot: failed.slot,
      ...(exitCode !== undefined ? { exitCode } : {}),
      ...(exitCode !== undefined && failed.lastSignal ? { signal: failed.lastSignal } : {}),
      stderr: [],
    };
    for (const slot of pool.slots.values()) {
      if (slot.state === "stopping") continue;
      if (slot.startedAt) slot.retiring.add(slot.startedAt);
      slot.state = "errored";
      slot.pid = 0;
      slot.settled = true;
      this.core.runOp(slot, (client) => client.stop(slot.name), () => undefined);
    }
    const errFile = logFiles(this.core.paths, pool.spec.name, failed.slot).err;
    const lines = this.core.options.stderrLines ?? 20;
    const app = pool.spec.name;
    void new Promise((resolve) => setTimeout(resolve, STDERR_SETTLE_MS))
      // The worker's last lines reach `up`'s output before the line saying it halted.
      .then(() => this.core.logKeeper.check())
      .then(() => failed.errLogStart ?? 0)
      .then((offset) => tailLines(errFile, lines, offset))
      .catch(() => [] as string[])
      .then((stderr) => this.core.loop.enqueue({ type: "halt-detail", app, stderr }));
  }

  /** An errored pool, started again: fresh crash counts, every slot launched with its current spec. */
  revive(pool: Pool): void {
    pool.halted = false;
    // Started again from scratch: its code has to prove it loads before a load failure is taken as passing.
    pool.loadedOnce = false;
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
        if (stillWanted()) this.core.loop.enqueue({ type: "probed", app, slot: slot.slot, startedAt, launch, ok, pid, afterMs: Date.now() - begin });
      });
  }

  private async pidOf(name: string): Promise<number> {
    if (!this.core.client) return 0;
    const client = await this.core.client;
    return (await client.list(name)).find((process) => process.name === name)?.pid ?? 0;
  }

  handlePm2(event: Pm2Event): void {
    switch (event.kind) {
      case "online":
        return this.handleOnline(event.name, event.startedAt);
      case "exit":
        return this.handleExit(event.name, event.startedAt, event.exitCode, event.at - event.startedAt, event.signal);
      case "overlimit":
        return this.handleOverlimit(event.name);
      case "message":
        if (event.type === READY_MESSAGE) return this.handleReadyMessage(event.name, event.data);
        return;
      case "daemon-exit":
        return this.handleDaemonExit();
      case "raw":
        return;
    }
  }

  handleSampled(processes: ProcessInfo[]): void {
    for (const info of processes) {
      const found = this.core.find(info.name);
      if (!found) {
        this.removeLost(info);
        continue;
      }
      const { slot } = found;
      slot.sample = { memory: info.memory, cpu: info.cpu, restarts: info.restarts };
      // A command app's pid is only known from pm2's list.
      if (slot.pid === 0 && slot.state === "ready" && info.status === "online") slot.pid = info.pid;
    }
  }
}
