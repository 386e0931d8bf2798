/**
 * @module cli/up-summary
 *
 * The lines `up` prints once the stack serves: one per app of the config,
 * static ones included, with what it is, where it is routed and how it
 * stands at the moment of printing — not at the moment its pool first
 * settled. A pool is settled once its workers were ready once; a worker that
 * crashes right after is restarted, and an app that does so again and again
 * must not be summed up as `1/1 ready`. So the state comes from the status
 * read when the summary is printed, and from the worker exits `up` saw since
 * it began (pm2's restart counts in the status are sampled, and lag).
 */
import path from "node:path";
import type { StackConfig } from "../config/schema.ts";
import type { StackStatus } from "../stack/status.ts";
import type { SupervisorEvent } from "../supervisor/types.ts";
import { exitWords } from "../stack/event-words.ts";

/** The worker exits of one app seen since `up` began: how many, and the last one, in words. */
export interface AppExits {
  count: number;
  last: string;
}

/** Counts the worker exits among the supervisor's events, per app, for the summary. */
export class ExitTally {
  private readonly byApp = new Map<string, AppExits>();

  note(event: SupervisorEvent): void {
    if (event.type !== "worker-exit") return;
    const seen = this.byApp.get(event.app);
    this.byApp.set(event.app, { count: (seen?.count ?? 0) + 1, last: exitWords(event) });
  }

  get exits(): ReadonlyMap<string, AppExits> {
    return this.byApp;
  }
}

/** What the summary reads of the status: the pools, the workers and the apps. */
export type SummaryStatus = Pick<StackStatus, "pools" | "workers"> & Partial<Pick<StackStatus, "apps">>;

function routesOf(config: StackConfig, app: string): string {
  return config.apps[app]!.routes.map((route) => `${route.host ?? ""}${route.path === "/" && route.host ? "" : route.path}`).join(", ");
}

function whatItIs(config: StackConfig, app: string): string {
  const spec = config.apps[app]!;
  const relative = (file: string) => path.relative(process.cwd(), file) || file;
  if (spec.static !== undefined) return `folder ${relative(spec.static)}`;
  if (spec.redirect !== undefined) return `redirect ${spec.redirect.status} to ${spec.redirect.to}`;
  if (spec.module) return `module ${relative(spec.module)}`;
  return `command ${spec.command}`;
}

/**
 * How an app stands, in a word or a few (the first line), and why when it is
 * not plainly serving (the second). Only an app whose workers are all ready,
 * all in the pool and never exited since `up` began says `N/N ready`.
 */
export function appState(status: SummaryStatus, app: string, exits?: AppExits): { state: string; detail?: string } {
  const pool = status.pools.find((candidate) => candidate.app === app);
  if (!pool) return { state: "NOT STARTED" };
  if (pool.error) return { state: "ERRORED", detail: pool.error.message };
  const workers = status.workers.filter((worker) => worker.app === app);
  const restarts = Math.max(exits?.count ?? 0, workers.reduce((sum, worker) => sum + worker.restarts, 0));
  if (restarts > 0) {
    const last = exits?.last ?? workers.find((worker) => worker.lastError)?.lastError;
    return { state: "RESTARTING", detail: `${restarts} worker exit(s) since up${last ? `, the last: ${last}` : ""}; \`tsgi-stack logs ${app}\` says why` };
  }
  const counts = `${pool.ready}/${pool.instances} ready`;
  if (pool.ready < pool.instances) {
    const why = workers.find((worker) => worker.state !== "ready" && worker.lastError);
    return { state: `${counts}, ${pool.state}`, ...(why ? { detail: `${app}.${why.slot}: ${why.lastError}` } : {}) };
  }
  if (pool.inPool !== undefined && pool.inPool < pool.ready) {
    const out = workers.find((worker) => worker.state === "ready" && worker.inPool === false);
    return { state: `${counts}, ${pool.inPool} in the pool`, ...(out?.outReason ? { detail: `${app}.${out.slot}: ${out.outReason}` } : {}) };
  }
  return { state: counts };
}

/** One line per app of the config (in its order), the names padded so the columns line up; a second, indented, says why an app is not plainly serving. */
export function summaryLines(config: StackConfig, status: SummaryStatus, exits: ReadonlyMap<string, AppExits> = new Map()): string[] {
  const apps = Object.keys(config.apps);
  const width = Math.max(14, ...apps.map((app) => app.length));
  return apps.flatMap((app) => {
    const spec = config.apps[app]!;
    const { state, detail } = spec.static !== undefined ? { state: "static" } : spec.redirect !== undefined ? { state: "redirect" } : appState(status, app, exits.get(app));
    const line = `  ${app.padEnd(width)} ${state.padEnd(12)} ${whatItIs(config, app)}  routes: ${routesOf(config, app)}`;
    return detail ? [line, `  ${" ".repeat(width)} ${detail}`] : [line];
  });
}
