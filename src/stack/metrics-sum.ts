/**
 * @module stack/metrics-sum
 *
 * The proxy processes' metrics summed into one set, by prom-client's
 * AggregatorRegistry: counters and histogram buckets added label set by
 * label set, as node:cluster apps sum their workers'. Used once a second for
 * the traffic figures, at each scrape for GET /metrics, and to fold the
 * counts of proxy processes that exited.
 */
import { AggregatorRegistry } from "prom-client";
import type { MetricsJson } from "../proxy/stats.ts";

/** The sum of `sets`, in the same JSON form. */
export async function sumMetrics(sets: readonly MetricsJson[]): Promise<MetricsJson> {
  if (sets.length === 0) return [];
  // prom-client types `type` as its MetricType enum, whose values are the same strings.
  return (await AggregatorRegistry.aggregate([...sets]).getMetricsAsJSON()) as unknown as MetricsJson;
}

/** The sum of `sets` in Prometheus' text format. */
export function exposition(sets: readonly MetricsJson[]): Promise<string> {
  return AggregatorRegistry.aggregate([...sets]).metrics();
}
