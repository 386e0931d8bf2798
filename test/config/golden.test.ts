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
import { readdirSync } from "node:fs";
import nodePath from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.ts";
import { FIXTURE_ENV, golden, hideDir, stableJson } from "../helpers/golden.ts";

const FIXTURES = nodePath.join(nodePath.dirname(fileURLToPath(import.meta.url)), "fixtures");

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
