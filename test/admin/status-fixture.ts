/**
 * @module test/admin/status-fixture
 *
 * A StackStatus as a running stack of three apps would report it — web (two
 * workers, a health check), api (one worker), docs (a static folder) — and a
 * minute of series points, typed by the contract (src/stack/status.ts) so
 * that a change to it breaks these fixtures at compile time, not the page in
 * silence. Tests change copies (`structuredClone`) to make their updates.
 */
import type { EventsSnapshot, SeriesPoint, StackStatus, WorkerStatus } from "../../src/stack/status.ts";

/** Two hours ago, so that "up" reads as a stack that has run a while. */
const STARTED = new Date(Date.now() - 2 * 3600_000).toISOString();

function worker(app: string, slot: number, pid: number, extra: Partial<WorkerStatus> = {}): WorkerStatus {
  return {
    app,
    slot,
    name: `${app}.${slot}`,
    pid,
    state: "ready",
    uptime: 125_000,
    restarts: 0,
    memory: 64 * 1048576,
    cpu: 1.5,
    address: { kind: "unix", path: `/tmp/${app}.${slot}.sock` },
    inPool: true,
    health: "passing",
    lastHealthCheck: STARTED,
    inFlight: 0,
    requests: 1200 + slot,
    errors: 3,
    ...extra,
  };
}

export function stackStatus(): StackStatus {
  return {
    state: "running",
    pid: 4242,
    startedAt: STARTED,
    configFile: "/srv/site/tsgi.yaml",
    stackId: "fixture",
    listen: ["127.0.0.1:8080"],
    listenTls: [],
    admin: "127.0.0.1:8081",
    apps: [
      { app: "web", kind: "module", routes: ["*/"] },
      { app: "api", kind: "module", routes: ["api.example.com/"] },
      { app: "docs", kind: "static", routes: ["*/docs"], folder: "/srv/site/public" },
    ],
    reloadErrors: {},
    configErrors: [],
    pools: [
      { app: "web", state: "running", instances: 2, ready: 2, configured: 2, inPool: 2 },
      { app: "api", state: "running", instances: 1, ready: 1, configured: 1, inPool: 1 },
    ],
    workers: [worker("web", 0, 1001), worker("web", 1, 1002), worker("api", 0, 2001, { health: "unchecked", lastHealthCheck: undefined })],
    traffic: [
      { app: "web", requests: 2401, errors: 6, rate: 12.5, p50Ms: 3.2, p95Ms: 18 },
      { app: "api", requests: 300, errors: 0, rate: 1, p50Ms: 8, p95Ms: 40 },
      { app: "docs", requests: 50, errors: 0, rate: 0.2, p50Ms: 0.4, p95Ms: 1.1 },
    ],
    activity: [
      { at: "2026-01-01T10:00:05.000Z", kind: "reload", app: "web", ok: true, message: "2 workers replaced in 1.4 s" },
      { at: "2026-01-01T10:01:00.000Z", kind: "exit", app: "api", ok: false, message: "worker 0 exited with code 1" },
    ],
    recentErrors: [{ at: "2026-01-01T10:02:00.000Z", app: "web", status: 502, method: "GET", url: "/slow", worker: "web.1", code: "UPSTREAM_RESET", requestId: "req-1" }],
    proxies: [{ index: 0, pid: 3001, state: "ready", restarts: 0, since: STARTED }],
    logWrites: { access: { dropped: 0 }, stack: { dropped: 0 } },
  };
}

/** One second's point; the rate wanders so that the plot has a shape. */
export function point(t: number, i: number): SeriesPoint {
  return {
    t,
    apps: {
      web: { rate: 10 + (i % 7), p50Ms: 3, p95Ms: 15 + (i % 5), errors: i % 13 === 0 ? 1 : 0 },
      api: { rate: 1, p50Ms: 8, p95Ms: 40, errors: 0 },
    },
  };
}

/** The last `seconds` of points, one a second, the newest at `now`. */
export function series(now: number, seconds = 60): EventsSnapshot["series"] {
  const points = Array.from({ length: seconds }, (_, i) => point(now - (seconds - 1 - i) * 1000, i));
  return { stepMs: 1000, points };
}
