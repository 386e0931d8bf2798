/**
 * @module gateway/arbiter
 *
 * What `tsgi-stack serve` runs when it is not itself under a supervisor: a
 * small pre-fork master in the manner of Gunicorn's arbiter, on node:cluster.
 * The workers share listening sockets held through the arbiter (SCHED_NONE:
 * the workers accept on them directly, as Gunicorn's do).
 *
 * Signals only enqueue; one loop drains the queue and dispatches to handle*
 * methods (Gunicorn's Arbiter.signal / run):
 *   TERM, INT  graceful stop of every worker, then exit
 *   HUP        chain reload: start a new worker, wait until it is ready, retire an old one, repeat
 *   TTIN/TTOU  one worker more / fewer
 * A worker that must leave (--max-requests, --timeout) says "tsgi:retiring"
 * and keeps serving until its replacement is ready; only then is it stopped.
 * node:cluster closes a shared socket when its last worker lets go of it, so
 * this ordering is what keeps a one-worker pool from refusing connections
 * while it recycles. A worker that dies without warning (a crash, the
 * watchdog's SIGKILL) cannot be covered that way: with -w 1, connections are
 * refused until its replacement listens (run -w 2 or more where that matters).
 * A worker exiting with BOOT_ERROR or APP_LOAD_ERROR halts the arbiter (a
 * restart would fail the same way); any other unexpected exit is replaced,
 * with a growing delay while workers keep dying young.
 */
import cluster, { type Worker } from "node:cluster";
import { isFatalExit, ExitCode } from "../contract/exit-codes.ts";
import { READY_MESSAGE, RETIRING_MESSAGE, type WorkerMessage } from "../contract/messages.ts";

export interface ArbiterOptions {
  workers: number;
  /** How long a worker may take to drain before it is killed (ms). */
  gracefulTimeoutMs: number;
}

type ArbiterSignal = "SIGTERM" | "SIGINT" | "SIGHUP" | "SIGTTIN" | "SIGTTOU";
const ARBITER_SIGNALS: readonly ArbiterSignal[] = ["SIGTERM", "SIGINT", "SIGHUP", "SIGTTIN", "SIGTTOU"];

type ArbiterEvent =
  | { kind: "signal"; signal: ArbiterSignal }
  | { kind: "exit"; worker: Worker; code: number | null; signal: string | null }
  | { kind: "ready"; worker: Worker; listeners: string[] }
  | { kind: "retiring"; worker: Worker }
  | { kind: "respawn" };

/** A worker that dies sooner than this after its start counts as dying young (a crash loop). */
const YOUNG_DEATH_MS = 2000;
const MAX_RESPAWN_DELAY_MS = 15_000;

const say = (message: string) => process.stdout.write(`tsgi arbiter ${process.pid}: ${message}\n`);

class Arbiter {
  private readonly queue: ArbiterEvent[] = [];
  private wake: (() => void) | undefined;
  private wanted: number;
  private stopping = false;
  private readonly startedAt = new Map<Worker, number>();
  private readonly ready = new Set<Worker>();
  /** Workers told to leave; their exit is expected. */
  private readonly retiring = new Set<Worker>();
  private respawnDelayMs = 0;
  private respawnPending = false;
  private announced = false;
  private exitCode: number = ExitCode.OK;

  constructor(private readonly options: ArbiterOptions) {
    this.wanted = options.workers;
  }

  private enqueue(event: ArbiterEvent): void {
    this.queue.push(event);
    this.wake?.();
  }

  async run(): Promise<never> {
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    for (const signal of ARBITER_SIGNALS) {
      process.on(signal, () => this.enqueue({ kind: "signal", signal }));
    }
    cluster.on("exit", (worker, code, signal) => this.enqueue({ kind: "exit", worker, code, signal }));
    cluster.on("message", (worker, message: Partial<WorkerMessage> | undefined) => {
      if (message?.type === READY_MESSAGE) this.enqueue({ kind: "ready", worker, listeners: message.data?.listeners ?? [] });
      if (message?.type === RETIRING_MESSAGE) this.enqueue({ kind: "retiring", worker });
    });
    this.spawnMissing();
    for (;;) {
      const event = this.queue.shift();
      if (event) this.dispatch(event);
      else await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private dispatch(event: ArbiterEvent): void {
    switch (event.kind) {
      case "signal":
        return this.handleSignal(event.signal);
      case "exit":
        return this.handleExit(event.worker, event.code, event.signal);
      case "ready":
        return this.handleReady(event.worker, event.listeners);
      case "retiring":
        return this.handleRetiring(event.worker);
      case "respawn":
        this.respawnPending = false;
        return this.spawnMissing();
    }
  }

  private get live(): Worker[] {
    return Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => !!worker && !this.retiring.has(worker));
  }

  private spawnMissing(): void {
    if (this.stopping) return;
    for (let count = this.live.length; count < this.wanted; count++) {
      const worker = cluster.fork();
      this.startedAt.set(worker, Date.now());
    }
  }

  private retire(worker: Worker): void {
    this.retiring.add(worker);
    worker.process.kill("SIGTERM");
    // A worker that does not drain in time is killed (Gunicorn's graceful_timeout, then SIGKILL).
    setTimeout(() => worker.process.exitCode === null && worker.process.kill("SIGKILL"), this.options.gracefulTimeoutMs + 1000).unref();
  }

  private handleSignal(signal: ArbiterSignal): void {
    switch (signal) {
      case "SIGTERM":
      case "SIGINT":
        if (this.stopping) return;
        say(`${signal}: stopping ${this.live.length} worker(s)`);
        this.stopping = true;
        for (const worker of this.live) this.retire(worker);
        this.exitIfDone();
        return;
      case "SIGHUP":
        say("SIGHUP: chain reload");
        // Each old worker is retired only once its replacement is ready: see handleReady.
        this.replaceQueue = this.live;
        this.spawnReplacement();
        return;
      case "SIGTTIN":
        this.wanted += 1;
        say(`SIGTTIN: ${this.wanted} worker(s)`);
        this.spawnMissing();
        return;
      case "SIGTTOU":
        if (this.wanted <= 1) return;
        this.wanted -= 1;
        say(`SIGTTOU: ${this.wanted} worker(s)`);
        this.retire(this.live[0]!);
        return;
    }
  }

  /**
   * Old workers waiting for their replacement to be ready (a chain reload, or
   * workers that asked to leave): each is retired only then, so that the
   * shared sockets always have a worker accepting on them.
   */
  private replaceQueue: Worker[] = [];

  private spawnReplacement(): void {
    if (this.replaceQueue.length === 0 || this.stopping) return;
    const worker = cluster.fork();
    this.startedAt.set(worker, Date.now());
  }

  /** A worker hit --max-requests or --timeout: it keeps serving until its replacement is ready. */
  private handleRetiring(worker: Worker): void {
    if (this.stopping || this.replaceQueue.includes(worker)) return;
    this.replaceQueue.push(worker);
    this.spawnReplacement();
  }

  private handleReady(worker: Worker, listeners: string[]): void {
    this.ready.add(worker);
    if (!this.announced && this.ready.size >= this.wanted) {
      this.announced = true;
      say(`${this.ready.size} worker(s) ready on ${listeners.join(", ")}`);
    }
    const old = this.replaceQueue.shift();
    if (old) {
      this.retire(old);
      this.spawnReplacement();
    }
  }

  private handleExit(worker: Worker, code: number | null, signal: string | null): void {
    const expected = this.retiring.delete(worker);
    this.replaceQueue = this.replaceQueue.filter((queued) => queued !== worker);
    this.ready.delete(worker);
    const lived = Date.now() - (this.startedAt.get(worker) ?? 0);
    this.startedAt.delete(worker);
    if (this.stopping) return this.exitIfDone();
    if (isFatalExit(code)) {
      say(`worker ${worker.process.pid} exited with ${code === ExitCode.APP_LOAD_ERROR ? "APP_LOAD_ERROR" : "BOOT_ERROR"} (${code}): halting`);
      this.exitCode = code!;
      this.stopping = true;
      for (const other of this.live) this.retire(other);
      return this.exitIfDone();
    }
    if (expected && this.live.length >= this.wanted) return;
    if (!expected) say(`worker ${worker.process.pid} exited (${signal ?? `code ${code}`}) after ${lived} ms: replacing it`);
    this.respawnDelayMs = lived < YOUNG_DEATH_MS ? Math.min(MAX_RESPAWN_DELAY_MS, Math.max(100, this.respawnDelayMs * 2)) : 0;
    if (this.respawnDelayMs === 0) return this.spawnMissing();
    if (this.respawnPending) return;
    this.respawnPending = true;
    setTimeout(() => this.enqueue({ kind: "respawn" }), this.respawnDelayMs);
  }

  private exitIfDone(): void {
    if (Object.values(cluster.workers ?? {}).some((worker) => worker && !worker.isDead())) return;
    say(`stopped (exit ${this.exitCode})`);
    process.exit(this.exitCode);
  }
}

/** Runs the arbiter in this (primary) process; never returns. */
export function runArbiter(options: ArbiterOptions): Promise<never> {
  return new Arbiter(options).run();
}
