/**
 * @module supervisor/commands
 *
 * What the public methods ask of a pool, as the loop runs it: start pools,
 * scale, restart, reload and updateSpec (each handed to the reload driver), remove one pool and stop them all (drain: out of the
 * membership at once, then gone within the graceful timeout). A command
 * that cannot run while a reload has the pool waits in the pool's queue;
 * how commands queue and merge is reload.ts's rule.
 */
import type { SupervisorCore } from "./core.ts";
import { isQuiet, liveSlots, newPool, type Pool } from "./pool.ts";
import { defer, type PoolCommand, rolls } from "./reload.ts";
import type { ReloadDriver } from "./reload-driver.ts";
import { freeSlots } from "./slots.ts";
import type { Adoptee, PoolSpec, ReloadReport } from "./types.ts";
import type { WorkerDriver } from "./workers.ts";

export class PoolCommands {
  constructor(
    private readonly core: SupervisorCore,
    private readonly workers: WorkerDriver,
    private readonly reloads: ReloadDriver,
  ) {}

  /** New pools: each slot takes over the worker a dead stack process left there (`adopted`), or launches one. */
  handleStart(specs: PoolSpec[], ports: number[], adopted: ReadonlyMap<string, Adoptee[]>): void {
    for (const spec of specs) {
      const pool = newPool(spec);
      this.core.byName.set(spec.name, pool);
      const found = new Map((adopted.get(spec.name) ?? []).map((adoptee) => [adoptee.slot, adoptee]));
      for (let slot = 0; slot < spec.instances; slot++) {
        const adoptee = found.get(slot);
        if (adoptee) this.workers.adoptSlot(pool, adoptee);
        else this.workers.launchSlot(pool, slot, ports);
      }
    }
  }

  /** A command for one pool: run now, or kept in the pool's queue while a reload needs the pool to itself (reload.ts). */
  handleCommand(command: PoolCommand): void {
    const pool = this.core.byName.get(command.app);
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
      case "reload":
        return this.reloads.start(pool, command.tickets, undefined);
      case "update":
        if (command.roll) return this.reloads.start(pool, command.tickets, command.spec);
        pool.spec = command.spec;
        return this.scalePool(pool, command.spec.instances, command.ports);
    }
  }

  runDeferred(pool: Pool): void {
    if (pool.stopping || pool.stopped) return;
    while (pool.deferred.length > 0 && this.canRun(pool, pool.deferred[0]!)) this.runCommand(pool, pool.deferred.shift()!);
  }

  /** A command that will never run: its callers hear why (scale and restart callers wait on the pool, which is gone). */
  private drop(command: PoolCommand, why: string): void {
    if (command.type === "scale") return;
    const reply: ReloadReport = { app: command.app, ok: false, replaced: 0, error: { message: why, stderr: [] }, ms: 0 };
    for (const ticket of command.tickets) ticket.report = reply;
  }

  private scalePool(pool: Pool, instances: number, ports: number[]): void {
    pool.spec = { ...pool.spec, instances };
    // A halted pool keeps its new size for its next restart(); nothing runs meanwhile.
    if (pool.halted) return;
    const live = liveSlots(pool);
    for (const slot of freeSlots(pool.slots.keys(), Math.max(0, instances - live.length))) this.workers.launchSlot(pool, slot, ports);
    for (const slot of live.slice(instances)) this.workers.removeSlot(pool, slot);
  }

  handleStop(): void {
    for (const pool of this.core.byName.values()) this.drain(pool, "the stack is stopping");
  }

  /** remove(): the pool drains like at stop(), then is forgotten. */
  handleRemove(app: string): void {
    const pool = this.core.byName.get(app);
    if (!pool) return;
    pool.removing = true;
    this.drain(pool, `app ${app} was removed`);
  }

  /** Every slot leaves the membership now and drains; a reload under way or waiting ends with `why`. */
  private drain(pool: Pool, why: string): void {
    if (pool.stopped) return this.checkStopped(pool);
    pool.stopping = true;
    if (pool.reload) this.reloads.finish(pool, { message: `reload of ${pool.spec.name} cut short: ${why}`, stderr: [] });
    for (const command of pool.deferred.splice(0)) this.drop(command, `reload of ${pool.spec.name} not started: ${why}`);
    for (const slot of pool.slots.values()) if (slot.state !== "stopping") this.workers.removeSlot(pool, slot);
    this.checkStopped(pool);
  }

  handleRemoved(app: string, slotNo: number): void {
    const pool = this.core.byName.get(app);
    if (!pool) return;
    pool.slots.delete(slotNo);
    pool.retired.set(slotNo, Date.now());
    this.checkStopped(pool);
  }

  private checkStopped(pool: Pool): void {
    if (!pool.stopped) {
      if (!pool.stopping || pool.slots.size > 0) return;
      pool.stopped = true;
      this.core.emit({ type: "pool-stopped", app: pool.spec.name });
    }
    if (pool.removing) this.forget(pool);
  }

  /** A removed pool leaves pools() and status(); membership listeners that knew workers of it hear that none is left. */
  private forget(pool: Pool): void {
    const app = pool.spec.name;
    if (this.core.byName.get(app) !== pool) return;
    this.core.byName.delete(app);
    if (pool.membershipKey === "[]") return;
    pool.membership = Object.freeze([]);
    pool.membershipKey = "[]";
    for (const listener of this.core.membershipListeners) this.core.guard(() => listener(app, pool.membership));
  }
}
