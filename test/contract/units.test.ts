/**
 * Durations and sizes (src/contract/units.ts): the JSON Schema patterns the
 * config schema and editors check with accept exactly what the parsers read.
 * The two forms are needed (a pattern without flags for JSON Schema, a
 * parser for values), so this test keeps them describing one language.
 */
import { describe, expect, it } from "vitest";
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, parseSize } from "../../src/contract/units.ts";

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
