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
 * What runs comes from a plan (stack/plan.ts), compiled from the config: this
 * module only runs one — start, apply a diff to it (stack/diff.ts; the
 * reloads that produce one are orchestrated in stack/reload.ts), status,
 * stop. Nothing here reads the config itself.
 *
 * Start order is chosen so that a failure leaves nothing behind: the
 * listeners are bound first (a port in use fails before any worker starts),
 * then the proxy processes and the pools start; `stop()` undoes whatever part
 * did start.
 */
import { stackIdFor } from "./stack-id.ts";
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import http from "node:http";
import type { StackConfig } from "../config/schema.ts";
import { CertificateError, loadCertificate } from "../proxy/tls-reload.ts";
import { listen } from "../gateway/address.ts";
import { Supervisor } from "../supervisor/supervisor.ts";
import type { LogListener, PoolReport, PoolSpec, ReloadReport, StatusRow, SupervisorEvent, WorkerEndpoint } from "../supervisor/types.ts";
import { type ObservedStack, type PoolOutcome, StaticAppRefused, startControlServer, UnknownApp } from "./control.ts";
import { CodeWatcher, type WatchedApp } from "./watch.ts";
import { ProxyFleet, type ProxyProcessStatus } from "./proxy-fleet.ts";
import type { LogWriteFailures, StackLogWrites } from "./log-writes.ts";
import { ListenFailed, StackStartError, TlsCredentialsInvalid } from "./errors.ts";
import type { ActivityEntry, OutcomeCount, RecentError, SeriesPoint, StackStatus, WorkerHealth, WorkerStatus } from "./status.ts";
import type { MetricsJson } from "../proxy/stats.ts";
import type { EndpointView } from "../proxy/upstreams.ts";
import type { ErrorEntry } from "../proxy/stats.ts";
import { Recent } from "./recent.ts";
import { type UpstreamApp, UpstreamLinks } from "./upstream-links.ts";
import { statePaths } from "../contract/state-dir.ts";
import { eventWords } from "./event-words.ts";
import { SAMPLE_MS, TrafficSeries } from "./traffic.ts";
import { plan, type StackPlan } from "./plan.ts";
import { appsTo, type PlanDiff } from "./diff.ts";
import { type FailedReload, type PlanRunner, type ReloadOutcome, Reloader, reloadHealthGate } from "./reload.ts";

export type { FailedReload, ReloadOutcome } from "./reload.ts";
export type { AppStatus, StackStatus } from "./status.ts";
/** Moved to stack/errors.ts with the other start failures; still importable from here. */
export { StackStartError } from "./errors.ts";

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
  /** The lines `say` and `onLog` could not write (a full disk under stack.log), for `status`. */
  outputFailures?: () => LogWriteFailures;
  /**
   * `up --no-proxy`: no front proxy, no listeners but the admin one; each
   * app's balanced workers are published as upstream links for nginx, and
   * module workers serve uwsgi beside HTTP (stack/upstream-links.ts).
   */
  noProxy?: boolean;
  /** The admin listener's request handler, made for this stack when it starts (the CLI passes admin/server.ts's; it may throw to refuse the start). */
  admin: (stack: ObservedStack) => http.RequestListener;
}

const STARTED_AT = new Date().toISOString();

/** Entries of recent activity and of recent errors kept for `status` and the page. */
const RECENT_ACTIVITY = 50;
const RECENT_ERRORS = 50;

function recentError(entry: ErrorEntry): RecentError {
  const { at, ...rest } = entry;
  return { at: new Date(at).toISOString(), ...rest };
}

/** The kind of recent activity a supervisor event is, and whether it went well; undefined: not kept. */
const ACTIVITY: Partial<Record<SupervisorEvent["type"], { kind: ActivityEntry["kind"]; ok: boolean }>> = {
  "worker-exit": { kind: "exit", ok: false },
  "worker-blocked": { kind: "exit", ok: false },
  "worker-unresponsive": { kind: "health", ok: false },
  "worker-responsive": { kind: "health", ok: true },
  "reload-done": { kind: "reload", ok: true },
  "reload-failed": { kind: "reload", ok: false },
  "pool-errored": { kind: "halt", ok: false },
};

/** What a supervisor event adds to the recent activity, in the words `up` prints (stack/event-words.ts), if anything. */
function activityOf(event: SupervisorEvent): Omit<ActivityEntry, "at"> | undefined {
  const entry = ACTIVITY[event.type];
  const message = eventWords(event);
  if (!entry || message === undefined || !("app" in event)) return undefined;
  return { app: event.app, ...entry, message };
}

/** The longest `up` waits for its pools to settle, whatever their restart policies say. */
const MAX_START_WAIT_MS = 120_000;

/** A pool's report, as `restart` and `scale` answer it: a restart that stopped short is an error, though the old workers serve on. */
function outcomeOf(report: PoolReport & { failed?: { message: string } }): PoolOutcome {
  const error = report.error?.message ?? (report.failed ? `restart stopped, the running workers keep serving: ${report.failed.message}` : undefined);
  return { app: report.app, ready: report.ready, instances: report.instances, ...(error ? { error } : {}) };
}

/** Each worker app's instances and health check, for the upstream links (`noProxy`). */
function upstreamApps(current: StackPlan): Record<string, UpstreamApp> {
  const health = current.proxy.settings.proxy.healthChecks ?? {};
  return Object.fromEntries(
    Object.values(current.pools).map((pool) => [pool.name, { instances: pool.instances, ...(health[pool.name] ? { health: health[pool.name] } : {}) }]),
  );
}

/** The plan's watched globs, as the file watcher takes them. */
function watchedApps(current: StackPlan): WatchedApp[] {
  return Object.entries(current.watch).map(([app, globs]) => ({ app, globs }));
}

/** The certificate and key, read now and checked: a bad file is named (with its key) before anything listens. */
function checkTlsCredentials(files: { cert: string; key: string }): void {
  try {
    loadCertificate(files);
  } catch (error) {
    const key = error instanceof CertificateError && error.file !== files.cert ? "key" : "cert";
    throw new TlsCredentialsInvalid(`proxy.tls.${key}`, (error as Error).message);
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
    throw new ListenFailed(formatListen(address), (error as Error).message, (error as NodeJS.ErrnoException).code);
  }
}

export class Stack implements ObservedStack, PlanRunner {
  readonly stackId: string;
  readonly stateDir: string;
  private readonly supervisor: Supervisor;
  private readonly proxies: ProxyFleet;
  /** Without the proxy (`noProxy`): the upstream links a front connects to instead. */
  private links: UpstreamLinks | undefined;
  private readonly reloader: Reloader;
  /** The plan in force: the config `up` started with, then each valid one a reload applied. */
  private plan: StackPlan;
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
  /** Each app's ready workers as last handed to the proxy ("slot#pid"): a ready worker not among them is out of balancing. */
  private readonly membership = new Map<string, Set<string>>();
  private readonly traffic = new TrafficSeries();
  private readonly activity = new Recent<ActivityEntry>(RECENT_ACTIVITY);
  private readonly recentErrors = new Recent<RecentError>(RECENT_ERRORS);
  /** Each worker process's health as the last sample saw it ("app.slot#pid"), to note its changes. */
  private healthSeen = new Map<string, WorkerHealth>();
  private sampler: NodeJS.Timeout | undefined;
  /** Reloads, restarts, scales and config changes so far, by kind, app and outcome (for /metrics). */
  private readonly outcomeCounts = new Map<string, OutcomeCount>();
  private readonly sampleListeners = new Set<(point: SeriesPoint) => void>();
  /** Resolves once the stack has stopped (after `down`, a signal, or a failed start). */
  readonly stopped: Promise<void>;
  private markStopped!: () => void;

  constructor(private readonly options: StackOptions) {
    const { config, configFile } = options;
    this.plan = plan(config);
    this.stackId = stackIdFor(configFile);
    this.stateDir = this.plan.fixed.stateDir;
    this.stopped = new Promise((resolve) => (this.markStopped = resolve));
    this.supervisor = new Supervisor({
      stackId: this.stackId,
      stateDir: this.stateDir,
      logBound: this.plan.fixed.logBound,
      uwsgiSockets: options.noProxy === true,
      healthGate: reloadHealthGate(() => this.plan, (line) => this.say(line)),
    });
    this.proxies = new ProxyFleet((line) => this.say(line));
    this.reloader = new Reloader(this, {
      configFile,
      say: (line) => this.say(line),
      onConfig: (ok, message) => this.note({ kind: "config", ok, message: `${path.basename(configFile)}: ${message}` }),
    });
    this.supervisor.onMembership((app: string, ready: readonly WorkerEndpoint[]) => {
      this.membership.set(app, new Set(ready.map((worker) => `${worker.slot}#${worker.pid}`)));
      const endpoints = ready.map((worker) => ({ id: `${app}.${worker.slot}`, pid: worker.pid, address: worker.address }));
      this.proxies.setEndpoints(app, endpoints);
      this.links?.setEndpoints(app, endpoints);
    });
    this.supervisor.onEvent((event) => {
      const entry = activityOf(event);
      if (entry) this.note(entry);
    });
    this.proxies.onReport((report) => this.recentErrors.add(...report.errors.map(recentError)));
    if (options.onEvent) this.supervisor.onEvent(options.onEvent);
    if (options.onLog) this.supervisor.onLog(options.onLog);
  }

  private get say(): (line: string) => void {
    return this.options.say ?? (() => undefined);
  }

  /** The plan in force (for the reloader). */
  get current(): StackPlan {
    return this.plan;
  }

  /** Binds the listeners, starts every pool, opens the control socket. Throws (after cleaning up) on failure. */
  async start(): Promise<PoolReport[]> {
    mkdirSync(this.stateDir, { recursive: true });
    const { fixed, proxy } = this.plan;
    try {
      let proxiesReady = Promise.resolve();
      if (this.options.noProxy) {
        this.links = new UpstreamLinks(statePaths(this.stateDir), ["http", "uwsgi"], (line) => this.say(line));
        this.links.configure(upstreamApps(this.plan));
      } else {
        // Links a stack run without its proxy left: nothing keeps them pointing at a worker now.
        rmSync(statePaths(this.stateDir).upstreams, { recursive: true, force: true });
        this.listening = await this.proxies.bind(fixed.listen, false);
        if (proxy.settings.tls) {
          checkTlsCredentials(proxy.settings.tls);
          this.listeningTls = await this.proxies.bind(fixed.tlsListen, true);
        }
        // The proxy processes boot while the pools start: each waits for nothing but its own readiness.
        proxiesReady = this.proxies.start(proxy.settings, proxy.processes);
        proxiesReady.catch(() => undefined); // awaited below; a failure before then is not unhandled
      }
      this.adminServer = http.createServer(this.options.admin(this));
      this.adminAddress = await listenOn(this.adminServer, fixed.admin).catch((error: unknown) => {
        throw error instanceof ListenFailed ? error.withKey("proxy.admin") : error;
      });
      this.controlServer = await startControlServer(fixed.control, this);
      const specs = Object.values(this.plan.pools);
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
      this.sampler = setInterval(() => {
        this.sample().catch((error: Error) => this.say(`status sampling: ${error.message}`));
      }, SAMPLE_MS);
      this.sampler.unref();
      this.started = true;
      return reports;
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** `proxy.admin` and `proxy.admin_token` as planned (ObservedStack: the admin room reads them). */
  get adminSettings(): { host: string; port: number; token?: string } {
    const { admin, adminToken } = this.plan.fixed;
    return { ...admin, ...(adminToken === undefined ? {} : { token: adminToken }) };
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
    const workers = this.workerStatus();
    return {
      state: this.stopping ? "stopping" : this.started ? "running" : "starting",
      pid: process.pid,
      startedAt: STARTED_AT,
      configFile: this.options.configFile,
      stackId: this.stackId,
      listen: this.listening,
      listenTls: this.listeningTls,
      ...(this.links ? { upstreams: statePaths(this.stateDir).upstreams } : {}),
      admin: this.adminAddress,
      apps: Object.entries(this.plan.apps).map(([app, { kind, routes, folder }]) => ({ app, kind, routes, ...(folder === undefined ? {} : { folder }) })),
      reloadErrors: Object.fromEntries(this.reloader.failures),
      configErrors: this.reloader.configErrors,
      pools: this.supervisor.pools().map((report) => ({
        ...report,
        configured: this.plan.pools[report.app]?.instances ?? report.instances,
        inPool: workers.filter((worker) => worker.app === report.app && worker.inPool).length,
      })),
      workers,
      traffic: this.traffic.traffic(),
      activity: this.activity.list(),
      recentErrors: this.recentErrors.list(),
      proxies: this.proxies.status(),
      logWrites: { access: this.proxies.accessLogFailures(), stack: this.options.outputFailures?.() ?? { dropped: 0 } },
    };
  }

  /**
   * Every worker, the supervisor's row joined with what the proxy processes
   * report of it: in balancing or not (and why), its health check, what it
   * has in flight, its requests. A ready worker is in the pool when the
   * supervisor has handed it to the proxy and no proxy process has it out.
   */
  private workerStatus(): WorkerStatus[] {
    const views = new Map<string, EndpointView[]>();
    const reported = [...this.proxies.reports().flatMap((report) => report.upstreams), ...(this.links?.views() ?? [])];
    for (const view of reported) views.set(`${view.id}#${view.pid}`, [...(views.get(`${view.id}#${view.pid}`) ?? []), view]);
    return this.supervisor.status().map((row) => {
      const name = `${row.app}.${row.slot}`;
      const seen = views.get(`${name}#${row.pid}`) ?? [];
      const health: WorkerHealth = seen.some((view) => view.health === "failing") ? "failing" : seen.some((view) => view.health === "passing") ? "passing" : "unchecked";
      const out = seen.find((view) => view.outReason !== undefined);
      const handedOver = this.membership.get(row.app)?.has(`${row.slot}#${row.pid}`) ?? false;
      const inPool = row.state === "ready" && handedOver && !out;
      const checkedAt = Math.max(0, ...seen.map((view) => view.checkedAt ?? 0));
      // A ready worker not yet handed over is joining the pool (a moment): no reason to give.
      const outReason = row.state === "ready" && !inPool ? out?.outReason : undefined;
      return {
        ...row,
        inPool,
        health,
        ...(outReason ? { outReason } : {}),
        ...(checkedAt ? { lastHealthCheck: new Date(checkedAt).toISOString() } : {}),
        inFlight: seen.reduce((sum, view) => sum + view.inFlight, 0),
        ...this.traffic.worker(name),
      };
    });
  }

  /** Once a second: the proxy processes' counters summed into a point of the plots, and health changes noted. */
  private async sample(): Promise<void> {
    const point = await this.traffic.sample(this.proxies.metrics(), Object.keys(this.plan.apps));
    const seen = new Map<string, WorkerHealth>();
    for (const worker of this.workerStatus()) {
      if (worker.health === "unchecked") continue;
      const key = `${worker.app}.${worker.slot}#${worker.pid}`;
      seen.set(key, worker.health);
      const before = this.healthSeen.get(key);
      if (before === worker.health || (before === undefined && worker.health === "passing")) continue;
      this.note({
        app: worker.app,
        kind: "health",
        ok: worker.health === "passing",
        message:
          worker.health === "passing"
            ? `${worker.app}.${worker.slot} (pid ${worker.pid}) passes its health check again`
            : `${worker.app}.${worker.slot} (pid ${worker.pid}) failed its health check: ${worker.outReason ?? "no detail"}`,
      });
    }
    this.healthSeen = seen;
    for (const listener of this.sampleListeners) {
      // One listener's failure (a page's connection, say) is not the others', nor the stack's.
      try {
        listener(point);
      } catch (error) {
        this.say(`status feed: ${(error as Error).message}`);
      }
    }
  }

  /** Called each second with the newest point of the plots (the admin listener's live feed). Returns the unsubscribe function. */
  onSample(listener: (point: SeriesPoint) => void): () => void {
    this.sampleListeners.add(listener);
    return () => this.sampleListeners.delete(listener);
  }

  /** The plots' last minutes, oldest first. */
  series(): SeriesPoint[] {
    return this.traffic.series();
  }

  /** Reloads, restarts, scales and config changes so far, by kind, app and outcome. */
  outcomes(): OutcomeCount[] {
    return [...this.outcomeCounts.values()];
  }

  /** Every proxy process's counters (those that exited included), to be summed. */
  proxyMetrics(): MetricsJson[] {
    return this.proxies.metrics();
  }

  /** Adds to the recent activity, and counts an action's outcome. */
  private note(entry: Omit<ActivityEntry, "at">): void {
    this.activity.add({ at: new Date().toISOString(), ...entry });
    const key = `${entry.kind}\0${entry.app ?? ""}\0${entry.ok}`;
    const count = this.outcomeCounts.get(key) ?? { kind: entry.kind, app: entry.app ?? "", ok: entry.ok, count: 0 };
    count.count += 1;
    this.outcomeCounts.set(key, count);
  }

  /** An app of the config that has workers: a static app is refused by name, for `restart`, `scale` and `reload`. */
  private requireWorkerApp(app: string, verb: string): void {
    const planned = this.plan.apps[app];
    if (!planned) {
      throw new UnknownApp(app, Object.keys(this.plan.apps));
    }
    if (planned.kind === "static" || planned.kind === "redirect") {
      throw new StaticAppRefused(app, verb, planned.kind);
    }
  }

  /** Restarts one app's workers, or every worker app's (static apps have none: they are left out). */
  async restart(app?: string): Promise<PoolOutcome[]> {
    const apps = app === undefined ? Object.keys(this.plan.pools) : [app];
    for (const name of apps) this.requireWorkerApp(name, "restart");
    const outcomes: PoolOutcome[] = [];
    for (const name of apps) for (const report of await this.supervisor.restart(name)) outcomes.push(outcomeOf(report));
    for (const outcome of outcomes) {
      this.note({
        app: outcome.app,
        kind: "restart",
        ok: !outcome.error,
        message: outcome.error ? `${outcome.app}: restart failed: ${outcome.error}` : `${outcome.app}: restarted, ${outcome.ready}/${outcome.instances} ready`,
      });
    }
    return outcomes;
  }

  async scale(app: string, instances: number): Promise<PoolOutcome> {
    this.requireWorkerApp(app, "scale");
    const outcome = outcomeOf(await this.supervisor.scale(app, instances));
    this.note({
      app,
      kind: "scale",
      ok: !outcome.error && outcome.ready >= instances,
      message: `${app}: scaled to ${instances}, ${outcome.ready} ready${outcome.error ? `: ${outcome.error}` : ""}`,
    });
    return outcome;
  }

  /** `tsgi-stack reload [APP]` and SIGHUP: the config file's changes, then a roll of the app (or of every worker app); see stack/reload.ts. */
  reload(app?: string): Promise<ReloadOutcome> {
    if (app !== undefined) this.requireWorkerApp(app, "reload");
    return this.reloader.reload(app);
  }

  /** Rolls one app's workers onto new ones (PlanRunner: the reloader's). */
  async roll(app: string): Promise<ReloadReport> {
    const [report] = await this.supervisor.reload(app);
    return report!;
  }

  /**
   * Makes `next` the plan in force and applies the diff that leads to it
   * (PlanRunner: the reloader computes both). The proxy first: a removed app
   * stops taking requests before its workers go; an added one routes as its
   * workers get ready. What needs a restart (diff.needsRestart) is left as it is.
   */
  async apply(next: StackPlan, diff: PlanDiff, onRolled: (report: ReloadReport) => void): Promise<void> {
    const before = this.plan;
    this.plan = next;
    if (this.links) this.links.configure(upstreamApps(next));
    else if (diff.proxy.settings || diff.proxy.processes) this.proxies.reconfigure(next.proxy.settings, next.proxy.processes);
    for (const app of appsTo(diff, "stop", "replace")) if (before.pools[app]) await this.supervisor.remove(app);
    const added = appsTo(diff, "start", "replace").flatMap((app) => next.pools[app] ?? []);
    if (added.length) {
      for (const report of await this.supervisor.start(added)) {
        if (report.error) this.say(`${report.app}: did not start: ${report.error.message}`);
      }
    }
    for (const app of appsTo(diff, "roll")) {
      const report = await this.supervisor.updateSpec(next.pools[app]!, { roll: true });
      // A failed roll leaves the app on its previous spec (the supervisor puts it back): so does the plan in
      // force, or the next reload would find nothing to change and call the old code new.
      if (!report.ok && before.pools[app]) this.plan = { ...this.plan, pools: { ...this.plan.pools, [app]: before.pools[app] } };
      onRolled(report);
    }
    for (const { app, instances } of diff.apps) if (instances) await this.supervisor.scale(app, instances.to);
    if (diff.watch.length || appsTo(diff, "start", "stop", "replace").length) await this.codeWatcher?.update(watchedApps(next));
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
      onChange: () => void this.reloader.reloadConfig(),
      onError: (error) => this.say(`watching ${configFile}: ${error.message}`),
    });
    const waits = [this.configWatcher.whenReady()];
    if (this.options.watch) {
      this.codeWatcher = new CodeWatcher(watchedApps(this.plan), {
        ignore: [this.stateDir],
        onChange: (app, files) => {
          const shown = files.map((file) => path.relative(path.dirname(configFile), file)).slice(0, 3).join(", ");
          this.say(`${app}: ${shown}${files.length > 3 ? ` and ${files.length - 3} more` : ""} changed: reloading`);
          void this.reloader.reloadApp(app);
        },
        onError: (error) => this.say(`watch: ${error.message}`),
      });
      waits.push(this.codeWatcher.whenReady());
    }
    await Promise.all(waits);
  }

  async down(): Promise<void> {
    await this.stop();
  }

  /** Stops accepting, stops every pool (workers drain), closes every socket. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      // A start that failed cleans up quietly: nothing was serving, so there is nothing to drain.
      if (this.started) this.say("stopping: closing listeners, draining workers");
      clearInterval(this.sampler);
      await this.configWatcher?.close();
      await this.codeWatcher?.close();
      await this.proxies.stop();
      const { strays } = await this.supervisor.stop();
      if (strays.length > 0) this.say(`stopped ${strays.length} worker process(es) pm2 no longer listed: ${strays.join(", ")}`);
      this.links?.stop();
      // The admin listener's live feeds never end by themselves: its connections are cut, not drained.
      if (this.adminServer) await closeServer(this.adminServer, { cut: true });
      if (this.controlServer) await closeServer(this.controlServer);
      this.markStopped();
    })();
    return this.stopping;
  }
}

function closeServer(server: http.Server, { cut = false } = {}): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    if (cut) server.closeAllConnections();
    else server.closeIdleConnections();
  });
}
