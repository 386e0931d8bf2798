/**
 * The status table from fixed StackStatus data: what each column and each
 * line under the table says, and that colour repeats the words without
 * changing them (the integration tests read the same table from a real stack).
 */
import { describe, expect, it } from "vitest";
import { renderStatus } from "../../src/cli/status-table.ts";
import { colour, colourWanted, noColour, painterFor } from "../../src/cli/colour.ts";
import type { PoolStatus, StackStatus, WorkerStatus } from "../../src/stack/status.ts";

const ESC = "\u001b[";
const MIB = 1024 * 1024;

function worker(slot: number, fields: Partial<WorkerStatus> = {}): WorkerStatus {
  return {
    app: "web",
    slot,
    name: `tsgi:test:web:${slot}`,
    pid: 1000 + slot,
    state: "ready",
    uptime: 125_000,
    restarts: 0,
    memory: 48.5 * MIB,
    cpu: 1,
    address: null,
    inPool: true,
    health: "passing",
    inFlight: 0,
    requests: 120,
    errors: 0,
    ...fields,
  };
}

function pool(fields: Partial<PoolStatus> = {}): PoolStatus {
  return { app: "web", state: "running", instances: 2, ready: 2, configured: 2, inPool: 2, ...fields };
}

function stackStatus(fields: Partial<StackStatus> = {}): StackStatus {
  return {
    state: "running",
    pid: 4242,
    startedAt: "2026-01-01T12:00:00.000Z",
    configFile: "/srv/tsgi.yaml",
    stackId: "tsgi-abc",
    listen: ["127.0.0.1:8080"],
    listenTls: [],
    admin: "127.0.0.1:8081",
    apps: [
      { app: "web", kind: "module", routes: ["*/"] },
      { app: "docs", kind: "static", routes: ["*/docs"], folder: "/srv/public" },
    ],
    reloadErrors: {},
    configErrors: [],
    pools: [pool()],
    workers: [worker(0), worker(1)],
    traffic: [],
    activity: [],
    recentErrors: [],
    proxies: [],
    logWrites: { access: { dropped: 0 }, stack: { dropped: 0 } },
    ...fields,
  };
}

/** The table's rows, split into cells on runs of two or more spaces. */
const cells = (text: string, app: string) =>
  text
    .split("\n")
    .filter((line) => line.startsWith(`${app} `))
    .map((line) => line.split(/\s{2,}/));

describe("status table", () => {
  it("has a column per thing a person checks, memory labelled and printed in MiB", () => {
    const text = renderStatus(stackStatus());
    const lines = text.split("\n");
    expect(lines[0]).toBe("stack tsgi-abc (pid 4242) serving http://127.0.0.1:8080");
    expect(lines[1]!.split(/\s+/)).toEqual(["APP", "SLOT", "PID", "STATE", "HEALTH", "POOL", "UPTIME", "RESTARTS", "MEMORY", "CPU", "REQS", "ERRS"]);
    expect(cells(text, "web")[0]).toEqual(["web", "0", "1000", "ready", "passing", "in", "2m", "0", "48.5 MiB", "1%", "120", "0"]);
    expect(text).not.toMatch(/\bMB\b/);
  });

  it("lists a static app as a row and a line with its folder", () => {
    const text = renderStatus(stackStatus());
    expect(cells(text, "docs")[0]!.slice(0, 4)).toEqual(["docs", "-", "-", "static"]);
    expect(text).toContain("docs: static files from /srv/public, served by the proxy (no workers)");
  });

  it("says failing and out for a worker failing its health check, and why under the table", () => {
    const text = renderStatus(
      stackStatus({
        pools: [pool({ inPool: 1 })],
        workers: [worker(0), worker(1, { health: "failing", inPool: false, outReason: "health check GET /healthz: 500 Internal Server Error" })],
      }),
    );
    expect(cells(text, "web")[1]!.slice(3, 6)).toEqual(["ready", "failing", "out"]);
    expect(text).toContain("web: 1 of 2 ready worker(s) in the pool");
    expect(text).toContain("web.1: out of the pool: health check GET /healthz: 500 Internal Server Error");
  });

  it("shows no health for an app without a check, and a worker that is not running as out with its last error", () => {
    const text = renderStatus(
      stackStatus({ workers: [worker(0, { health: "unchecked" }), worker(1, { state: "down", pid: 0, inPool: false, health: "unchecked", lastError: "exited with code 1 after 300 ms" })] }),
    );
    expect(cells(text, "web").map((row) => row.slice(2, 6))).toEqual([
      ["1000", "ready", "-", "in"],
      ["-", "down", "-", "out"],
    ]);
    expect(text).toContain("web.1: exited with code 1 after 300 ms");
    expect(text).not.toContain("out of the pool");
  });

  it("says when an app runs another number of workers than the config, and what returns it to the config's", () => {
    const text = renderStatus(stackStatus({ pools: [pool({ instances: 3, ready: 3, inPool: 3 })], workers: [worker(0), worker(1), worker(2)] }));
    expect(text).toContain(
      "web: 3 worker(s) running, the config says 2 (scaled at run time: `reload` keeps 3; `scale web 2`, a saved change to web in the file, or the next `up` returns to 2)",
    );
    expect(renderStatus(stackStatus())).not.toContain("the config says");
  });

  it("keeps config errors and reload errors under the table, with the failing source line", () => {
    const text = renderStatus(
      stackStatus({
        configErrors: ["/srv/tsgi.yaml:4:16 apps.web.instances: must be >= 1"],
        reloadErrors: { web: { message: "new worker 2 exited with code 4 (APP_LOAD_ERROR)", frame: "  3 | export const app = (\n> 4 |   oops(", at: "2026-01-01T12:05:00.000Z" } },
      }),
    );
    const lines = text.split("\n");
    const tableEnd = lines.findIndex((line) => line.startsWith("docs: static"));
    const configAt = lines.findIndex((line) => line.includes("config file has errors; the running config stays until they are fixed:"));
    expect(configAt).toBeGreaterThan(tableEnd);
    expect(lines[configAt + 1]).toBe("  /srv/tsgi.yaml:4:16 apps.web.instances: must be >= 1");
    expect(text).toContain("web: reload failed at 2026-01-01T12:05:00.000Z, the running workers keep serving: new worker 2 exited with code 4 (APP_LOAD_ERROR)");
    expect(text).toContain("    > 4 |   oops(");
  });

  it("says a halted pool, a worker pm2 cannot restart and log lines lost to the disk, as before", () => {
    const text = renderStatus(
      stackStatus({
        pools: [pool({ state: "errored", ready: 0, inPool: 0, error: { reason: "crash-loop", message: "worker 0 exited with code 1 10 times in a row", summary: "", slot: 0, stderr: [] } })],
        workers: [worker(0, { state: "errored", pid: 0, inPool: false, lastError: "pm2 did not restart it: EROFS" })],
        logWrites: { access: { dropped: 3, lastError: { code: "ENOSPC", message: "ENOSPC: no space left on device", at: "2026-01-01T12:01:00.000Z" } }, stack: { dropped: 0 } },
      }),
    );
    expect(text).toContain("web: halted: worker 0 exited with code 1 10 times in a row");
    expect(text).toContain("web.0: pm2 did not restart it: EROFS");
    expect(text).toContain("access log: 3 line(s) not written (last at 2026-01-01T12:01:00.000Z: ENOSPC: no space left on device)");
  });

  it("lists the newest activity and the traffic when the stack sends them", () => {
    const activity = Array.from({ length: 8 }, (_, i) => ({ at: `2026-01-01T12:0${i}:00.000Z`, app: "web", kind: "scale" as const, ok: true, message: `scaled to ${i + 1}` }));
    const text = renderStatus(stackStatus({ activity, traffic: [{ app: "web", requests: 10, errors: 1, rate: 2.5, p50Ms: 4, p95Ms: 20 }] }));
    expect(text).toContain("  web: 10 request(s), 1 error(s), 2.5/s, p50 4 ms, p95 20 ms");
    expect(text).toContain("recent activity:");
    expect(text).not.toContain("scaled to 3");
    expect(text).toContain("  12:07:00  web scale ok: scaled to 8");
    expect(renderStatus(stackStatus())).not.toContain("recent activity");
  });

  it("reads the answer of an older stack, without health, pool or traffic fields", () => {
    const old = stackStatus();
    const workers = old.workers.map(({ inPool: _inPool, health: _health, requests: _requests, errors: _errors, ...row }) => row);
    const text = renderStatus({ ...old, workers, apps: undefined, traffic: undefined, activity: undefined } as unknown as StackStatus);
    expect(cells(text, "web")[0]!.slice(3, 6)).toEqual(["ready", "-", "in"]);
  });
});

describe("status colour", () => {
  const failing = stackStatus({ workers: [worker(0), worker(1, { health: "failing", inPool: false })], pools: [pool({ inPool: 1 })] });

  it("is none without a painter, and the same words with one", () => {
    const plain = renderStatus(failing);
    expect(plain).not.toContain(ESC);
    const painted = renderStatus(failing, { paint: colour });
    expect(painted).toContain(`${ESC}32mready${ESC}39m`);
    expect(painted).toContain(`${ESC}31mfailing${ESC}39m`);
    expect(painted.replace(/\u001b\[[0-9;]*m/g, "")).toBe(plain);
  });

  it("is on for a terminal with colours, off when piped or with NO_COLOR, on with FORCE_COLOR", () => {
    const terminal = { isTTY: true, hasColors: () => true };
    const pipe = { isTTY: false };
    expect(colourWanted(terminal, {})).toBe(true);
    expect(colourWanted(pipe, {})).toBe(false);
    expect(colourWanted(terminal, { NO_COLOR: "1" })).toBe(false);
    expect(colourWanted({ isTTY: true, hasColors: () => false }, {})).toBe(false);
    expect(colourWanted(pipe, { FORCE_COLOR: "1" })).toBe(true);
    expect(colourWanted(terminal, { FORCE_COLOR: "0" })).toBe(false);
    expect(colourWanted(pipe, { FORCE_COLOR: "1", NO_COLOR: "1" })).toBe(false);
    expect(renderStatus(failing, { paint: painterFor(pipe, {}) })).not.toContain(ESC);
    expect(renderStatus(failing, { paint: painterFor(terminal, {}) })).toContain(ESC);
    expect(painterFor(terminal, { NO_COLOR: "1" })).toBe(noColour);
  });
});
