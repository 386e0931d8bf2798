/**
 * @module gateway/arbiter
 *
 * What `tsgi-stack serve` runs when it is not itself under a supervisor: a
 * small pre-fork master in the manner of Gunicorn's arbiter, on node:cluster.
 * The workers share listening sockets held through the arbiter (SCHED_NONE:
 * the workers accept on them directly, as Gunicorn's do).
 *
 * Signals only enqueue; one loop drains the queue and dispatches to handle*
 * methods (Gunicorn's Arbiter.signal / run) — the same loop, and the same
 * crash verdicts, as the supervisor's (contract/event-loop.ts,
 * contract/crash-policy.ts):
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
 * with a growing delay while workers keep dying young (RESTART_POLICY).
 */
import cluster, { type Worker } from "node:cluster";
import { judgeExit, type RestartPolicy } from "../contract/crash-policy.ts";
import { EventLoop } from "../contract/event-loop.ts";
import { ExitCode, exitCodeName } from "../contract/exit-codes.ts";
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

/**
 * The arbiter's crash policy, judged by the same rules as the supervisor's
 * (contract/crash-policy.ts): BOOT_ERROR and APP_LOAD_ERROR halt; a worker
 * that dies within 2 s of its start is a crash, and crashes in a row are
 * replaced after a delay that doubles from 100 ms up to 15 s — but never
 * halt the arbiter (Gunicorn's arbiter keeps trying too; a supervisor above
 * it decides when to give up).
 */
const RESTART_POLICY: RestartPolicy = { maxRestarts: Number.POSITIVE_INFINITY, backoffMs: 100, minUptimeMs: 2000 };
const MAX_RESPAWN_DELAY_MS = 15_000;

/** The wait before replacing a worker after `crashes` crashes in a row (0: at once). */
function respawnDelayMs(crashes: number): number {
  return crashes === 0 ? 0 : Math.min(MAX_RESPAWN_DELAY_MS, RESTART_POLICY.backoffMs * 2 ** (crashes - 1));
}

const say = (message: string) => process.stdout.write(`tsgi arbiter ${process.pid}: ${message}\n`);

class Arbiter {
  private readonly loop: EventLoop<ArbiterEvent>;
  private wanted: number;
  private stopping = false;
  private readonly startedAt = new Map<Worker, number>();
  private readonly ready = new Set<Worker>();
  /** Workers told to leave; their exit is expected. */
  private readonly retiring = new Set<Worker>();
  /** Workers that died young in a row (the crash policy's count). */
  private crashes = 0;
  private respawnPending = false;
  private announced = false;
  private exitCode: number = ExitCode.OK;

  constructor(private readonly options: ArbiterOptions) {
    this.wanted = options.workers;
    this.loop = new EventLoop<ArbiterEvent>(
      (event) => this.dispatch(event),
      () => undefined,
      (error, event) => say(`error while handling ${event.kind}: ${(error as Error).stack ?? String(error)}`),
    );
  }

  private enqueue(event: ArbiterEvent): void {
    this.loop.enqueue(event);
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
    // From here on the loop and the workers' IPC channels keep the process alive; it ends in exitIfDone().
    return new Promise<never>(() => undefined);
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
    if (expected) {
      // A retired worker (recycled, or replaced by a reload): its replacement is already on its way, or comes now.
      if (this.live.length < this.wanted) this.spawnMissing();
      return;
    }
    const verdict = judgeExit({ exitCode: code ?? 0, uptimeMs: lived, crashesSoFar: this.crashes }, RESTART_POLICY);
    this.crashes = verdict.crashes;
    if (verdict.action === "halt") {
      say(`worker ${worker.process.pid} exited with ${exitCodeName(code ?? 0)} (${code}): halting`);
      this.exitCode = code ?? ExitCode.OK;
      this.stopping = true;
      for (const other of this.live) this.retire(other);
      return this.exitIfDone();
    }
    say(`worker ${worker.process.pid} exited (${signal ?? `code ${code}`}) after ${lived} ms: replacing it`);
    const delay = respawnDelayMs(verdict.crashes);
    if (delay === 0) return this.spawnMissing();
    if (this.respawnPending) return;
    this.respawnPending = true;
    setTimeout(() => this.enqueue({ kind: "respawn" }), delay);
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
