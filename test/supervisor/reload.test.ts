/**
 * The zero-downtime reload (issue #5, item 1) with real pm2 and real gateway
 * workers: each old worker is replaced by a NEW one that is ready (and through
 * the health gate) before the old one leaves the membership and drains; a new
 * worker that fails stops the reload and the old workers serve on; reloads
 * asked for at once are coalesced; and what a config hot reload needs —
 * remove(), start() adding a pool, updateSpec() rolling onto a new spec.
 *
 * The app is a copy of test/fixtures/apps/reloadable.ts in the state dir,
 * rewritten between reloads to play a bad deploy. Every membership change is
 * recorded, with the status rows at that moment. After each test every pool is
 * removed and every worker pid seen is checked gone, in /proc.
 */
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { isQuiet, isSettled, newPool, newSlot, poolState, readyEndpoints } from "../../src/supervisor/pool.ts";
import { fileSize, tailLines } from "../../src/supervisor/probes.ts";
import { defer, describeEarlyExit, failureError, newPass, type PoolCommand, type ReloadTicket, rolls } from "../../src/supervisor/reload.ts";
import { Supervisor } from "../../src/supervisor/supervisor.ts";
import type { HealthGate, PoolSpec, ReloadReport, SupervisorEvent, WorkerEndpoint } from "../../src/supervisor/types.ts";
import { eventually, get, globalPm2Fingerprint, isAlive, modulePool, processesOfStack, ROOT, sleep, tempStateDir } from "./helpers.ts";

const STACK = "rltest";
const stateDir = tempStateDir("rl");
/** The pools' cwd: each app is a copy of the fixture here, so a test can break it and fix it. */
const appDir = path.join(stateDir, "app");
const SOURCE = readFileSync(path.join(ROOT, "test/fixtures/apps/reloadable.ts"), "utf8");
const globalBefore = globalPm2Fingerprint();

/** Writes the app module `file`; with `broken`, one that throws that message at import (a bad deploy). */
function deploy(file: string, broken?: string): void {
  writeFileSync(path.join(appDir, file), broken === undefined ? SOURCE : `throw new Error(${JSON.stringify(broken)});\n${SOURCE}`);
}

function appPool(name: string, instances: number, overrides: Partial<PoolSpec> = {}): PoolSpec {
  return modulePool(name, `${name}.ts`, instances, { cwd: appDir, interface: "tsgi", readyTimeoutMs: 15_000, ...overrides });
}

/** What the stack's gate does: GET the health path on the new worker's own socket. A test may put another in front. */
let gateOverride: HealthGate | undefined;
const gateCalls: Array<{ app: string; endpoint: WorkerEndpoint }> = [];
const supervisor = new Supervisor({
  stackId: STACK,
  stateDir,
  monitorIntervalMs: 1000,
  healthGate: async (app, endpoint) => {
    gateCalls.push({ app, endpoint });
    if (gateOverride) return gateOverride(app, endpoint);
    return (await get(endpoint.address, "/healthz")).status === 200;
  },
});

interface Change {
  app: string;
  slots: number[];
  pids: number[];
  /** `slot:state` of every status row of the app when the change was published. */
  rows: string[];
}
const changes: Change[] = [];
const events: SupervisorEvent[] = [];
/** Every worker pid seen: each test ends with all of them gone. */
const seenPids = new Set<number>();

supervisor.onEvent((event) => events.push(event));
supervisor.onMembership((app, ready) => {
  const rows = supervisor
    .status()
    .filter((row) => row.app === app)
    .map((row) => `${row.slot}:${row.state}`);
  changes.push({ app, slots: ready.map((worker) => worker.slot), pids: ready.map((worker) => worker.pid), rows });
  for (const worker of ready) seenPids.add(worker.pid);
});

const ready = (app: string) => supervisor.membership(app);
const pidsOf = (endpoints: readonly WorkerEndpoint[]) => endpoints.map((worker) => worker.pid);
/** The membership changes of `app` from index `mark` of the record on. */
const changesOf = (app: string, mark: number) => changes.slice(mark).filter((change) => change.app === app);
const eventsOf = (app: string, type: SupervisorEvent["type"]) => events.filter((event) => event.type === type && "app" in event && event.app === app);

/** GET /pid from each worker: `<pid> <RELOAD_MARK>`, from the pid the membership names. */
async function answers(app: string): Promise<string[]> {
  const bodies: string[] = [];
  for (const worker of ready(app)) {
    const reply = await get(worker.address, "/pid");
    expect(reply.status).toBe(200);
    expect(reply.body.split(" ")[0]).toBe(String(worker.pid));
    bodies.push(reply.body);
  }
  return bodies;
}

beforeAll(() => {
  mkdirSync(appDir, { recursive: true });
});

afterEach(async () => {
  gateOverride = undefined;
  for (const { app } of supervisor.pools()) await supervisor.remove(app);
  await eventually(() => [...seenPids].every((pid) => !isAlive(pid)), 15_000, "every worker of the test to exit");
  expect(processesOfStack(STACK)).toEqual([]);
}, 30_000);

afterAll(async () => {
  const daemonPid = Supervisor.daemonPid(stateDir);
  await supervisor.stop();
  expect(daemonPid !== undefined && isAlive(daemonPid)).toBe(false);
  expect(processesOfStack(STACK)).toEqual([]);
  expect([...seenPids].filter(isAlive)).toEqual([]);
  expect(globalPm2Fingerprint()).toBe(globalBefore);
  rmSync(stateDir, { recursive: true, force: true });
}, 60_000);

/** Each test takes 2-8 s alone; the bound leaves room for a loaded machine, whatever --testTimeout says. */
describe("Supervisor.reload over pm2", { timeout: 30_000 }, () => {
  it("replaces both workers of a 2-instance pool, each new one in the membership before its old one leaves", async () => {
    deploy("one.ts");
    const [started] = await supervisor.start([appPool("one", 2)]);
    expect(started).toMatchObject({ state: "running", ready: 2 });
    const oldPids = pidsOf(ready("one"));
    const mark = changes.length;
    const begun = performance.now();
    const [report] = await supervisor.reload("one");
    console.log(`reload of 2 workers: ${(performance.now() - begun).toFixed(0)} ms (report: ${report!.ms} ms)`);
    expect(report).toEqual({ app: "one", ok: true, replaced: 2, ms: expect.any(Number) });

    // New slot numbers, so new processes and sockets: 0,1 -> 2,3. The new one joins, then the old one leaves.
    const sequence = changesOf("one", mark);
    expect(sequence.map((change) => change.slots)).toEqual([[0, 1, 2], [1, 2], [1, 2, 3], [2, 3]]);
    expect(Math.min(...sequence.map((change) => change.slots.length))).toBeGreaterThanOrEqual(2);
    // When old worker 0 had left: it was draining ("stopping") and the next new worker was starting.
    expect(sequence[1]!.rows).toEqual(["0:stopping", "1:ready", "2:ready", "3:starting"]);

    const after = ready("one");
    expect(after).toHaveLength(2);
    expect(pidsOf(after).filter((pid) => oldPids.includes(pid))).toEqual([]);
    await answers("one");
    await eventually(() => oldPids.every((pid) => !isAlive(pid)), 10_000, "the old workers to exit");
    expect(supervisor.pools().find((pool) => pool.app === "one")).toEqual({ app: "one", state: "running", instances: 2, ready: 2 });
    expect(eventsOf("one", "reload-started")).toEqual([{ type: "reload-started", app: "one", workers: 2 }]);
    expect(eventsOf("one", "reload-done")).toEqual([{ type: "reload-done", app: "one", report }]);
    // The gate was asked about each new worker, on its own address.
    expect(gateCalls.filter((call) => call.app === "one").map((call) => call.endpoint.slot)).toEqual([2, 3]);
  });

  it("lets an in-flight slow request on an old worker finish while the reload runs, and requests through the membership keep working", async () => {
    deploy("busy.ts");
    await supervisor.start([appPool("busy", 2)]);
    const victim = ready("busy")[0]!;
    const slow = get(victim.address, "/slow?ms=1500");
    await sleep(200);
    const outcome = { ok: 0, failed: [] as string[] };
    let running = true;
    const traffic = (async () => {
      for (let i = 0; running; i++) {
        const members = ready("busy");
        const worker = members[i % members.length]!;
        try {
          const reply = await get(worker.address, "/pid");
          if (reply.status === 200) outcome.ok += 1;
          else outcome.failed.push(`status ${reply.status}`);
        } catch (error) {
          outcome.failed.push((error as Error).message);
        }
        await sleep(5);
      }
    })();
    const mark = changes.length;
    const [report] = await supervisor.reload("busy");
    running = false;
    await traffic;
    console.log(`requests through the membership during a reload: ${outcome.ok} ok, ${outcome.failed.length} failed`);
    expect(report).toMatchObject({ ok: true, replaced: 2 });
    expect(await slow).toEqual({ status: 200, body: `slow done by ${victim.pid}` });
    expect(Math.min(...changesOf("busy", mark).map((change) => change.slots.length))).toBeGreaterThanOrEqual(2);
    expect(outcome.failed).toEqual([]);
    expect(outcome.ok).toBeGreaterThan(10);
    // Having answered, the old worker finished its drain and exited.
    await eventually(() => !isAlive(victim.pid), 10_000, "the drained worker to exit");
  });

  it("stops at a new worker whose code throws at import: the old workers keep serving, the pool is not halted, and a later reload works", async () => {
    deploy("fragile.ts");
    await supervisor.start([appPool("fragile", 2)]);
    const before = ready("fragile");
    const oldPids = pidsOf(before);

    deploy("fragile.ts", "fragile v1: DATABASE_URL is not set");
    const begun = performance.now();
    const [failed] = await supervisor.reload("fragile");
    console.log(`failed reload reported in ${(performance.now() - begun).toFixed(0)} ms: ${failed!.error?.message}`);
    expect(failed).toMatchObject({ app: "fragile", ok: false, replaced: 0, error: { slot: 2 } });
    expect(failed!.error!.message).toMatch(/^new worker 2 exited with code 4 \(APP_LOAD_ERROR\) before it was ready: tsgi-stack: cannot load app fragile\.ts/);
    expect(failed!.error!.message).toContain("fragile v1: DATABASE_URL is not set");
    expect(failed!.error!.stderr.join("\n")).toContain("Error: fragile v1: DATABASE_URL is not set");

    // The old workers were never touched: same pids, same membership, serving; the pool is running, not errored.
    expect(ready("fragile")).toEqual(before);
    expect(oldPids.every(isAlive)).toBe(true);
    await answers("fragile");
    expect(supervisor.pools().find((pool) => pool.app === "fragile")).toEqual({ app: "fragile", state: "running", instances: 2, ready: 2 });
    expect(eventsOf("fragile", "pool-errored")).toEqual([]);
    expect(eventsOf("fragile", "reload-failed")).toEqual([{ type: "reload-failed", app: "fragile", report: failed }]);
    // The failed worker is gone from pm2 and from status: it is not restarted.
    await eventually(() => supervisor.status().filter((row) => row.app === "fragile").length === 2, 5000, "the failed worker to go");
    await sleep(500);
    expect(supervisor.status().filter((row) => row.app === "fragile").map((row) => `${row.slot}:${row.state}`)).toEqual(["0:ready", "1:ready"]);

    // A second bad deploy: its report has that worker's own stderr, not the first one's. (The failed worker's
    // slot number is retired for a while — pm2 may still send its last events under that name — so this one is 3.)
    deploy("fragile.ts", "fragile v2: REDIS_URL is not set");
    const [again] = await supervisor.reload("fragile");
    expect(again).toMatchObject({ ok: false, replaced: 0, error: { slot: 3 } });
    expect(again!.error!.stderr.join("\n")).toContain("fragile v2: REDIS_URL is not set");
    expect(again!.error!.stderr.join("\n")).not.toContain("fragile v1");
    expect(ready("fragile")).toEqual(before);

    deploy("fragile.ts");
    const [fixed] = await supervisor.reload("fragile");
    expect(fixed).toMatchObject({ ok: true, replaced: 2 });
    expect(pidsOf(ready("fragile")).filter((pid) => oldPids.includes(pid))).toEqual([]);
    await answers("fragile");
  });

  it("reloads a 1-instance pool with no moment where the membership is empty", async () => {
    deploy("solo.ts");
    await supervisor.start([appPool("solo", 1)]);
    const [old] = ready("solo");
    const mark = changes.length;
    const [report] = await supervisor.reload("solo");
    expect(report).toMatchObject({ ok: true, replaced: 1 });
    const sequence = changesOf("solo", mark);
    expect(sequence.map((change) => change.slots)).toEqual([[0, 1], [1]]);
    expect(sequence.every((change) => change.slots.length >= 1)).toBe(true);
    expect(ready("solo")[0]!.pid).not.toBe(old!.pid);
    await answers("solo");
  });

  it("aborts when the health gate refuses a new worker, keeps the workers replaced before, and passes when it agrees", async () => {
    deploy("gated.ts");
    await supervisor.start([appPool("gated", 2)]);
    const before = ready("gated");

    gateOverride = async () => false;
    const [refused] = await supervisor.reload("gated");
    expect(refused).toMatchObject({ ok: false, replaced: 0, error: { slot: 2, message: "new worker 2 failed the health gate" } });
    expect(ready("gated")).toEqual(before);
    const refusedPid = gateCalls.filter((call) => call.app === "gated").at(-1)!.endpoint.pid;
    expect(refusedPid).toBeGreaterThan(0);
    seenPids.add(refusedPid);
    await eventually(() => !isAlive(refusedPid), 10_000, "the refused worker to exit");
    await eventually(() => supervisor.status().filter((row) => row.app === "gated").length === 2, 5000, "the refused worker to leave pm2");

    // The first new worker passes, the second does not: the first stays, next to the old worker it did not reach.
    let asked = 0;
    gateOverride = async () => ++asked === 1;
    const [half] = await supervisor.reload("gated");
    // Slot numbers 2 (refused) and then 0 (replaced) are retired for a while: the new workers are 3, then 4.
    expect(half).toMatchObject({ ok: false, replaced: 1, error: { slot: 4 } });
    expect(ready("gated").map((worker) => worker.slot)).toEqual([1, 3]);
    expect(ready("gated")[0]).toEqual(before[1]);
    expect(supervisor.pools().find((pool) => pool.app === "gated")).toMatchObject({ state: "running", ready: 2 });

    gateOverride = undefined;
    const [passed] = await supervisor.reload("gated");
    expect(passed).toMatchObject({ ok: true, replaced: 2 });
    await answers("gated");
  });

  it("coalesces reloads asked for while one runs into one more full pass, and a scale waits for the reload", async () => {
    deploy("twice.ts");
    await supervisor.start([appPool("twice", 2)]);
    const original = pidsOf(ready("twice"));
    const mark = changes.length;
    const [[first], [second], [third]] = await Promise.all([supervisor.reload("twice"), supervisor.reload("twice"), supervisor.reload("twice")]);
    // The first call started a pass; the two asked for during it share ONE more pass, which began after it.
    expect(first).toMatchObject({ ok: true, replaced: 2 });
    expect(second).toMatchObject({ ok: true, replaced: 2 });
    expect(third).toBe(second);
    expect(eventsOf("twice", "reload-started")).toHaveLength(2);
    // Two passes one after the other, each swap a new worker in (3 ready) before an old one out (2): never overlapping.
    // (The slot numbers of the second pass depend on how soon pm2 has deleted the first pass's old workers.)
    const sequence = changesOf("twice", mark).map((change) => change.slots);
    expect(sequence.slice(0, 4)).toEqual([[0, 1, 2], [1, 2], [1, 2, 3], [2, 3]]);
    expect(sequence.map((slots) => slots.length)).toEqual([3, 2, 3, 2, 3, 2, 3, 2]);
    expect(pidsOf(ready("twice")).filter((pid) => original.includes(pid))).toEqual([]);

    // A scale asked for during a reload runs after it.
    const order: string[] = [];
    const reloading = supervisor.reload("twice").then((reports) => (order.push("reload"), reports));
    const scaling = supervisor.scale("twice", 3).then((report) => (order.push("scale"), report));
    const [[report], scaled] = await Promise.all([reloading, scaling]);
    expect(report).toMatchObject({ ok: true, replaced: 2 });
    expect(scaled).toMatchObject({ state: "running", instances: 3, ready: 3 });
    expect(order).toEqual(["reload", "scale"]);
    await answers("twice");
  });

  it("adds a pool to a running supervisor with start(), and remove() drains it away at once", async () => {
    deploy("stay.ts");
    deploy("extra.ts");
    await supervisor.start([appPool("stay", 1)]);
    const [added] = await supervisor.start([appPool("extra", 2)]);
    expect(added).toEqual({ app: "extra", state: "running", instances: 2, ready: 2 });
    await answers("extra");
    const workers = ready("extra");
    workers.forEach((worker) => seenPids.add(worker.pid));

    const slow = get(workers[0]!.address, "/slow?ms=1000");
    await sleep(200);
    const mark = changes.length;
    await supervisor.remove("extra");
    // Both left the membership at once; the in-flight request drained before its worker went.
    expect(changesOf("extra", mark).map((change) => change.slots)).toEqual([[]]);
    expect(await slow).toEqual({ status: 200, body: `slow done by ${workers[0]!.pid}` });
    expect(pidsOf(workers).filter(isAlive)).toEqual([]);
    expect(supervisor.pools().map((pool) => pool.app)).toEqual(["stay"]);
    expect(supervisor.status().map((row) => row.app)).toEqual(["stay"]);
    expect(supervisor.membership("extra")).toEqual([]);
    expect(eventsOf("extra", "pool-stopped")).toHaveLength(1);
    await expect(supervisor.reload("extra")).rejects.toThrow(/no app named "extra"/);
    await answers("stay");

    // The name is free again.
    const [again] = await supervisor.start([appPool("extra", 1)]);
    expect(again).toMatchObject({ state: "running", ready: 1 });
    await expect(supervisor.start([appPool("extra", 1)])).rejects.toThrow(/already running/);
  });

  it("rolls a pool onto a changed spec with updateSpec: new workers see the new env, then the instance count follows", async () => {
    deploy("conf.ts");
    await supervisor.start([appPool("conf", 2, { env: { RELOAD_MARK: "v1" } })]);
    expect((await answers("conf")).map((body) => body.split(" ")[1])).toEqual(["v1", "v1"]);

    const mark = changes.length;
    const rolled: ReloadReport = await supervisor.updateSpec(appPool("conf", 2, { env: { RELOAD_MARK: "v2" } }), { roll: true });
    expect(rolled).toMatchObject({ app: "conf", ok: true, replaced: 2 });
    expect((await answers("conf")).map((body) => body.split(" ")[1])).toEqual(["v2", "v2"]);
    expect(Math.min(...changesOf("conf", mark).map((change) => change.slots.length))).toBeGreaterThanOrEqual(2);

    // Fewer instances: the kept workers are rolled, then the extra old one goes.
    const shrunk = await supervisor.updateSpec(appPool("conf", 1, { env: { RELOAD_MARK: "v3" } }), { roll: true });
    expect(shrunk).toMatchObject({ ok: true, replaced: 1 });
    expect(supervisor.pools().find((pool) => pool.app === "conf")).toEqual({ app: "conf", state: "running", instances: 1, ready: 1 });
    expect((await answers("conf")).map((body) => body.split(" ")[1])).toEqual(["v3"]);

  });

  it("updateSpec without roll keeps the workers and scales; a roll onto a spec that does not load keeps the previous spec", async () => {
    deploy("conf.ts");
    await supervisor.start([appPool("conf", 1, { env: { RELOAD_MARK: "v3" } })]);

    // Without roll: the spec is for the next launches, and the instance change is a scale.
    const grown = await supervisor.updateSpec(appPool("conf", 2, { env: { RELOAD_MARK: "v4" } }), { roll: false });
    expect(grown).toEqual({ app: "conf", state: "running", instances: 2, ready: 2 });
    expect((await answers("conf")).map((body) => body.split(" ")[1]).sort()).toEqual(["v3", "v4"]);

    // A roll onto a spec whose module does not load fails, and the pool keeps its previous spec.
    const broken = await supervisor.updateSpec(appPool("conf", 3, { module: "missing.ts" }), { roll: true });
    expect(broken).toMatchObject({ ok: false, replaced: 0 });
    expect(broken.error!.message).toContain("cannot load app missing.ts");
    expect(supervisor.pools().find((pool) => pool.app === "conf")).toEqual({ app: "conf", state: "running", instances: 2, ready: 2 });
    const [reloaded] = await supervisor.reload("conf");
    expect(reloaded).toMatchObject({ ok: true, replaced: 2 });
    expect((await answers("conf")).map((body) => body.split(" ")[1])).toEqual(["v4", "v4"]);
  });

  it("remove() during a reload cuts the reload short, and leaves no worker behind, the new one included", async () => {
    deploy("brief.ts");
    await supervisor.start([appPool("brief", 2)]);
    const reloading = supervisor.reload("brief");
    await eventually(() => supervisor.status().some((row) => row.app === "brief" && row.slot === 2 && row.state === "starting"), 5000, "the new worker");
    await supervisor.remove("brief");
    const [report] = await reloading;
    expect(report).toMatchObject({ app: "brief", ok: false, replaced: 0, error: { message: "reload of brief cut short: app brief was removed" } });
    expect(eventsOf("brief", "reload-failed")).toHaveLength(1);
    expect(supervisor.pools()).toEqual([]);
    expect(processesOfStack(STACK)).toEqual([]);
  });

  it("reload() of a halted pool starts it again in place, as restart() does; reload() of every app leaves it alone", async () => {
    deploy("phoenix.ts", "phoenix: not configured yet");
    deploy("steady.ts");
    const [halted, steady] = await supervisor.start([appPool("phoenix", 1), appPool("steady", 1)]);
    expect(halted).toMatchObject({ state: "errored", error: { reason: "app-load-error" } });
    expect(steady).toMatchObject({ state: "running" });

    const all = await supervisor.reload();
    expect(all.map((report) => [report.app, report.ok, report.replaced])).toEqual([["steady", true, 1]]);

    const [still] = await supervisor.reload("phoenix");
    expect(still).toMatchObject({ app: "phoenix", ok: false, replaced: 0, error: { slot: 0 } });
    expect(still!.error!.message).toContain("APP_LOAD_ERROR");
    expect(still!.error!.stderr.join("\n")).toContain("phoenix: not configured yet");
    expect(supervisor.pools().find((pool) => pool.app === "phoenix")).toMatchObject({ state: "errored" });

    deploy("phoenix.ts");
    const [revived] = await supervisor.reload("phoenix");
    expect(revived).toMatchObject({ app: "phoenix", ok: true, replaced: 1 });
    expect(supervisor.pools().find((pool) => pool.app === "phoenix")).toEqual({ app: "phoenix", state: "running", instances: 1, ready: 1 });
    await answers("phoenix");
  });
});

describe("reload rules, without pm2", () => {
  it("joins a reload to one already waiting, and keeps the other commands in the order they came", () => {
    const [a, b, c, d]: ReloadTicket[] = [{}, {}, {}, {}];
    const queue: PoolCommand[] = [];
    defer(queue, { type: "reload", app: "x", tickets: [a!] });
    defer(queue, { type: "scale", app: "x", instances: 3, ports: [] });
    defer(queue, { type: "reload", app: "x", tickets: [b!] });
    defer(queue, { type: "update", app: "x", spec: appPool("x", 1), roll: true, ports: [], tickets: [c!] });
    defer(queue, { type: "reload", app: "x", tickets: [d!] });
    expect(queue.map((command) => command.type)).toEqual(["reload", "scale", "update"]);
    expect(queue[0]!.type === "reload" && queue[0]!.tickets).toEqual([a, b, d]);
    expect(queue.map(rolls)).toEqual([true, false, true]);
    expect(rolls({ type: "update", app: "x", spec: appPool("x", 1), roll: false, ports: [], tickets: [] })).toBe(false);
  });

  it("names the failed new worker, with its telltale stderr line when it died, not when it failed the gate", () => {
    const stderr = ["some output", "tsgi-stack: cannot load app a.ts: importing a.ts failed: boom", "    Error: boom", "        at a.ts:1:7"];
    expect(failureError({ kind: "exit", slot: 2, what: describeEarlyExit(4) }, stderr)).toEqual({
      message: "new worker 2 exited with code 4 (APP_LOAD_ERROR) before it was ready: tsgi-stack: cannot load app a.ts: importing a.ts failed: boom",
      stderr,
      slot: 2,
    });
    expect(failureError({ kind: "not-ready", slot: 1, what: "was not ready within 500 ms" }, ["listening soon"]).message).toBe(
      "new worker 1 was not ready within 500 ms: listening soon",
    );
    expect(failureError({ kind: "gate", slot: 3, what: "failed the health gate" }, ["GET /healthz 500"])).toEqual({
      message: "new worker 3 failed the health gate",
      stderr: ["GET /healthz 500"],
      slot: 3,
    });
  });

  it("reads a worker's own stderr: the lines after where its log file ended at its launch", async () => {
    const file = path.join(stateDir, "tail.err.log");
    writeFileSync(file, "old 1\nold 2\n");
    const mark = await fileSize(file);
    appendFileSync(file, "new 1\nnew 2\n");
    expect(await tailLines(file, 10, mark)).toEqual(["new 1", "new 2"]);
    expect(await tailLines(file, 1, mark)).toEqual(["new 2"]);
    expect(await tailLines(file, 10)).toEqual(["old 1", "old 2", "new 1", "new 2"]);
    // Replaced by a shorter file since the mark: all of it is new.
    writeFileSync(file, "fresh\n");
    expect(await tailLines(file, 10, mark)).toEqual(["fresh"]);
    expect(await fileSize(path.join(stateDir, "no-such.log"))).toBe(0);
  });

  it("does not count a reload's new worker in the pool's state or membership until it is ready", () => {
    const pool = newPool(appPool("p", 1));
    const old = newSlot(0, "tsgi:s:p:0", { kind: "unix", path: "/s/p.0.sock" });
    Object.assign(old, { state: "ready", settled: true, pid: 10 });
    const fresh = newSlot(1, "tsgi:s:p:1", { kind: "unix", path: "/s/p.1.sock" });
    pool.slots.set(0, old).set(1, fresh);
    pool.reload = newPass(1, 0, { queue: [], tickets: [] });
    pool.reload.old = 0;
    pool.reload.fresh = 1;
    expect(poolState(pool)).toBe("running");
    expect(readyEndpoints(pool).map((worker) => worker.slot)).toEqual([0]);
    expect(isQuiet(pool)).toBe(false);
    expect(isSettled(pool)).toBe(false);
    Object.assign(fresh, { state: "ready", settled: true, pid: 11 });
    expect(readyEndpoints(pool).map((worker) => worker.slot)).toEqual([0, 1]);
    pool.reload = undefined;
    old.state = "stopping";
    expect(isQuiet(pool)).toBe(true);
    expect(isSettled(pool)).toBe(false);
    expect(isSettled(pool, false)).toBe(true);
  });
});
