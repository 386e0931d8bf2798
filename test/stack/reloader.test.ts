/**
 * The reload rules of stack/reload.ts, with a fake runner (the stack's
 * processes are not what is under test here): a burst of reloads — 50
 * SIGHUPs, say — is at most the one running and one more.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.ts";
import { plan } from "../../src/stack/plan.ts";
import { type PlanRunner, Reloader } from "../../src/stack/reload.ts";
import type { ReloadReport } from "../../src/supervisor/types.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-reloader-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = path.join(dir, "tsgi.yaml");
writeFileSync(path.join(dir, "app.mjs"), "export const app = () => [];\n");
writeFileSync(file, "apps:\n  web:\n    module: app.mjs\n    routes: [{ path: /w }]\n");

function fakeRunner(rollMs: number): PlanRunner & { rolls: string[] } {
  const loaded = loadConfig(file);
  if (!loaded.ok) throw new Error("fixture config does not load");
  const rolls: string[] = [];
  return {
    rolls,
    current: plan(loaded.config),
    apply: async () => undefined,
    roll: async (app): Promise<ReloadReport> => {
      rolls.push(app);
      await new Promise((resolve) => setTimeout(resolve, rollMs));
      return { app, ok: true, replaced: 1, ms: rollMs };
    },
  };
}

describe("Reloader", () => {
  it("coalesces a burst of reloads: the one running and one more, every caller answered", async () => {
    const runner = fakeRunner(50);
    const reloader = new Reloader(runner, { configFile: file, say: () => undefined });
    const running = reloader.reload();
    // Wait until the first one is rolling, then the burst: all 49 join one waiting reload.
    while (runner.rolls.length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    const burst = Array.from({ length: 49 }, () => reloader.reload());
    const outcomes = await Promise.all([running, ...burst]);
    expect(runner.rolls).toEqual(["web", "web"]);
    expect(outcomes).toHaveLength(50);
    expect(outcomes.every((outcome) => outcome.reloads.length === 1 && outcome.reloads[0]!.ok)).toBe(true);
  });

  it("a reload asked for after the waiting one has started queues one more, not zero", async () => {
    const runner = fakeRunner(30);
    const reloader = new Reloader(runner, { configFile: file, say: () => undefined });
    const first = reloader.reload();
    await first;
    await reloader.reload();
    expect(runner.rolls).toEqual(["web", "web"]);
  });
});
