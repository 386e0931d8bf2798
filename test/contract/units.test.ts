/**
 * Durations and sizes (src/contract/units.ts): the JSON Schema patterns the
 * config schema and editors check with accept exactly what the parsers read.
 * The two forms are needed (a pattern without flags for JSON Schema, a
 * parser for values), so this test keeps them describing one language.
 */
import { describe, expect, it } from "vitest";
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, parseSize } from "../../src/contract/units.ts";

describe("the unit patterns agree with the parsers", () => {
  const durations = ["0", "30", "30s", "1.5m", "250ms", "250MS", "2h", "1d", "10 s", "1.0S", "1m30s", "1h 30m", "1h30m15s", "2s500ms"];
  const notDurations = ["", "s", "10x", "-1s", "1.5.0s", "1e3", "ten", "10 seconds", " 10s", "1m30", "m30s", "1m-30s"];
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
  it.each([
    ["30", 30_000],
    ["500ms", 500],
    ["1m30s", 90_000],
    ["1h 30m", 5_400_000],
    ["2s500ms", 2_500],
    ["1.5m", 90_000],
  ] as [string, number][])("duration %s is %i ms", (value, ms) => {
    expect(parseDuration(value)).toBe(ms);
  });
  it.each(notDurations.filter((value) => value.trim() !== "" && value !== " 10s"))("duration %j does not parse", (value) => {
    expect(() => parseDuration(value)).toThrow(/is not a duration such as/);
  });
  it.each([
    ["512k", 512 * 1024],
    ["10m", 10 * 1024 ** 2],
    ["256MB", 256 * 1024 ** 2],
    ["1GiB", 1024 ** 3],
    ["1024", 1024],
  ] as [string, number][])("size %s is %i bytes", (value, bytes) => {
    expect(parseSize(value)).toBe(bytes);
  });
  it.each(notSizes)("size %j does not match", (value) => {
    expect(new RegExp(SIZE_PATTERN).test(value)).toBe(false);
  });
});
