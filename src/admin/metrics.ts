/**
 * @module admin/metrics
 *
 * GET /metrics: the stack in the Prometheus text format, made by prom-client.
 * Two sources, one exposition:
 * - the proxy processes' counters (requests by app and status class, the
 *   latency histograms, requests and errors per worker, failed tries and
 *   retries, client connections), summed over every proxy process by
 *   prom-client's AggregatorRegistry, the way node:cluster apps sum theirs;
 * - the stack's own view, read from its status at scrape time: each pool's
 *   running, configured, ready and in-balancing workers, each worker's
 *   restarts, memory, CPU, health and requests in flight, and the outcomes of
 *   reloads, restarts, scales and config changes.
 * Labels are app and worker names ("app.slot") from the config, never from
 * requests: the number of series is bounded by the config.
 */
import { exposition } from "../stack/metrics-sum.ts";
import { Counter, Gauge, Registry } from "prom-client";
import type { ObservedStack } from "../stack/control.ts";
import type { ActivityEntry, StackStatus } from "../stack/status.ts";

/** The activity kinds that are actions with an outcome (exits and health changes are counted elsewhere). */
const ACTIONS = new Set<ActivityEntry["kind"]>(["reload", "restart", "scale", "config"]);

export class StackMetrics {
  private readonly registry = new Registry();

  constructor(private readonly source: Pick<ObservedStack, "status" | "outcomes" | "proxyMetrics">) {
    const registers = [this.registry];
    const self = this;
    /** A gauge set from the status at each scrape: stale series (a removed app) go with the reset. */
    const gauge = (name: string, help: string, labelNames: string[], fill: (set: (labels: Record<string, string>, value: number) => void, status: StackStatus) => void) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          fill((labels, value) => this.set(labels, value), self.current());
        },
      });
    gauge("tsgi_pool_workers", "Workers an app runs now (a runtime `scale` can differ from the config file: a reload keeps it).", ["app"], (set, status) => {
      for (const pool of status.pools) set({ app: pool.app }, pool.instances);
    });
    gauge("tsgi_pool_configured_workers", "Workers the config file asks for, per app.", ["app"], (set, status) => {
      for (const pool of status.pools) set({ app: pool.app }, pool.configured);
    });
    gauge("tsgi_pool_ready_workers", "Workers of an app that are ready (started and accepting).", ["app"], (set, status) => {
      for (const pool of status.pools) set({ app: pool.app }, pool.ready);
    });
    gauge("tsgi_pool_balanced_workers", "Workers of an app in the proxy's balancing: ready and passing their health check.", ["app"], (set, status) => {
      for (const pool of status.pools) set({ app: pool.app }, pool.inPool);
    });
    gauge("tsgi_worker_balanced", "1 when a worker is in the proxy's balancing, 0 when it is not (starting, down, or out for a failed health check).", ["app", "worker"], (set, status) => {
      for (const worker of status.workers) set({ app: worker.app, worker: `${worker.app}.${worker.slot}` }, worker.inPool ? 1 : 0);
    });
    gauge("tsgi_worker_health_check_passing", "1 when a worker's last active health check passed, 0 when it failed (absent: the app has no health check).", ["app", "worker"], (set, status) => {
      for (const worker of status.workers) {
        if (worker.health !== "unchecked") set({ app: worker.app, worker: `${worker.app}.${worker.slot}` }, worker.health === "passing" ? 1 : 0);
      }
    });
    gauge("tsgi_worker_resident_memory_bytes", "A worker's resident memory, as pm2 last sampled it.", ["app", "worker"], (set, status) => {
      for (const worker of status.workers) if (worker.pid) set({ app: worker.app, worker: `${worker.app}.${worker.slot}` }, worker.memory);
    });
    gauge("tsgi_worker_cpu_ratio", "A worker's CPU use as pm2 last sampled it (1 is one core).", ["app", "worker"], (set, status) => {
      for (const worker of status.workers) if (worker.pid) set({ app: worker.app, worker: `${worker.app}.${worker.slot}` }, worker.cpu / 100);
    });
    gauge("tsgi_worker_in_flight_requests", "Requests the proxy has in flight to a worker now.", ["app", "worker"], (set, status) => {
      for (const worker of status.workers) set({ app: worker.app, worker: `${worker.app}.${worker.slot}` }, worker.inFlight);
    });
    new Counter({
      name: "tsgi_worker_restarts_total",
      help: "Times a worker slot was restarted after it exited (pm2's count).",
      labelNames: ["app", "worker"],
      registers,
      collect() {
        this.reset();
        for (const worker of self.current().workers) this.inc({ app: worker.app, worker: `${worker.app}.${worker.slot}` }, worker.restarts);
      },
    });
    new Counter({
      name: "tsgi_actions_total",
      help: "Reloads, restarts, scales and config changes, by kind, app (empty for the config file) and outcome (ok or failed).",
      labelNames: ["kind", "app", "outcome"],
      registers,
      collect() {
        this.reset();
        for (const { kind, app, ok, count } of source.outcomes()) {
          if (ACTIONS.has(kind)) this.inc({ kind, app, outcome: ok ? "ok" : "failed" }, count);
        }
      },
    });
  }

  /** The content type of the exposition (the text format, 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition: the stack's own metrics and every proxy process's, summed. */
  async exposition(): Promise<string> {
    this.snapshot = undefined;
    const own = await this.registry.metrics();
    this.snapshot = undefined;
    const proxies = this.source.proxyMetrics();
    // Two expositions end to end are one: their metric names are distinct.
    return proxies.length ? `${own}\n${await exposition(proxies)}` : own;
  }

  /** One status per scrape, shared by every gauge that reads it. */
  private snapshot: StackStatus | undefined;
  private current(): StackStatus {
    this.snapshot ??= this.source.status();
    return this.snapshot;
  }
}
