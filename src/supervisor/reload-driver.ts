/**
 * @module supervisor/reload-driver
 *
 * Rolling reloads, as the loop drives them (the rules — passes, tickets,
 * how commands queue behind a reload, the report — are reload.ts): per
 * pool, one old slot at a time, a NEW slot is launched, becomes ready,
 * passes the health gate, joins the membership, and only then does the old
 * one leave and drain. A new worker that fails ends the pass without
 * halting the pool; the old workers it did not reach serve on. updateSpec's
 * roll is the same pass onto a new spec, resized once it is done; a halted
 * pool named by a reload is revived in place.
 */
import type { LoopEvent, SupervisorCore } from "./core.ts";
import { liveSlots, type Pool, type Slot } from "./pool.ts";
import { freePorts, portsNeeded } from "./ports.ts";
import { tailLines } from "./probes.ts";
import { failureError, newPass, passReport, type ReloadFailureKind, type ReloadPass, type ReloadTicket } from "./reload.ts";
import { freeSlots, logFiles } from "./slots.ts";
import type { PoolSpec, ReloadError } from "./types.ts";
import { type ReloadHooks, STDERR_SETTLE_MS, type WorkerDriver } from "./workers.ts";

/** How long a deleted worker's slot number (its pm2 name) is not given to a reload's new worker. */
const RETIRED_NAME_MS = 15_000;

export class ReloadDriver implements ReloadHooks {
  constructor(
    private readonly core: SupervisorCore,
    private readonly workers: WorkerDriver,
  ) {}

  /** True for the new worker a reload pass is waiting on (not yet failed). */
  isIncoming(pool: Pool, slot: Slot): boolean {
    const pass = pool.reload;
    return pass !== undefined && pass.fresh === slot.slot && pass.failure === undefined;
  }

  /** Starts a pass over the pool's live slots; with a spec (updateSpec), onto that spec. A halted pool is revived in place. */
  start(pool: Pool, tickets: ReloadTicket[], spec: PoolSpec | undefined): void {
    const app = pool.spec.name;
    const id = ++this.core.passes;
    if (pool.halted) {
      if (spec) pool.spec = spec;
      pool.reload = newPass(id, Date.now(), { tickets, revive: true });
      this.core.emit({ type: "reload-started", app, workers: pool.spec.instances });
      this.workers.revive(pool);
      return;
    }
    const live = liveSlots(pool).map((slot) => slot.slot);
    const previousSpec = spec ? pool.spec : undefined;
    if (spec) pool.spec = spec;
    // updateSpec to fewer instances: the old slots past the new count serve on through the roll, then go.
    const keep = spec ? live.slice(0, spec.instances) : live;
    const dropAfter = spec ? live.slice(spec.instances) : [];
    pool.reload = newPass(id, Date.now(), { queue: keep, tickets, ...(previousSpec ? { previousSpec } : {}), dropAfter });
    this.core.emit({ type: "reload-started", app, workers: keep.length });
    this.advance(pool);
  }

  /** One step of a pass: swap in a new worker that is ready, launch the next one, or end the pass. */
  advance(pool: Pool): void {
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
    this.finish(pool, undefined);
  }

  /** The new worker is in: publish that now, then the old one leaves the membership and drains. */
  private swap(pool: Pool, pass: ReloadPass): void {
    // Not at the end of the drain: listeners must see the new endpoint added before the old one removed (issue #5).
    this.core.publishMembership();
    const old = pass.old === undefined ? undefined : pool.slots.get(pass.old);
    if (old && old.state !== "stopping" && old.state !== "stopped") this.workers.removeSlot(pool, old);
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
    const slot = this.workers.launchSlot(pool, slotNo!, pass.ports);
    pass.old = old.slot;
    pass.fresh = slot.slot;
    const deadline: LoopEvent = { type: "reload-deadline", app: pool.spec.name, slot: slot.slot, launch: slot.launch };
    setTimeout(() => this.core.loop.enqueue(deadline), pool.spec.readyTimeoutMs).unref();
  }

  /** True if the pass has the loopback ports its next launches need (command apps); else asks for them, and the answer resumes the pass. */
  private portsReady(pool: Pool, pass: ReloadPass, count: number): boolean {
    const needed = portsNeeded(this.core.paths, pool.spec, count);
    if (pass.ports.length >= needed) return true;
    if (!pass.askingPorts) {
      pass.askingPorts = true;
      const app = pool.spec.name;
      const { id } = pass;
      void freePorts(needed - pass.ports.length).then(
        (ports) => this.core.loop.enqueue({ type: "ports", app, pass: id, ports }),
        (error: Error) => this.core.loop.enqueue({ type: "ports", app, pass: id, ports: [], error: error.message }),
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
    for (const slot of drop) this.workers.removeSlot(pool, slot);
    for (const slotNo of freeSlots(pool.slots.keys(), missing)) this.workers.launchSlot(pool, slotNo, pass.ports);
    return true;
  }

  /**
   * The new worker failed: it is removed (it never joined the membership),
   * the old workers stay as they are, and the pass ends once the worker's own
   * stderr is read (after its last writes had time to land).
   */
  fail(pool: Pool, slot: Slot, kind: ReloadFailureKind, what: string): void {
    const pass = pool.reload;
    if (!pass || pass.failure || pass.fresh !== slot.slot) return;
    pass.failure = { kind, slot: slot.slot, what };
    slot.gating = false;
    slot.settled = true;
    slot.lastError = what;
    if (kind === "not-ready") this.core.emit({ type: "worker-not-ready", app: pool.spec.name, slot: slot.slot, afterMs: Date.now() - slot.since });
    this.workers.removeSlot(pool, slot);
    const errFile = logFiles(this.core.paths, pool.spec.name, slot.slot).err;
    const from = slot.errLogStart ?? Promise.resolve(0);
    const lines = this.core.options.stderrLines ?? 20;
    const app = pool.spec.name;
    const { id } = pass;
    void new Promise((resolve) => setTimeout(resolve, STDERR_SETTLE_MS))
      .then(() => this.core.logKeeper.check())
      .then(() => from)
      .then((offset) => tailLines(errFile, lines, offset))
      .catch(() => [] as string[])
      .then((stderr) => this.core.loop.enqueue({ type: "reload-detail", app, pass: id, stderr }));
  }

  /** Ends the pass: its callers get the report, listeners the event. A failed roll puts the pool's previous spec back. */
  finish(pool: Pool, error: ReloadError | undefined): void {
    const pass = pool.reload;
    if (!pass) return;
    pool.reload = undefined;
    if (error && pass.previousSpec) pool.spec = pass.previousSpec;
    const app = pool.spec.name;
    const done = passReport(app, pass, Date.now(), error);
    for (const ticket of pass.tickets) ticket.report = done;
    this.core.emit(error ? { type: "reload-failed", app, report: done } : { type: "reload-done", app, report: done });
  }

  /** A halted pool that a reload started again: the pass ends once it has settled, ready or halted again. */
  checkRevived(pool: Pool): void {
    const pass = pool.reload;
    if (!pass?.revive) return;
    if (pool.halted) {
      if (pool.errorPending || !pool.error) return;
      const { message, stderr, slot } = pool.error;
      return this.finish(pool, { message, stderr, slot });
    }
    const live = liveSlots(pool);
    if (live.some((slot) => !slot.settled)) return;
    pass.replaced = live.filter((slot) => slot.state === "ready").length;
    const bad = live.find((slot) => slot.state !== "ready");
    this.finish(pool, bad ? { message: `worker ${bad.slot} ${bad.lastError ?? "is not ready"}`, stderr: [], slot: bad.slot } : undefined);
  }

  /** The health gate answered for a reload's new worker. */
  handleGated(event: Extract<LoopEvent, { type: "gated" }>): void {
    const found = this.core.current(event);
    if (!found) return;
    const { pool, slot } = found;
    if (!slot.gating || slot.state !== "starting" || !this.isIncoming(pool, slot)) return;
    slot.gating = false;
    if (event.ok) return this.workers.markReady(pool, slot, event.pid);
    this.fail(pool, slot, "gate", `failed the health gate${event.reason ? ` (${event.reason})` : ""}`);
  }

  /** A reload's new worker has had readyTimeoutMs since its launch to be ready and through the gate. */
  handleReloadDeadline(event: Extract<LoopEvent, { type: "reload-deadline" }>): void {
    const found = this.core.current(event);
    if (!found) return;
    const { pool, slot } = found;
    if (slot.state === "ready" || !this.isIncoming(pool, slot)) return;
    const ms = pool.spec.readyTimeoutMs;
    if (slot.gating) this.fail(pool, slot, "gate", `did not pass the health gate within ${ms} ms`);
    else this.fail(pool, slot, "not-ready", `was not ready within ${ms} ms`);
  }

  /** A failed new worker's stderr has been read: its reload ends. */
  handleReloadDetail(app: string, passId: number, stderr: string[]): void {
    const pool = this.core.byName.get(app);
    const pass = pool?.reload;
    if (!pool || !pass || pass.id !== passId || !pass.failure) return;
    this.finish(pool, failureError(pass.failure, stderr));
  }

  handlePorts(event: Extract<LoopEvent, { type: "ports" }>): void {
    const pool = this.core.byName.get(event.app);
    const pass = pool?.reload;
    if (!pool || !pass || pass.id !== event.pass) return;
    pass.askingPorts = false;
    if (event.error !== undefined) return this.finish(pool, { message: `no free loopback port for a new worker: ${event.error}`, stderr: [] });
    pass.ports.push(...event.ports);
    this.advance(pool);
  }
}
