/**
 * GET /metrics of a real two-app stack, read as Prometheus reads it:
 * promtool's linter accepts it, and the official client's parser finds in it
 * exactly the traffic the test sent, the pools as they stand, a killed
 * worker's restart, a reload's outcome and a failing health check.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpGet } from "../helpers/serve.ts";
import { parseExposition, promtoolCheck, type Sample, sumOf } from "../helpers/prometheus.ts";
import { statusJson } from "../helpers/stack.ts";
import { Started, twoAppStack, until } from "./fixture.ts";

const started = new Started();
let file: string;
let front: string;
let admin: string;

async function metrics(): Promise<{ text: string; samples: Sample[]; contentType: string }> {
  const answer = await fetch(`${admin}/metrics`);
  const text = await answer.text();
  expect(answer.status).toBe(200);
  return { text, samples: parseExposition(text), contentType: answer.headers.get("content-type") ?? "" };
}

beforeAll(async () => {
  ({ file, front, admin } = await twoAppStack(started));
}, 90_000);

afterAll(() => started.cleanUp(), 60_000);

describe("GET /metrics", () => {
  it("counts by app and status class exactly the requests sent, with their latency histogram and per-worker counts", async () => {
    for (let i = 0; i < 20; i++) expect((await httpGet(`${front}/`)).status).toBe(200);
    expect((await httpGet(`${front}/boom`)).status).toBe(500);
    for (let i = 0; i < 3; i++) expect((await httpGet(`${front}/api/x`)).status).toBe(200);
    // The proxy process reports once a second.
    const { samples, contentType } = await until(metrics, ({ samples }) => sumOf(samples, "tsgi_http_requests_total", { app: "api" }) === 3);
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sumOf(samples, "tsgi_http_requests_total", { app: "web", code: "2xx" })).toBe(20);
    expect(sumOf(samples, "tsgi_http_requests_total", { app: "web", code: "5xx" })).toBe(1);
    expect(sumOf(samples, "tsgi_http_requests_total", { app: "api", code: "2xx" })).toBe(3);
    expect(sumOf(samples, "tsgi_http_request_duration_seconds_count", { app: "web" })).toBe(21);
    expect(sumOf(samples, "tsgi_http_request_duration_seconds_bucket", { app: "web", le: "+Inf" })).toBe(21);
    // Both web workers took some (round robin), and together all 21.
    expect(sumOf(samples, "tsgi_worker_requests_total", { worker: "web.0" })).toBeGreaterThan(0);
    expect(sumOf(samples, "tsgi_worker_requests_total", { worker: "web.1" })).toBeGreaterThan(0);
    expect(sumOf(samples, "tsgi_worker_requests_total", { app: "web" })).toBe(21);
    expect(sumOf(samples, "tsgi_worker_errors_total", { app: "web" })).toBe(1);
    expect(sumOf(samples, "tsgi_proxy_connections_total")).toBeGreaterThanOrEqual(24);
  });

  it("says how each pool stands: running, configured, ready and balanced workers, memory per worker", async () => {
    const { samples } = await metrics();
    for (const [app, count] of [["web", 2], ["api", 1]] as const) {
      expect(sumOf(samples, "tsgi_pool_workers", { app })).toBe(count);
      expect(sumOf(samples, "tsgi_pool_configured_workers", { app })).toBe(count);
      expect(sumOf(samples, "tsgi_pool_ready_workers", { app })).toBe(count);
      expect(sumOf(samples, "tsgi_pool_balanced_workers", { app })).toBe(count);
    }
    const status = await statusJson(file);
    for (const worker of status.workers) {
      expect(sumOf(samples, "tsgi_worker_resident_memory_bytes", { worker: `${worker.app}.${worker.slot}` })).toBeGreaterThan(1024 * 1024);
    }
  });

  it("passes promtool's lint and the Prometheus parser", async () => {
    const { text } = await metrics();
    const check = promtoolCheck(text);
    expect(check.output).toBe("");
    expect(check.code).toBe(0);
    // Every family has its HELP and TYPE (the parser keeps them): counters end in _total, as Prometheus wants.
    const counters = parseExposition(text).filter((sample) => sample.type === "counter");
    expect(counters.length).toBeGreaterThan(0);
    for (const sample of counters) expect(sample.name).toMatch(/_total$/);
  });

  it("counts a killed worker's restart, a reload's outcome, a failing health check, and a worker dying mid-request (failures, a retry)", async () => {
    const before = await statusJson(file);
    const victim = before.workers.find((row: any) => row.app === "api");
    process.kill(victim.pid, "SIGKILL");
    const restarted = await until(metrics, ({ samples }) => sumOf(samples, "tsgi_worker_restarts_total", { worker: "api.0" }) === 1);
    expect(sumOf(restarted.samples, "tsgi_worker_restarts_total", { worker: "api.0" })).toBe(1);

    const reload = await fetch(`${admin}/reload?app=api`, { method: "POST" });
    expect(reload.status).toBe(200);
    const reloaded = await until(metrics, ({ samples }) => sumOf(samples, "tsgi_actions_total", { kind: "reload", app: "api", outcome: "ok" }) === 1);
    expect(sumOf(reloaded.samples, "tsgi_actions_total", { kind: "reload", app: "api", outcome: "ok" })).toBe(1);

    await httpGet(`${front}/sick`);
    const sick = await until(metrics, ({ samples }) => sumOf(samples, "tsgi_pool_balanced_workers", { app: "web" }) === 1);
    expect(sumOf(sick.samples, "tsgi_pool_balanced_workers", { app: "web" })).toBe(1);
    expect(sumOf(sick.samples, "tsgi_pool_ready_workers", { app: "web" })).toBe(2);
    expect(sumOf(sick.samples, "tsgi_worker_health_check_passing", { app: "web" })).toBe(1);
    for (const status of await Promise.all(["/", "/", "/", "/"].map((path) => httpGet(`${front}${path}`)))) expect(status.status).toBe(200);

    // A worker that dies mid-request: the GET goes on to the app's other worker (a retry), which dies too: 502.
    expect((await fetch(`${admin}/scale?app=api&n=2`, { method: "POST" })).status).toBe(200);
    expect((await httpGet(`${front}/api/crash`)).status).toBe(502);
    const failed = await until(metrics, ({ samples }) => sumOf(samples, "tsgi_upstream_failures_total", { app: "api" }) === 2);
    expect(sumOf(failed.samples, "tsgi_upstream_failures_total", { app: "api" })).toBe(2);
    expect(sumOf(failed.samples, "tsgi_upstream_retries_total", { app: "api" })).toBe(1);
    expect(sumOf(failed.samples, "tsgi_http_requests_total", { app: "api", code: "5xx" })).toBe(1);
    const status = await statusJson(file);
    for (const row of status.workers) started.pids.add(row.pid);
  }, 60_000);
});
