/**
 * @module stack/traffic
 *
 * The proxy processes' counters turned into what people read: per app, the
 * requests so far, the rate over the last seconds and the latency
 * percentiles over the last minute; per worker, its requests and errors; and
 * one point a second for the page's plots, the last few minutes of them.
 *
 * Once a second the counters of every proxy process are summed (prom-client's
 * AggregatorRegistry, the same sum GET /metrics serves), and kept: a rate is
 * the difference between two sums, a percentile is estimated from the
 * difference of two latency histograms, as Prometheus' histogram_quantile()
 * does (linear within a bucket).
 */
import { sumMetrics } from "./metrics-sum.ts";
import type { MetricsJson } from "../proxy/stats.ts";
import { LATENCY_BUCKETS } from "../proxy/stats.ts";
import type { AppTraffic, SeriesPoint } from "./status.ts";

/** One second's sums of one app's counters. */
interface AppTotals {
  requests: number;
  errors: number;
  /** Cumulative counts per latency bucket (LATENCY_BUCKETS, then +Inf). */
  buckets: number[];
}

interface Sample {
  t: number;
  apps: Map<string, AppTotals>;
  workers: Map<string, { requests: number; errors: number }>;
}

export const SAMPLE_MS = 1000;
/** The rate is over this window. */
const RATE_WINDOW = 10;
/** The percentiles are over this window (and samples are kept this long). */
const LATENCY_WINDOW = 60;
/** Points kept for the page's plots: five minutes of seconds. */
export const SERIES_POINTS = 300;

const emptyTotals = (): AppTotals => ({ requests: 0, errors: 0, buckets: new Array(LATENCY_BUCKETS.length + 1).fill(0) });

/** The sums of one second, read from the summed metrics. */
export function totalsOf(metrics: MetricsJson, t: number): Sample {
  const apps = new Map<string, AppTotals>();
  const workers = new Map<string, { requests: number; errors: number }>();
  const appTotals = (app: string) => {
    let totals = apps.get(app);
    if (!totals) apps.set(app, (totals = emptyTotals()));
    return totals;
  };
  const worker = (name: string) => {
    let totals = workers.get(name);
    if (!totals) workers.set(name, (totals = { requests: 0, errors: 0 }));
    return totals;
  };
  for (const metric of metrics) {
    for (const { labels, value, metricName } of metric.values) {
      const app = String(labels.app ?? "");
      if (metric.name === "tsgi_http_requests_total" && app) {
        const totals = appTotals(app);
        totals.requests += value;
        if (labels.code === "5xx") totals.errors += value;
      } else if (metric.name === "tsgi_http_request_duration_seconds" && app && metricName?.endsWith("_bucket")) {
        const le = labels.le === "+Inf" ? Infinity : Number(labels.le);
        const index = le === Infinity ? LATENCY_BUCKETS.length : LATENCY_BUCKETS.indexOf(le);
        if (index >= 0) appTotals(app).buckets[index]! += value;
      } else if (metric.name === "tsgi_worker_requests_total") {
        worker(String(labels.worker)).requests += value;
      } else if (metric.name === "tsgi_worker_errors_total") {
        worker(String(labels.worker)).errors += value;
      }
    }
  }
  return { t, apps, workers };
}

/**
 * The latency below which `q` of the requests fell (ms), from cumulative
 * bucket counts: linear within the bucket that holds the rank, as
 * Prometheus' histogram_quantile(). 0 when there were no requests.
 */
export function quantileMs(q: number, cumulative: readonly number[]): number {
  const total = cumulative.at(-1) ?? 0;
  if (total <= 0) return 0;
  const rank = q * total;
  for (let index = 0; index < cumulative.length; index++) {
    const count = cumulative[index]!;
    if (count < rank) continue;
    // Past the last finite bound, nothing is known but that bound.
    if (index === LATENCY_BUCKETS.length) return LATENCY_BUCKETS.at(-1)! * 1000;
    const lower = index === 0 ? 0 : LATENCY_BUCKETS[index - 1]!;
    const below = index === 0 ? 0 : cumulative[index - 1]!;
    const upper = LATENCY_BUCKETS[index]!;
    const share = count === below ? 0 : (rank - below) / (count - below);
    return Math.round((lower + (upper - lower) * share) * 1000 * 10) / 10;
  }
  return 0;
}

function minus(now: AppTotals, before: AppTotals | undefined): AppTotals {
  if (!before) return now;
  // A counter that went down is a fresh start (a proxy process replaced): count from zero.
  if (now.requests < before.requests) return now;
  return {
    requests: now.requests - before.requests,
    errors: now.errors - before.errors,
    buckets: now.buckets.map((count, index) => count - before.buckets[index]!),
  };
}

const round = (value: number) => Math.round(value * 10) / 10;

export class TrafficSeries {
  /** The last LATENCY_WINDOW + 1 samples, oldest first. */
  private samples: Sample[] = [];
  private readonly points: SeriesPoint[] = [];

  /** Sums `metrics` (every proxy process's) as of now; returns the new point of the plots, with every one of `apps` in it (0 when idle). */
  async sample(metrics: MetricsJson[], apps: readonly string[], now = Date.now()): Promise<SeriesPoint> {
    const summed = await sumMetrics(metrics);
    const sample = totalsOf(summed, now);
    for (const app of apps) if (!sample.apps.has(app)) sample.apps.set(app, emptyTotals());
    return this.add(sample);
  }

  /** Adds one second's sums (sample() reads them; tests give them directly). */
  add(sample: Sample): SeriesPoint {
    const previous = this.samples.at(-1);
    this.samples.push(sample);
    if (this.samples.length > LATENCY_WINDOW + 1) this.samples.shift();
    const seconds = previous ? Math.max(0.001, (sample.t - previous.t) / 1000) : 1;
    const point: SeriesPoint = { t: sample.t, apps: {} };
    for (const [app, totals] of sample.apps) {
      const delta = minus(totals, previous?.apps.get(app));
      point.apps[app] = {
        rate: round(delta.requests / seconds),
        p50Ms: quantileMs(0.5, delta.buckets),
        p95Ms: quantileMs(0.95, delta.buckets),
        errors: round(delta.errors / seconds),
      };
    }
    this.points.push(point);
    if (this.points.length > SERIES_POINTS) this.points.shift();
    return point;
  }

  /** The plots' points, oldest first. */
  series(): SeriesPoint[] {
    return [...this.points];
  }

  /** Per app: requests so far, the rate over RATE_WINDOW s and the percentiles over LATENCY_WINDOW s. */
  traffic(): AppTraffic[] {
    const latest = this.samples.at(-1);
    if (!latest) return [];
    const rateFrom = this.samples[Math.max(0, this.samples.length - 1 - RATE_WINDOW)]!;
    const latencyFrom = this.samples[0]!;
    return [...latest.apps].map(([app, totals]) => {
      const seconds = Math.max(1, (latest.t - rateFrom.t) / 1000);
      // One sample is no interval: no rate yet.
      const recent = rateFrom === latest ? emptyTotals() : minus(totals, rateFrom.apps.get(app));
      const minute = latencyFrom === latest ? totals : minus(totals, latencyFrom.apps.get(app));
      return {
        app,
        requests: totals.requests,
        errors: totals.errors,
        rate: round(recent.requests / seconds),
        p50Ms: quantileMs(0.5, minute.buckets),
        p95Ms: quantileMs(0.95, minute.buckets),
      };
    });
  }

  /** A worker's ("app.slot") requests and errors so far. */
  worker(name: string): { requests: number; errors: number } {
    return this.samples.at(-1)?.workers.get(name) ?? { requests: 0, errors: 0 };
  }
}
