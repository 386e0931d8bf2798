/**
 * pm2's daemon SIGKILLed under a running supervisor (a fault campaign's
 * case): nothing tells the supervisor, so it looks; the workers the dead
 * daemon ran are killed by pid (they would hold their sockets), a new daemon
 * is started, and the pool serves again. Real pm2, real workers.
 */
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isAlive } from "../../src/supervisor/probes.ts";
import { Supervisor } from "../../src/supervisor/supervisor.ts";
import type { SupervisorEvent } from "../../src/supervisor/types.ts";
import { get, modulePool, tempStateDir } from "./helpers.ts";

const stateDir = tempStateDir("daemon");
const supervisor = new Supervisor({ stackId: "daemon", stateDir });
afterAll(async () => {
  await supervisor.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

async function until<T>(check: () => T | undefined | false, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("pm2's daemon killed", () => {
  it("is noticed, replaced, and every worker starts again on the new one within 10 s", async () => {
    const events: SupervisorEvent[] = [];
    supervisor.onEvent((event) => events.push(event));
    await supervisor.start([modulePool("hello", "test/fixtures/apps/lifecycle.ts", 2)]);
    const before = supervisor.membership("hello").map((worker) => worker.pid);
    const daemon = Supervisor.daemonPid(stateDir)!;
    expect(daemon).toBeGreaterThan(0);
    // A worker of the daemon's the pools never saw (as one its own restart started just before it died): it carries the
    // stack's marks, like every process launched for the stack, and must go with the rest.
    const unseen = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], {
      env: { ...process.env, TSGI_STACK: "daemon", PM2_HOME: path.join(stateDir, "pm2"), TSGI_APP: "hello", TSGI_SLOT: "7" },
      stdio: "ignore",
    });
    const unseenExit = new Promise((resolve) => unseen.once("exit", (_code, signal) => resolve(signal)));
    process.kill(daemon, "SIGKILL");
    const killedAt = Date.now();
    const after = await until(
      () => {
        const ready = supervisor.membership("hello");
        return ready.length === 2 && ready.every((worker) => !before.includes(worker.pid)) && ready;
      },
      10_000,
      "2 new workers ready",
    );
    console.log(`pm2's daemon SIGKILLed -> 2 new workers ready in ${Date.now() - killedAt} ms`);
    for (const worker of after) expect((await get(worker.address, "/pid")).status).toBe(200);
    // The dead daemon's workers are gone (they would have held their sockets), and a new daemon runs.
    for (const pid of before) expect(isAlive(pid)).toBe(false);
    expect(await unseenExit).toBe("SIGKILL");
    const replacement = Supervisor.daemonPid(stateDir);
    expect(replacement).toBeDefined();
    expect(replacement).not.toBe(daemon);
    expect(events).toContainEqual(expect.objectContaining({ type: "supervisor-error", message: expect.stringMatching(/pm2's daemon was gone/) }));
  }, 30_000);
});
