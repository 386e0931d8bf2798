/**
 * @module proxy/stats
 *
 * What one proxy process counts of its traffic, in Prometheus' terms
 * (prom-client): requests by app and status class, a latency histogram per
 * app, requests and errors per worker, failed tries and retries, client
 * connections. Also the last few requests that ended in an error, for the
 * status page. Each proxy process keeps its own; the stack process sums them
 * (prom-client's AggregatorRegistry, as node:cluster users do) for
 * GET /metrics and `status`.
 *
 * Per request this costs a few increments: label children are looked up once
 * per app and worker and kept, so no label set is hashed per request.
 */
import { Counter, Gauge, Histogram, type MetricObjectWithValues, type MetricValue, Registry } from "prom-client";
import type { AccessEntry } from "./exchange.ts";

/** Prometheus' own default buckets, in seconds: from 5 ms to 10 s. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** How many error entries are kept between two reports (the newest ones). */
const RECENT_ERRORS = 20;

/** A request that ended 5xx, or that the proxy answered with one of its own errors. */
export interface ErrorEntry {
  /** Epoch ms. */
  at: number;
  app?: string;
  status: number;
  method: string;
  url: string;
  worker?: string;
  code?: string;
  requestId: string;
}

/** The metric values, as prom-client's getMetricsAsJSON() gives them (what AggregatorRegistry.aggregate takes). */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

type Inc = { inc(value?: number): void };

function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : "other";
}

/** The longest URL kept in an error entry: a page shows it, it needs no more. */
const URL_SHOWN = 200;

export class ProxyStats {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: "tsgi_http_requests_total",
    help: "Requests answered by the proxy, by app and status class (app is empty for requests no route matched).",
    labelNames: ["app", "code"] as const,
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: "tsgi_http_request_duration_seconds",
    help: "Time from a request's arrival at the proxy to the end of its response, by app.",
    labelNames: ["app"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly workerRequests = new Counter({
    name: "tsgi_worker_requests_total",
    help: "Requests a worker answered through the proxy, by app and worker (app.slot).",
    labelNames: ["app", "worker"] as const,
    registers: [this.registry],
  });
  private readonly workerErrors = new Counter({
    name: "tsgi_worker_errors_total",
    help: "Requests given to a worker that ended 5xx (its own answer, or the proxy's 502/504 after it failed), by app and worker.",
    labelNames: ["app", "worker"] as const,
    registers: [this.registry],
  });
  private readonly upstreamFailures = new Counter({
    name: "tsgi_upstream_failures_total",
    help: "Tries a worker failed (could not connect, timed out, closed or broke the response), by app and kind.",
    labelNames: ["app", "kind"] as const,
    registers: [this.registry],
  });
  private readonly retries = new Counter({
    name: "tsgi_upstream_retries_total",
    help: "Failed tries that were sent to another worker, by app.",
    labelNames: ["app"] as const,
    registers: [this.registry],
  });
  private readonly connections = new Counter({
    name: "tsgi_proxy_connections_total",
    help: "Client connections the proxy accepted.",
    registers: [this.registry],
  });
  private readonly openConnections = new Gauge({
    name: "tsgi_proxy_open_connections",
    help: "Client connections open now.",
    registers: [this.registry],
  });
  /** Label children, looked up once per label set. */
  private readonly children = new Map<string, Inc>();
  private readonly observers = new Map<string, { observe(value: number): void }>();
  private errors: ErrorEntry[] = [];

  /** One response (the access entry the proxy makes for every request). */
  record(entry: AccessEntry): void {
    const app = entry.app ?? "";
    const code = statusClass(entry.status);
    this.child(this.requests, `r\0${app}\0${code}`, { app, code }).inc();
    let observer = this.observers.get(app);
    if (!observer) {
      observer = this.duration.labels({ app });
      this.observers.set(app, observer);
    }
    observer.observe(entry.ms / 1000);
    const failed = entry.status >= 500;
    if (entry.endpoint) {
      this.child(this.workerRequests, `w\0${entry.endpoint}`, { app, worker: entry.endpoint }).inc();
      if (failed) this.child(this.workerErrors, `e\0${entry.endpoint}`, { app, worker: entry.endpoint }).inc();
    }
    if (failed) this.keepError(entry);
  }

  /** A try a worker failed; `retried` when the request went on to another worker. */
  upstreamFailure(app: string, kind: string, retried: boolean): void {
    this.child(this.upstreamFailures, `f\0${app}\0${kind}`, { app, kind }).inc();
    if (retried) this.child(this.retries, `t\0${app}`, { app }).inc();
  }

  connectionOpened(): void {
    this.connections.inc();
    this.openConnections.inc();
  }

  connectionClosed(): void {
    this.openConnections.dec();
  }

  /** The error entries kept since the last call (at most RECENT_ERRORS, the newest), and forgets them. */
  takeErrors(): ErrorEntry[] {
    const taken = this.errors;
    this.errors = [];
    return taken;
  }

  metrics(): Promise<MetricsJson> {
    return this.registry.getMetricsAsJSON();
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
    if (this.errors.length > RECENT_ERRORS) this.errors.shift();
  }

  private child<L extends string>(metric: Counter<L>, key: string, labels: Record<L, string>): Inc {
    let child = this.children.get(key);
    if (!child) {
      child = metric.labels(labels as never);
      this.children.set(key, child);
    }
    return child;
  }
}
