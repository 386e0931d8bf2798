/**
 * @module gateway/worker
 *
 * One gateway worker: a process that serves one TSGI app over HTTP and/or
 * uwsgi — Gunicorn's worker, uWSGI's worker. The contract with whatever runs
 * it (our arbiter, pm2, a container runtime); its exit codes, messages,
 * heartbeat file and stop escalation are defined in src/contract/:
 *
 * - boot: load the app, bind every listener, then tell the parent
 *   `process.send("ready")` (what pm2's wait_ready waits for) and
 *   `{ type: "tsgi:ready", data: { pid, listeners } }` with the bound
 *   addresses (port 0 becomes a real port). A stdout line says the same.
 * - boot failures exit with a code the supervisor must not restart on:
 *   APP_LOAD_ERROR (the module) or BOOT_ERROR (the address), one line on stderr.
 * - SIGTERM, SIGINT or the message "shutdown": graceful stop — stop accepting,
 *   answer in-flight requests with `Connection: close`, wait for them up to
 *   the graceful timeout, then drop what is left and exit 0. A second signal
 *   exits at once.
 * - recycling: after --max-requests (plus up to --max-requests-jitter, so a
 *   pool does not recycle all at once) the worker stops gracefully, exit 0.
 * - --timeout: a request running longer is dropped and the worker stops
 *   gracefully with exit code TIMEOUT; if the event loop itself is blocked,
 *   the watchdog thread SIGKILLs the process (see watchdog.ts) — or, with
 *   --heartbeat-file, the supervisor does, seeing the file go stale
 *   (heartbeat.ts).
 * - upgrades (WebSocket, HTTP listeners only): the handshake is a request
 *   (it counts toward --max-requests; --timeout applies while the app's
 *   upgrade handler is at it); the upgraded connection is not, so --timeout
 *   never cuts it, but graceful stop waits for it too and destroys it at the
 *   graceful timeout.
 */
import { fileURLToPath } from "node:url";
import type { Server } from "node:net";

/** What the worker needs of a listener to stop it: http.Server and UwsgiServer both have these. */
interface Listener extends Server {
  closeIdleConnections(): unknown;
  closeAllConnections(): unknown;
}
import type { ErrorStream, TsgiApp } from "../tsgi/types.ts";
import { AppLoadError, loadApp, type LoadedApp } from "./load-app.ts";
import type { InterfaceChoice } from "../contract/module-spec.ts";
import { ExitCode, type ExitCodeValue } from "../contract/exit-codes.ts";
import { READY_SIGNAL, readyMessage, retiringMessage, SHUTDOWN_MESSAGE } from "../contract/messages.ts";
import { beatPeriodMs } from "../contract/heartbeat.ts";
import type { WorkerSettingValues } from "../contract/worker-settings.ts";
import { InFlight } from "./in-flight.ts";
import { createHttpServer, UpgradedConnections } from "./http/server.ts";
import { createUwsgiServer } from "./uwsgi/server.ts";
import { formatAddress, type ListenAddress } from "../contract/address.ts";
import { listen, removeStaleSocket } from "./address.ts";
import { startWatchdog, type Watchdog } from "./watchdog.ts";
import { startHeartbeat } from "./heartbeat.ts";

/** The options a worker runs with; its settings (maxRequests, timeoutMs, …) are the rows of contract/worker-settings.ts. */
export interface WorkerOptions extends WorkerSettingValues {
  /** `path/to/module.ts[:export]` */
  app: string;
  cwd?: string;
  interface: InterfaceChoice;
  /** HTTP listeners (TCP or unix socket). */
  http: ListenAddress[];
  /** uwsgi-protocol listeners, for nginx's uwsgi_pass. */
  uwsgi: ListenAddress[];
  /** Peer IPs allowed on the uwsgi listeners ("*": any); default loopback only. */
  uwsgiAllowIps?: string[];
  /** The mount point (SCRIPT_NAME) the app is served under. */
  scriptName?: string;
  /** Take SCRIPT_NAME from this HTTP request header (set by our proxy; only for workers only it can reach). */
  scriptNameHeader?: string;
  /** Let TRACE reach the app (`--allow-trace`); the listener answers it 405 otherwise. */
  allowTrace?: boolean;
  /** True when this worker is one of several serving the app (sets tsgi.multiprocess). */
  multiprocess: boolean;
  /** Let the runtime own the listening sockets (cluster workers: the arbiter holds them). */
  sharedListeners?: boolean;
  /**
   * Touch this file every beat instead of running the watchdog thread: the
   * supervisor that passes it kills the worker when the file goes stale
   * (gateway/heartbeat.ts). Only with a timeout.
   */
  heartbeatFile?: string;
}

/** How long a retiring worker waits for the arbiter to replace it before it stops anyway. */
const RETIRE_WAIT_MS = 10_000;

const prefix = `tsgi worker ${process.pid}:`;
const info = (message: string) => process.stdout.write(`${prefix} ${message}\n`);
const warn = (message: string) => process.stderr.write(`${prefix} ${message}\n`);
const errorStream: ErrorStream = { write: (message) => void process.stderr.write(message) };

/** Sends a message to the parent process, if there is one listening (pm2, the arbiter). */
function tellParent(message: unknown): void {
  if (process.send && process.connected) process.send(message);
}

/** Our own code (dist/ or src/ of this package), as stack frames name it: a path, or a file: URL. */
const OWN_CODE = [fileURLToPath(new URL("..", import.meta.url)), new URL("..", import.meta.url).href];

/**
 * A failed import's stack, as the app's author needs it: the error's own
 * lines and the frames in the app's code — not node's internals, not
 * node_modules (tsx, esbuild: the "bundler" frames), not the worker's own.
 */
export function appStack(stack: string): string {
  const frame = /^\s+at /;
  return stack
    .split("\n")
    .filter((line) => !frame.test(line) || !(line.includes("node:internal") || line.includes("/node_modules/") || OWN_CODE.some((dir) => line.includes(dir))))
    .join("\n")
    .trimEnd();
}

async function load(options: WorkerOptions): Promise<LoadedApp> {
  try {
    const loaded = await loadApp(options.app, { cwd: options.cwd, interface: options.interface });
    const upgrade = loaded.upgradeName ? `, upgrade handler "${loaded.upgradeName}"` : "";
    info(`loaded ${options.app} (${loaded.interface} interface, export "${loaded.exportName}"${upgrade})`);
    if (loaded.upgrade && options.http.length === 0) warn("the upgrade handler is not used: only HTTP listeners take upgrades, not uwsgi");
    return loaded;
  } catch (error) {
    if (!(error instanceof AppLoadError)) throw error;
    process.stderr.write(`tsgi-stack: ${error.message}\n`);
    const detail = error.detail && appStack(error.detail);
    if (detail) process.stderr.write(`${detail.replace(/^/gm, "    ")}\n`);
    process.exit(ExitCode.APP_LOAD_ERROR);
  }
}

class GatewayWorker {
  private readonly inFlight = new InFlight();
  /** WebSockets and other upgraded connections: not requests, but graceful stop waits for them. */
  private readonly upgraded = new UpgradedConnections();
  private readonly servers: Listener[] = [];
  private readonly recycleAfter: number;
  private stopping = false;
  private leaving = false;
  /** The exit code a later graceful stop reports: TIMEOUT stays TIMEOUT even when the arbiter's SIGTERM ends it. */
  private exitCode: ExitCodeValue = ExitCode.OK;
  private watchdog: Watchdog | undefined;
  private timeoutTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly loaded: LoadedApp,
    private readonly options: WorkerOptions,
  ) {
    this.recycleAfter =
      options.maxRequests > 0 ? options.maxRequests + Math.floor(Math.random() * (options.maxRequestsJitter + 1)) : 0;
  }

  /**
   * Recycling starts when the last allowed request *arrives*, not after it is
   * answered: its response then carries `Connection: close`, so a client
   * never sends another request on a connection the worker is about to close.
   */
  private readonly onRequestStart = (): void => {
    if (this.recycleAfter > 0 && this.inFlight.handled >= this.recycleAfter && !this.leaving) {
      info(`served ${this.inFlight.handled} requests (max-requests ${this.options.maxRequests}): recycling`);
      this.leave(ExitCode.OK);
    }
  };

  /**
   * Leaves to be replaced. Under the arbiter the worker first says
   * "tsgi:retiring" and keeps serving — every response now closing its
   * connection — until the arbiter, its replacement ready, sends SIGTERM
   * (a one-worker pool never drops its shared socket). Elsewhere (pm2, a
   * container) it stops now, and its supervisor replaces it.
   */
  private leave(code: ExitCodeValue): void {
    if (this.leaving) return;
    this.leaving = true;
    this.exitCode = code;
    if (!this.options.sharedListeners) {
      void this.stop(code);
      return;
    }
    this.inFlight.closeConnections();
    tellParent(retiringMessage(process.pid, code));
    setTimeout(() => void this.stop(code), RETIRE_WAIT_MS).unref();
  }

  async start(): Promise<void> {
    const { options } = this;
    const bound: string[] = [];
    const common = { errors: errorStream, inFlight: this.inFlight, multiprocess: options.multiprocess };
    this.inFlight.onBegin = this.onRequestStart;
    const plan: Array<{ server: Listener; address: ListenAddress; scheme: string }> = [
      ...options.http.map((address) => ({
        server: createHttpServer(this.loaded.app, {
          ...common,
          scriptName: options.scriptName,
          scriptNameHeader: options.scriptNameHeader,
          allowTrace: options.allowTrace,
          keepAliveTimeout: options.keepAliveTimeoutMs,
          upgrade: this.loaded.upgrade,
          upgraded: this.upgraded,
        }),
        address,
        scheme: "http",
      })),
      ...options.uwsgi.map((address) => ({
        server: createUwsgiServer(this.loaded.app, { ...common, scriptName: options.scriptName, allowedPeers: options.uwsgiAllowIps }),
        address,
        scheme: "uwsgi",
      })),
    ];
    for (const { server, address, scheme } of plan) {
      try {
        if (address.kind === "unix" && !options.sharedListeners) await removeStaleSocket(address.path);
        const actual = await listen(server, address);
        this.servers.push(server);
        bound.push(formatAddress(actual, scheme));
      } catch (error) {
        process.stderr.write(`tsgi-stack: cannot listen on ${formatAddress(address, scheme)}: ${(error as Error).message}\n`);
        process.exit(ExitCode.BOOT_ERROR);
      }
    }
    this.installSignals();
    this.startTimeouts();
    info(`ready: ${bound.join(", ")}`);
    tellParent(READY_SIGNAL);
    tellParent(readyMessage(process.pid, bound));
  }

  private installSignals(): void {
    const onSignal = (signal: string) => {
      if (this.stopping) {
        warn(`${signal} again: exiting now`);
        process.exit(ExitCode.OK);
      }
      info(`${signal}: graceful stop (${this.inFlight.size} in flight, ${this.upgraded.size} upgraded)`);
      void this.stop(this.exitCode);
    };
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
    // pm2 can ask for a stop by message (shutdown_with_message), e.g. where signals are not delivered.
    process.on("message", (message) => message === SHUTDOWN_MESSAGE && onSignal("shutdown message"));
  }

  private startTimeouts(): void {
    const timeoutMs = this.options.timeoutMs;
    if (timeoutMs <= 0) return;
    // A blocked event loop is caught from outside: by the supervisor watching our heartbeat file, else by our own thread.
    this.watchdog = this.options.heartbeatFile ? startHeartbeat(this.options.heartbeatFile, timeoutMs) : startWatchdog(timeoutMs);
    const period = beatPeriodMs(timeoutMs);
    this.timeoutTimer = setInterval(() => {
      const late = this.inFlight.olderThan(timeoutMs);
      if (late.length === 0) return;
      for (const request of late) {
        warn(`request ${request.method} ${request.target} ran past the ${timeoutMs} ms timeout: dropping it; the worker leaves for replacement`);
        request.abort();
      }
      this.leave(ExitCode.TIMEOUT);
    }, period);
    this.timeoutTimer.unref();
  }

  /** Stops accepting, drains in-flight requests and upgraded connections within the graceful timeout, exits with `code`. */
  async stop(code: ExitCodeValue): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    // close() stops accepting and calls back once every connection has ended: in-flight
    // requests finish, idle keep-alive connections are closed as they fall idle. Upgraded
    // connections (WebSockets) end when the app or its client closes them: they are the app's
    // protocol, so the worker cannot ask them to (an app that wants to says goodbye on SIGTERM).
    const closed = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const server of this.servers) server.closeIdleConnections();
    const deadline = new Promise<"deadline">((resolve) =>
      setTimeout(() => resolve("deadline"), this.options.gracefulTimeoutMs).unref(),
    );
    const result = await Promise.race([Promise.all([this.inFlight.drain(), this.upgraded.whenEmpty(), ...closed]), deadline]);
    if (result === "deadline") {
      warn(
        `graceful timeout (${this.options.gracefulTimeoutMs} ms) passed with ${this.inFlight.size} in flight and ` +
          `${this.upgraded.size} upgraded connection(s): dropping them`,
      );
      this.inFlight.abortAll();
      this.upgraded.destroyAll();
      for (const server of this.servers) server.closeAllConnections();
    }
    this.watchdog?.stop();
    if (this.timeoutTimer) clearInterval(this.timeoutTimer);
    info(`stopped (exit ${code})`);
    process.exit(code);
  }
}

/** Boots a worker in this process. Exits the process on boot failure. */
export async function runWorker(options: WorkerOptions): Promise<void> {
  const loaded = await load(options);
  await new GatewayWorker(loaded, options).start();
}
