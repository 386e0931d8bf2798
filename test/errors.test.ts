/**
 * The error catalog (src/errors.ts) and docs/errors.md agree, after Fastify's
 * Errors.md test: every code a room registers is documented, the docs list no
 * code that is gone, and no code means two things. The groups are found the
 * way a new room's would be: any module of src/ that calls errorGroup().
 */
import { readdirSync, readFileSync } from "node:fs";
import nodePath from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { type ErrorGroup, errorGroup, isErrorGroup, TsgiStackError } from "../src/errors.ts";

const ROOT = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), "..");
const SRC = nodePath.join(ROOT, "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = nodePath.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

const sources = sourceFiles(SRC).map((file) => ({ file, text: readFileSync(file, "utf8") }));
const CATALOG = nodePath.join(SRC, "errors.ts");

async function collectGroups(): Promise<{ group: ErrorGroup; file: string }[]> {
  const found: { group: ErrorGroup; file: string }[] = [];
  for (const { file, text } of sources) {
    if (file === CATALOG || !/\berrorGroup\(/.test(text)) continue;
    const exports = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    for (const value of Object.values(exports)) if (isErrorGroup(value)) found.push({ group: value, file: nodePath.relative(ROOT, file) });
  }
  return found;
}

const groups = await collectGroups();
const classes = groups.flatMap(({ group }) => group.classes);
const codes = classes.map((type) => type.code);

/** The codes docs/errors.md lists: the first cell of its table rows. */
const docs = readFileSync(nodePath.join(ROOT, "docs/errors.md"), "utf8");
const documented = [...docs.matchAll(/^\| `(TSGI_ERR_[A-Z0-9_]+)` \|/gm)].map((match) => match[1]!);

describe("the error catalog", () => {
  it("has the groups of every room that states errors", () => {
    const names = groups.map(({ group }) => group.name).sort();
    for (const name of ["APP", "CLI", "CONFIG", "CONTROL", "GATEWAY", "STACK", "UWSGI"]) expect(names).toContain(name);
    expect(new Set(names).size, `a group name is registered twice: ${names.join(", ")}`).toBe(names.length);
  });

  it("gives each code to one class only", () => {
    const twice = codes.filter((code, index) => codes.indexOf(code) !== index);
    expect(twice).toEqual([]);
  });

  it("holds classes of the base, each stating its own code", () => {
    for (const type of classes) {
      expect(type.prototype, type.name).toBeInstanceOf(TsgiStackError);
      expect(Object.hasOwn(type, "code"), `${type.name} inherits its code`).toBe(true);
    }
  });

  it("registers every code written in src/ (none is left out of a group)", () => {
    const written = sources
      .filter(({ file }) => file !== CATALOG)
      .flatMap(({ text }) => [...text.matchAll(/"(TSGI_ERR_[A-Z0-9_]+)"/g)].map((match) => match[1]!));
    expect(written.length).toBeGreaterThan(0);
    expect([...new Set(written)].filter((code) => !codes.includes(code))).toEqual([]);
  });

  it("refuses a code outside its group, and a code stated twice", () => {
    class Stray extends TsgiStackError {
      static readonly code: string = "TSGI_ERR_OTHER_STRAY";
    }
    class Twin extends Stray {
      static override readonly code = "TSGI_ERR_DEMO_TWIN";
    }
    class Same extends Stray {
      static override readonly code = "TSGI_ERR_DEMO_TWIN";
    }
    expect(() => errorGroup("DEMO", [Stray])).toThrow(/TSGI_ERR_DEMO_/);
    expect(() => errorGroup("DEMO", [Twin, Same])).toThrow(/stated twice/);
    const error = new Twin("demo", { at: "here" });
    expect(error.toJSON()).toEqual({ code: "TSGI_ERR_DEMO_TWIN", message: "demo", at: "here" });
    expect(error.name).toBe("Twin");
  });
});

describe("docs/errors.md", () => {
  it("documents every code of the catalog", () => {
    expect(codes.filter((code) => !documented.includes(code))).toEqual([]);
  });

  it("documents no code that no longer exists, and each once", () => {
    expect(documented.filter((code) => !codes.includes(code))).toEqual([]);
    expect(documented.filter((code, index) => documented.indexOf(code) !== index)).toEqual([]);
    const mentioned = [...docs.matchAll(/TSGI_ERR_[A-Z0-9_]+/g)].map((match) => match[0]);
    expect(mentioned.filter((code) => !codes.includes(code) && !/_$/.test(code))).toEqual([]);
  });
});
