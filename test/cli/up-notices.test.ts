/**
 * What `up` tells the user: `--watch` with nothing to watch says so, instead
 * of doing nothing silently; its summary says how each app stands when it is
 * printed — static apps included, and never `ready` for one that crashed
 * since up began.
 */
import { describe, expect, it } from "vitest";
import { watchNotice } from "../../src/cli/commands/up.ts";
import { ExitTally, summaryLines } from "../../src/cli/up-summary.ts";
import type { PoolStatus, WorkerStatus } from "../../src/stack/status.ts";
import type { StackConfig } from "../../src/config/schema.ts";

const config = (watch: string[][]) => ({ apps: Object.fromEntries(watch.map((globs, i) => [`app${i}`, { watch: globs }])) }) as unknown as StackConfig;

describe("up --watch", () => {
  it("says so when no app has watch globs", () => {
    expect(watchNotice("/srv/tsgi.yaml", config([[], []]), true)).toBe(
      '--watch: no app in tsgi.yaml has `watch` globs, so nothing is watched (add `watch: ["src/**"]` to an app)',
    );
  });
  it("says nothing when an app watches something, or without --watch", () => {
    expect(watchNotice("/srv/tsgi.yaml", config([[], ["src/**"]]), true)).toBeUndefined();
    expect(watchNotice("/srv/tsgi.yaml", config([[]]), false)).toBeUndefined();
  });
});

const pool = (app: string, fields: Partial<PoolStatus> = {}): PoolStatus => ({ app, state: "running", instances: 1, ready: 1, configured: 1, inPool: 1, ...fields });
const worker = (app: string, fields: Partial<WorkerStatus> = {}): WorkerStatus =>
  ({ app, slot: 0, name: `${app}:0`, pid: 10, state: "ready", uptime: 1000, restarts: 0, memory: 0, cpu: 0, address: null, inPool: true, health: "unchecked", inFlight: 0, requests: 0, errors: 0, ...fields }) as WorkerStatus;

describe("up's summary", () => {
  const apps = {
    web: { module: "/srv/web.ts", routes: [{ path: "/web" }] },
    "a-rather-long-app-name": { command: "node s.js", routes: [{ path: "/long" }] },
    site: { static: "/srv/public", routes: [{ path: "/site" }] },
  };
  const stackConfig = { apps } as unknown as StackConfig;

  it("lines up its columns whatever the length of the app names, and lists static apps", () => {
    const status = { pools: [pool("web"), pool("a-rather-long-app-name")], workers: [worker("web"), worker("a-rather-long-app-name")] };
    const lines = summaryLines(stackConfig, status);
    const column = (line: string) => line.indexOf("1/1 ready");
    expect(column(lines[0]!)).toBeGreaterThan("  a-rather-long-app-name".length);
    expect(column(lines[0]!)).toBe(column(lines[1]!));
    expect(lines[2]).toMatch(/^ {2}site\s+static\s+folder \S*srv\/public {2}routes: \/site$/);
  });

  it("does not call an app ready that exited since up began, or that pm2 restarted, and says the last exit", () => {
    const status = { pools: [pool("web"), pool("a-rather-long-app-name", { ready: 0, state: "starting" })], workers: [worker("web"), worker("a-rather-long-app-name", { restarts: 2, state: "starting" })] };
    const exits = new ExitTally();
    exits.note({ type: "worker-exit", app: "web", slot: 0, exitCode: 1, uptimeMs: 300 });
    const lines = summaryLines(stackConfig, status, exits.exits);
    expect(lines[0]).toMatch(/^ {2}web\s+RESTARTING\s+module/);
    expect(lines[1]).toMatch(/^\s+1 worker exit\(s\) since up, the last: web\.0 exited with code 1 after 300 ms; `tsgi-stack logs web` says why$/);
    expect(lines[2]).toMatch(/^ {2}a-rather-long-app-name\s+RESTARTING\s+command/);
    expect(lines.join("\n")).not.toMatch(/\d\/\d ready/);
  });

  it("says a halted pool, and a pool short of workers or of workers in the pool", () => {
    const halted = pool("web", { state: "errored", ready: 0, error: { reason: "crash-loop", message: "worker 0 exited with code 1 (crash loop)", summary: "", slot: 0, stderr: [] } });
    const lines = summaryLines({ apps: { web: apps.web } } as unknown as StackConfig, { pools: [halted], workers: [] });
    expect(lines).toEqual([expect.stringMatching(/^ {2}web\s+ERRORED\s+module/), expect.stringMatching(/^\s+worker 0 exited with code 1 \(crash loop\)$/)]);
    const out = summaryLines({ apps: { web: apps.web } } as unknown as StackConfig, {
      pools: [pool("web", { instances: 2, ready: 2, inPool: 1 })],
      workers: [worker("web"), worker("web", { slot: 1, inPool: false, health: "failing", outReason: "health check: 500" })],
    });
    expect(out[0]).toMatch(/2\/2 ready, 1 in the pool/);
    expect(out[1]).toMatch(/web\.1: health check: 500$/);
  });
});
