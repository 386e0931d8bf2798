/**
 * The Supervisor with real pm2 and real gateway workers, in a fresh temp
 * state dir (PM2_HOME under it): pools answer HTTP on their sockets and ports,
 * a SIGKILLed worker comes back, a module that cannot load halts its pool
 * without a restart loop, a command that dies at once stops after
 * max_restarts, scaling moves the membership, and stop() leaves no process —
 * checked in /proc, not only in pm2's list.
 */
import { existsSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Pm2Client } from "../../src/supervisor/pm2-client.ts";
import { Supervisor } from "../../src/supervisor/supervisor.ts";
import type { SupervisorEvent, WorkerEndpoint } from "../../src/supervisor/types.ts";
import {
  commandPool,
  eventually,
  get,
  globalPm2Fingerprint,
  isAlive,
  modulePool,
  processesOfStack,
  rss,
  SeenProcesses,
  sleep,
  tempStateDir,
} from "./helpers.ts";

const STACK = "suptest";
const stateDir = tempStateDir("sup");
const globalBefore = globalPm2Fingerprint();
/** Hooks wait long: workers boot in ~0.6 s alone, several times that on a busy 2-core machine. */
const supervisor = new Supervisor({ stackId: STACK, stateDir, monitorIntervalMs: 1000 });
const events: SupervisorEvent[] = [];
const memberships: Array<{ app: string; slots: number[] }> = [];
const logLines: Array<{ app: string; slot: number; stream: string; text: string }> = [];
/** Every worker this file saw, to prove at the end that none is left. */
const seenPids = new SeenProcesses();
let daemonPid: number | undefined;

const LEGACY = `node -e "require('http').createServer((q,s)=>s.end('legacy '+process.env.PORT)).listen(process.env.PORT,'127.0.0.1')"`;

supervisor.onEvent((event) => events.push(event));
supervisor.onLog((line) => logLines.push(line));
supervisor.onMembership((app, ready) => {
  memberships.push({ app, slots: ready.map((worker) => worker.slot) });
  for (const worker of ready) seenPids.add(worker.pid);
});

const ready = (app: string) => supervisor.membership(app);
const pidsOf = (endpoints: readonly WorkerEndpoint[]) => endpoints.map((worker) => worker.pid).sort();

beforeAll(async () => {
  const started = performance.now();
  const reports = await supervisor.start([
    modulePool("hello", "examples/hello/app.ts", 2),
    modulePool("slow", "test/fixtures/apps/lifecycle.ts", 1, { interface: "tsgi" }),
  ]);
  console.log(`start: 3 workers ready in ${(performance.now() - started).toFixed(0)} ms (pm2 daemon spawn included)`);
  expect(reports.map((report) => [report.app, report.state, report.ready])).toEqual([
    ["hello", "running", 2],
    ["slow", "running", 1],
  ]);
  daemonPid = Supervisor.daemonPid(stateDir);
}, 120_000);

afterAll(async () => {
  await supervisor.stop();
  expect(daemonPid !== undefined && isAlive(daemonPid)).toBe(false);
  expect(Supervisor.daemonPid(stateDir)).toBeUndefined();
  expect(processesOfStack(STACK)).toEqual([]);
  expect(seenPids.stillRunning()).toEqual([]);
  expect(globalPm2Fingerprint()).toBe(globalBefore);
  rmSync(stateDir, { recursive: true, force: true });
}, 60_000);

describe("Supervisor over pm2", () => {
  it("keeps pm2 in the stack's state dir and names each process tsgi:<stack>:<app>:<slot>", async () => {
    expect(daemonPid).toBeGreaterThan(0);
    expect(existsSync(path.join(stateDir, "pm2", "pm2.pid"))).toBe(true);
    expect(existsSync(path.join(stateDir, "logs", "hello.0.out.log"))).toBe(true);
    expect(globalPm2Fingerprint()).toBe(globalBefore);
    const rows = await supervisor.refreshStatus();
    expect(rows.map((row) => [row.name, row.state])).toEqual([
      ["tsgi:suptest:hello:0", "ready"],
      ["tsgi:suptest:hello:1", "ready"],
      ["tsgi:suptest:slow:0", "ready"],
    ]);
    for (const row of rows) {
      expect(row.pid).toBeGreaterThan(0);
      expect(row.memory).toBeGreaterThan(0);
    }
    // The workers' output, relayed from their log files (every 250 ms), tagged with app and slot (for `up` and `logs -f`).
    const readyLine = (slot: number) => logLines.some((line) => line.app === "hello" && line.slot === slot && line.stream === "out" && /ready: http\+unix:/.test(line.text));
    await eventually(() => readyLine(0) && readyLine(1), 5000, "both hello workers' ready: lines relayed");
  });

  it("serves a pool of 2 hello workers, each on its own unix socket", async () => {
    const workers = ready("hello");
    expect(workers.map((worker) => worker.slot)).toEqual([0, 1]);
    for (const worker of workers) {
      expect(worker.address).toEqual({ kind: "unix", path: path.join(stateDir, "sockets", `hello.${worker.slot}.sock`) });
      expect(await get(worker.address, "/hi")).toEqual({ status: 200, body: "Hello from TSGI: GET /hi\n" });
      seenPids.add(worker.pid);
    }
    const idle = rss(workers[0]!.pid);
    console.log(`RSS of one idle gateway worker under pm2: ${(idle / 1024 / 1024).toFixed(1)} MB`);
    expect(idle).toBeGreaterThan(0);
  });

  it("replaces a SIGKILLed worker, and the membership returns to 2 ready", async () => {
    const before = ready("hello");
    const victim = before[0]!;
    const killedAt = performance.now();
    process.kill(victim.pid, "SIGKILL");
    // The dead worker leaves the membership before its replacement joins it.
    await eventually(() => ready("hello").every((worker) => worker.pid !== victim.pid), 5000, "the killed worker to leave");
    const after = await eventually(() => (ready("hello").length === 2 ? ready("hello") : undefined), 15_000, "2 ready again");
    const backMs = performance.now() - killedAt;
    console.log(`SIGKILLed worker back (membership 2 ready again): ${backMs.toFixed(0)} ms`);
    expect(pidsOf(after)).not.toContain(victim.pid);
    expect(after.find((worker) => worker.slot === victim.slot)).toBeDefined();
    expect((await get(after.find((worker) => worker.slot === victim.slot)!.address)).status).toBe(200);
    // pm2 says code 0 for a signal; the supervisor reports the signal (read back from pm2's daemon log).
    expect(events).toContainEqual(expect.objectContaining({ type: "worker-exit", app: "hello", slot: victim.slot, exitCode: 0, signal: "SIGKILL" }));
    for (const worker of after) seenPids.add(worker.pid);
  });

  it("halts a pool whose module cannot load, without a restart loop, and leaves the other pools serving", async () => {
    const [report] = await supervisor.start([modulePool("broken", "examples/does-not-exist.ts", 2)]);
    expect(report).toMatchObject({ app: "broken", state: "errored", ready: 0 });
    expect(report!.error).toMatchObject({ reason: "app-load-error", exitCode: 4 });
    expect(report!.error!.message).toContain("cannot load app");
    expect(report!.error!.stderr.join("\n")).toContain("cannot load app examples/does-not-exist.ts");
    expect(events).toContainEqual(expect.objectContaining({ type: "pool-errored", app: "broken" }));
    await sleep(1500);
    const rows = (await supervisor.refreshStatus()).filter((row) => row.app === "broken");
    expect(rows.map((row) => [row.state, row.restarts, row.pid])).toEqual([
      ["errored", 0, 0],
      ["errored", 0, 0],
    ]);
    expect(ready("broken")).toEqual([]);
    for (const worker of ready("hello")) expect((await get(worker.address)).status).toBe(200);
  });

  it("runs a command app on a loopback port it picked, through the shell with PORT set", async () => {
    const [report] = await supervisor.start([commandPool("legacy", LEGACY, 1)]);
    expect(report).toMatchObject({ state: "running", ready: 1 });
    const [worker] = ready("legacy");
    expect(worker!.address).toMatchObject({ kind: "tcp", host: "127.0.0.1" });
    const port = (worker!.address as { port: number }).port;
    expect(await get(worker!.address)).toEqual({ status: 200, body: `legacy ${port}` });
    seenPids.add(worker!.pid);
  });

  it("stops a command that exits at once after max_restarts, not forever", async () => {
    const started = performance.now();
    const restart = { maxRestarts: 2, backoffMs: 50, minUptimeMs: 1000 };
    // start() answers at the first failure; the crash loop then runs its course and is reported as an event.
    const [first] = await supervisor.start([commandPool("dies", "echo starting; echo 'no luck' >&2; exit 1", 1, { restart })]);
    expect(first).toMatchObject({ ready: 0 });
    expect(["degraded", "errored"]).toContain(first!.state);
    const errored = await eventually(() => events.find((event) => event.type === "pool-errored" && event.app === "dies"), 10_000, "pool-errored");
    console.log(`crash loop (max_restarts 2) reported errored in ${(performance.now() - started).toFixed(0)} ms`);
    expect(errored).toMatchObject({ error: { reason: "crash-loop", exitCode: 1, slot: 0 } });
    const report = supervisor.pools().find((pool) => pool.app === "dies");
    expect(report).toMatchObject({ state: "errored", ready: 0, error: { reason: "crash-loop" } });
    expect(report!.error!.message).toMatch(/crashed 3 times in a row/);
    expect(report!.error!.stderr).toContain("no luck");
    await sleep(1500);
    const [row] = (await supervisor.refreshStatus()).filter((status) => status.app === "dies");
    expect(row).toMatchObject({ state: "errored", restarts: 2, pid: 0 });
    expect(events.filter((event) => event.type === "worker-exit" && event.app === "dies")).toHaveLength(3);
  });

  it("restarts a command that never starts listening, then calls it a crash loop", async () => {
    const restart = { maxRestarts: 1, backoffMs: 50, minUptimeMs: 1000 };
    const started = performance.now();
    await supervisor.start([commandPool("mute", "sleep 30", 1, { restart, readyTimeoutMs: 500 })]);
    const errored = await eventually(() => events.find((event) => event.type === "pool-errored" && event.app === "mute"), 15_000, "pool-errored");
    console.log(`never-listening command: errored after 2 ready timeouts of 500 ms in ${(performance.now() - started).toFixed(0)} ms`);
    expect(errored).toMatchObject({ error: { reason: "crash-loop" } });
    expect(events.filter((event) => event.type === "worker-not-ready" && event.app === "mute")).toHaveLength(2);
    const [row] = (await supervisor.refreshStatus()).filter((status) => status.app === "mute");
    expect(row).toMatchObject({ state: "errored", restarts: 1, pid: 0 });
  });

  it("starts an errored pool again on restart(), once its cause is fixed", async () => {
    const flag = path.join(stateDir, "fixed");
    const flaky = `[ -f ${flag} ] || { echo 'not fixed yet' >&2; exit 4; }; ${LEGACY.replace("legacy ", "flaky ")}`;
    const [failed] = await supervisor.start([commandPool("flaky", flaky, 1)]);
    expect(failed).toMatchObject({ state: "errored", error: { reason: "app-load-error", stderr: ["not fixed yet"] } });
    writeFileSync(flag, "");
    const [revived] = await supervisor.restart("flaky");
    expect(revived).toMatchObject({ app: "flaky", state: "running", instances: 1, ready: 1 });
    expect(revived!.failed).toBeUndefined();
    const [worker] = ready("flaky");
    expect((await get(worker!.address)).body).toMatch(/^flaky \d+$/);
    seenPids.add(worker!.pid);
  });

  it("has pm2 recycle a worker past maxMemoryBytes, and the pool serves on", async () => {
    // Every worker is far above 20 MB: pm2's monitor (every second here) restarts it gracefully.
    const [report] = await supervisor.start([modulePool("fat", "examples/hello/app.ts", 1, { maxMemoryBytes: 20 * 1024 * 1024 })]);
    expect(report).toMatchObject({ state: "running", ready: 1 });
    const first = ready("fat")[0]!;
    seenPids.add(first.pid);
    await eventually(() => events.find((event) => event.type === "worker-exit" && event.app === "fat"), 15_000, "a memory restart");
    const next = await eventually(() => ready("fat").find((worker) => worker.pid !== first.pid), 15_000, "the replacement");
    seenPids.add(next.pid);
    expect(supervisor.pools().find((pool) => pool.app === "fat")!.state).not.toBe("errored");
    await supervisor.scale("fat", 0);
    // pm2 restarts this worker every second; a restart racing the delete put it back, running on under pm2 for
    // good, until the supervisor learnt to remove such a worker again at its next sample of pm2's list.
    await eventually(() => processesOfStack(STACK, "fat").length === 0, 10_000, "no worker of the app scaled to 0");
  });

  it("scales 2 -> 3 -> 1 with the membership following", async () => {
    memberships.length = 0;
    const up = await supervisor.scale("hello", 3);
    expect(up).toMatchObject({ state: "running", instances: 3, ready: 3 });
    expect(ready("hello").map((worker) => worker.slot)).toEqual([0, 1, 2]);
    for (const worker of ready("hello")) {
      seenPids.add(worker.pid);
      expect((await get(worker.address)).status).toBe(200);
    }
    const goners = ready("hello").filter((worker) => worker.slot > 0);
    const down = await supervisor.scale("hello", 1);
    expect(down).toMatchObject({ state: "running", instances: 1, ready: 1 });
    expect(ready("hello").map((worker) => worker.slot)).toEqual([0]);
    expect(memberships.filter((change) => change.app === "hello").map((change) => change.slots)).toEqual([[0, 1, 2], [0]]);
    await eventually(() => goners.every((worker) => !isAlive(worker.pid)), 5000, "scaled-down workers to exit");
    expect((await supervisor.refreshStatus()).filter((row) => row.app === "hello").map((row) => row.name)).toEqual(["tsgi:suptest:hello:0"]);
  });

  it("restarts an app slot by slot, every worker replaced", async () => {
    await supervisor.scale("hello", 2);
    const before = pidsOf(ready("hello"));
    const [report] = await supervisor.restart("hello");
    expect(report).toMatchObject({ state: "running", ready: 2 });
    const after = pidsOf(ready("hello"));
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);
    after.forEach((pid) => seenPids.add(pid));
  });

  it("stop() drains in-flight requests, then leaves no process, no pm2 entry and no daemon", async () => {
    const [slow] = ready("slow");
    const inFlight = get(slow!.address, "/slow?ms=1500");
    await sleep(300);
    for (const row of await supervisor.refreshStatus()) seenPids.add(row.pid);
    const stopped = performance.now();
    const result = await supervisor.stop();
    console.log(`stop(): ${(performance.now() - stopped).toFixed(0)} ms for ${result.deleted.length} pm2 processes (one request draining 1.5 s)`);
    expect(await inFlight).toEqual({ status: 200, body: "slow done" });
    expect(result).toMatchObject({ forced: [], daemonStopped: true });
    expect(result.deleted).toContain("tsgi:suptest:broken:0");
    expect(seenPids.stillRunning()).toEqual([]);
    expect(processesOfStack(STACK)).toEqual([]);
    expect(daemonPid !== undefined && isAlive(daemonPid)).toBe(false);
    expect(Pm2Client.daemonPid(path.join(stateDir, "pm2"))).toBeUndefined();
    expect(new Set(supervisor.pools().map((pool) => pool.state))).toEqual(new Set(["stopped"]));
    expect(supervisor.membership("hello")).toEqual([]);
  });
});
