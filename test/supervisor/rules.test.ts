/**
 * The Supervisor's rules against a process manager that behaves as pm2 does,
 * quirks included (fake-process-manager.ts): each test runs in milliseconds.
 * The same rules against the real pm2, with real workers, are in
 * supervisor.test.ts and reload.test.ts.
 */
import { rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Supervisor } from "../../src/supervisor/supervisor.ts";
import type { PoolSpec, SupervisorEvent, WorkerEndpoint } from "../../src/supervisor/types.ts";
import { type Behaviour, FakeProcessManager, type Script } from "./fake-process-manager.ts";

let counter = 0;
const running: { supervisor: Supervisor; stateDir: string }[] = [];

function spec(overrides: Partial<PoolSpec> = {}): PoolSpec {
  return {
    name: "web",
    kind: "module",
    module: "app.mjs",
    instances: 2,
    env: {},
    cwd: os.tmpdir(),
    maxRequests: 0,
    maxRequestsJitter: 0,
    // No heartbeat: the fake's workers have no event loop to watch.
    timeoutMs: 0,
    gracefulTimeoutMs: 1000,
    readyTimeoutMs: 2000,
    // Every exit in these tests is "unstable": the fake's clock moves a few ms per launch.
    restart: { maxRestarts: 2, backoffMs: 1, minUptimeMs: 60_000 },
    ...overrides,
  };
}

function supervise(fake: FakeProcessManager) {
  const stateDir = path.join(os.tmpdir(), `tsgi-rules-${process.pid}-${++counter}`);
  const supervisor = new Supervisor({ stackId: `rules${counter}`, stateDir, connectProcessManager: async () => fake, stderrLines: 5 });
  const events: SupervisorEvent[] = [];
  const memberships: number[] = [];
  supervisor.onEvent((event) => events.push(event));
  supervisor.onMembership((_app, ready) => memberships.push(ready.length));
  running.push({ supervisor, stateDir });
  return { supervisor, events, memberships, name: (slot: number) => `tsgi:rules${counter}:web:${slot}` };
}

afterEach(async () => {
  for (const { supervisor, stateDir } of running.splice(0)) {
    await supervisor.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
});

function until(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = () => (check() ? resolve() : Date.now() > deadline ? reject(new Error("condition not met in time")) : setTimeout(poll, 5));
    poll();
  });
}

describe("supervisor rules, against pm2's behaviour", () => {
  it("starts a pool: every worker ready and in the membership", async () => {
    const fake = new FakeProcessManager();
    const { supervisor } = supervise(fake);
    const [report] = await supervisor.start([spec()]);
    expect(report).toMatchObject({ app: "web", state: "running", ready: 2 });
    expect(supervisor.membership("web").map((worker: WorkerEndpoint) => worker.slot)).toEqual([0, 1]);
  });

  it("judges an exit that pm2 reports twice once: one crash, not two (which would halt with max_restarts 1)", async () => {
    const script: Script = (name, generation) => (name.endsWith(":0") && generation === 0 ? { exit: 1, afterMs: 20 } : { ready: true });
    const fake = new FakeProcessManager(script, { exitTwice: true });
    const { supervisor, events, name } = supervise(fake);
    await supervisor.start([spec({ instances: 1, restart: { maxRestarts: 1, backoffMs: 1, minUptimeMs: 60_000 } })]);
    await until(() => fake.launches.get(name(0)) === 2 && supervisor.membership("web").length === 1);
    expect(events.filter((event) => event.type === "worker-exit")).toHaveLength(1);
    expect(events.some((event) => event.type === "pool-errored")).toBe(false);
  });

  it("treats a worker killed by a signal (pm2 says exit code 0) as one to replace", async () => {
    const fake = new FakeProcessManager();
    const { supervisor, events, name } = supervise(fake);
    await supervisor.start([spec({ instances: 1 })]);
    const before = fake.pidOf(name(0));
    fake.kill(name(0));
    await until(() => supervisor.membership("web")[0]?.pid !== undefined && supervisor.membership("web")[0]!.pid !== before);
    expect(events).toContainEqual(expect.objectContaining({ type: "worker-exit", exitCode: 0, signal: "SIGKILL" }));
    expect(supervisor.pools()[0]).toMatchObject({ state: "running", ready: 1 });
  });

  it("says a killed worker was killed by its signal, in status and in a crash loop's halt, never 'exited with code 0'", async () => {
    let kills = 0;
    const fake = new FakeProcessManager();
    const { supervisor, name } = supervise(fake);
    await supervisor.start([spec({ instances: 1, restart: { maxRestarts: 1, backoffMs: 1, minUptimeMs: 60_000 } })]);
    fake.kill(name(0));
    kills++;
    await until(() => supervisor.status()[0]?.lastError !== undefined || supervisor.membership("web").length === 1);
    await until(() => fake.launches.get(name(0)) === 2 && supervisor.membership("web").length === 1);
    fake.kill(name(0), "SIGSEGV");
    kills++;
    await until(() => supervisor.pools()[0]!.error !== undefined && !supervisor.pools()[0]!.error!.message.includes("pending"));
    const error = supervisor.pools()[0]!.error!;
    expect(kills).toBe(2);
    expect(error).toMatchObject({ reason: "crash-loop", signal: "SIGSEGV" });
    expect(error.message).toMatch(/killed by SIGSEGV/);
    expect(error.message).not.toMatch(/code 0/);
    expect(supervisor.status()[0]!.lastError).toMatch(/^killed by SIGSEGV after \d+ ms$/);
  });

  it("a command app's shell reporting 128 + n is read as killed by signal n", async () => {
    const fake = new FakeProcessManager((_name, generation) => (generation === 0 ? { exit: 137, afterMs: 5 } : { ready: true }));
    const { supervisor, events } = supervise(fake);
    await supervisor.start([spec({ kind: "command", module: undefined, command: "node server.js", instances: 1 })]);
    await until(() => events.some((event) => event.type === "worker-exit"));
    expect(events.find((event) => event.type === "worker-exit")).toMatchObject({ exitCode: 137, signal: "SIGKILL" });
  });

  it.each([
    [4, "app-load-error"],
    [3, "boot-error"],
  ])("halts the pool on exit code %i (%s) without a second launch", async (code, reason) => {
    const fake = new FakeProcessManager(() => ({ exit: code }));
    const { supervisor, name } = supervise(fake);
    const [report] = await supervisor.start([spec({ instances: 1 })]);
    await until(() => supervisor.pools()[0]!.error?.reason === reason);
    expect(report!.ready).toBe(0);
    expect(fake.launches.get(name(0))).toBe(1);
    expect(supervisor.membership("web")).toEqual([]);
  });

  it("a once-loaded app whose new worker fails to load (a dependency briefly down) keeps its other workers and retries, not halts", async () => {
    let dependencyDown = false;
    const fake = new FakeProcessManager((): Behaviour => (dependencyDown ? { exit: 4 } : { ready: true }));
    const { supervisor, events, name } = supervise(fake);
    await supervisor.start([spec({ instances: 1, restart: { maxRestarts: 2, backoffMs: 10, minUptimeMs: 60_000 } })]);
    dependencyDown = true;
    // scale adds a worker that cannot load: the pool keeps the one it has, and the report says it is short.
    const report = await supervisor.scale("web", 2);
    expect(report).toMatchObject({ instances: 2, ready: 1 });
    expect(report.error).toBeUndefined();
    await until(() => (fake.launches.get(name(1)) ?? 0) >= 3);
    expect(supervisor.membership("web").map((worker) => worker.slot)).toEqual([0]);
    expect(events.some((event) => event.type === "pool-errored")).toBe(false);
    dependencyDown = false;
    await until(() => supervisor.membership("web").length === 2, 5000);
  });

  it("an app whose code never loaded still halts on APP_LOAD_ERROR (a bad deploy, not a blip)", async () => {
    const fake = new FakeProcessManager(() => ({ exit: 4 }));
    const { supervisor } = supervise(fake);
    const [report] = await supervisor.start([spec({ instances: 2 })]);
    expect(report!.state).toBe("errored");
  });

  it("stops a crash loop after max_restarts crashes in a row, and says so", async () => {
    const fake = new FakeProcessManager(() => ({ exit: 1 }));
    const { supervisor, events, name } = supervise(fake);
    await supervisor.start([spec({ instances: 1 })]);
    await until(() => events.some((event) => event.type === "pool-errored"));
    const errored = events.find((event) => event.type === "pool-errored");
    expect(errored).toMatchObject({ app: "web", error: { reason: "crash-loop" } });
    // max_restarts 2: the first launch and two restarts crash; the third crash halts, nothing is launched after it.
    expect(fake.launches.get(name(0))).toBe(3);
  });

  it("restart() brings each new worker in before its old one leaves: the pool never has fewer than N ready workers", async () => {
    const fake = new FakeProcessManager();
    const { supervisor, memberships } = supervise(fake);
    await supervisor.start([spec({ instances: 3 })]);
    const before = supervisor.membership("web").map((worker) => worker.pid);
    memberships.length = 0;
    const [report] = await supervisor.restart("web");
    expect(report).toMatchObject({ replaced: 3, ready: 3 });
    expect(report!.failed).toBeUndefined();
    expect(Math.min(...memberships)).toBe(3);
    await until(() => supervisor.membership("web").length === 3 && supervisor.membership("web").every((worker) => !before.includes(worker.pid)));
  });

  it("restart() whose new worker cannot load keeps the old workers serving and reports the failure", async () => {
    let failNew = false;
    const fake = new FakeProcessManager((): Behaviour => (failNew ? { exit: 4 } : { ready: true }));
    const { supervisor } = supervise(fake);
    await supervisor.start([spec({ instances: 1 })]);
    const serving = supervisor.membership("web").map((worker) => worker.pid);
    failNew = true;
    const [report] = await supervisor.restart("web");
    expect(report).toMatchObject({ replaced: 0, ready: 1 });
    expect(report!.failed?.message).toMatch(/APP_LOAD_ERROR|code 4/);
    expect(supervisor.membership("web").map((worker) => worker.pid)).toEqual(serving);
    expect(supervisor.pools()[0]!.error).toBeUndefined();
  });

  it("reload() brings each new worker in before its old one leaves", async () => {
    const fake = new FakeProcessManager();
    const { supervisor, memberships } = supervise(fake);
    await supervisor.start([spec({ instances: 2 })]);
    const oldPids = supervisor.membership("web").map((worker) => worker.pid);
    memberships.length = 0;
    const [report] = await supervisor.reload("web");
    expect(report).toMatchObject({ ok: true, replaced: 2 });
    // 2 -> 3 (new in) -> 2 (old out), twice: never below 2.
    expect(Math.min(...memberships)).toBe(2);
    expect(Math.max(...memberships)).toBe(3);
    await until(() => supervisor.membership("web").every((worker) => !oldPids.includes(worker.pid)));
  });

  it("a new worker that fails during reload stops it: the old workers serve on and the pool is not halted", async () => {
    let failNew = false;
    const script: Script = (): Behaviour => (failNew ? { exit: 4 } : { ready: true });
    const fake = new FakeProcessManager(script);
    const { supervisor, events } = supervise(fake);
    await supervisor.start([spec({ instances: 2 })]);
    const serving = supervisor.membership("web").map((worker) => worker.pid);
    failNew = true;
    const [report] = await supervisor.reload("web");
    expect(report).toMatchObject({ ok: false, replaced: 0 });
    expect(report!.error?.message).toMatch(/APP_LOAD_ERROR|code 4/);
    expect(supervisor.membership("web").map((worker) => worker.pid)).toEqual(serving);
    expect(supervisor.pools()[0]!.error).toBeUndefined();
    expect(events.some((event) => event.type === "reload-failed")).toBe(true);
  });

  it("a restart's late exit event (the old generation's) does not count against the new worker", async () => {
    const fake = new FakeProcessManager();
    const { supervisor, events } = supervise(fake);
    await supervisor.start([spec({ instances: 1, restart: { maxRestarts: 0, backoffMs: 1, minUptimeMs: 60_000 } })]);
    // pm2 reports the stopped generation's exit (twice) while the new one starts: with max_restarts 0, judging it would halt.
    await supervisor.restart("web");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events.filter((event) => event.type === "worker-exit")).toEqual([]);
    expect(supervisor.pools()[0]).toMatchObject({ state: "running", ready: 1 });
  });

  it("scale() adds and removes slots; a removed slot leaves the membership before pm2 deletes it", async () => {
    const fake = new FakeProcessManager();
    const { supervisor, name } = supervise(fake);
    await supervisor.start([spec({ instances: 1 })]);
    expect((await supervisor.scale("web", 3)).ready).toBe(3);
    expect(supervisor.membership("web")).toHaveLength(3);
    await supervisor.scale("web", 1);
    expect(supervisor.membership("web").map((worker) => worker.slot)).toEqual([0]);
    await until(() => fake.calls.includes(`delete ${name(2)}`));
  });

  /** Two workers of "web" under a fake daemon that can die; every connect (the first, and each after a loss) is counted. */
  async function superviseAcrossDaemons() {
    const fake = new FakeProcessManager();
    let connects = 0;
    const stateDir = path.join(os.tmpdir(), `tsgi-rules-${process.pid}-${++counter}`);
    const supervisor = new Supervisor({ stackId: `rules${counter}`, stateDir, connectProcessManager: async () => (connects++, fake.restartDaemon()) });
    running.push({ supervisor, stateDir });
    const events: SupervisorEvent[] = [];
    supervisor.onEvent((event) => events.push(event));
    await supervisor.start([spec({ instances: 2 })]);
    return { fake, supervisor, events, connects: () => connects };
  }

  it("notices pm2's daemon dying without a word, says so, connects a new one and starts every worker on it", async () => {
    const { fake, supervisor, events, connects } = await superviseAcrossDaemons();
    const before = supervisor.membership("web").map((worker) => worker.pid);
    fake.crashDaemon();
    await until(() => events.some((event) => event.type === "supervisor-error" && /pm2 daemon stopped/.test(event.message)), 6000);
    await until(() => supervisor.membership("web").length === 2 && supervisor.membership("web").every((worker) => !before.includes(worker.pid)), 5000);
    expect(connects()).toBe(2);
    expect(events).toContainEqual(expect.objectContaining({ type: "supervisor-error", message: expect.stringMatching(/a new one runs, and 2 worker\(s\) are starting/) }));
  }, 15_000);

  it("takes a missing pid file for a lost daemon only when the daemon does not answer either", async () => {
    const { fake, supervisor, events, connects } = await superviseAcrossDaemons();
    fake.pidFileMissing = true;
    await new Promise((resolve) => setTimeout(resolve, 3500));
    fake.pidFileMissing = false;
    expect(connects()).toBe(1);
    expect(events.filter((event) => event.type === "supervisor-error" && /daemon/.test(event.message))).toEqual([]);
  }, 10_000);
});
