/**
 * @module proxy/stats
 *
 * What one proxy process counts of its traffic: requests by app and status
 * class, a latency histogram per app, requests and errors per worker, failed
 * tries and retries, requests refused by a limit per client address
 * (`rate_limit`, `conn_limit`), client connections; and the last few requests that
 * ended 5xx, for the status page. Each proxy process keeps its own; the
 * stack process sums them (prom-client's AggregatorRegistry, as node:cluster
 * users do) for GET /metrics and `status`.
 *
 * Per request this is a few additions to plain numbers, found through one
 * Map lookup per app and per worker: no label set is hashed, nothing is
 * allocated. The numbers become prom-client's JSON form of metrics (what
 * `registry.getMetricsAsJSON()` gives, and what AggregatorRegistry sums) only
 * once per report, a second apart (`metrics()`); test/proxy/stats.test.ts
 * holds that form to prom-client's own.
 */
import type { AccessEntry } from "./exchange.ts";
import { ConnLimited, RateLimited } from "./errors.ts";

/** Prometheus' own default buckets, in seconds: from 5 ms to 10 s. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** How many error entries one report carries at most (the newest). */
const ERRORS_PER_REPORT = 20;

/** The longest URL kept in an error entry: a page shows it, it needs no more. */
const URL_SHOWN = 200;

/** A request that ended 5xx (the worker's answer, or the proxy's own). */
export interface ErrorEntry {
  /** Epoch ms. */
  at: number;
  app?: string;
  status: number;
  method: string;
  url: string;
  /** The worker that answered ("app.slot"). */
  worker?: string;
  /** The proxy's catalog code, when it answered itself. */
  code?: string;
  requestId: string;
}

/** One metric in prom-client's JSON form (getMetricsAsJSON), what AggregatorRegistry.aggregate sums. */
export interface MetricJson {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  aggregator: "sum";
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}

export type MetricsJson = MetricJson[];

/** Status classes, by the status' first digit (index 0: anything outside 100-599). */
const CLASSES = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"];

interface AppCounts {
  /** Requests by status class (CLASSES' order). */
  byClass: number[];
  /** Requests per latency bucket, not cumulative (LATENCY_BUCKETS' order, then +Inf). */
  buckets: number[];
  seconds: number;
  /** Failed tries by kind. */
  failures: Map<string, number>;
  retries: number;
  /** Requests refused by `rate_limit` and by `conn_limit`. */
  rateLimited: number;
  connLimited: number;
}

interface WorkerCounts {
  app: string;
  requests: number;
  errors: number;
}

const RATE_LIMITED = RateLimited.code;
const CONN_LIMITED = ConnLimited.code;

function bucketOf(seconds: number): number {
  for (let index = 0; index < LATENCY_BUCKETS.length; index++) if (seconds <= LATENCY_BUCKETS[index]!) return index;
  return LATENCY_BUCKETS.length;
}

export class ProxyStats {
  private readonly apps = new Map<string, AppCounts>();
  private readonly workers = new Map<string, WorkerCounts>();
  private connections = 0;
  private open = 0;
  private errors: ErrorEntry[] = [];

  /** One response (the access entry the proxy makes for every request). */
  record(entry: AccessEntry): void {
    const counts = this.app(entry.app ?? "");
    const status = entry.status;
    counts.byClass[status >= 100 && status < 600 ? Math.floor(status / 100) : 0]! += 1;
    const seconds = entry.ms / 1000;
    counts.buckets[bucketOf(seconds)]! += 1;
    counts.seconds += seconds;
    const failed = status >= 500;
    if (entry.endpoint) {
      let worker = this.workers.get(entry.endpoint);
      if (!worker) this.workers.set(entry.endpoint, (worker = { app: entry.app ?? "", requests: 0, errors: 0 }));
      worker.requests += 1;
      if (failed) worker.errors += 1;
    }
    if (failed) this.keepError(entry);
    if (entry.error === RATE_LIMITED) counts.rateLimited += 1;
    else if (entry.error === CONN_LIMITED) counts.connLimited += 1;
  }

  /** A try a worker failed; `retried` when the request went on to another worker. */
  upstreamFailure(app: string, kind: string, retried: boolean): void {
    const counts = this.app(app);
    counts.failures.set(kind, (counts.failures.get(kind) ?? 0) + 1);
    if (retried) counts.retries += 1;
  }

  connectionOpened(): void {
    this.connections += 1;
    this.open += 1;
  }

  connectionClosed(): void {
    this.open -= 1;
  }

  /** The error entries kept since the last call (at most ERRORS_PER_REPORT, the newest), and forgets them. */
  takeErrors(): ErrorEntry[] {
    const taken = this.errors;
    this.errors = [];
    return taken;
  }

  /** Every count so far, in prom-client's JSON form. */
  metrics(): MetricsJson {
    const apps = [...this.apps];
    const workers = [...this.workers];
    const metric = (name: string, type: MetricJson["type"], help: string, values: MetricJson["values"]): MetricJson => ({ name, help, type, aggregator: "sum", values });
    return [
      metric(
        "tsgi_http_requests_total",
        "counter",
        "Requests answered by the proxy, by app and status class (app is empty for requests no route matched).",
        apps.flatMap(([app, counts]) => counts.byClass.flatMap((value, index) => (value > 0 ? [{ value, labels: { app, code: CLASSES[index]! } }] : []))),
      ),
      metric(
        "tsgi_http_request_duration_seconds",
        "histogram",
        "Time from a request's arrival at the proxy to the end of its response, by app.",
        apps.flatMap(([app, counts]) => {
          let cumulative = 0;
          const buckets = counts.buckets.map((count, index) => {
            cumulative += count;
            const le = index < LATENCY_BUCKETS.length ? LATENCY_BUCKETS[index]! : "+Inf";
            return { value: cumulative, labels: { le, app }, metricName: "tsgi_http_request_duration_seconds_bucket" };
          });
          return [
            ...buckets,
            { value: counts.seconds, labels: { app }, metricName: "tsgi_http_request_duration_seconds_sum" },
            { value: cumulative, labels: { app }, metricName: "tsgi_http_request_duration_seconds_count" },
          ];
        }),
      ),
      metric(
        "tsgi_worker_requests_total",
        "counter",
        "Requests a worker answered through the proxy, by app and worker (app.slot).",
        workers.map(([worker, counts]) => ({ value: counts.requests, labels: { app: counts.app, worker } })),
      ),
      metric(
        "tsgi_worker_errors_total",
        "counter",
        "Requests given to a worker that ended 5xx (its own answer, or the proxy's 502/504 after it failed), by app and worker.",
        workers.map(([worker, counts]) => ({ value: counts.errors, labels: { app: counts.app, worker } })),
      ),
      metric(
        "tsgi_upstream_failures_total",
        "counter",
        "Tries a worker failed (could not connect, timed out, closed or broke the response), by app and kind.",
        apps.flatMap(([app, counts]) => [...counts.failures].map(([kind, value]) => ({ value, labels: { app, kind } }))),
      ),
      metric(
        "tsgi_upstream_retries_total",
        "counter",
        "Failed tries that were sent to another worker, by app.",
        apps.flatMap(([app, counts]) => (counts.retries > 0 ? [{ value: counts.retries, labels: { app } }] : [])),
      ),
      metric(
        "tsgi_proxy_limited_requests_total",
        "counter",
        "Requests refused by a limit per client address, by app and limit (rate: rate_limit, conn: conn_limit).",
        apps.flatMap(([app, counts]) => [
          ...(counts.rateLimited > 0 ? [{ value: counts.rateLimited, labels: { app, limit: "rate" } }] : []),
          ...(counts.connLimited > 0 ? [{ value: counts.connLimited, labels: { app, limit: "conn" } }] : []),
        ]),
      ),
      metric("tsgi_proxy_connections_total", "counter", "Client connections the proxy accepted.", [{ value: this.connections, labels: {} }]),
      metric("tsgi_proxy_open_connections", "gauge", "Client connections open now.", [{ value: this.open, labels: {} }]),
    ];
  }

  private app(name: string): AppCounts {
    let counts = this.apps.get(name);
    if (!counts) {
      counts = { byClass: new Array(CLASSES.length).fill(0), buckets: new Array(LATENCY_BUCKETS.length + 1).fill(0), seconds: 0, failures: new Map(), retries: 0, rateLimited: 0, connLimited: 0 };
      this.apps.set(name, counts);
    }
    return counts;
  }

  private keepError(entry: AccessEntry): void {
    this.errors.push({
      at: Date.now(),
      ...(entry.app === undefined ? {} : { app: entry.app }),
      status: entry.status,
      method: entry.method,
      url: entry.url.length > URL_SHOWN ? `${entry.url.slice(0, URL_SHOWN)}…` : entry.url,
      ...(entry.endpoint === undefined ? {} : { worker: entry.endpoint }),
      ...(entry.error === undefined ? {} : { code: entry.error }),
      requestId: entry.requestId,
    });
    if (this.errors.length > ERRORS_PER_REPORT) this.errors.shift();
  }
}
