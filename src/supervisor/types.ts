/**
 * @module supervisor/types
 *
 * The supervisor's own vocabulary: what it is asked to run (PoolSpec — the
 * lead maps the YAML config onto it, so this folder never imports config/),
 * and what it reports — plain data only: pool reports, status
 * rows, events, and the seam to the proxy (which workers of which app are
 * ready, at which address; docs/architecture.md).
 */
import type { ListenAddress } from "../contract/address.ts";
import type { ConfiguredSettingValues } from "../contract/worker-settings.ts";
import type { ConnectProcessManager } from "./process-manager.ts";
import type { LogBound, RelayedLine } from "./log-keeper.ts";

/** One app: N identical workers, each a pm2 process in fork mode. */
export interface PoolSpec extends ConfiguredSettingValues {
  /** The app's name in the config; part of every process name, so [A-Za-z0-9_.-] only. */
  name: string;
  /** "module": a TSGI/Node/Fetch app served by gateway workers; "command": any HTTP server that listens on $PORT. */
  kind: "module" | "command";
  /** `path/to/app.ts[:export]`, relative to cwd (kind "module"). */
  module?: string;
  /** How the export is called (kind "module"): tsgi | node | fetch | auto (default auto). */
  interface?: string;
  /** Run through /bin/sh -c with PORT set (kind "command"). */
  command?: string;
  instances: number;
  env: Record<string, string>;
  /** The workers' working directory (absolute). */
  cwd: string;
  /** pm2 restarts a worker (gracefully) whose RSS passes this; undefined: no limit. */
  maxMemoryBytes?: number;
  // The worker settings the config sets (maxRequests, maxRequestsJitter, timeoutMs, gracefulTimeoutMs: the
  // configured rows of contract/worker-settings.ts) are inherited; the supervisor reads timeoutMs (heartbeats)
  // and gracefulTimeoutMs (kill timeout) itself, and passes all of them to module workers.
  /** How long a starting worker has to become ready (ms). */
  readyTimeoutMs: number;
  restart: RestartPolicy;
}

/** Reliability matrix R5: restarts back off, and a crash loop stops (pm2 grows the back-off ×1.5 per crash, capped at 15 s). */
export type { RestartPolicy } from "../contract/crash-policy.ts";
import type { HaltReason, RestartPolicy } from "../contract/crash-policy.ts";

export interface SupervisorOptions {
  /** Names the stack in pm2 (`tsgi:<stackId>:<app>:<slot>`); [A-Za-z0-9_.-] only. */
  stackId: string;
  /** The stack's state dir: pm2's home is `<stateDir>/pm2`, sockets and logs beside it. */
  stateDir: string;
  /** The CLI entry that runs `serve` (default: the package's dist/cli/bin.js). */
  workerBin?: string;
  /** The Node binary for workers (default: the one running this process). */
  nodePath?: string;
  /** The shell that runs command apps (default /bin/sh). */
  shell?: string;
  /** Module workers also serve uwsgi on a socket beside their HTTP one (default false; `up --no-proxy` for nginx's uwsgi_pass). */
  uwsgiSockets?: boolean;
  /** How often pm2 samples memory/CPU and applies maxMemoryBytes (ms; default 5000). */
  monitorIntervalMs?: number;
  /** How to reach the process manager (default: pm2, Pm2Client.connect); a fake in tests of the supervisor's rules. */
  connectProcessManager?: ConnectProcessManager;
  /** Lines of a failed worker's stderr kept in its pool's error (default 20). */
  stderrLines?: number;
  /** How much of each worker's output is kept on disk (default DEFAULT_LOG_BOUND: 10 MiB, 3 rotated files). */
  logBound?: LogBound;
  /**
   * Asked about each new worker of a reload once it is ready, before it joins
   * the membership: true lets it in, anything else (false, a throw) aborts the
   * reload and the old workers keep serving. The stack passes one that GETs
   * the app's health path on the worker's own address. It has the worker's
   * readyTimeoutMs (counted from the launch) to answer.
   */
  healthGate?: HealthGate;
}

export type HealthGate = (app: string, endpoint: WorkerEndpoint) => Promise<boolean>;

/** Where a worker listens: the worker contract's address type (contract/address.ts). */
export type WorkerAddress = ListenAddress;

/** A worker that is ready to take traffic: what the proxy balances over. */
/** A worker found running at start, left by a stack process that died, that this stack takes over as it is. */
export interface Adoptee {
  slot: number;
  pid: number;
  /** Its generation's pm2 pm_uptime: its exit events carry it. */
  startedAt: number;
  address: WorkerAddress;
}

export interface WorkerEndpoint {
  readonly slot: number;
  readonly pid: number;
  readonly address: WorkerAddress;
}

export type MembershipListener = (app: string, ready: readonly WorkerEndpoint[]) => void;

/**
 * A slot's state as the supervisor sees it:
 * starting (launched, not ready yet) → ready (takes traffic) → down (exited;
 * pm2 restarts it after its back-off) → starting …; stopping / stopped when we
 * stop it; errored when its pool halted. During a reload the new worker is
 * starting until it is ready and through the health gate, and the old one it
 * replaces is stopping while it drains.
 */
export type SlotState = "starting" | "ready" | "down" | "stopping" | "stopped" | "errored";

/** starting: some worker not yet settled; running: all ready; degraded: some not ready; errored: halted. */
export type PoolState = "starting" | "running" | "degraded" | "errored" | "stopping" | "stopped";

export type PoolErrorReason = HaltReason | "launch-failed";

/** Why a pool halted: data, never a thrown string. */
export interface PoolError {
  reason: PoolErrorReason;
  /** One line for people, e.g. `worker 0 exited with code 4 (APP_LOAD_ERROR): …`. */
  message: string;
  /** The same line without the worker's own stderr line: for output that has shown that stderr already. */
  summary: string;
  slot: number;
  exitCode?: number;
  /** The signal that killed the failing worker, when one did. */
  signal?: string;
  /** The last lines of the failing worker's stderr log. */
  stderr: string[];
}

export interface PoolReport {
  app: string;
  state: PoolState;
  instances: number;
  ready: number;
  error?: PoolError;
}

/**
 * What one app's reload did (issue #5): every live worker replaced by a new
 * one, new ready (and through the health gate) before old leaves — or the
 * first new worker that failed, with its own stderr, the old workers it would
 * have replaced still serving.
 */
export interface ReloadReport {
  app: string;
  /** True when every worker of the pass was replaced. */
  ok: boolean;
  /** Old workers replaced by new ones before the pass ended (they stay, even when a later one failed). */
  replaced: number;
  error?: ReloadError;
  /** How long the pass took, from its start to its last swap or its failure (queued time not counted). */
  ms: number;
}

export interface ReloadError {
  /** One line for people, e.g. `new worker 2 exited with code 4 (APP_LOAD_ERROR) before it was ready: tsgi-stack: cannot load app …`. */
  message: string;
  /** The last lines the failed worker itself wrote to stderr (not its slot's earlier generations). */
  stderr: string[];
  /** The new worker's slot; absent when no worker failed (stop() or remove() cut the reload short). */
  slot?: number;
}

/** One row of `tsgi-stack status`. */
export interface StatusRow {
  app: string;
  slot: number;
  /** The pm2 process name. */
  name: string;
  pid: number;
  /** Our slot state when this supervisor runs the pool; pm2's status for a stack started by another process. */
  state: SlotState | string;
  /** ms since the worker started; 0 when it is not running. */
  uptime: number;
  restarts: number;
  /** RSS in bytes. */
  memory: number;
  /** CPU percent. */
  cpu: number;
  address: WorkerAddress | null;
  /** The last thing that went wrong with this slot, if anything. */
  lastError?: string;
}

export type SupervisorEvent =
  | { type: "worker-ready"; app: string; slot: number; pid: number; address: WorkerAddress }
  /** A worker left running by a stack process that died, taken over instead of replaced (it is "ready" once its socket accepts). */
  | { type: "worker-adopted"; app: string; slot: number; pid: number }
  /** `signal`: it was killed by that signal (then exitCode is pm2's 0, or a shell's 128 + n). */
  | { type: "worker-exit"; app: string; slot: number; exitCode: number; uptimeMs: number; signal?: string }
  | { type: "worker-not-ready"; app: string; slot: number; afterMs: number }
  /** A ready worker's unix socket file was removed: it is restarted to bind a new one. */
  | { type: "worker-socket-lost"; app: string; slot: number; pid: number; path: string }
  /** A ready worker's heartbeat went silent for a few beats (stopped, or stuck): out of the membership until it beats again. */
  | { type: "worker-unresponsive"; app: string; slot: number; pid: number; silentMs: number }
  /** …and it beats again: back in the membership. */
  | { type: "worker-responsive"; app: string; slot: number; pid: number }
  /** A worker's heartbeat went stale (its event loop is blocked): SIGKILLed for pm2 to replace (supervisor/heartbeats.ts). */
  | { type: "worker-blocked"; app: string; slot: number; pid: number; silentMs: number; timeoutMs: number }
  | { type: "pool-errored"; app: string; error: PoolError }
  | { type: "pool-stopped"; app: string }
  /** A reload pass began: `workers` old workers are to be replaced, one at a time. */
  | { type: "reload-started"; app: string; workers: number }
  | { type: "reload-done"; app: string; report: ReloadReport }
  /** A new worker failed: the pass stopped, the old workers it did not reach keep serving. */
  | { type: "reload-failed"; app: string; report: ReloadReport }
  /**
   * A worker that should be running is not, and pm2 will not start it (it cannot open the worker's log files on a
   * read-only or full disk, say): `reason` says why; the supervisor starts it again itself in `retryInMs`.
   */
  | { type: "worker-not-restarted"; app: string; slot: number; reason: string; retryInMs: number }
  | { type: "supervisor-error"; message: string };

export type SupervisorListener = (event: SupervisorEvent) => void;

/** A worker's output, line by line, for `up` and `logs -f`. */
export type LogListener = (line: RelayedLine) => void;
