/**
 * pm2's daemon SIGKILLed under a running `tsgi-stack up`, then one of its
 * workers killed too (a fault campaign's case: before, nothing noticed, the
 * dead worker stayed `ready` in `status`, and reload, restart, scale and down
 * hung or lied). Now: within 10 s every worker runs again on a new daemon,
 * `status` shows live pids, the control commands answer, and Ctrl-C leaves
 * nothing behind so that the next `up` starts on the same sockets.
 *
 * And the other way round: the stack process SIGKILLed, pm2's daemon and the
 * workers left running. `status` says so instead of a plain "not running",
 * and `down` stops them.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { ROOT, httpGet, runCli, sleep } from "../helpers/serve.ts";
import { cleanUpStacks, pm2DaemonPid, stackDir, statusJson, up } from "../helpers/stack.ts";
import { isAlive } from "../../src/supervisor/probes.ts";
import { record } from "../reliability/record.ts";

const started = new Set<ChildProcess>();
const seenPids = new Set<number>();
const dirs: string[] = [];

afterAll(() => cleanUpStacks(started, seenPids, dirs), 60_000);

/** The web app's worker rows once `count` are ready with pids that are alive and none of `old`. */
async function readyAgain(file: string, count: number, old: number[], ms: number): Promise<any[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const rows = (await statusJson(file)).workers.filter((row: any) => row.app === "web");
    for (const row of rows) if (row.pid) seenPids.add(row.pid);
    const fresh = rows.filter((row: any) => row.state === "ready" && row.pid > 0 && isAlive(row.pid) && !old.includes(row.pid));
    if (fresh.length === count) return rows;
    if (Date.now() > deadline) throw new Error(`web never had ${count} new ready workers in ${ms} ms: ${JSON.stringify(rows)}`);
    await sleep(250);
  }
}

/** `up` of one app, web, with two workers behind the proxy. */
async function upTwoWorkers() {
  const { dir, file } = stackDir(`
proxy:
  listen: ["127.0.0.1:0"]
apps:
  web:
    module: ${ROOT}/test/fixtures/apps/lifecycle.ts
    instances: 2
    routes: [{ path: / }]
`);
  dirs.push(dir);
  const stack = await up(file, { onSpawn: (child) => started.add(child) });
  seenPids.add(stack.child.pid!);
  return { dir, file, stack };
}

describe("pm2's daemon SIGKILLed under `up`", () => {
  it("is replaced, its workers start again within 10 s, status tells the truth, and every command stays bounded", async () => {
    const { dir, file, stack } = await upTwoWorkers();
    const before = (await statusJson(file)).workers.map((row: any) => row.pid as number);
    for (const pid of before) seenPids.add(pid);
    const daemon = pm2DaemonPid(dir)!;
    seenPids.add(daemon);

    process.kill(daemon, "SIGKILL");
    // A worker dies too while no daemon watches it: it must not stay `ready` with a dead pid.
    process.kill(before[0]!, "SIGKILL");
    const killedAt = Date.now();
    await readyAgain(file, 2, before, 10_000);
    const recoveredMs = Date.now() - killedAt;
    record({ id: "F2", done: "pm2's daemon SIGKILLed, then one of 2 workers", figure: `2 new workers ready ${recoveredMs} ms after the kill (bound 10 s)`, pass: recoveredMs < 10_000 });
    expect(recoveredMs).toBeLessThan(10_000);
    const replacement = pm2DaemonPid(dir)!;
    seenPids.add(replacement);
    expect(replacement).not.toBe(daemon);
    expect(isAlive(replacement)).toBe(true);
    // The dead daemon's orphans were killed: they would hold the sockets the new workers bind.
    for (const pid of before) expect(isAlive(pid)).toBe(false);
    expect((await httpGet(`${stack.url}/pid`)).status).toBe(200);
    expect(stack.output()).toMatch(/pm2's daemon was gone: a new one runs/);

    // The control commands answer, on the new daemon, in bounded time.
    const reload = await runCli(["reload", "-c", file], 60_000);
    expect(reload.code, reload.stdout + reload.stderr).toBe(0);
    const scale = await runCli(["scale", "web", "3", "-c", file], 60_000);
    expect(scale.code, scale.stdout + scale.stderr).toBe(0);
    const rows = await readyAgain(file, 3, before, 10_000);

    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
    for (const row of rows) expect(isAlive(row.pid)).toBe(false);
    expect(isAlive(replacement)).toBe(false);

    // Nothing left holding the sockets: the next `up` on the same file starts.
    const again = await up(file, { onSpawn: (child) => started.add(child) });
    expect((await httpGet(`${again.url}/pid`)).status).toBe(200);
    process.kill(again.child.pid!, "SIGINT");
    expect(await again.exited).toBe(0);
  }, 120_000);

  it("the stack process SIGKILLed instead: status names the daemon it left, and down stops the daemon and every worker", async () => {
    const { dir, file, stack } = await upTwoWorkers();
    const workers = (await statusJson(file)).workers.map((row: any) => row.pid as number);
    for (const pid of workers) seenPids.add(pid);
    const daemon = pm2DaemonPid(dir)!;
    seenPids.add(daemon);
    process.kill(stack.child.pid!, "SIGKILL");
    await stack.exited;
    for (const pid of [...workers, daemon]) expect(isAlive(pid)).toBe(true);

    const status = await runCli(["status", "-c", file]);
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(new RegExp(`is not running, but its stack process died and left pm2's daemon \\(pid ${daemon}\\) running its workers`));

    const down = await runCli(["down", "-c", file], 60_000);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toMatch(new RegExp(`stopped what it left: 2 worker\\(s\\) and pm2's daemon \\(pid ${daemon}\\)`));
    for (const pid of [...workers, daemon]) expect(isAlive(pid)).toBe(false);
    const after = await runCli(["status", "-c", file]);
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/is not running/);
    expect(after.stderr).not.toMatch(/left pm2's daemon/);
  }, 60_000);

  it("the stack process SIGKILLed, then `up` again: the workers it left are taken over as they run, not replaced", async () => {
    const { dir, file, stack } = await upTwoWorkers();
    const workers = (await statusJson(file)).workers.map((row: any) => row.pid as number);
    for (const pid of workers) seenPids.add(pid);
    seenPids.add(pm2DaemonPid(dir)!);
    process.kill(stack.child.pid!, "SIGKILL");
    await stack.exited;

    const again = await up(file, { onSpawn: (child) => started.add(child) });
    seenPids.add(again.child.pid!);
    const rows = (await statusJson(file)).workers;
    expect(rows.map((row: any) => [row.state, row.pid])).toEqual(workers.map((pid: number) => ["ready", pid]));
    expect(again.output()).toMatch(new RegExp(`web\\.0 \\(pid ${workers[0]}\\): left running by a stack process that died: taken over`));
    const answered = new Set<number>();
    for (let i = 0; i < 10; i++) {
      const answer = await httpGet(`${again.url}/pid`);
      expect(answer.status).toBe(200);
      answered.add(Number(answer.body));
    }
    expect([...answered].sort()).toEqual([...workers].sort());

    // Taken over for good: a worker killed now is restarted, and Ctrl-C stops them all.
    process.kill(workers[1]!, "SIGKILL");
    const rowsAfter = await readyAgain(file, 1, workers, 10_000);
    process.kill(again.child.pid!, "SIGINT");
    expect(await again.exited).toBe(0);
    for (const row of rowsAfter) if (row.pid) expect(isAlive(row.pid)).toBe(false);
    for (const pid of workers) expect(isAlive(pid)).toBe(false);
  }, 90_000);
});
