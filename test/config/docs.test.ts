/**
 * The generated docs are never stale, and the JSON Schema that
 * editors use says what the loader says (issue #3): a strict JSON Schema
 * validator (ajv) accepts every good config and rejects every bad one whose
 * fault a schema can see.
 */
import { readFileSync, readdirSync } from "node:fs";
import nodePath from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { GENERATED, REGENERATE, renderJsonSchema, renderMarkdown } from "../../src/config/generate-docs.ts";
import { type AnySchema, StackConfigSchema } from "../../src/config/schema.ts";

const ROOT = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), "../..");
const FIXTURES = nodePath.join(ROOT, "test/config/fixtures");

describe("generated docs", () => {
  for (const { file, render } of GENERATED) {
    it(`${file} is up to date (else run: ${REGENERATE})`, () => {
      const committed = readFileSync(nodePath.join(ROOT, file), "utf8");
      expect(committed === render(), `${file} is stale: run \`${REGENERATE}\` and commit the result`).toBe(true);
    });
  }

  it("say they are generated and must not be edited", () => {
    expect(renderMarkdown()).toContain("generated from src/config/schema.ts");
    expect(renderMarkdown()).toContain("do not edit");
    expect(JSON.parse(renderJsonSchema()).$comment).toMatch(/generated from src\/config\/schema\.ts .* do not edit/);
  });

  it("document every key, with a description", () => {
    const markdown = renderMarkdown();
    const undocumented: string[] = [];
    const walk = (schema: AnySchema, path: string): void => {
      for (const [key, child] of Object.entries((schema.properties as Record<string, AnySchema>) ?? {})) {
        if (typeof child.description !== "string" || child.description.length < 10) undocumented.push(`${path}${key}`);
        if (!markdown.includes(`| \`${key}\` |`)) undocumented.push(`${path}${key} (not in config.md)`);
        walk(child, `${path}${key}.`);
        if (child.items) walk(child.items as AnySchema, `${path}${key}[].`);
        for (const value of Object.values((child.patternProperties as Record<string, AnySchema>) ?? {})) walk(value, `${path}${key}.<name>.`);
      }
    };
    walk(StackConfigSchema as unknown as AnySchema, "");
    expect(undocumented).toEqual([]);
  });

  it("show each default and unit next to the key", () => {
    const markdown = renderMarkdown();
    expect(markdown).toContain("| `timeout` | duration (ms) | `30s` |");
    expect(markdown).toContain("| `client_max_body_size` | size (bytes) | `1m` |");
    expect(markdown).toContain("| `instances` | integer ≥ 1 | `1` |");
    expect(markdown).toContain("yaml-language-server: $schema=");
  });
});

describe("the JSON Schema for editors", () => {
  // strictRequired off: `oneOf: [{ required: [module] }, ...]` names keys the app defines beside it,
  // which is plain JSON Schema; ajv's strictRequired would flag it only as a possible typo.
  const ajv = new Ajv({ strict: true, strictRequired: false, allErrors: true });
  const validate = ajv.compile(JSON.parse(renderJsonSchema()));
  const load = (file: string) => parse(readFileSync(file, "utf8")) as unknown;

  it("is a strict draft-07 schema", () => {
    expect(typeof validate).toBe("function");
  });

  it("leaves keys with defaults out of `required`", () => {
    const schema = JSON.parse(renderJsonSchema());
    expect(schema.required).toEqual(["apps"]);
    expect(schema.properties.proxy.required).toBeUndefined();
  });

  const good = [
    nodePath.join(ROOT, "config.example.yaml"),
    ...readdirSync(nodePath.join(FIXTURES, "good"))
      .filter((name) => name.endsWith(".yaml") && name !== "env.yaml") // env.yaml has ${VAR}s in number fields: editors see them unexpanded
      .map((name) => nodePath.join(FIXTURES, "good", name)),
  ];
  it.each(good)("accepts %s", (file) => {
    expect(validate(load(file)), JSON.stringify(validate.errors)).toBe(true);
  });

  // Every bad fixture whose fault is in the file's shape (not in the environment, the disk or across apps).
  const bad = [
    "bad-names",
    "bad-routes",
    "bad-units",
    "empty",
    "listeners",
    "module-and-command",
    "no-apps",
    "not-a-mapping",
    "required-missing",
    "unknown-keys",
    "wrong-types",
  ];
  it.each(bad)("rejects bad/%s.yaml", (name) => {
    expect(validate(load(nodePath.join(FIXTURES, "bad", `${name}.yaml`)))).toBe(false);
  });
});
