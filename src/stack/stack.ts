/**
 * @module stack/stack
 *
 * One running stack: the validated config wired to a supervisor (the worker
 * pools, over pm2) and a front proxy (routing and balancing), joined by the
 * one seam the design allows — the supervisor reports which workers of which
 * app are ready, the stack hands that list to the proxy. Neither side knows
 * the other. The control API (stack/control.ts) and the admin listener
 * expose the stack to the CLI and to people.
 *
 * The proxy runs in processes of its own (stack/proxy-fleet.ts): this
 * process binds the listening sockets and hands them over, and sends the
 * proxy processes the membership and each config change. So the proxy's
 * event loop carries only traffic, and this one the supervisor, pm2's bus,
 * the control API and the admin listener.
 *
 * A `static` app is the proxy's alone: its folder goes to the FrontProxy
 * (`staticRoots`), and the supervisor never hears of it — no pm2 process, no
 * pool, nothing to restart or scale. `status` lists it with its folder.
 *
 * Start order is chosen so that a failure leaves nothing behind: the
 * listeners are bound first (a port in use fails before any worker starts),
 * then the proxy processes and the pools start; `stop()` undoes whatever part
 * did start.
 */
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import path from "node:path";
import http from "node:http";
import type { StackConfig } from "../config/schema.ts";
import { loadConfig } from "../config/load.ts";
import { describeDiff, diffConfig, isEmptyDiff } from "../config/diff.ts";
import { CertificateError, loadCertificate } from "../proxy/tls-reload.ts";
import { listen } from "../gateway/address.ts";
import { probe as probeHealth } from "../proxy/health/active.ts";
import { Supervisor } from "../supervisor/supervisor.ts";
import type { LogListener, PoolReport, PoolSpec, ReloadReport, StatusRow, SupervisorEvent, WorkerEndpoint } from "../supervisor/types.ts";
import { ControlError, type ControlTarget, controlSocketPath, startControlServer } from "./control.ts";
import { codeFrame, firstSourceLocation } from "./code-frame.ts";
import { CodeWatcher, type WatchedApp } from "./watch.ts";
import { ProxyFleet, type ProxyProcessStatus } from "./proxy-fleet.ts";
import { adminHandler } from "./admin.ts";
import { poolSpecFor, workerApps } from "./plan.ts";
import { appKind, healthChecksFor, proxySettings, staticRootsFor } from "./proxy-settings.ts";

export interface StackOptions {
  /** The config file's absolute path: names the stack. */
  configFile: string;
  config: StackConfig;
  /** Lines for the terminal (the CLI prints them). */
  say?: (line: string) => void;
  onLog?: LogListener;
  onEvent?: (event: SupervisorEvent) => void;
  /** `up --watch`: each app's `watch` globs reload its workers on change. */
  watch?: boolean;
}

/** What a reload did: for the terminal, the control API and `tsgi-stack reload`. */
export interface ReloadOutcome {
  /** The config file: read and unchanged, its differences applied, or invalid (the running config stays). */
  config: "unchanged" | "applied" | "invalid";
  /** One line per change applied. */
  changes: string[];
  /** `file:line:column key: message` for each error of an invalid file. */
  configErrors: string[];
  /** Each app rolled onto new workers, and how that went. */
  reloads: ReloadReport[];
}

/** A reload that failed, kept until the next good one: `status` shows it. */
export interface FailedReload {
  message: string;
  /** The failing line of the app's source, with its neighbours, when the error points at one. */
  frame?: string;
  at: string;
}

/** One app of the config, as `status` lists it: what it is and where it is routed. */
export interface AppStatus {
  app: string;
  /** module / command: served by workers (see `pools` and `workers`); static: files the proxy serves itself. */
  kind: "module" | "command" | "static";
  /** The routes, as `host/path` (`*` for any host). */
  routes: string[];
  /** The folder a static app serves (absolute). */
  folder?: string;
}

/** What `status` shows: plain data, rendered by the CLI or the admin page. */
export interface StackStatus {
  /** starting: pools still coming up; running: started; stopping: on the way down. */
  state: "starting" | "running" | "stopping";
  pid: number;
  configFile: string;
  stackId: string;
  listen: string[];
  /** The HTTPS listeners (proxy.tls.listen), when there are any. */
  listenTls: string[];
  admin: string;
  /** Every app of the config, static ones included (they have no pool and no workers). */
  apps: AppStatus[];
  /** Apps whose last reload failed (their previous workers still serve), until a reload succeeds. */
  reloadErrors: Record<string, FailedReload>;
  /** The errors of a config file that was changed but not applied. */
  configErrors: string[];
  pools: PoolReport[];
  workers: StatusRow[];
  /** The proxy processes (`proxy.workers`). */
  proxies: ProxyProcessStatus[];
}

/** `tsgi:<name>-<hash>`: readable in `pm2 ls`, unique per config file path. */
/** Between two health checks of a reload's new worker. */
const HEALTH_GATE_RETRY_MS = 250;
/** The longest `up` waits for its pools to settle, whatever their restart policies say. */
const MAX_START_WAIT_MS = 120_000;

export function stackIdFor(configFile: string): string {
  const name = path.basename(configFile).replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_.-]/g, "_");
  const hash = createHash("sha1").update(path.resolve(configFile)).digest("hex").slice(0, 8);
  return `${name}-${hash}`;
}

/** Each app's `watch` globs, for `up --watch`. */
export function watchedApps(config: StackConfig): WatchedApp[] {
  return workerApps(config).map(([name, app]) => ({ app: name, globs: app.watch }));
}

/** Why `start` failed: one line per app that could not start, and their reports (with the workers' stderr). */
export class StackStartError extends Error {
  constructor(
    lines: string[],
    readonly reports: PoolReport[],
  ) {
    super(lines.join("\n"));
    this.name = "StackStartError";
  }
}

/** The certificate and key, read now and checked: a bad file is named (with its key) before anything listens. */
function checkTlsCredentials(files: { cert: string; key: string }): void {
  try {
    loadCertificate(files);
  } catch (error) {
    const key = error instanceof CertificateError && error.file !== files.cert ? "key" : "cert";
    throw new Error(`proxy.tls.${key}: ${(error as Error).message}`);
  }
}

function formatListen(address: { host: string; port: number }): string {
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}

/** The gateway's listen(), with the error naming the config's address; resolves with the address bound (port 0 made real). */
async function listenOn(server: http.Server, address: { host: string; port: number }): Promise<string> {
  try {
    const bound = await listen(server, { kind: "tcp", ...address });
    return bound.kind === "tcp" ? formatListen(bound) : formatListen(address);
  } catch (error) {
    throw new Error(`cannot listen on ${formatListen(address)}: ${(error as Error).message}`);
  }
}

export class Stack implements ControlTarget {
  readonly stackId: string;
  readonly stateDir: string;
  private readonly supervisor: Supervisor;
  private readonly proxies: ProxyFleet;
  /** The config now in force: the one `up` started with, then each valid one a reload applied. */
  private config: StackConfig;
  /** The reload under way, if any: reloads are queued behind it. */
  private reloading: Promise<unknown> = Promise.resolve();
  private readonly reloadErrors = new Map<string, FailedReload>();
  /** Per app, the `--watch` reload waiting for its turn (see reloadApp). */
  private readonly queuedReloads = new Map<string, Promise<ReloadReport>>();
  private configErrors: string[] = [];
  private codeWatcher: CodeWatcher | undefined;
  private configWatcher: CodeWatcher | undefined;
  /** The addresses actually bound (port 0 in the config becomes a real port). */
  private listening: string[] = [];
  private listeningTls: string[] = [];
  private adminAddress = "";
  private adminServer: http.Server | undefined;
  private controlServer: http.Server | undefined;
  private stopping: Promise<void> | undefined;
  private started = false;
  /** Resolves once the stack has stopped (after `down`, a signal, or a failed start). */
  readonly stopped: Promise<void>;
  private markStopped!: () => void;

  constructor(private readonly options: StackOptions) {
    const { config, configFile } = options;
    this.stackId = stackIdFor(configFile);
    this.stateDir = config.state_dir;
    this.stopped = new Promise((resolve) => (this.markStopped = resolve));
    this.supervisor = new Supervisor({ stackId: this.stackId, stateDir: this.stateDir, healthGate: (app, worker) => this.passesHealth(app, worker) });
    this.config = config;
    this.proxies = new ProxyFleet((line) => this.say(line));
    this.supervisor.onMembership((app: string, ready: readonly WorkerEndpoint[]) =>
      this.proxies.setEndpoints(
        app,
        ready.map((worker) => ({ id: `${app}.${worker.slot}`, pid: worker.pid, address: worker.address })),
      ),
    );
    if (options.onEvent) this.supervisor.onEvent(options.onEvent);
    if (options.onLog) this.supervisor.onLog(options.onLog);
  }

  private get say(): (line: string) => void {
    return this.options.say ?? (() => undefined);
  }

  /** Binds the listeners, starts every pool, opens the control socket. Throws (after cleaning up) on failure. */
  async start(): Promise<PoolReport[]> {
    mkdirSync(this.stateDir, { recursive: true });
    const { proxy } = this.config;
    try {
      this.listening = await this.proxies.bind(proxy.listen, false);
      if (proxy.tls) {
        checkTlsCredentials({ cert: proxy.tls.cert, key: proxy.tls.key });
        this.listeningTls = await this.proxies.bind(proxy.tls.listen, true);
      }
      // The proxy processes boot while the pools start: each waits for nothing but its own readiness.
      const proxiesReady = this.proxies.start(proxySettings(this.config), proxy.workers);
      proxiesReady.catch(() => undefined); // awaited below; a failure before then is not unhandled
      this.adminServer = http.createServer(adminHandler(() => this.status()));
      this.adminAddress = await listenOn(this.adminServer, proxy.admin);
      this.controlServer = await startControlServer(controlSocketPath(this.stateDir), this);
      const specs = workerApps(this.config).map(([name, app]) => poolSpecFor(name, app));
      // Only static apps: nothing for pm2 to run, so no daemon is started for nothing.
      if (specs.length > 0) await this.supervisor.start(specs);
      const reports = specs.length > 0 ? await this.settled(specs) : [];
      await proxiesReady;
      // At start, an app that cannot run is a bad deploy: report it and leave nothing running.
      const failed = reports.filter((report) => report.error);
      if (failed.length > 0) {
        throw new StackStartError(failed.map((report) => `app "${report.app}" did not start: ${report.error!.message}`), failed);
      }
      await this.watchFiles();
      this.started = true;
      return reports;
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /**
   * Waits until every pool is either fully ready or errored: a worker that
   * crashes at boot is restarted with back-off until its pool's crash limit,
   * and only then is the start a failure. Bounded by each pool's worst case.
   */
  private async settled(specs: readonly PoolSpec[]): Promise<PoolReport[]> {
    const worstCase = Math.max(
      ...specs.map((spec) => (spec.readyTimeoutMs + spec.restart.backoffMs * 2 ** Math.min(spec.restart.maxRestarts, 7)) * (spec.restart.maxRestarts + 1)),
    );
    const deadline = Date.now() + Math.min(worstCase, MAX_START_WAIT_MS);
    for (;;) {
      const reports = this.supervisor.pools();
      const done = reports.every((report) => report.error !== undefined || report.ready >= report.instances);
      if (done || Date.now() > deadline) return reports;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  status(): StackStatus {
    return {
      state: this.stopping ? "stopping" : this.started ? "running" : "starting",
      pid: process.pid,
      configFile: this.options.configFile,
      stackId: this.stackId,
      listen: this.listening,
      listenTls: this.listeningTls,
      admin: this.adminAddress,
      apps: this.appStatus(),
      reloadErrors: Object.fromEntries(this.reloadErrors),
      configErrors: this.configErrors,
      pools: this.supervisor.pools(),
      workers: this.supervisor.status(),
      proxies: this.proxies.status(),
    };
  }

  private appStatus(): AppStatus[] {
    const roots = staticRootsFor(this.config);
    return Object.entries(this.config.apps).map(([name, app]) => ({
      app: name,
      kind: appKind(app),
      routes: app.routes.map((route) => `${route.host ?? "*"}${route.path}`),
      ...(roots[name] === undefined ? {} : { folder: roots[name] }),
    }));
  }

  /** An app of the config that has workers: a static app is refused by name, for `restart` and `scale`. */
  private requireWorkerApp(app: string, verb: string): void {
    const config = this.config.apps[app];
    if (!config) {
      throw new ControlError(`no app named "${app}" (apps: ${Object.keys(this.config.apps).join(", ")})`);
    }
    if (appKind(config) === "static") {
      throw new ControlError(`cannot ${verb} "${app}": it is a static app, served by the proxy itself, with no workers`);
    }
  }

  /** Restarts one app's workers, or every worker app's (static apps have none: they are left out). */
  async restart(app?: string): Promise<string[]> {
    const apps = app === undefined ? workerApps(this.config).map(([name]) => name) : [app];
    for (const name of apps) this.requireWorkerApp(name, "restart");
    for (const name of apps) await this.supervisor.restart(name);
    return apps;
  }

  async scale(app: string, instances: number): Promise<void> {
    this.requireWorkerApp(app, "scale");
    await this.supervisor.scale(app, instances);
  }

  /**
   * `tsgi-stack reload [APP]` and SIGHUP: the config file is read again and
   * its differences applied (an invalid file changes nothing: the reload
   * stops there), then the app — or every worker app — is rolled onto new
   * workers, one slot at a time, new ready before old goes. Reloads run one
   * after another, never interleaved.
   */
  reload(app?: string): Promise<ReloadOutcome> {
    if (app !== undefined) this.requireWorkerApp(app, "reload");
    return this.serialize(async () => {
      const outcome = await this.applyConfigFile();
      if (outcome.config === "invalid") return outcome;
      const apps = app === undefined ? workerApps(this.config).map(([name]) => name) : [app];
      for (const name of apps) {
        if (outcome.rolled.includes(name) || !this.config.apps[name]) continue;
        outcome.reloads.push(await this.rollApp(name));
      }
      return outcome;
    });
  }

  /** The config file changed on disk: its differences are applied, nothing else is reloaded. */
  reloadConfig(): Promise<ReloadOutcome> {
    return this.serialize(() => this.applyConfigFile());
  }

  /**
   * One app's code changed (`up --watch`): its workers are rolled. Saves that
   * come while a reload of the app waits its turn join that one: however many
   * saves, at most one reload runs and one waits.
   */
  reloadApp(app: string): Promise<ReloadReport> {
    const queued = this.queuedReloads.get(app);
    if (queued) return queued;
    const reload = this.serialize(() => {
      this.queuedReloads.delete(app);
      return this.rollApp(app);
    });
    this.queuedReloads.set(app, reload);
    return reload;
  }

  private serialize<T>(work: () => Promise<T>): Promise<T> {
    const run = this.reloading.then(work);
    this.reloading = run.catch(() => undefined);
    return run;
  }

  /**
   * A reload's new worker joins the pool only if it passes its app's health
   * check (when the app has one): a new version that starts but answers 500
   * is not a good deploy either. Tried a few times within the ready timeout.
   */
  private async passesHealth(app: string, worker: WorkerEndpoint): Promise<boolean> {
    const spec = healthChecksFor(this.config)[app];
    if (!spec) return true;
    const deadline = Date.now() + (this.config.apps[app]?.ready_timeout ?? 10_000);
    const endpoint = { id: `${app}.${worker.slot}`, pid: worker.pid, address: worker.address };
    for (;;) {
      const failure = await probeHealth(endpoint, spec, "localhost");
      if (failure === undefined) return true;
      if (Date.now() + HEALTH_GATE_RETRY_MS > deadline) {
        this.say(`${endpoint.id} (new) failed its health check: ${failure}`);
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, HEALTH_GATE_RETRY_MS));
    }
  }

  /**
   * The config file is always watched: a saved change is applied like
   * `reload` applies it (an invalid one is reported and ignored). With
   * `up --watch`, each app's `watch` globs roll that app's workers.
   */
  private async watchFiles(): Promise<void> {
    const configFile = this.options.configFile;
    this.configWatcher = new CodeWatcher([{ app: "", globs: [configFile] }], {
      ignore: [],
      debounceMs: 300,
      onChange: () => void this.reloadConfig(),
      onError: (error) => this.say(`watching ${configFile}: ${error.message}`),
    });
    const waits = [this.configWatcher.whenReady()];
    if (this.options.watch) {
      this.codeWatcher = new CodeWatcher(watchedApps(this.config), {
        ignore: [this.stateDir],
        onChange: (app, files) => {
          const shown = files.map((file) => path.relative(path.dirname(configFile), file)).slice(0, 3).join(", ");
          this.say(`${app}: ${shown}${files.length > 3 ? ` and ${files.length - 3} more` : ""} changed: reloading`);
          void this.reloadApp(app);
        },
        onError: (error) => this.say(`watch: ${error.message}`),
      });
      waits.push(this.codeWatcher.whenReady());
    }
    await Promise.all(waits);
  }

  /** Rolls one app onto new workers and keeps (or clears) what went wrong, for the terminal and `status`. */
  private async rollApp(app: string): Promise<ReloadReport> {
    if (!this.config.apps[app]) return { app, ok: true, replaced: 0, ms: 0 }; // removed by a config reload meanwhile
    const [report] = await this.supervisor.reload(app);
    this.noteReload(report!);
    return report!;
  }

  private noteReload(report: ReloadReport): void {
    if (report.ok) {
      if (this.reloadErrors.delete(report.app)) this.say(`${report.app}: fixed, serving the new code`);
      this.say(`${report.app}: reloaded ${report.replaced} worker${report.replaced === 1 ? "" : "s"} in ${report.ms} ms`);
      return;
    }
    const stderr = report.error?.stderr ?? [];
    const location = firstSourceLocation(stderr);
    const frame = location ? codeFrame(location) : undefined;
    const message = report.error?.message ?? "the new workers did not start";
    this.reloadErrors.set(report.app, { message, ...(frame ? { frame } : {}), at: new Date().toISOString() });
    this.say(`${report.app}: reload failed, the running workers keep serving: ${message}`);
    if (frame) this.say(frame);
    else for (const line of stderr.slice(-10)) this.say(`  ${line}`);
  }

  /** Reads the config file again; a valid one's differences are applied, an invalid one is reported and ignored. */
  private async applyConfigFile(): Promise<ReloadOutcome & { rolled: string[] }> {
    const result = loadConfig(this.options.configFile);
    if (!result.ok) {
      const errors = result.errors.map((error) => error.format());
      this.configErrors = errors;
      this.say(`${this.options.configFile}: not applied, the running config stays (${errors.length} error${errors.length === 1 ? "" : "s"}):`);
      for (const line of errors) this.say(`  ${line}`);
      return { config: "invalid", changes: [], configErrors: errors, reloads: [], rolled: [] };
    }
    this.configErrors = [];
    const next = result.config;
    const diff = diffConfig(this.config, next);
    if (isEmptyDiff(diff)) return { config: "unchanged", changes: [], configErrors: [], reloads: [], rolled: [] };
    const changes = describeDiff(diff);
    for (const line of changes) this.say(`config: ${line}`);
    const before = this.config;
    this.config = next;
    // The proxy first: a removed app stops taking requests before its workers go; an added one routes as its workers get ready.
    if (diff.proxyChanged) this.proxies.reconfigure(proxySettings(next), next.proxy.workers);
    const reloads: ReloadReport[] = [];
    for (const app of diff.removed) if (appKind(before.apps[app]!) !== "static") await this.supervisor.remove(app);
    const added = diff.added.filter((app) => appKind(next.apps[app]!) !== "static").map((app) => poolSpecFor(app, next.apps[app]!));
    if (added.length) {
      for (const report of await this.supervisor.start(added)) {
        if (report.error) this.say(`${report.app}: did not start: ${report.error.message}`);
      }
    }
    for (const app of diff.rolled) {
      const report = await this.supervisor.updateSpec(poolSpecFor(app, next.apps[app]!), { roll: true });
      this.noteReload(report);
      reloads.push(report);
    }
    for (const { app, to } of diff.scaled) await this.supervisor.scale(app, to);
    if (diff.watchChanged.length || diff.added.length || diff.removed.length) await this.codeWatcher?.update(watchedApps(next));
    return { config: "applied", changes, configErrors: [], reloads, rolled: diff.rolled };
  }

  async down(): Promise<void> {
    await this.stop();
  }

  /** Stops accepting, stops every pool (workers drain), closes every socket. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.say("stopping: closing listeners, draining workers");
      await this.configWatcher?.close();
      await this.codeWatcher?.close();
      await this.proxies.stop();
      await this.supervisor.stop();
      if (this.adminServer) await closeServer(this.adminServer);
      if (this.controlServer) await closeServer(this.controlServer);
      this.markStopped();
    })();
    return this.stopping;
  }
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
