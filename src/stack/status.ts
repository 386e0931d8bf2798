/**
 * @module stack/status
 *
 * What a running stack says about itself: plain data, the one answer that
 * `tsgi-stack status`, the admin listener's GET /status, its live page and
 * its metrics all read. The supervisor says what runs (pools, workers, pm2's
 * numbers); the proxy processes say what serves (pool membership, health
 * checks, requests, latency); the stack joins the two per worker here.
 */
import type { PoolReport, StatusRow } from "../supervisor/types.ts";
import type { ProxyProcessStatus } from "./proxy-fleet.ts";
import type { StackLogWrites } from "./log-writes.ts";
import type { AppKind } from "./proxy-settings.ts";
import type { ErrorEntry } from "../proxy/stats.ts";

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
  /** module / command: served by workers (see `pools` and `workers`); static: files the proxy serves itself; redirect: a redirect it answers itself. */
  kind: AppKind;
  /** The routes, as `host/path` (`*` for any host). */
  routes: string[];
  /** The folder a static app serves (absolute). */
  folder?: string;
}

/** passing / failing: the app's active health check (`health:`) on this worker; unchecked: the app has none, or it has not run yet. */
export type WorkerHealth = "passing" | "failing" | "unchecked";

/** One worker: the supervisor's row, and how the proxy sees it. */
export interface WorkerStatus extends StatusRow {
  /** Taking requests now: ready, and not out of balancing for a failed health check or repeated failures. */
  inPool: boolean;
  health: WorkerHealth;
  /** Why it is out of balancing, when it is ready but not in the pool (the failed check's answer, say). */
  outReason?: string;
  /** When its last active health check ran (ISO time). */
  lastHealthCheck?: string;
  /** Requests the proxy has in flight to it now. */
  inFlight: number;
  /** Requests it answered through the proxy since the stack started (this slot, over its restarts). */
  requests: number;
  /** Of those, the ones that ended 5xx or failed (the proxy answered 502/504). */
  errors: number;
}

/** One app's pool: the supervisor's report, with what the config file says and what the proxy balances over. */
export interface PoolStatus extends PoolReport {
  /** `instances` in the config file; `instances` above is what runs now (a runtime `scale` can differ: a reload keeps it; `scale`, a change to the app in the file or the next `up` returns to the file's). */
  configured: number;
  /** Workers in the proxy's balancing now (ready and passing their health check). */
  inPool: number;
}

/** An app's traffic through the proxy (every proxy process summed). */
export interface AppTraffic {
  app: string;
  /** Requests answered since the stack started. */
  requests: number;
  /** Of those, 5xx (the workers' and the proxy's own). */
  errors: number;
  /** Requests per second over the last 10 seconds. */
  rate: number;
  /** Response time percentiles over the last 60 seconds (ms, estimated from the latency histogram's buckets); 0 when idle. */
  p50Ms: number;
  p95Ms: number;
}

/** Something the stack did or saw, for the page's and the status' recent activity. */
export interface ActivityEntry {
  /** ISO time. */
  at: string;
  app?: string;
  kind: "reload" | "restart" | "scale" | "config" | "exit" | "health" | "halt";
  ok: boolean;
  message: string;
}

/** A recent request that ended 5xx: the worker's answer, or the proxy's own 502/504 (with its catalog code); `at` as ISO time. */
export type RecentError = Omit<ErrorEntry, "at"> & { at: string };

/** What `status` shows: plain data, rendered by the CLI or the admin page. */
export interface StackStatus {
  /** starting: pools still coming up; running: started; stopping: on the way down. */
  state: "starting" | "running" | "stopping";
  pid: number;
  /** When the stack process started (ISO time). */
  startedAt: string;
  configFile: string;
  stackId: string;
  listen: string[];
  /** The HTTPS listeners (proxy.tls.listen), when there are any. */
  listenTls: string[];
  /**
   * Without the stack's proxy (`up --no-proxy`): the folder of the upstream
   * links a front such as nginx connects to (stack/upstream-links.ts).
   */
  upstreams?: string;
  admin: string;
  /** Every app of the config, static ones included (they have no pool and no workers). */
  apps: AppStatus[];
  /** Apps whose last reload failed (their previous workers still serve), until a reload succeeds. */
  reloadErrors: Record<string, FailedReload>;
  /** The errors of a config file that was changed but not applied. */
  configErrors: string[];
  pools: PoolStatus[];
  workers: WorkerStatus[];
  /** Per app with routes: requests, rate and latency. */
  traffic: AppTraffic[];
  /** The last reloads, restarts, scales, worker exits and health changes, newest last (bounded). */
  activity: ActivityEntry[];
  /** The last requests that ended in an error, newest last (bounded). */
  recentErrors: RecentError[];
  /** The proxy processes (`proxy.workers`). */
  proxies: ProxyProcessStatus[];
  /** Log lines lost to a failing disk (full, read-only): the access log's and the stack's own output's. */
  logWrites: StackLogWrites;
}

/** How many times an action ended one way: reloads, restarts, scales, config changes (for /metrics). */
export interface OutcomeCount {
  kind: ActivityEntry["kind"];
  /** Empty for the config file's changes. */
  app: string;
  ok: boolean;
  count: number;
}

/** One second of every app's traffic: a point of the page's plots. */
export interface SeriesPoint {
  /** Epoch ms. */
  t: number;
  apps: Record<string, { rate: number; p50Ms: number; p95Ms: number; errors: number }>;
}

/**
 * The admin listener's live feed (GET /events, server-sent events): one
 * `snapshot` when a page connects (the status and the last minutes of
 * points), then an `update` every second (the status and the newest point).
 */
export interface EventsSnapshot {
  status: StackStatus;
  series: { stepMs: number; points: SeriesPoint[] };
}

export interface EventsUpdate {
  status: StackStatus;
  point: SeriesPoint;
}
