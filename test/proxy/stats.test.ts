/**
 * The proxy's counts in prom-client's JSON form, held to prom-client's own:
 * the same traffic recorded by ProxyStats and by prom-client's Counter and
 * Histogram gives the same values, so AggregatorRegistry sums ours as it
 * sums its own; and only the newest error entries travel in a report.
 */
import { Counter, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { LATENCY_BUCKETS, type MetricJson, ProxyStats } from "../../src/proxy/stats.ts";
import type { AccessEntry } from "../../src/proxy/exchange.ts";

const entry = (app: string | undefined, status: number, ms: number, endpoint?: string): AccessEntry => ({
  remoteAddr: "127.0.0.1",
  method: "GET",
  url: `/${status}`,
  httpVersion: "1.1",
  status,
  bytes: 0,
  ms,
  requestId: `id-${status}-${ms}`,
  ...(app === undefined ? {} : { app }),
  ...(endpoint === undefined ? {} : { endpoint }),
});

/** Values by metric name and label set, order aside (prom-client does not promise an order of label sets). */
function byLabels(metric: { values: { value: number; labels: object; metricName?: string }[] } | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const value of metric?.values ?? []) {
    const labels = Object.entries(value.labels).sort(([a], [b]) => a.localeCompare(b));
    out[`${value.metricName ?? ""}${JSON.stringify(labels)}`] = value.value;
  }
  return out;
}

describe("ProxyStats", () => {
  it("gives what prom-client's own Counter and Histogram give for the same traffic", async () => {
    const traffic: [string | undefined, number, number, string?][] = [
      ["web", 200, 3, "web.0"],
      ["web", 200, 7, "web.1"],
      ["web", 503, 40, "web.1"],
      ["web", 404, 2000, "web.0"],
      ["api", 201, 12_000, "api.0"],
      [undefined, 404, 1],
    ];
    const ours = new ProxyStats();
    for (const [app, status, ms, endpoint] of traffic) ours.record(entry(app, status, ms, endpoint));

    const registry = new Registry();
    const requests = new Counter({ name: "tsgi_http_requests_total", help: "-", labelNames: ["app", "code"], registers: [registry] });
    const duration = new Histogram({ name: "tsgi_http_request_duration_seconds", help: "-", labelNames: ["app"], buckets: LATENCY_BUCKETS, registers: [registry] });
    for (const [app, status, ms] of traffic) {
      requests.inc({ app: app ?? "", code: `${Math.floor(status / 100)}xx` });
      duration.observe({ app: app ?? "" }, ms / 1000);
    }
    const theirs = await registry.getMetricsAsJSON();
    const mine = ours.metrics();
    for (const name of ["tsgi_http_requests_total", "tsgi_http_request_duration_seconds"]) {
      const expected = byLabels(theirs.find((metric) => metric.name === name) as never);
      const actual = byLabels(mine.find((metric) => metric.name === name));
      expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
      for (const [key, value] of Object.entries(expected)) expect(actual[key], key).toBeCloseTo(value, 9);
    }
    const worker = (name: string, metric: string) =>
      mine.find((m: MetricJson) => m.name === metric)!.values.find((value) => value.labels.worker === name)?.value;
    expect(worker("web.1", "tsgi_worker_requests_total")).toBe(2);
    expect(worker("web.1", "tsgi_worker_errors_total")).toBe(1);
    expect(worker("web.0", "tsgi_worker_errors_total")).toBe(0);
  });

  it("counts failed tries by kind and retries, and connections open and accepted", () => {
    const stats = new ProxyStats();
    stats.upstreamFailure("web", "connect", true);
    stats.upstreamFailure("web", "connect", false);
    stats.upstreamFailure("web", "timeout", false);
    stats.connectionOpened();
    stats.connectionOpened();
    stats.connectionClosed();
    const metrics = stats.metrics();
    const values = (name: string) => metrics.find((metric) => metric.name === name)!.values;
    expect(values("tsgi_upstream_failures_total")).toEqual([
      { value: 2, labels: { app: "web", kind: "connect" } },
      { value: 1, labels: { app: "web", kind: "timeout" } },
    ]);
    expect(values("tsgi_upstream_retries_total")).toEqual([{ value: 1, labels: { app: "web" } }]);
    expect(values("tsgi_proxy_connections_total")[0]!.value).toBe(2);
    expect(values("tsgi_proxy_open_connections")[0]!.value).toBe(1);
  });

  it("counts the requests a limit per client address refused, by app and limit", () => {
    const stats = new ProxyStats();
    const refused = (app: string, code: string) => stats.record({ ...entry(app, 429, 0), error: code });
    refused("web", "TSGI_ERR_PROXY_RATE_LIMITED");
    refused("web", "TSGI_ERR_PROXY_RATE_LIMITED");
    refused("web", "TSGI_ERR_PROXY_CONN_LIMITED");
    refused("api", "TSGI_ERR_PROXY_NO_ROUTE");
    stats.record(entry("api", 200, 1));
    const limited = stats.metrics().find((metric) => metric.name === "tsgi_proxy_limited_requests_total")!;
    expect(limited.type).toBe("counter");
    expect(limited.values).toEqual([
      { value: 2, labels: { app: "web", limit: "rate" } },
      { value: 1, labels: { app: "web", limit: "conn" } },
    ]);
  });

  it("keeps the 20 newest 5xx entries between two reports, and none of the 2xx-4xx", () => {
    const stats = new ProxyStats();
    for (let i = 0; i < 30; i++) stats.record(entry("web", 500 + (i % 4), i, "web.0"));
    stats.record(entry("web", 404, 1));
    const taken = stats.takeErrors();
    expect(taken).toHaveLength(20);
    expect(taken[0]!.url).toBe("/502");
    expect(taken.every((error) => error.status >= 500)).toBe(true);
    expect(stats.takeErrors()).toEqual([]);
  });
});
