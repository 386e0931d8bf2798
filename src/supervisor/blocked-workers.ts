/**
 * @module supervisor/blocked-workers
 *
 * The arbiter's side of the heartbeat (gunicorn's murder_workers): every
 * gateway worker with a timeout touches its heartbeat file while its event
 * loop turns; a timer here reads the files and SIGKILLs each worker whose
 * file went stale. pm2 then sees it die and the loop handles that as any
 * crash. The rule (how stale is too stale, how often to look) is
 * heartbeats.ts; this module only reads state and signals, and changes none.
 */
import { appendFileSync, existsSync, readFileSync, statSync } from "node:fs";
import { lineStamp } from "../contract/line-stamp.ts";
import type { SupervisorCore } from "./core.ts";
import { type BeatingWorker, type BeatReading, blockedWorkers, checkPeriodMs, heartbeatFile, responsiveness } from "./heartbeats.ts";
import { logFiles } from "./slots.ts";

export class BlockedWorkerWatch {
  private timer: NodeJS.Timeout | undefined;
  /** Pids killed for a blocked event loop: each killed and reported once. */
  private readonly killed = new Set<number>();
  /** Pids whose lost socket was reported. */
  private readonly socketLost = new Set<number>();
  /** Pids reported silent (out of balancing) and not yet back. */
  private readonly unresponsive = new Set<number>();

  constructor(private readonly core: SupervisorCore) {}

  start(): void {
    this.timer = setTimeout(() => {
      this.core.guard(() => this.killBlocked());
      this.start();
    }, checkPeriodMs(this.beatingWorkers()));
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  /** Ready workers whose unix socket file is gone are reported (the loop restarts them), once per pid. */
  private checkSockets(): void {
    for (const pool of this.core.byName.values()) {
      for (const slot of pool.slots.values()) {
        if (slot.state !== "ready" || slot.address.kind !== "unix" || slot.pid <= 0 || this.socketLost.has(slot.pid)) continue;
        if (existsSync(slot.address.path)) continue;
        this.socketLost.add(slot.pid);
        this.core.loop.enqueue({ type: "socket-lost", app: pool.spec.name, slot: slot.slot, pid: slot.pid, path: slot.address.path });
      }
    }
  }

  /** The gateway workers that beat: running slots of module pools with a timeout. */
  private beatingWorkers(): BeatingWorker[] {
    const workers: BeatingWorker[] = [];
    for (const pool of this.core.byName.values()) {
      if (pool.spec.kind !== "module" || pool.spec.timeoutMs <= 0) continue;
      for (const slot of pool.slots.values()) {
        if (slot.pid <= 0 || !(slot.state === "starting" || slot.state === "ready" || slot.state === "stopping")) continue;
        workers.push({ app: pool.spec.name, slot: slot.slot, pid: slot.pid, file: heartbeatFile(this.core.paths, slot.name), timeoutMs: pool.spec.timeoutMs });
      }
    }
    return workers;
  }

  private killBlocked(): void {
    this.checkSockets();
    const workers = this.beatingWorkers();
    // Each heartbeat file read once per check, for both verdicts below.
    const beats = new Map(workers.map((worker) => [worker.file, readBeat(worker.file)]));
    const read = (file: string) => beats.get(file);
    // A worker silent for a few beats leaves balancing now (the loop decides; this only reports), long before it is killed.
    const now = Date.now();
    for (const [worker, unresponsive] of responsiveness(workers, read, now)) {
      const { app, slot, pid } = worker;
      if (unresponsive !== this.unresponsive.has(pid)) {
        if (unresponsive) this.unresponsive.add(pid);
        else this.unresponsive.delete(pid);
        const silentMs = Math.round(now - (read(worker.file)?.mtimeMs ?? now));
        this.core.loop.enqueue({ type: "heartbeat", app, slot, pid, unresponsive, silentMs });
      }
    }
    for (const pid of this.unresponsive) if (!workers.some((worker) => worker.pid === pid)) this.unresponsive.delete(pid);
    for (const pid of this.killed) if (!workers.some((worker) => worker.pid === pid)) this.killed.delete(pid);
    for (const worker of blockedWorkers(workers, read, now)) {
      if (this.killed.has(worker.pid)) continue;
      this.killed.add(worker.pid);
      const { app, slot, pid, silentMs, timeoutMs } = worker;
      // The worker's own log says why it died, as its watchdog thread's line would.
      const line = `tsgi worker ${pid}: event loop blocked for ${silentMs} ms (timeout ${timeoutMs} ms): killed by the supervisor for replacement`;
      try {
        appendFileSync(logFiles(this.core.paths, app, slot).err, `${lineStamp(new Date())}${line}\n`);
      } catch {
        // The log is a courtesy; the kill is what matters.
      }
      this.core.emit({ type: "worker-blocked", app, slot, pid, silentMs, timeoutMs });
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
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
