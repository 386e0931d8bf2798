/**
 * The admin listener's rules, with fake data: the latency percentiles and
 * rates the page and `status` show (checked against hand-computed
 * histogram_quantile values), who the auth lets in, and the size of one live
 * update for a big stack (20 apps × 4 workers: under 100 KB).
 */
import type http from "node:http";
import { describe, expect, it } from "vitest";
import { AdminAuth, isLoopbackHost, tokenOf } from "../../src/admin/auth.ts";
import { LATENCY_BUCKETS } from "../../src/proxy/stats.ts";
import { quantileMs, TrafficSeries } from "../../src/stack/traffic.ts";
import type { EventsUpdate, StackStatus, WorkerStatus } from "../../src/stack/status.ts";

const fakeRequest = (headers: Record<string, string>) => ({ headers }) as unknown as http.IncomingMessage;

/** Cumulative bucket counts for the LATENCY_BUCKETS (then +Inf) from per-bucket counts. */
const cumulative = (perBucket: number[]) => perBucket.map((_, index) => perBucket.slice(0, index + 1).reduce((a, b) => a + b, 0));

describe("latency percentiles (as Prometheus' histogram_quantile)", () => {
  it("interpolates within the bucket holding the rank", () => {
    // 100 requests: 50 in (0, 5 ms], 50 in (5, 10 ms].
    const buckets = cumulative([50, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(quantileMs(0.5, buckets)).toBe(5);
    expect(quantileMs(0.95, buckets)).toBe(9.5);
    expect(quantileMs(0.25, buckets)).toBe(2.5);
  });

  it("is 0 with no requests, and the highest bound when the rank is past it", () => {
    expect(quantileMs(0.5, new Array(LATENCY_BUCKETS.length + 1).fill(0))).toBe(0);
    const slow = cumulative([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10]);
    expect(quantileMs(0.5, slow)).toBe(10_000);
  });
});

describe("TrafficSeries", () => {
  const at = (t: number, requests: number, errors = 0) => ({
    t,
    apps: new Map([["web", { requests, errors, buckets: cumulative([requests, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) }]]),
    workers: new Map([["web.0", { requests, errors }]]),
  });

  it("gives each point the second's rate, and traffic() the rate over the last 10 s", () => {
    const series = new TrafficSeries();
    expect(series.add(at(0, 0)).apps.web!.rate).toBe(0);
    for (let second = 1; second <= 12; second++) series.add(at(second * 1000, second * 50, second));
    const [web] = series.traffic();
    expect(web).toMatchObject({ app: "web", requests: 600, errors: 12, rate: 50 });
    expect(series.series().at(-1)!.apps.web).toMatchObject({ rate: 50, errors: 1 });
    expect(series.worker("web.0")).toEqual({ requests: 600, errors: 12 });
  });

  it("takes a counter that went down (a proxy process replaced) as a fresh start, never a negative rate", () => {
    const series = new TrafficSeries();
    series.add(at(0, 1000));
    const point = series.add(at(1000, 30));
    expect(point.apps.web!.rate).toBe(30);
  });

  it("keeps five minutes of points", () => {
    const series = new TrafficSeries();
    for (let second = 0; second < 400; second++) series.add(at(second * 1000, second));
    expect(series.series()).toHaveLength(300);
    expect(series.series()[0]!.t).toBe(100_000);
  });
});

describe("AdminAuth", () => {
  it("reads a Bearer token and a Basic password", () => {
    expect(tokenOf(fakeRequest({ authorization: "Bearer abc" }))).toBe("abc");
    expect(tokenOf(fakeRequest({ authorization: `Basic ${Buffer.from("me:pa:ss").toString("base64")}` }))).toBe("pa:ss");
    expect(tokenOf(fakeRequest({ authorization: "Digest x" }))).toBeUndefined();
    expect(tokenOf(fakeRequest({}))).toBeUndefined();
  });

  it("knows loopback names and addresses", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "app.localhost", "[::1]", "::1"]) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ["0.0.0.0", "10.0.0.1", "::", "example.com", "128.0.0.1", ""]) expect(isLoopbackHost(host), host).toBe(false);
  });

  it("with no token: loopback Host only; writes only from this origin", () => {
    const auth = new AdminAuth(undefined);
    expect(auth.check(fakeRequest({ host: "127.0.0.1:8081" }), false).ok).toBe(true);
    expect(auth.check(fakeRequest({ host: "localhost:8081" }), true).ok).toBe(true);
    expect(auth.check(fakeRequest({ host: "evil.example:8081" }), false)).toMatchObject({ ok: false, status: 403 });
    expect(auth.check(fakeRequest({ host: "127.0.0.1:8081", origin: "http://127.0.0.1:8081" }), true).ok).toBe(true);
    expect(auth.check(fakeRequest({ host: "127.0.0.1:8081", origin: "http://127.0.0.1:9999" }), true)).toMatchObject({ ok: false, status: 403 });
    expect(auth.check(fakeRequest({ host: "127.0.0.1:8081", origin: "null" }), true)).toMatchObject({ ok: false, status: 403 });
    expect(auth.check(fakeRequest({ host: "127.0.0.1:8081", "sec-fetch-site": "same-site" }), true)).toMatchObject({ ok: false, status: 403 });
    // A read from another origin changes nothing: it is the browser's same-origin policy that keeps the answer from that page.
    expect(auth.check(fakeRequest({ host: "127.0.0.1:8081", origin: "http://elsewhere" }), false).ok).toBe(true);
  });

  it("with a token: 401 without it or with a wrong one, whatever the Host", () => {
    const auth = new AdminAuth("0123456789abcdef");
    expect(auth.check(fakeRequest({ host: "stack.example" }), false)).toMatchObject({ ok: false, status: 401 });
    expect(auth.check(fakeRequest({ host: "stack.example", authorization: "Bearer 0123456789abcdeX" }), false)).toMatchObject({ ok: false, status: 401 });
    expect(auth.check(fakeRequest({ host: "stack.example", authorization: "Bearer 0123456789abcde" }), false)).toMatchObject({ ok: false, status: 401 });
    expect(auth.check(fakeRequest({ host: "stack.example", authorization: "Bearer 0123456789abcdef" }), false).ok).toBe(true);
  });
});

describe("one live update of a big stack", () => {
  it("20 apps × 4 workers, with full activity and error lists, is under 100 KB", () => {
    const apps = Array.from({ length: 20 }, (_, index) => `application-number-${index}`);
    const worker = (app: string, slot: number): WorkerStatus => ({
      app,
      slot,
      name: `tsgi:tsgi-0123abcd:${app}:${slot}`,
      pid: 4_000_000 + slot,
      state: "ready",
      uptime: 123_456_789,
      restarts: 12,
      memory: 123_456_789,
      cpu: 12.5,
      address: { kind: "unix", path: `/srv/stacks/production/.tsgi/sockets/${app}.${slot}.sock` },
      lastError: "exited with code 1 after 1234 ms",
      inPool: false,
      health: "failing",
      outReason: "GET /healthz answered 503",
      lastHealthCheck: new Date().toISOString(),
      inFlight: 12,
      requests: 123_456_789,
      errors: 1234,
    });
    const at = new Date().toISOString();
    const status: StackStatus = {
      state: "running",
      pid: 1234,
      startedAt: at,
      configFile: "/srv/stacks/production/tsgi.yaml",
      stackId: "tsgi-0123abcd",
      listen: ["0.0.0.0:80"],
      listenTls: ["0.0.0.0:443"],
      admin: "127.0.0.1:8081",
      apps: apps.map((app) => ({ app, kind: "module", routes: [`${app}.example.com/`, `*/${app}`] })),
      reloadErrors: {},
      configErrors: [],
      pools: apps.map((app) => ({ app, state: "degraded", instances: 4, ready: 4, configured: 4, inPool: 3 })),
      workers: apps.flatMap((app) => [0, 1, 2, 3].map((slot) => worker(app, slot))),
      traffic: apps.map((app) => ({ app, requests: 123_456_789, errors: 1234, rate: 1234.5, p50Ms: 12.3, p95Ms: 123.4 })),
      activity: Array.from({ length: 50 }, (_, index) => ({
        at,
        app: apps[index % 20]!,
        kind: "reload" as const,
        ok: false,
        message: `${apps[index % 20]}: reload failed, the running workers keep serving: new worker 2 exited with code 4 (APP_LOAD_ERROR) before it was ready`,
      })),
      recentErrors: Array.from({ length: 50 }, (_, index) => ({
        at,
        app: apps[index % 20]!,
        status: 502,
        method: "POST",
        url: `/${"x".repeat(200)}`,
        worker: `${apps[index % 20]}.3`,
        code: "TSGI_ERR_PROXY_UPSTREAM_FAILED",
        requestId: "ecd7c194-b127-42ec-8d69-3f8a4f3985d2",
      })),
      proxies: [{ index: 0, pid: 1235, state: "ready", restarts: 0, since: at }],
      logWrites: { access: { dropped: 0 }, stack: { dropped: 0 } },
    };
    const point = { t: Date.now(), apps: Object.fromEntries(apps.map((app) => [app, { rate: 1234.5, p50Ms: 12.3, p95Ms: 123.4, errors: 12.5 }])) };
    const update: EventsUpdate = { status, point };
    const bytes = Buffer.byteLength(`event: update\ndata: ${JSON.stringify(update)}\n\n`);
    expect(bytes).toBeLessThan(100 * 1024);
  });
});
