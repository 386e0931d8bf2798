/**
 * `tsgi-stack validate [-c FILE]` (issue #3): every error on stderr, one per
 * line, exit 1; a good file gets a one-line summary on stdout, exit 0. Driven
 * through commander as main.ts registers it, with the output captured.
 */
import nodePath from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { afterEach, describe, expect, it, vi } from "vitest";
import { registerValidate, validateFile } from "../../src/cli/commands/validate.ts";

const ROOT = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), "../..");
const BAD = nodePath.join(ROOT, "test/config/fixtures/bad");

function capture(file: string) {
  const out: string[] = [];
  const err: string[] = [];
  const code = validateFile(file, { stdout: (line) => out.push(line), stderr: (line) => err.push(line), env: {} });
  return { code, out, err };
}

describe("validateFile", () => {
  it("summarizes a good file in one line and returns 0", () => {
    expect(capture(nodePath.join(ROOT, "config.example.yaml"))).toEqual({
      code: 0,
      out: [`${nodePath.join(ROOT, "config.example.yaml")}: ok: 4 apps (hello, express, legacy, site), 6 instances, 5 routes`],
      err: [],
    });
  });

  it("lists every error, one per line, and returns 1", () => {
    const { code, out, err } = capture(nodePath.join(BAD, "unknown-keys.yaml"));
    expect(code).toBe(1);
    expect(out).toEqual([]);
    expect(err).toHaveLength(9);
    for (const line of err) expect(line).toMatch(/^\S+unknown-keys\.yaml:\d+:\d+ [\w.[\]]+: unknown key/);
  });

  it("says when the file is missing", () => {
    expect(capture("nowhere/tsgi.yaml")).toMatchObject({ code: 1, err: [`nowhere/tsgi.yaml: no such file: ${nodePath.resolve("nowhere/tsgi.yaml")}`] });
  });
});

describe("the validate subcommand", () => {
  const saved = process.exitCode;
  afterEach(() => {
    process.exitCode = saved;
    vi.restoreAllMocks();
  });

  async function run(args: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((chunk) => out.push(String(chunk)) > 0);
    vi.spyOn(process.stderr, "write").mockImplementation((chunk) => err.push(String(chunk)) > 0);
    const program = new Command("tsgi-stack").exitOverride();
    registerValidate(program);
    await program.parseAsync(["node", "tsgi-stack", "validate", ...args]);
    vi.restoreAllMocks();
    return { code: process.exitCode, out: out.join(""), err: err.join("") };
  }

  it("-c FILE: exit 0 and the summary", async () => {
    const { code, out } = await run(["-c", nodePath.join(ROOT, "config.example.yaml")]);
    expect(code).toBe(0);
    expect(out).toMatch(/: ok: 4 apps \(hello, express, legacy, site\), 6 instances, 5 routes\n$/);
  });

  it("--config FILE with errors: exit 1 and one line each", async () => {
    const { code, err } = await run(["--config", nodePath.join(BAD, "duplicate-routes.yaml")]);
    expect(code).toBe(1);
    expect(err.trimEnd().split("\n")).toHaveLength(4);
  });

  it("without -c reads tsgi.yaml in the current directory", async () => {
    const { code, err } = await run([]);
    expect(code).toBe(1);
    expect(err).toBe(`tsgi.yaml: no such file: ${nodePath.resolve("tsgi.yaml")}\n`);
  });
});
