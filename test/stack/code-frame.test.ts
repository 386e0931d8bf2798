/**
 * What `up --watch` shows for a broken save: the first location in the
 * worker's stderr that is the app's own source, and the lines around it —
 * for esbuild's syntax errors (0-based columns) and V8's stack frames.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { codeFrame, firstSourceLocation } from "../../src/stack/code-frame.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-frame-"));
const file = path.join(dir, "app.ts");
writeFileSync(file, 'export const app = (environ, start) => {\n  start("200 OK", []);\n  return [ "hi" ;\n};\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("code frames for a failed reload", () => {
  it("an esbuild syntax error: its 0-based column becomes a caret under the character", () => {
    const stderr = [
      `tsgi-stack: cannot load app ${file}: importing ${file} failed: Transform failed with 1 error:`,
      `    ${file}:3:16: ERROR: Expected "]" but found ";"`,
      "        at failureErrorWithLog (/work/main/node_modules/esbuild/lib/main.js:1752:15)",
    ];
    const location = firstSourceLocation(stderr);
    expect(location).toEqual({ file, line: 3, column: 17 });
    expect(codeFrame(location!)).toBe(
      [`${file}:3:17`, "  1 | export const app = (environ, start) => {", '  2 |   start("200 OK", []);', '> 3 |   return [ "hi" ;', "    |                 ^", "  4 | };", "  5 | "].join("\n"),
    );
  });

  it("a V8 stack frame: node_modules and node's internals are skipped", () => {
    const stderr = [
      "    at Module._compile (node:internal/modules/cjs/loader:1521:14)",
      "    at transformer (file:///x/node_modules/tsx/dist/require.mjs:9:2716)",
      `    at <anonymous> (${file}:2:3)`,
    ];
    expect(firstSourceLocation(stderr)).toEqual({ file, line: 2, column: 3 });
  });

  it("an ES module's stack frame gives a file: URL: the frame shows the plain path, percent-escapes decoded", () => {
    const spaced = path.join(dir, "my app.mjs");
    writeFileSync(spaced, "export const x = 1;\nthrow new Error('boom');\n");
    const stderr = ["Error: boom", `    at file://${encodeURI(spaced)}:2:7`, "    at ModuleJob.run (node:internal/modules/esm/module_job:234:25)"];
    const location = firstSourceLocation(stderr);
    expect(location).toEqual({ file: spaced, line: 2, column: 7 });
    expect(codeFrame(location!)!.split("\n")[0]).toBe(`${spaced}:2:7`);
  });

  it("no location, or a file that is gone: no frame", () => {
    expect(firstSourceLocation(["Error: boom", "    at node:internal/main:1:1"])).toBeUndefined();
    expect(codeFrame({ file: path.join(dir, "gone.ts"), line: 1 })).toBeUndefined();
    expect(codeFrame({ file, line: 99 })).toBeUndefined();
  });
});
