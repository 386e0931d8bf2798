/**
 * Golden-file tests of the config loader (issue #3), in the
 * manner of gunicorn's requests/{valid,invalid}/ and Caddy's .caddyfiletest:
 *
 *   fixtures/bad/NAME.expected.txt   the exact error lines of loading NAME.yaml
 *                                    (missing-file has no .yaml on purpose)
 *   fixtures/good/NAME.yaml          loads, and normalizes to NAME.expected.json
 *
 * The fixtures folder prints as `<dir>` so the files hold no machine's paths.
 * After a deliberate change of messages, rewrite the goldens with
 *   UPDATE_GOLDEN=1 npx vitest run test/config/golden.test.ts
 * and read the diff before committing it.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import nodePath from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.ts";

const FIXTURES = nodePath.join(nodePath.dirname(fileURLToPath(import.meta.url)), "fixtures");
const UPDATE = process.env.UPDATE_GOLDEN === "1";

/** The environment every fixture is loaded with: nothing from the machine leaks in. */
export const FIXTURE_ENV = { FRONT_PORT: "9000", APP_FILE: "app.ts", GREETING: "hi there", EMPTY: "" };

function golden(file: string, actual: string): void {
  if (UPDATE) writeFileSync(file, actual);
  if (!existsSync(file)) expect.fail(`no golden file ${file}: write it with UPDATE_GOLDEN=1 and read it`);
  expect(actual).toBe(readFileSync(file, "utf8"));
}

const hideDir = (text: string, dir: string) => text.split(dir).join("<dir>");

/** JSON with keys sorted, so the golden does not depend on the order defaults were filled in. */
function stableJson(value: unknown): string {
  const sort = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(sort);
    if (node === null || typeof node !== "object") return node;
    return Object.fromEntries(Object.keys(node).sort().map((key) => [key, sort((node as Record<string, unknown>)[key])]));
  };
  return `${JSON.stringify(sort(value), null, 2)}\n`;
}

describe("bad configs: every error, exactly", () => {
  const dir = nodePath.join(FIXTURES, "bad");
  // Each .yaml, and each .expected.txt without one (a file that is missing on purpose).
  const cases = [
    ...new Set(readdirSync(dir).filter((name) => /\.(yaml|expected\.txt)$/.test(name)).map((name) => name.replace(/\.(yaml|expected\.txt)$/, ""))),
  ].sort();
  it("has a corpus", () => expect(cases.length).toBeGreaterThanOrEqual(15));

  for (const name of cases) {
    it(name, () => {
      const result = loadConfig(nodePath.join(dir, `${name}.yaml`), FIXTURE_ENV);
      expect(result.ok).toBe(false);
      const lines = result.ok ? [] : result.errors.map((error) => hideDir(error.format(), dir));
      golden(nodePath.join(dir, `${name}.expected.txt`), `${lines.join("\n")}\n`);
    });
  }
});

describe("good configs: normalized, exactly", () => {
  const dir = nodePath.join(FIXTURES, "good");
  const cases = readdirSync(dir).filter((name) => name.endsWith(".yaml")).map((name) => name.replace(/\.yaml$/, ""));
  it("has a corpus", () => expect(cases.length).toBeGreaterThanOrEqual(3));

  for (const name of cases) {
    it(name, () => {
      const result = loadConfig(nodePath.join(dir, `${name}.yaml`), FIXTURE_ENV);
      if (!result.ok) expect.fail(result.errors.map((error) => error.format()).join("\n"));
      golden(nodePath.join(dir, `${name}.expected.json`), hideDir(stableJson(result.config), dir));
    });
  }
});
