/**
 * Property fuzz of the config loader (src/config/load.ts): the example file
 * and every fixture under test/config/fixtures, mutated at the character,
 * line and value level, with file systems and environments drawn at random.
 * Whatever the text, parseConfig returns a config or a list of located
 * errors — each a TsgiStackError with a TSGI_ERR_CONFIG_* code and a
 * `file:line:column` — and never throws (no raw TypeError or RangeError
 * from a stage that assumed a shape the schema had not checked yet).
 * Seed and size: test/fuzz/params.ts (FUZZ_SEED, FUZZ_RUNS, FUZZ_PATH).
 */
import { readdirSync, readFileSync } from "node:fs";
import nodePath from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type LoadResult, parseConfig } from "../../src/config/load.ts";
import type { Probe } from "../../src/config/paths.ts";
import { TsgiStackError } from "../../src/errors.ts";
import { fuzzParameters, yielding } from "./params.ts";

const ROOT = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), "../..");
const FIXTURES = nodePath.join(ROOT, "test/config/fixtures");

/** The corpus: every YAML file the project already has, good and bad. */
const CORPUS: string[] = [
  readFileSync(nodePath.join(ROOT, "config.example.yaml"), "utf8"),
  ...["good", "bad"].flatMap((kind) =>
    readdirSync(nodePath.join(FIXTURES, kind))
      .filter((name) => name.endsWith(".yaml"))
      .sort()
      .map((name) => readFileSync(nodePath.join(FIXTURES, kind, name), "utf8")),
  ),
];

/** Scalars that have broken loaders elsewhere: huge, negative, fractional, special floats, YAML tags, env syntax, odd types. */
const NASTY_SCALARS = [
  "0", "-1", "1.5", "1e400", "-0", ".nan", ".inf", "-.inf", "0x1F", "0o17", "9007199254740993", "99999999999999999999999",
  "~", "null", "true", "yes", "''", '""', "[]", "{}", "[1, [2, [3]]]", "{a: {b: {c: 1}}}", "!!binary aGVsbG8=", "!!str 5",
  "!!int 5", "!!float x", "!!map {}", "!!set {a}", "!!omap [a: 1]", "!!timestamp 2001-12-14", "2001-12-14t21:59:43.10-05:00",
  "${X}", "${X:-}", "${X:-5}", "${}", "${X", "$${X}", "$$", "${X:-${Y}}", "10m", "10mb", "-5s", "1.5.5", "0ms", "1d", "1y",
  "constructor", "__proto__", "toString", "hasOwnProperty", "\"\\u0000\"", "\"\\uD800\"", "'\t'", "a:b:c", "127.0.0.1:99999",
  "[::1]:0", ":0", "unix:/tmp/x.sock", "*", "&a x", "*a", "*nope", "<<: *a", "|\n  multi\n  line", ">-\n  folded", "- item",
  "? complex\n: key", "%YAML 1.2", "---", "...", "@", "`", "#", "\"unterminated", "'unterminated", "{unclosed", "[unclosed",
];
const KEYS = ["apps", "proxy", "routes", "module", "static", "command", "path", "host", "listen", "tls", "limits", "health", "restart", "env", "instances", "__proto__", "constructor", "0", "x y"];
const YAML_CHARS = [":", "-", " ", "  ", "\t", "\n", "[", "]", "{", "}", "#", "&", "*", "!", "|", ">", "'", '"', "%", "@", ",", "?", "$", "{", "\\", "\u0000", "\ufeff", "\u2028", "é"];

type Edit =
  | { op: "char"; at: number; text: string; remove: number }
  | { op: "line"; kind: "delete" | "duplicate" | "swap" | "indent" | "dedent"; at: number; other: number }
  | { op: "value"; at: number; scalar: string }
  | { op: "key"; at: number; key: string }
  | { op: "cut"; at: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constant("char" as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...YAML_CHARS), fc.string({ maxLength: 4 })), remove: fc.nat(3) }),
  fc.record({ op: fc.constant("line" as const), kind: fc.constantFrom("delete" as const, "duplicate" as const, "swap" as const, "indent" as const, "dedent" as const), at: fc.nat(), other: fc.nat() }),
  fc.record({ op: fc.constant("value" as const), at: fc.nat(), scalar: fc.oneof(fc.constantFrom(...NASTY_SCALARS), fc.string({ maxLength: 12 })) }),
  fc.record({ op: fc.constant("key" as const), at: fc.nat(), key: fc.constantFrom(...KEYS) }),
  fc.record({ op: fc.constant("cut" as const), at: fc.nat() }),
);

function apply(text: string, e: Edit): string {
  const lines = text.split("\n");
  const line = (n: number) => n % Math.max(lines.length, 1);
  switch (e.op) {
    case "char": {
      const at = e.at % (text.length + 1);
      return text.slice(0, at) + e.text + text.slice(at + e.remove);
    }
    case "line": {
      const i = line(e.at);
      const j = line(e.other);
      if (e.kind === "delete") lines.splice(i, 1);
      else if (e.kind === "duplicate") lines.splice(i, 0, lines[i] ?? "");
      else if (e.kind === "swap") [lines[i], lines[j]] = [lines[j] ?? "", lines[i] ?? ""];
      else if (e.kind === "indent") lines[i] = `  ${lines[i] ?? ""}`;
      else lines[i] = (lines[i] ?? "").replace(/^ {1,2}/, "");
      return lines.join("\n");
    }
    case "value": {
      // The value of a `key: value` line (or a `- item`), replaced.
      const candidates = lines.map((l, n) => [l, n] as const).filter(([l]) => /^\s*(- |[\w.-]+:\s)/.test(l));
      if (candidates.length === 0) return text;
      const [l, n] = candidates[e.at % candidates.length]!;
      lines[n] = l.replace(/^(\s*(?:- |[\w.-]+:\s+)).*$/, (_, lead: string) => lead + e.scalar);
      return lines.join("\n");
    }
    case "key": {
      const candidates = lines.map((l, n) => [l, n] as const).filter(([l]) => /^\s*[\w.-]+:/.test(l));
      if (candidates.length === 0) return text;
      const [l, n] = candidates[e.at % candidates.length]!;
      lines[n] = l.replace(/^(\s*)[\w.-]+:/, (_, indent: string) => `${indent}${e.key}:`);
      return lines.join("\n");
    }
    case "cut":
      return text.slice(0, e.at % (text.length + 1));
  }
}

/** The file system the checks see: nothing, everything (as files or folders), or a path-dependent mix. */
const probe: fc.Arbitrary<Probe> = fc.constantFrom<Probe>(
  () => undefined,
  () => "file",
  () => "dir",
  (path) => (/\.(ts|js|mjs|cjs|pem)$/.test(path) ? "file" : "dir"),
);
const env = fc.dictionary(fc.constantFrom("X", "Y", "NODE_ENV", "PORT", "HOME"), fc.constantFrom("", "5", "x", "${X}", "10m", "-1", "[1]"), { maxKeys: 3 });

const mutatedConfig = fc.tuple(fc.nat(CORPUS.length - 1), fc.array(edit, { minLength: 1, maxLength: 5 })).map(([n, edits]) => edits.reduce(apply, CORPUS[n]!));

/** Parses; a throw of any kind fails the property, with the text that caused it. */
function load(text: string, given: { probe: Probe; env: Record<string, string> }): LoadResult {
  try {
    return parseConfig(text, { file: "tsgi.yaml", dir: "/srv", env: given.env, probe: given.probe });
  } catch (error) {
    throw new Error(`parseConfig threw ${String(error)} on ${JSON.stringify(text)}`, { cause: error });
  }
}

function checkResult(result: LoadResult): void {
  if (result.ok) {
    // A config is plain data: it serializes, and it is frozen (normalize deep-freezes it).
    expect(() => JSON.stringify(result.config)).not.toThrow();
    expect(Object.isFrozen(result.config)).toBe(true);
    return;
  }
  expect(result.errors.length).toBeGreaterThan(0);
  for (const error of result.errors) {
    expect(error).toBeInstanceOf(TsgiStackError);
    expect(error.code).toMatch(/^TSGI_ERR_CONFIG_[A-Z_]+$/);
    expect(error.line).toBeGreaterThanOrEqual(1);
    expect(error.column).toBeGreaterThanOrEqual(1);
    expect(error.at).toBe(`tsgi.yaml:${error.line}:${error.column}`);
    expect(error.format()).toMatch(/^tsgi\.yaml:\d+:\d+/);
  }
}

describe("config loader fuzz", () => {
  it("the corpus itself loads without a throw", () => {
    expect(CORPUS.length).toBeGreaterThan(10);
    for (const text of CORPUS) checkResult(load(text, { probe: () => "file", env: {} }));
  });

  it("mutated YAML gives a config or located TSGI_ERR_CONFIG_* errors, never an exception", () => {
    return fc.assert(
      yielding(mutatedConfig, probe, env, (text, p, e) => checkResult(load(text, { probe: p, env: e }))),
      fuzzParameters(250),
    );
  });

  it("arbitrary text does the same", () => {
    const text = fc.oneof(fc.string({ maxLength: 200 }), fc.array(fc.constantFrom(...YAML_CHARS, ...KEYS, ...NASTY_SCALARS, "\n  ", "\n"), { maxLength: 40 }).map((parts) => parts.join("")));
    return fc.assert(
      yielding(text, probe, env, (t, p, e) => checkResult(load(t, { probe: p, env: e }))),
      fuzzParameters(400),
    );
  });
});
