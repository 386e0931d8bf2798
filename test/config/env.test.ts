/**
 * `${VAR}` expansion, one rule per case (config/env.ts; issue #3).
 */
import { describe, expect, it } from "vitest";
import { expandString } from "../../src/config/env.ts";

function expand(text: string, env: Record<string, string> = {}) {
  const problems: string[] = [];
  return { value: expandString(text, env, problems), problems };
}

describe("expandString", () => {
  const env = { NAME: "tsgi", EMPTY: "", PORT: "8080" };

  it.each([
    ["${NAME}", "tsgi"],
    ["pre-${NAME}-post", "pre-tsgi-post"],
    ["${NAME}${PORT}", "tsgi8080"],
    ["${MISSING:-fallback}", "fallback"],
    ["${EMPTY:-fallback}", "fallback"],
    ["${NAME:-fallback}", "tsgi"],
    ["${MISSING:-}", ""],
    ["${MISSING:-a:b/c d}", "a:b/c d"],
    ["$$", "$"],
    ["$${NAME}", "${NAME}"],
    ["cost: $$5", "cost: $5"],
    ["node server.js --port $PORT", "node server.js --port $PORT"],
    ["trailing $", "trailing $"],
    ["${EMPTY}", ""],
  ])("%s -> %s", (text, expected) => {
    expect(expand(text, env)).toEqual({ value: expected, problems: [] });
  });

  it("an unset variable without a default is a problem naming it", () => {
    expect(expand("x${DB_URL}y", env)).toEqual({
      value: "xy",
      problems: ["${DB_URL} is not set in the environment (write ${DB_URL:-default} to give it a default)"],
    });
  });

  it("reports every bad reference in one string", () => {
    expect(expand("${A}${B}${1X}${}${UNCLOSED").problems).toHaveLength(5);
  });

  it.each(["${1X}", "${A B}", "${A-b}", "${}", "${A:b}"])("%s is a malformed reference", (text) => {
    expect(expand(text, { A: "a" }).problems[0]).toMatch(/^bad reference/);
  });
});
