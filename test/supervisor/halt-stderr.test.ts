/**
 * A halted pool's error quotes the stderr of the run that failed — not of
 * an earlier worker that wrote to the same log file (logs are appended
 * across runs in one state dir) — and a `command:` that is a shell builtin
 * (`exit 1`) runs as written. Real pm2, real workers.
 */
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Supervisor } from "../../src/supervisor/supervisor.ts";
import { commandPool, modulePool, tempStateDir } from "./helpers.ts";

const stateDir = tempStateDir("halt");
const app = path.join(stateDir, "app.mjs");
const supervisors: Supervisor[] = [];
afterAll(async () => {
  for (const supervisor of supervisors) await supervisor.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

async function haltedError(code: string, spec = modulePool("web", app, 1, { cwd: stateDir })) {
  writeFileSync(app, code);
  const supervisor = new Supervisor({ stackId: "halt", stateDir });
  supervisors.push(supervisor);
  const [report] = await supervisor.start([spec]);
  await supervisor.stop();
  return report!.error!;
}

describe("a halt's stderr", () => {
  it("is this run's, even when an earlier run wrote to the same log", async () => {
    const first = await haltedError('throw new Error("first run: DATABASE_URL missing");\n');
    expect(first.stderr.join("\n")).toContain("first run");
    const second = await haltedError('throw new Error("second run: REDIS_URL missing");\n');
    expect(second.stderr.join("\n")).toContain("second run");
    expect(second.stderr.join("\n")).not.toContain("first run");
    expect(second.message).toContain("second run");
  }, 60_000);

  it("a command that is a shell builtin (exit 1) runs as written: it exits 1, not 'exec: exit: not found'", async () => {
    const error = await haltedError("", commandPool("cmd", "exit 1", 1, { cwd: stateDir, restart: { maxRestarts: 0, backoffMs: 100, minUptimeMs: 1000 } }));
    expect(error.message).toMatch(/code 1/);
    expect(error.stderr.join("\n")).not.toMatch(/not found/);
  }, 60_000);
});
