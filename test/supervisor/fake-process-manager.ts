/**
 * A process manager that behaves as pm2 does, quirks included, without a
 * process: the Supervisor's rules can then be tested in milliseconds
 * (supervisor/process-manager.ts says why the quirks stay). What it
 * reproduces, each seen with the real pm2 (pm2-client.test.ts and the
 * supervisor tests against real pm2 keep checking the real thing):
 *
 *   - `online` when a process starts, then our worker's own `tsgi:ready`
 *     message once it is serving;
 *   - a process that exits on its own is restarted after its back-off,
 *     unless its code is one of stop_exit_codes; after max_restarts unstable
 *     exits (uptime < min_uptime) pm2 says "restart overlimit" and gives up;
 *   - a process killed by a signal is reported with exit code 0;
 *   - a stop's (and a delete's) exit is reported twice;
 *   - `restart` reports the old generation's exit, then the new one online.
 *
 * Pids are above Linux's largest possible pid (2^22), so nothing real is
 * ever signalled by a supervisor that believes them.
 */
import type { Pm2Event, ProcessInfo, ProcessManager, ProcessSpec } from "../../src/supervisor/process-manager.ts";

/** What a worker does on one launch: become ready, exit with a code after some ms, or never say anything. */
export type Behaviour = { ready: true } | { exit: number; afterMs?: number } | { silent: true };

/** Decides each launch's behaviour, by process name and how many times that name was launched before. */
export type Script = (name: string, generation: number) => Behaviour;

interface FakeProcess {
  spec: ProcessSpec;
  pid: number;
  status: ProcessInfo["status"];
  startedAt: number;
  restarts: number;
  unstable: number;
  generation: number;
  timers: NodeJS.Timeout[];
}

const FIRST_FAKE_PID = 5_000_000;

export class FakeProcessManager implements ProcessManager {
  private readonly processes = new Map<string, FakeProcess>();
  private readonly listeners = new Set<(event: Pm2Event) => void>();
  private nextPid = FIRST_FAKE_PID;
  private clock = Date.now();
  /** Every call the supervisor made, in order ("start web.0", "delete …"). */
  readonly calls: string[] = [];
  /** Launches per process name (first start and every restart). */
  readonly launches = new Map<string, number>();

  constructor(
    private readonly script: Script = () => ({ ready: true }),
    /** Report an exit of its own twice too (pm2 does for some signals): the supervisor must judge it once. */
    private readonly options: { exitTwice?: boolean } = {},
  ) {}

  async start(spec: ProcessSpec): Promise<ProcessInfo> {
    this.calls.push(`start ${spec.name}`);
    const existing = this.processes.get(spec.name);
    if (existing) this.halt(existing);
    const process: FakeProcess = { spec, pid: 0, status: "launching", startedAt: 0, restarts: existing?.restarts ?? 0, unstable: 0, generation: 0, timers: [] };
    this.processes.set(spec.name, process);
    this.launch(process);
    return this.info(process);
  }

  async stop(name: string): Promise<void> {
    this.calls.push(`stop ${name}`);
    const process = this.processes.get(name);
    if (process && process.status === "online") this.stopped(process);
  }

  async restart(name: string): Promise<void> {
    this.calls.push(`restart ${name}`);
    const process = this.processes.get(name);
    if (!process) throw new Error(`process or namespace ${name} not found`);
    if (process.status === "online") this.stopped(process);
    process.restarts += 1;
    this.launch(process);
  }

  async delete(name: string): Promise<void> {
    this.calls.push(`delete ${name}`);
    const process = this.processes.get(name);
    if (!process) throw new Error(`process or namespace ${name} not found`);
    if (process.status === "online") this.stopped(process);
    this.halt(process);
    this.processes.delete(name);
  }

  async list(namePrefix = ""): Promise<ProcessInfo[]> {
    // A dead daemon's RPC socket never answers: pm2's client keeps reconnecting.
    // (Here the fake is its own next connection too, so restartDaemon fails the calls left waiting.)
    if (!this.alive) return new Promise((_, reject) => this.unanswered.push(reject));
    return [...this.processes.values()].filter((process) => process.spec.name.startsWith(namePrefix)).map((process) => this.info(process));
  }

  onEvent(listener: (event: Pm2Event) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async disconnect(): Promise<void> {
    this.listeners.clear();
  }

  async killDaemon(): Promise<void> {
    for (const process of this.processes.values()) this.halt(process);
    this.processes.clear();
    this.emit({ kind: "daemon-exit" });
    this.listeners.clear();
  }

  /**
   * A signal from outside (the OOM killer, `kill -9`): pm2 reports it as exit
   * code 0 and restarts the process; our client reads the signal back from
   * pm2's log, so the event carries it.
   */
  kill(name: string, signal = "SIGKILL"): void {
    const process = this.processes.get(name);
    if (process?.status === "online") this.exited(process, 0, signal);
  }

  /** Whether the daemon runs: false from crashDaemon until the supervisor connects again (restartDaemon). */
  alive = true;

  /** The pid file says the daemon is gone while it still runs (a file rewritten as a new daemon starts). */
  pidFileMissing = false;
  private readonly unanswered: Array<(error: Error) => void> = [];

  daemonAlive(): boolean {
    return this.alive && !this.pidFileMissing;
  }

  /** The daemon dies (SIGKILL to it): its processes go with it, and pm2 says nothing. */
  crashDaemon(): void {
    for (const process of this.processes.values()) this.halt(process);
    this.processes.clear();
    this.alive = false;
  }

  /** A connect after a crash spawns a new daemon, with no processes. */
  restartDaemon(): this {
    this.alive = true;
    for (const reject of this.unanswered.splice(0)) reject(new Error("the daemon this call was sent to is gone"));
    return this;
  }

  /** The pid the named process runs as now (0 when it does not run). */
  pidOf(name: string): number {
    return this.processes.get(name)?.pid ?? 0;
  }

  /** Advances the daemon's clock: uptimes are computed from it, so a test decides what is "unstable". */
  advance(ms: number): void {
    this.clock += ms;
  }

  private launch(process: FakeProcess): void {
    const generation = this.launches.get(process.spec.name) ?? 0;
    this.launches.set(process.spec.name, generation + 1);
    process.generation = generation;
    process.pid = this.nextPid++;
    process.status = "online";
    process.startedAt = ++this.clock;
    const { name } = process.spec;
    const { startedAt } = process;
    this.later(process, 0, () => this.emit({ kind: "online", name, at: this.clock, startedAt }));
    const behaviour = this.script(name, generation);
    if ("ready" in behaviour) {
      const pid = process.pid;
      this.later(process, 1, () => this.emit({ kind: "message", name, at: this.clock, type: "tsgi:ready", data: { pid } }));
    } else if ("exit" in behaviour) {
      this.later(process, behaviour.afterMs ?? 1, () => this.exited(process, behaviour.exit));
    }
  }

  /** The process ended on its own: reported once, then pm2's restart rules. */
  private exited(process: FakeProcess, exitCode: number, signal?: string): void {
    const { name } = process.spec;
    const uptime = this.clock - process.startedAt;
    this.halt(process);
    process.status = "stopped";
    const exit: Pm2Event = { kind: "exit", name, at: this.clock, startedAt: process.startedAt, exitCode, status: "stopped", ...(signal ? { signal } : {}) };
    this.emit(exit);
    if (this.options.exitTwice) this.emit({ ...exit });
    if (process.spec.stopExitCodes.includes(exitCode)) return;
    process.unstable = uptime < process.spec.minUptimeMs ? process.unstable + 1 : 0;
    if (process.unstable >= process.spec.maxRestarts) {
      process.status = "errored";
      this.emit({ kind: "overlimit", name, at: this.clock, startedAt: process.startedAt });
      return;
    }
    process.status = "waiting restart";
    this.later(process, Math.min(process.spec.backoffMs, 5), () => {
      process.restarts += 1;
      this.launch(process);
    });
  }

  /** A stop we asked for: the exit is reported twice, as pm2 does. */
  private stopped(process: FakeProcess): void {
    const { name } = process.spec;
    const { startedAt } = process;
    this.halt(process);
    process.status = "stopped";
    const exit: Pm2Event = { kind: "exit", name, at: this.clock, startedAt, exitCode: 0, status: "stopped" };
    this.emit(exit);
    this.emit({ ...exit });
  }

  private halt(process: FakeProcess): void {
    for (const timer of process.timers.splice(0)) clearTimeout(timer);
    process.pid = 0;
  }

  private later(process: FakeProcess, ms: number, fn: () => void): void {
    process.timers.push(setTimeout(fn, ms));
  }

  private emit(event: Pm2Event): void {
    for (const listener of this.listeners) listener(event);
  }

  private info(process: FakeProcess): ProcessInfo {
    return {
      name: process.spec.name,
      pmId: 0,
      pid: process.pid,
      status: process.status,
      restarts: process.restarts,
      uptime: process.status === "online" ? this.clock - process.startedAt : 0,
      startedAt: process.startedAt,
      memory: 0,
      cpu: 0,
      env: process.spec.env,
    };
  }
}
