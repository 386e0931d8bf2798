/**
 * @module test/tsgi/docs-rules
 *
 * Keeps docs/tsgi.md and the code from drifting apart, as Fastify's test of
 * errors.js against Errors.md does: every rule name the source cites — as the
 * literal text "(docs/tsgi.md, <name>)" or as the rule argument of an error
 * that renders that citation — must be a "Rule: <name>" heading of the spec,
 * and the validator's catalog must name exactly the spec's rules.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { RULE_NAMES, UNCHECKED_RULES } from "../../src/tsgi/validate.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SPEC = path.join(ROOT, "docs/tsgi.md");

/** The rule names of the spec: one heading "Rule: <name>" each. */
function specRules(markdown: string): string[] {
  return [...markdown.matchAll(/^#{2,6} Rule: (.+?)\s*$/gm)].map((match) => match[1]!);
}

/** Errors and helpers whose first argument is a rule name that ends up in "(docs/tsgi.md, <rule>)". */
const CITING_CALLS = ["TsgiContractError", "TsgiValidationError", "TsgiWarning", "appError", "serverError"];
const LITERAL_CITATION = /docs\/tsgi\.md, ([^)`"'$<\n][^)`"'$\n]*)\)/g;
const RULE_ARGUMENT = new RegExp(`\\b(?:${CITING_CALLS.join("|")})\\(\\s*(["'\`])([^"'\`$]+)\\1`, "g");

/** Every rule name cited in one source text. Placeholders ("${rule}", "<rule>") are not names and are skipped. */
function citedRules(source: string): string[] {
  const names = [...source.matchAll(LITERAL_CITATION)].map((match) => match[1]!.trim());
  for (const match of source.matchAll(RULE_ARGUMENT)) names.push(match[2]!);
  return names;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return /\.(ts|js|mjs|cjs)$/.test(entry.name) ? [full] : [];
  });
}

describe("docs/tsgi.md rule names", () => {
  const rules = specRules(readFileSync(SPEC, "utf8"));

  it("names each rule exactly once", () => {
    expect(rules.length).toBeGreaterThan(20);
    expect(rules.filter((name, index) => rules.indexOf(name) !== index)).toEqual([]);
  });

  it("finds citations in both forms, and skips template placeholders", () => {
    const sample = [
      'throw new TypeError("startResponse was called twice (docs/tsgi.md, startResponse)");',
      "super(`${message} (docs/tsgi.md, ${rule})`);",
      ' * Messages name the rule as "(docs/tsgi.md, <rule>)".',
      'throw new TsgiContractError(\n  "Content-Length",\n  `too many bytes`,\n);',
      'throw appError("hop-by-hop headers", "no Connection");',
    ].join("\n");
    expect(citedRules(sample).sort()).toEqual(["Content-Length", "hop-by-hop headers", "startResponse"]);
  });

  it("has every rule that src/ cites", () => {
    const missing: string[] = [];
    let citations = 0;
    for (const file of sourceFiles(path.join(ROOT, "src"))) {
      for (const name of citedRules(readFileSync(file, "utf8"))) {
        citations++;
        if (!rules.includes(name)) missing.push(`${path.relative(ROOT, file)}: "${name}"`);
      }
    }
    // The validator alone cites dozens; zero would mean the patterns stopped matching the code.
    expect(citations).toBeGreaterThan(50);
    expect(missing, "rule names cited in src/ but missing from docs/tsgi.md").toEqual([]);
  });

  it("are exactly the validator's rule catalog", () => {
    expect([...RULE_NAMES].sort()).toEqual([...rules].sort());
  });

  it("lists the rules the validator cannot check in the spec, each with a reason", () => {
    for (const [name, reason] of Object.entries(UNCHECKED_RULES)) {
      expect(rules).toContain(name);
      expect(reason!.length).toBeGreaterThan(20);
    }
  });
});
