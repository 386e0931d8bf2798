/**
 * stop() ends with a sweep of the processes that carry the stack's marks in
 * their environment (TSGI_STACK and pm2's PM2_HOME): a worker pm2 lost track
 * of must not outlive `down`. Real processes, started here outside pm2, stand
 * for such a worker; one with another stack's pm2 home must be left alone.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Supervisor } from "../../src/supervisor/supervisor.ts";
import { eventually, isAlive, tempStateDir } from "./helpers.ts";

const STACK = "straytest";
const stateDir = tempStateDir("stray");
const started: ChildProcess[] = [];

/** A process that ignores nothing and runs until stopped, with `env` added to ours. */
async function idleProcess(env: Record<string, string>): Promise<number> {
  const child = spawn(process.execPath, ["-e", "process.stdout.write('up\\n'); setInterval(() => {}, 1000)"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  started.push(child);
  await new Promise((resolve) => child.stdout!.once("data", resolve));
  return child.pid!;
}

afterAll(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  rmSync(stateDir, { recursive: true, force: true });
});

describe("Supervisor.stop() and processes pm2 no longer lists", () => {
  it("stops a process marked as this stack's worker, and leaves another stack's alone", async () => {
    const pm2Home = path.join(stateDir, "pm2");
    const lost = await idleProcess({ TSGI_STACK: STACK, PM2_HOME: pm2Home, TSGI_APP: "web", TSGI_SLOT: "0" });
    const sameIdOtherHome = await idleProcess({ TSGI_STACK: STACK, PM2_HOME: path.join(stateDir, "elsewhere") });
    const otherId = await idleProcess({ TSGI_STACK: `${STACK}2`, PM2_HOME: pm2Home });

    // No daemon runs in this state dir: stop() has nothing to ask pm2, and still sweeps.
    const report = await new Supervisor({ stackId: STACK, stateDir }).stop();

    expect(report.strays).toEqual([lost]);
    expect(report.deleted).toEqual([]);
    // It went on SIGTERM, the signal a worker drains on, not on a SIGKILL.
    expect(await eventually(() => started[0]!.signalCode ?? undefined, 5000, "the lost worker to exit")).toBe("SIGTERM");
    expect(isAlive(sameIdOtherHome)).toBe(true);
    expect(isAlive(otherId)).toBe(true);
  });
});
