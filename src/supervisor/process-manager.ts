/**
 * @module supervisor/process-manager
 *
 * The process manager the supervisor drives, as a narrow async interface:
 * start, stop, restart, delete and list named processes, hear their events,
 * let go. pm2 implements it (supervisor/pm2-client.ts, the one file that
 * imports pm2); the Supervisor receives a way to connect one
 * (SupervisorOptions.connectProcessManager), so a fake that replays pm2's
 * known quirks can stand in for it in tests of the supervisor's rules.
 *
 * The events keep pm2's words (Pm2Event) because they are pm2's: a signal
 * reported as exit code 0, an exit reported twice. A fake must reproduce
 * them, not correct them.
 */

/** One process as we ask pm2 to run it: always an executable and its arguments, never a script for pm2's Node wrapper. */
export interface ProcessSpec {
  name: string;
  /** Absolute path of the executable (process.execPath for our workers, /bin/sh for commands). */
  executable: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Wait for the process to `process.send("ready")` before calling it online. */
  waitReady: boolean;
  /** How long pm2 waits for "ready" before calling the process online anyway (ms). */
  listenTimeoutMs: number;
  /** How long a stop waits after the kill signal before SIGKILL (ms). */
  killTimeoutMs: number;
  /** pm2 restarts the process (gracefully) when its RSS passes this many bytes. */
  maxMemoryBytes?: number;
  /** First restart delay (ms); pm2 grows it ×1.5 per crash, up to 15 s. */
  backoffMs: number;
  /** Unstable exits (uptime < minUptimeMs) after which pm2 gives up ("restart overlimit"). */
  maxRestarts: number;
  minUptimeMs: number;
  /** Exit codes after which pm2 does not restart the process. */
  stopExitCodes: number[];
  /**
   * The files the process's stdout and stderr are appended to, by the process
   * itself: the manager opens them as its standard output and keeps no copy,
   * relays no line. An app that floods its output then costs disk speed, not
   * the manager's (or the stack's) memory, and never delays its events.
   * Keeping the files bounded is the caller's (log-keeper.ts).
   */
  outFile: string;
  errFile: string;
}

/** pm2's statuses, as it spells them. */
export type Pm2Status = "online" | "launching" | "stopping" | "stopped" | "errored" | "waiting restart" | "one-launch-status";

export interface ProcessInfo {
  name: string;
  pmId: number;
  /** 0 when the process is not running. */
  pid: number;
  status: Pm2Status;
  /** How many times pm2 restarted it (crashes and restarts asked for). */
  restarts: number;
  /** Milliseconds since this generation started; 0 when not online. */
  uptime: number;
  /** When this generation started (pm2's pm_uptime, epoch ms): what its events carry as `startedAt`. */
  startedAt: number;
  /** RSS in bytes, as pm2 last sampled it. */
  memory: number;
  /** CPU percent, as pm2 last sampled it. */
  cpu: number;
  exitCode?: number;
  /** The environment we gave the process (pm2 merges in the caller's; only ours is kept here). */
  env: Record<string, string>;
}

/** What the pm2 bus reports, in our words. `at` and `startedAt` are epoch ms on the daemon's clock. */
export type Pm2Event =
  | { kind: "online"; name: string; at: number; startedAt: number }
  /** `signal`: the signal that killed it, when the manager can tell (pm2 reports such an exit as code 0). */
  | { kind: "exit"; name: string; at: number; startedAt: number; exitCode: number; status: string; signal?: string }
  | { kind: "overlimit"; name: string; at: number; startedAt: number }
  /** A child's `process.send({ type, data })`: pm2 publishes it under its own `type` (e.g. "tsgi:ready"). */
  | { kind: "message"; name: string; at: number; type: string; data: unknown }
  /** Any other `process.send(value)`, e.g. the "ready" that wait_ready waits for. */
  | { kind: "raw"; name: string; at: number; raw: unknown }
  /** The daemon is going away (killDaemon, or a signal to it). */
  | { kind: "daemon-exit" };

export interface ConnectOptions {
  /** PM2_HOME: the stack's own state, never ~/.pm2. Created if missing. */
  home: string;
  /**
   * Only daemon mode: issue #3 found that in no-daemon mode pm2's God runs in
   * the caller, prefixes its console.log lines and exits it on killDaemon.
   */
  daemon?: true;
  /** How often the daemon samples memory/CPU and applies max_memory_restart (ms); pm2's default is 30 s. */
  monitorIntervalMs?: number;
}

/** What the supervisor needs of a process manager; pm2-client.ts's Pm2Client is the real one. */
export interface ProcessManager {
  start(spec: ProcessSpec): Promise<ProcessInfo>;
  stop(name: string): Promise<void>;
  restart(name: string): Promise<void>;
  /** Stops the process and removes its entry; resolves once the manager no longer lists the name. */
  delete(name: string): Promise<void>;
  /** The processes whose name starts with `namePrefix` (all of them by default). */
  list(namePrefix?: string): Promise<ProcessInfo[]>;
  /** Every event, until the returned function is called. */
  onEvent(listener: (event: Pm2Event) => void): () => void;
  /** Lets go of the manager; its processes keep running. */
  disconnect(): Promise<void>;
  /** Whether the manager itself (pm2's daemon) still runs: it can die without a word (SIGKILL). */
  daemonAlive(): boolean;
  /** Deletes every process, stops the manager itself and resolves once it is gone. */
  killDaemon(): Promise<void>;
}

/** How the supervisor connects to its process manager (Pm2Client.connect by default). */
export type ConnectProcessManager = (options: ConnectOptions) => Promise<ProcessManager>;
