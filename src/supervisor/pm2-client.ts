/**
 * @module supervisor/pm2-client
 *
 * The only file that imports pm2 (pm2 is AGPL: keeping it behind one narrow
 * seam keeps the rest of the stack free of it). It turns
 * pm2's callback API, mixin singleton and string errors into a small
 * promise-based class with our own types: start / stop / restart / delete /
 * list a process by name, one event stream, disconnect, kill the daemon.
 *
 * What pm2 7.0.4 does that this file works around (measured, issue #3):
 * - `require("pm2")` builds a default instance whose constructor creates
 *   `~/.pm2/{logs,pids,modules}`: we load `pm2/lib/API.js` and build our own
 *   instance with `pm2_home` = the stack's state dir, so ~/.pm2 is never touched.
 * - pm2 keeps its paths in module state (constants.js, mutated by every
 *   `new API({pm2_home})`): one pm2 home per process, enforced here.
 * - The daemon takes its home from `process.env.PM2_HOME`, which overrides the
 *   home the client asked for; and its kill signal is daemon-wide
 *   (PM2_KILL_SIGNAL, default SIGINT — there is no per-app kill_signal). Both
 *   are set in this process's environment while the daemon is spawned.
 * - pm2 reads each process's stdout and stderr through pipes, writes every
 *   chunk to its log files through streams that never wait, and publishes it
 *   on the bus, which shares our socket with the process events. An app
 *   flooding 50 MB/s took the daemon to ~1 GB RSS, this process to ~1 GB, and
 *   delayed an exit event by seconds (the reliability campaign's fault 4). So
 *   pm2 carries no output: each process runs under a shell that first points
 *   its stdout and stderr at the spec's files (`exec >>out 2>>err`) and then
 *   execs the program — the pid pm2 watches is the program's — and pm2's own
 *   logging is off (disable_logs, files /dev/null), so no line reaches the bus.
 * - An exit on a `stop_exit_codes` code is not restarted, but the process is
 *   left in status "waiting restart": callers stop() it to make that true.
 * - A process killed by a signal is reported as exit code 0 (pm2 passes
 *   `code || 0` and drops the signal): exitCode here is the code pm2 gives,
 *   and the signal is read back from the daemon's own log line
 *   (`App [name:id] exited with code [0] via signal [SIGKILL]`, written
 *   before the event is sent; see signalFromDaemonLog). pm2 writes SIGINT
 *   there when there was no signal at all, so a real SIGINT cannot be told
 *   from a plain exit.
 * - A stop emits "exit" twice (once from the exit handler, once from the stop):
 *   events carry `startedAt` (pm2's pm_uptime) so callers can tell
 *   generations apart and ignore the repeat.
 * - Disconnecting: pm2's own bus close has a timer that throws
 *   (`Client.sub_sock` is undefined in disconnectBus), so we close the bus
 *   socket ourselves before anything else.
 * - pm2's killDaemon leaves the caller hanging: the daemon closes its end of
 *   the RPC socket first, pm2's client then thinks it "already being closed"
 *   and never closes it, and pm2-axon reconnects it every ≤5 s for ever. We
 *   close both sockets while the daemon still answers, then SIGTERM it (its
 *   own graceful exit).
 */
import { createRequire } from "node:module";
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, rmSync } from "node:fs";
import path from "node:path";
import type { ProcessDescription, StartOptions } from "pm2";
import { isAlive } from "./probes.ts";
import type { ConnectOptions, Pm2Event, Pm2Status, ProcessInfo, ProcessManager, ProcessSpec } from "./process-manager.ts";

export type { ConnectOptions, Pm2Event, Pm2Status, ProcessInfo, ProcessManager, ProcessSpec } from "./process-manager.ts";

/** The environment keys of ours kept in ProcessInfo.env (the rest is the caller's environment that pm2 copies in). */
const OWN_ENV = /^(TSGI_|PORT$)/;
/** How long the daemon has to exit after SIGTERM (it has no processes left to stop by then). */
const DAEMON_EXIT_MS = 5000;
/** The daemon's kill signal: the worker contract's graceful stop (pm2 defaults to SIGINT, which it treats the same). */
const KILL_SIGNAL = "SIGTERM";

type Callback<T> = (error: unknown, value: T) => void;

/** The part of pm2's API object we use (lib/API.js); pm2's own .d.ts types only the default singleton. */
interface Pm2Api {
  connect(cb: Callback<unknown>): void;
  start(options: StartOptions & Record<string, unknown>, cb: Callback<ProcessDescription[]>): void;
  stop(name: string, cb: Callback<unknown>): void;
  restart(name: string, cb: Callback<unknown>): void;
  delete(name: string, cb: Callback<unknown>): void;
  list(cb: Callback<ProcessDescription[]>): void;
  disconnect(cb: Callback<unknown>): void;
  launchBus(cb: Callback<Pm2Bus>): void;
  Client: { sub_sock?: AxonSocket; sub?: unknown };
}
interface Pm2Bus {
  on(event: string, listener: (...args: unknown[]) => void): void;
}
interface AxonSocket {
  close(): void;
  closing?: boolean;
  once(event: string, listener: () => void): void;
}
type Pm2ApiClass = new (options: { pm2_home: string; daemon_mode: boolean }) => Pm2Api;

/** pm2 keeps its paths in module state: the home this process's pm2 is bound to, and how many clients use it. */
const binding = { home: undefined as string | undefined, clients: 0 };

function bind(home: string): void {
  if (binding.home !== undefined && binding.home !== home) {
    throw new Error(`pm2 is already bound to ${binding.home} in this process: pm2 keeps its paths in module state, one PM2_HOME per process`);
  }
  binding.home = home;
  binding.clients += 1;
}

function unbind(): void {
  binding.clients = Math.max(0, binding.clients - 1);
  if (binding.clients === 0) binding.home = undefined;
}

/** Loads pm2's API class without the default instance that `require("pm2")` builds (and points at ~/.pm2). */
function loadPm2(): Pm2ApiClass {
  // Read by pm2 at load time: no banner, no version check over the network, no console output.
  process.env.PM2_PROGRAMMATIC = "true";
  const require = createRequire(import.meta.url);
  return require("pm2/lib/API.js") as Pm2ApiClass;
}

/** Promisifies one callback-style pm2 call; pm2's string errors become Error objects. */
function call<T>(fn: (cb: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    fn((error, value) => (error ? reject(toError(error)) : resolve(value)));
  });
}

function toError(error: unknown): Error {
  if (error instanceof Error) return error;
  if (Array.isArray(error) && error.length > 0) return toError(error[0]);
  if (typeof error === "object" && error !== null && "message" in error) return new Error(String(error.message));
  return new Error(String(error));
}

/** Runs `fn` with some environment variables set, restoring them afterwards. */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((key) => [key, process.env[key]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

/** How many times delete() deletes a name again that pm2 put back, and how long it waits for pm2 to do so. */
const DELETE_AGAIN = 5;
const DELETE_SETTLE_MS = 250;

/** The shell that opens a process's log files for it before running it. */
const SHELL = "/bin/sh";
/**
 * `sh -c SCRIPT tsgi-output OUT ERR PROGRAM ARGS…`: opens OUT and ERR for
 * appending as stdout and stderr, then execs the program in the same pid. The
 * IPC channel (fd 3) that wait_ready needs survives exec. A file that cannot
 * be opened (a read-only state dir) sends the output to /dev/null instead:
 * a worker that serves with its output lost beats one that cannot start
 * (`command` keeps the failed redirection from ending the shell).
 */
const OWN_OUTPUT_SCRIPT = 'command exec >>"$1" 2>>"$2" || exec >/dev/null 2>&1; shift 2; exec "$@"';

/** The shell's arguments that run `spec` with its output in its own files. */
function withOwnOutput(spec: Pick<ProcessSpec, "executable" | "args" | "outFile" | "errFile">): string[] {
  return ["-c", OWN_OUTPUT_SCRIPT, "tsgi-output", spec.outFile, spec.errFile, spec.executable, ...spec.args];
}

/** Our ProcessSpec in pm2's words. */
function toStartOptions(spec: ProcessSpec): StartOptions & Record<string, unknown> {
  return {
    name: spec.name,
    script: SHELL,
    args: withOwnOutput(spec),
    // "none": run the executable itself, not through pm2's ProcessContainerFork wrapper.
    interpreter: "none",
    exec_mode: "fork",
    cwd: spec.cwd,
    env: spec.env,
    autorestart: true,
    wait_ready: spec.waitReady,
    listen_timeout: spec.listenTimeoutMs,
    kill_timeout: spec.killTimeoutMs,
    ...(spec.maxMemoryBytes ? { max_memory_restart: spec.maxMemoryBytes } : {}),
    exp_backoff_restart_delay: spec.backoffMs,
    max_restarts: spec.maxRestarts,
    min_uptime: spec.minUptimeMs,
    stop_exit_codes: spec.stopExitCodes,
    // The process writes its own output (see withOwnOutput): pm2 keeps no file and publishes no line.
    out_file: "/dev/null",
    error_file: "/dev/null",
    disable_logs: true,
    treekill: true,
    // pm2's git lookups and its APM hooks: nothing we use, and each costs time per start.
    vizion: false,
    pmx: false,
    automation: false,
  };
}

function ownEnv(env: unknown): Record<string, string> {
  if (typeof env !== "object" || env === null) return {};
  return Object.fromEntries(Object.entries(env).filter(([key, value]) => OWN_ENV.test(key) && typeof value === "string"));
}

function toProcessInfo(description: ProcessDescription, now: number): ProcessInfo {
  const env = (description.pm2_env ?? {}) as Record<string, unknown>;
  const status = (env.status ?? "stopped") as Pm2Status;
  const startedAt = typeof env.pm_uptime === "number" ? env.pm_uptime : now;
  return {
    name: description.name ?? "",
    pmId: description.pm_id ?? -1,
    pid: description.pid ?? 0,
    status,
    restarts: typeof env.restart_time === "number" ? env.restart_time : 0,
    uptime: status === "online" ? Math.max(0, now - startedAt) : 0,
    startedAt,
    memory: description.monit?.memory ?? 0,
    cpu: description.monit?.cpu ?? 0,
    ...(typeof env.exit_code === "number" ? { exitCode: env.exit_code } : {}),
    env: ownEnv(env.env),
  };
}

/** Bus payloads are untyped JSON: read the fields we need defensively. */
interface BusPacket {
  at?: number;
  event?: string;
  data?: unknown;
  raw?: unknown;
  process?: { name?: string; pm_uptime?: number; exit_code?: number; status?: string };
}

/** One bus topic and payload -> our event, or undefined for what we do not use. */
export function toPm2Event(topic: string, packet: BusPacket): Pm2Event | undefined {
  const name = packet.process?.name ?? "";
  const at = packet.at ?? Date.now();
  const startedAt = packet.process?.pm_uptime ?? 0;
  if (topic === "process:event") {
    if (packet.event === "online") return { kind: "online", name, at, startedAt };
    if (packet.event === "exit") {
      return { kind: "exit", name, at, startedAt, exitCode: packet.process?.exit_code ?? 0, status: packet.process?.status ?? "" };
    }
    if (packet.event === "restart overlimit") return { kind: "overlimit", name, at, startedAt };
    return undefined;
  }
  // Never sent with disable_logs; were an older daemon to send them, the output is in the files already.
  if (topic === "log:out" || topic === "log:err") return undefined;
  if (topic === "pm2:kill") return { kind: "daemon-exit" };
  if (topic === "process:msg") return { kind: "raw", name, at, raw: packet.raw };
  // A child's process.send({ type, data }) arrives under its own type as the topic (ForkMode.js).
  if (!topic.startsWith("process:") && !topic.startsWith("pm2:") && !topic.startsWith("axm:") && !topic.startsWith("human:")) {
    return { kind: "message", name, at, type: topic, data: packet.data };
  }
  return undefined;
}

/** How much of the end of the daemon's log is read for an exit's signal: its last lines, never the whole file. */
const DAEMON_LOG_TAIL = 16 * 1024;

/** The last `bytes` of a file (less when it is shorter); "" when it cannot be read. */
function readTail(file: string, bytes: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const size = fstatSync(fd).size;
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    return buffer.toString("utf8");
  } catch {
    return "";
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * The signal that ended process `name`, from the daemon's log line for its
 * last exit with `exitCode` — undefined when there was none. pm2 logs
 * "via signal [SIGINT]" for an exit with no signal, so SIGINT is read as none.
 */
export function signalFromDaemonLog(log: string, name: string, exitCode: number): string | undefined {
  const prefix = `App [${name}:`;
  const lines = log.split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    const at = line.indexOf(prefix);
    if (at === -1) continue;
    const match = /^App \[.*?:\d+\] exited with code \[(-?\d+)\] via signal \[([A-Z0-9]+)\]/.exec(line.slice(at));
    if (!match) continue;
    if (Number(match[1]) !== exitCode) return undefined;
    return match[2] === "SIGINT" ? undefined : match[2];
  }
  return undefined;
}

/** A connection to the pm2 daemon of one PM2_HOME. */
export class Pm2Client implements ProcessManager {
  private readonly listeners = new Set<(event: Pm2Event) => void>();
  private closed = false;

  private constructor(
    private readonly api: Pm2Api,
    readonly home: string,
  ) {}

  /** Connects to the daemon of `home`, spawning it if it is not running. */
  static async connect(options: ConnectOptions): Promise<Pm2Client> {
    const home = path.resolve(options.home);
    // No live daemon by its pid file, but its socket files are there: one that was stopped or killed. pm2
    // pings rpc.sock to decide whether to spawn a daemon, and a daemon still on its way out (or a child
    // that inherited the socket) can answer that ping and then refuse every call: the client would
    // reconnect forever. Without the files, pm2 spawns a new daemon, which binds new ones.
    if (Pm2Client.daemonPid(home) === undefined) {
      for (const socket of ["rpc.sock", "pub.sock"]) rmSync(path.join(home, socket), { force: true });
    }
    bind(home);
    const daemonEnv: Record<string, string> = { PM2_HOME: home, PM2_KILL_SIGNAL: KILL_SIGNAL };
    if (options.monitorIntervalMs) daemonEnv.PM2_WORKER_INTERVAL = String(options.monitorIntervalMs);
    try {
      const Api = loadPm2();
      // Read when the daemon is spawned: its home, its kill signal, its monitor interval.
      return await withEnv(daemonEnv, async () => {
        const api = new Api({ pm2_home: home, daemon_mode: true });
        await call((cb) => api.connect(cb));
        const client = new Pm2Client(api, home);
        await client.openBus();
        return client;
      });
    } catch (error) {
      unbind();
      throw error;
    }
  }

  /** The daemon's pid, if its pid file names a live process. */
  static daemonPid(home: string): number | undefined {
    const file = path.join(home, "pm2.pid");
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
  }

  /** Starts a process (or, if one of that name exists, restarts it with this spec). Resolves once it is online or has exited. */
  async start(spec: ProcessSpec): Promise<ProcessInfo> {
    const started = await call<ProcessDescription[]>((cb) => this.api.start(toStartOptions(spec), cb));
    const first = started[0] as (ProcessDescription & { process?: { pid?: number } }) | undefined;
    if (!first) throw new Error(`pm2 started nothing for ${spec.name}`);
    // start() answers with pm2's internal process objects ({ process: { pid }, pm2_env }), not list() rows.
    const description: ProcessDescription = {
      name: spec.name,
      pid: first.pid ?? first.process?.pid ?? 0,
      pm_id: first.pm_id,
      pm2_env: first.pm2_env,
      monit: first.monit,
    };
    return toProcessInfo(description, Date.now());
  }

  /** Stops a process and keeps its entry (status "stopped"): the kill signal, then SIGKILL after its kill timeout. */
  async stop(name: string): Promise<void> {
    await call((cb) => this.api.stop(name, cb));
  }

  /** Stops and starts a process again (pm2's restart: in fork mode, not a rolling one). */
  async restart(name: string): Promise<void> {
    await call((cb) => this.api.restart(name, cb));
  }

  /**
   * Stops a process and removes its entry — for good. pm2's own restart of
   * the process (past max_memory_restart, at every monitor round) can race a
   * delete: the delete answers, and a moment later pm2 puts the entry back
   * with a new process, which it then runs for good. So the name is looked
   * up again after a short settle and deleted again while pm2 lists it (the
   * supervisor also removes such an entry when a later sample lists it).
   */
  async delete(name: string): Promise<void> {
    await call((cb) => this.api.delete(name, cb));
    for (let again = 0; again < DELETE_AGAIN; again++) {
      await new Promise((resolve) => setTimeout(resolve, DELETE_SETTLE_MS));
      if (!(await this.list(name)).some((process) => process.name === name)) return;
      await call((cb) => this.api.delete(name, cb)).catch(() => undefined);
    }
  }

  /** The processes whose name starts with `namePrefix`. */
  async list(namePrefix = ""): Promise<ProcessInfo[]> {
    const all = await call<ProcessDescription[]>((cb) => this.api.list(cb));
    const now = Date.now();
    return all.filter((process) => (process.name ?? "").startsWith(namePrefix)).map((process) => toProcessInfo(process, now));
  }

  /** Subscribes to the daemon's events; returns the unsubscribe function. */
  onEvent(listener: (event: Pm2Event) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Closes the bus and both client sockets; the daemon and its processes keep running. */
  async disconnect(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await this.closeBus();
    await call((cb) => this.api.disconnect(cb)).catch(() => undefined);
    unbind();
  }

  /**
   * Deletes every process of this daemon, stops the daemon, and resolves once
   * its pid is gone. Not pm2's killDaemon, which leaves the caller hanging on
   * a reconnecting RPC socket (see the module header): both sockets are
   * closed while the daemon still answers, then the daemon gets SIGTERM.
   */
  daemonAlive(): boolean {
    return Pm2Client.daemonPid(this.home) !== undefined;
  }

  async killDaemon(): Promise<void> {
    const pid = Pm2Client.daemonPid(this.home);
    if (!this.closed) {
      const processes = await this.list().catch(() => []);
      await Promise.all(processes.map((process) => this.delete(process.name).catch(() => undefined)));
      await this.disconnect();
    }
    if (pid === undefined) return;
    signal(pid, "SIGTERM");
    if (!(await waitForExit(pid, DAEMON_EXIT_MS))) {
      signal(pid, "SIGKILL");
      await waitForExit(pid, DAEMON_EXIT_MS);
    }
  }

  private async openBus(): Promise<void> {
    const bus = await call<Pm2Bus>((cb) => this.api.launchBus(cb));
    bus.on("*", (topic: unknown, packet: unknown) => {
      const event = toPm2Event(String(topic), (packet ?? {}) as BusPacket);
      if (!event) return;
      if (event.kind === "exit") {
        const signal = signalFromDaemonLog(readTail(path.join(this.home, "pm2.log"), DAEMON_LOG_TAIL), event.name, event.exitCode);
        if (signal) event.signal = signal;
      }
      for (const listener of this.listeners) listener(event);
    });
  }

  /** Closes the bus socket and waits for it (pm2's disconnectBus throws from a timer when the close is slow). */
  private async closeBus(): Promise<void> {
    const client = this.api.Client;
    const socket = client.sub_sock;
    if (!socket || socket.closing) return;
    client.sub_sock = undefined;
    client.sub = null;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 500);
      socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.close();
    });
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
}
