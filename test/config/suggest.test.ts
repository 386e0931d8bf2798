/**
 * The "did you mean" helper of config errors (src/config/suggest.ts).
 */
import { describe, expect, it } from "vitest";
import { editDistance, nearest } from "../../src/config/suggest.ts";

describe("suggestions", () => {
  it("count a swap of neighbours as one edit", () => {
    expect(editDistance("instnaces", "instances")).toBe(1);
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("abc", "abc")).toBe(0);
  });

  it.each([
    ["instancs", "instances"],
    ["Instances", "instances"],
    ["listn", "listen"],
    ["app", "apps"],
    ["timout", "timeout"],
    ["max_request", "max_requests"],
  ])("%s -> %s", (typo, expected) => {
    expect(nearest(typo, ["apps", "listen", "instances", "timeout", "max_requests", "max_requests_jitter"])).toBe(expected);
  });

  it("make none for a name far from every candidate", () => {
    expect(nearest("frobnicate", ["module", "command", "instances"])).toBeUndefined();
    expect(nearest("xy", ["cwd", "env"])).toBeUndefined();
  });
});
