/**
 * plan(config): everything a stack will run, as plain data — golden files
 * under test/golden/plan/, one per config: the example config and the good
 * config fixtures. The config's folder prints as `<dir>`. After a deliberate
 * change of what the stack runs, rewrite them with
 *   UPDATE_GOLDEN=1 npx vitest run test/stack/plan.test.ts
 * and read the diff before committing it: it is the change, as a user's
 * stack will see it.
 */
import { readdirSync } from "node:fs";
import nodePath from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.ts";
import type { StackConfig } from "../../src/config/schema.ts";
import { plan } from "../../src/stack/plan.ts";
import { FIXTURE_ENV, golden, hideDir } from "../helpers/golden.ts";

const ROOT = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), "../..");
const GOLDEN = nodePath.join(ROOT, "test/golden/plan");
const GOOD = nodePath.join(ROOT, "test/config/fixtures/good");

function load(file: string): StackConfig {
  const result = loadConfig(file, FIXTURE_ENV);
  if (!result.ok) expect.fail(result.errors.map((error) => error.format()).join("\n"));
  return result.config;
}

const cases: { name: string; file: string }[] = [
  { name: "example", file: nodePath.join(ROOT, "config.example.yaml") },
  ...readdirSync(GOOD)
    .filter((name) => name.endsWith(".yaml"))
    .sort()
    .map((name) => ({ name: name.replace(/\.yaml$/, ""), file: nodePath.join(GOOD, name) })),
];

describe("plan: what a config runs, exactly", () => {
  for (const { name, file } of cases) {
    it(name, () => {
      // Not key-sorted: the order of apps and routes is part of the plan (routing, start order, status).
      const text = `${JSON.stringify(plan(load(file)), null, 2)}\n`;
      golden(nodePath.join(GOLDEN, `${name}.json`), hideDir(text, nodePath.dirname(file)));
    });
  }

  it("is pure: the same config plans the same, and the plan is plain data", () => {
    const config = load(cases[0]!.file);
    const first = plan(config);
    expect(plan(config)).toEqual(first);
    // Plain data survives JSON whole (no functions, Maps, class instances): it can cross IPC, be stored and be rendered.
    expect(JSON.parse(JSON.stringify(first))).toEqual(first);
    expect(first.proxy.processes).toBe(1);
  });
});
