/**
 * Where config/ restates a rule another layer owns, the two must agree
 * (config/ imports nothing of gateway/: the layers' dependencies point
 * down, and config is at the bottom). Also the small helpers' own tables.
 */
import { describe, expect, it } from "vitest";
import { editDistance, nearest } from "../../src/config/suggest.ts";
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, parseSize } from "../../src/config/units.ts";

describe("the unit patterns agree with the parsers", () => {
  const durations = ["0", "30", "30s", "1.5m", "250ms", "250MS", "2h", "1d", "10 s", "1.0S"];
  const notDurations = ["", "s", "10x", "-1s", "1.5.0s", "1e3", "ten", "10 seconds", " 10s"];
  const sizes = ["0", "1024", "10m", "256M", "512k", "1g", "1.5m", "10mb", "10MiB", "10 kb"];
  const notSizes = ["", "m", "10q", "-1", "1e6", "256 megabytes", "10tb"];

  it.each(durations)("duration %s matches and parses", (value) => {
    expect(new RegExp(DURATION_PATTERN).test(value)).toBe(true);
    expect(() => parseDuration(value)).not.toThrow();
  });
  it.each(notDurations)("duration %j does not match", (value) => {
    expect(new RegExp(DURATION_PATTERN).test(value)).toBe(false);
  });
  it.each(sizes)("size %s matches and parses", (value) => {
    expect(new RegExp(SIZE_PATTERN).test(value)).toBe(true);
    expect(() => parseSize(value)).not.toThrow();
  });
  it.each(notSizes)("size %j does not match", (value) => {
    expect(new RegExp(SIZE_PATTERN).test(value)).toBe(false);
  });
});

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
