/**
 * pm2 restarts a worker past max_memory_restart on its own, at every monitor
 * round; a delete of ours that races such a restart answers, and then pm2
 * puts the entry back with a new process that runs on under it for good.
 * Scaling to 0 — or a reload's old slot, or an app taken out of the config —
 * must still leave no process: the supervisor removes an entry pm2 lists for
 * a slot it no longer has at its next sample. Real pm2, real workers, which
 * here are all far above their 20 MB limit, so pm2 restarts them every second.
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Supervisor } from "../../src/supervisor/supervisor.ts";
import { eventually, modulePool, processesOfStack, SeenProcesses, sleep, tempStateDir } from "./helpers.ts";

const STACK = "losttest";
const APPS = ["fat0", "fat1", "fat2", "fat3"];
const stateDir = tempStateDir("lost");
const supervisor = new Supervisor({ stackId: STACK, stateDir, monitorIntervalMs: 1000 });
const seen = new SeenProcesses();
supervisor.onMembership((_app, ready) => ready.forEach((worker) => seen.add(worker.pid)));

beforeAll(async () => {
  const reports = await supervisor.start(APPS.map((app) => modulePool(app, "examples/hello/app.ts", 1, { maxMemoryBytes: 20 * 1024 * 1024 })));
  expect(reports.map((report) => report.ready)).toEqual([1, 1, 1, 1]);
}, 120_000);

afterAll(async () => {
  await supervisor.stop();
  expect(processesOfStack(STACK)).toEqual([]);
  expect(seen.stillRunning()).toEqual([]);
  rmSync(stateDir, { recursive: true, force: true });
}, 60_000);

describe("workers pm2 puts back after a delete", () => {
  it("leaves no process of an app scaled to 0 while pm2 restarts its worker every second", async () => {
    // Wait for pm2's restarts to begin, then scale each app to 0 at a different point of its restart cycle.
    await eventually(() => supervisor.status().some((row) => row.restarts > 0), 15_000, "pm2's first memory restart");
    for (const app of APPS) {
      await supervisor.scale(app, 0);
      await sleep(350);
    }
    for (const app of APPS) {
      await eventually(() => processesOfStack(STACK, app).length === 0, 10_000, `no process of ${app} left after scaling it to 0`);
    }
    // And none comes back: pm2 has no entry left to restart.
    await sleep(2500);
    expect(APPS.flatMap((app) => processesOfStack(STACK, app))).toEqual([]);
    expect(supervisor.status()).toEqual([]);
  }, 60_000);
});
