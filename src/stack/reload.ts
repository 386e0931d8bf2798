/**
 * @module stack/reload
 *
 * Hot reload (issue #5), orchestrated: `tsgi-stack reload`, SIGHUP, a saved
 * config file and `up --watch` all come here. A config file is read again,
 * compiled to a plan (stack/plan.ts) and diffed against the running one
 * (stack/diff.ts); the stack applies the diff (stack/stack.ts `apply`). An
 * invalid file changes nothing: its errors are kept for `status` until a
 * valid one is applied. A failed roll of an app (its new workers did not
 * start, or failed the health gate) leaves the old workers serving and is
 * kept, with the failing line of the app's source, until one succeeds.
 *
 * Reloads run one after another, never interleaved; saves that come while
 * an app's `--watch` reload waits its turn join that one.
 */
import type { FailedReload } from "./status.ts";
import { loadConfig } from "../config/load.ts";
import { probe as probeHealth } from "../proxy/health/active.ts";
import type { HealthGate, ReloadReport, WorkerEndpoint } from "../supervisor/types.ts";
import { codeFrame, firstSourceLocation } from "./code-frame.ts";
import { appsTo, describeDiff, diffPlans, isEmptyDiff, type PlanDiff } from "./diff.ts";
import { plan, type StackPlan } from "./plan.ts";

/** What a reload did: for the terminal, the control API and `tsgi-stack reload`. */
export type { FailedReload } from "./status.ts";

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


/** What the reloader drives: the running stack. */
export interface PlanRunner {
  /** The plan in force: the one the stack started with, then each one applied. */
  readonly current: StackPlan;
  /** Makes `next` the plan in force and applies `diff` to the running processes; each roll is reported through `onRolled` as it ends. */
  apply(next: StackPlan, diff: PlanDiff, onRolled: (report: ReloadReport) => void): Promise<void>;
  /** Rolls one app's workers onto new ones, same spec (new code). */
  roll(app: string): Promise<ReloadReport>;
}

export interface ReloaderOptions {
  /** The config file, read again on each reload. */
  configFile: string;
  say: (line: string) => void;
  /** Told each config file outcome (applied, or refused for its errors), for the stack's recent activity. */
  onConfig?: (ok: boolean, message: string) => void;
}

/** Between two health checks of a reload's new worker. */
const HEALTH_GATE_RETRY_MS = 250;

/**
 * A reload's new worker joins the pool only if it passes its app's health
 * check (when the app has one): a new version that starts but answers 500 is
 * not a good deploy either. Tried a few times within the app's ready timeout.
 */
export function reloadHealthGate(current: () => StackPlan, say: (line: string) => void): HealthGate {
  return async (app: string, worker: WorkerEndpoint) => {
    const { pools, proxy } = current();
    const spec = proxy.settings.proxy.healthChecks?.[app];
    if (!spec) return true;
    const deadline = Date.now() + (pools[app]?.readyTimeoutMs ?? 10_000);
    const endpoint = { id: `${app}.${worker.slot}`, pid: worker.pid, address: worker.address };
    for (;;) {
      const failure = await probeHealth(endpoint, spec, "localhost");
      if (failure === undefined) return true;
      if (Date.now() + HEALTH_GATE_RETRY_MS > deadline) {
        say(`${endpoint.id} (new) failed its health check: ${failure}`);
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, HEALTH_GATE_RETRY_MS));
    }
  };
}

export class Reloader {
  /** Apps whose last reload failed (their previous workers still serve), until one succeeds. */
  readonly failures = new Map<string, FailedReload>();
  /** The errors of a config file that was changed but not applied. */
  configErrors: string[] = [];
  /** The reload under way, if any: reloads are queued behind it. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Per app, the `--watch` reload waiting for its turn (see reloadApp). */
  private readonly queued = new Map<string, Promise<ReloadReport>>();
  /** Per app (or "*" for all), the `reload`/SIGHUP waiting for its turn: later ones join it (see reload). */
  private readonly waiting = new Map<string, Promise<ReloadOutcome>>();

  constructor(
    private readonly runner: PlanRunner,
    private readonly options: ReloaderOptions,
  ) {}

  /**
   * `tsgi-stack reload [APP]` and SIGHUP: the config file is read again and
   * its differences applied (an invalid file changes nothing: the reload
   * stops there), then the app — or every worker app — is rolled onto new
   * workers, one slot at a time, new ready before old goes. The caller has
   * checked that APP is a worker app.
   *
   * Requests that come while one waits its turn join it — a burst of SIGHUPs
   * is at most the reload running and one more, as nginx coalesces them —
   * and each caller gets that one's outcome.
   */
  reload(app?: string): Promise<ReloadOutcome> {
    const key = app ?? "*";
    const waiting = this.waiting.get(key);
    if (waiting) return waiting;
    const reload = this.serialize(async () => {
      this.waiting.delete(key);
      const { outcome, rolled } = await this.applyConfigFile();
      if (outcome.config === "invalid") return outcome;
      const apps = app === undefined ? Object.keys(this.runner.current.pools) : [app];
      for (const name of apps) {
        if (rolled.includes(name) || !this.runner.current.pools[name]) continue;
        outcome.reloads.push(await this.rollApp(name));
      }
      return outcome;
    });
    this.waiting.set(key, reload);
    return reload;
  }

  /** The config file changed on disk: its differences are applied, nothing else is reloaded. */
  async reloadConfig(): Promise<ReloadOutcome> {
    return (await this.serialize(() => this.applyConfigFile())).outcome;
  }

  /**
   * One app's code changed (`up --watch`): its workers are rolled. Saves that
   * come while a reload of the app waits its turn join that one: however many
   * saves, at most one reload runs and one waits.
   */
  reloadApp(app: string): Promise<ReloadReport> {
    const queued = this.queued.get(app);
    if (queued) return queued;
    const reload = this.serialize(() => {
      this.queued.delete(app);
      return this.rollApp(app);
    });
    this.queued.set(app, reload);
    return reload;
  }

  private serialize<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Rolls one app onto new workers and keeps (or clears) what went wrong. */
  private async rollApp(app: string): Promise<ReloadReport> {
    if (!this.runner.current.pools[app]) return { app, ok: true, replaced: 0, ms: 0 }; // removed by a config reload meanwhile
    const report = await this.runner.roll(app);
    this.noteReload(report);
    return report;
  }

  /** Says how a roll went, for the terminal, and keeps a failure (with the failing source line) for `status`. */
  private noteReload(report: ReloadReport): void {
    const { say } = this.options;
    if (report.ok) {
      if (this.failures.delete(report.app)) say(`${report.app}: fixed, serving the new code`);
      say(`${report.app}: reloaded ${report.replaced} worker${report.replaced === 1 ? "" : "s"} in ${report.ms} ms`);
      return;
    }
    const stderr = report.error?.stderr ?? [];
    const location = firstSourceLocation(stderr);
    const frame = location ? codeFrame(location) : undefined;
    const message = report.error?.message ?? "the new workers did not start";
    this.failures.set(report.app, { message, ...(frame ? { frame } : {}), at: new Date().toISOString() });
    say(`${report.app}: reload failed, the running workers keep serving: ${message}`);
    if (frame) say(frame);
    else for (const line of stderr.slice(-10)) say(`  ${line}`);
  }

  /**
   * Reads the config file again; a valid one is planned, diffed and applied,
   * an invalid one reported and ignored. `rolled`: the apps the diff already
   * rolled, which `reload` need not roll again.
   */
  private async applyConfigFile(): Promise<{ outcome: ReloadOutcome; rolled: string[] }> {
    const { configFile, say } = this.options;
    const result = loadConfig(configFile);
    if (!result.ok) {
      const errors = result.errors.map((error) => error.format());
      this.configErrors = errors;
      say(`${configFile}: not applied, the running config stays (${errors.length} error${errors.length === 1 ? "" : "s"}):`);
      for (const line of errors) say(`  ${line}`);
      this.options.onConfig?.(false, `not applied (${errors.length} error${errors.length === 1 ? "" : "s"}): ${errors[0]}`);
      return { outcome: { config: "invalid", changes: [], configErrors: errors, reloads: [] }, rolled: [] };
    }
    this.configErrors = [];
    const next = plan(result.config);
    const diff = diffPlans(this.runner.current, next);
    if (isEmptyDiff(diff)) return { outcome: { config: "unchanged", changes: [], configErrors: [], reloads: [] }, rolled: [] };
    const changes = describeDiff(diff);
    for (const line of changes) say(`config: ${line}`);
    this.options.onConfig?.(true, `applied: ${changes.join("; ")}`);
    const reloads: ReloadReport[] = [];
    await this.runner.apply(next, diff, (report) => {
      this.noteReload(report);
      reloads.push(report);
    });
    return { outcome: { config: "applied", changes, configErrors: [], reloads }, rolled: appsTo(diff, "roll") };
  }
}
