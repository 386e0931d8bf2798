/**
 * Apps as users write them, loaded by `tsgi-stack serve` with no build step:
 * TypeScript in a `"type": "module"` package, in a `"type": "commonjs"` one
 * and in a folder with no package.json, using the features Node's own type
 * stripping cannot run (enums, decorators, parameter properties) and tsc's
 * `./x.js` imports of `.ts` files; stack traces that point at the .ts lines;
 * syntax errors named by file:line:column; and a JavaScript app, which gets
 * no TypeScript loader at all.
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { runCli, serve, stopAll } from "../helpers/serve.ts";

const LOOPBACK = "127.0.0.1:0";
const folders: string[] = [];

afterAll(async () => {
  await stopAll();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** A temp project: files by relative path. */
function project(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), "tsgi-ts-"));
  folders.push(root);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    writeFileSync(path.join(root, name), text);
  }
  return root;
}

/** An app that uses what only a real TypeScript compiler runs; the line of `throw` is line 16. */
const FEATURES_APP = `import type { Shape } from "./types.js";
import { helper } from "./helper.js";

enum Color { Red, Green }
function logged<T>(value: T, _context: unknown): T {
  return value;
}
class Greeter {
  constructor(private readonly greeting: string) {}
  @logged
  greet(): string { return this.greeting; }
}
const shape: Shape = { color: Color.Green };

export const app = (environ: { PATH_INFO: string }, start: (status: string, headers: [string, string][]) => void) => {
  if (environ.PATH_INFO === "/throw") throw new Error("thrown on purpose");
  start("200 OK", [["Content-Type", "text/plain"]]);
  return [\`\${new Greeter("hello").greet()} \${helper()} \${shape.color}\`];
};
`;
const FEATURE_FILES = {
  "types.ts": "export interface Shape { color: number }\n",
  "helper.ts": 'export const helper = (): string => "helped";\n',
  "app.ts": FEATURES_APP,
};

describe("serve: TypeScript apps without a build step", () => {
  for (const [what, packageJson] of [
    ['a "type": "module" package', '{ "type": "module" }'],
    ['a "type": "commonjs" package', '{ "type": "commonjs" }'],
    ["a folder with no package.json", undefined],
  ] as const) {
    it(`runs enums, decorators, parameter properties and ./x.js imports of .ts files in ${what}`, async () => {
      const root = project({ ...FEATURE_FILES, ...(packageJson ? { "package.json": packageJson } : {}) });
      const worker = await serve([path.join(root, "app.ts"), "--http", LOOPBACK, "--no-arbiter"]);
      expect(await (await fetch(`${worker.url}/`)).text()).toBe("hello helped 1");
    });
  }

  it("reports an error thrown by the app at its line in the .ts file", async () => {
    const root = project({ ...FEATURE_FILES, "package.json": '{ "type": "module" }' });
    const worker = await serve([path.join(root, "app.ts"), "--http", LOOPBACK, "--no-arbiter"]);
    expect((await fetch(`${worker.url}/throw`)).status).toBe(500);
    const deadline = Date.now() + 5000;
    while (!worker.stderr().includes("thrown on purpose") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(worker.stderr()).toContain(`${path.join(root, "app.ts")}:16:`);
  });

  it("names file:line:column of a syntax error in a .ts app, and exits APP_LOAD_ERROR (4)", async () => {
    const root = project({ "app.ts": 'export const app = () => {\n  const x: number = ;\n  return ["x"];\n};\n' });
    const result = await runCli(["serve", path.join(root, "app.ts"), "--http", LOOPBACK, "--no-arbiter"]);
    expect(result.code).toBe(4);
    expect(result.stderr.split("\n")[0]).toContain(`failed: ${path.join(root, "app.ts")}:2:21: Unexpected ";"`);
  });

  it("names file:line:column of a syntax error in a .mjs or .cjs app too", async () => {
    const source = "= () => {\n  const x = ;\n};\n";
    const root = project({ "app.mjs": `export const app ${source}`, "app.cjs": `module.exports.app ${source}` });
    for (const file of ["app.mjs", "app.cjs"]) {
      const result = await runCli(["serve", path.join(root, file), "--http", LOOPBACK, "--no-arbiter"]);
      expect(result.code).toBe(4);
      expect(result.stderr.split("\n")[0]).toContain(`failed: ${path.join(root, file)}:2:13: Unexpected token ';'`);
    }
  });
});

describe("serve: a JavaScript app loads no TypeScript loader", () => {
  it("serves a .mjs app, in whose process importing a .ts file fails as it does under plain node", async () => {
    const root = project({
      "other.ts": "export const typed: number = 1;\n",
      "app.mjs": `export const app = async (environ, start) => {
  let outcome;
  try {
    await import("./other.ts");
    outcome = "loaded";
  } catch (error) {
    outcome = error.code;
  }
  start("200 OK", [["Content-Type", "text/plain"]]);
  return [outcome];
};
`,
    });
    // Plain node, for comparison: ERR_UNKNOWN_FILE_EXTENSION on Node 20; Node 23.6+ strips types itself.
    const plain = spawnSync(
      process.execPath,
      ["--input-type=module", "-e", `import(${JSON.stringify(path.join(root, "other.ts"))}).then(() => console.log("loaded"), (error) => console.log(error.code))`],
      { encoding: "utf8" },
    ).stdout.trim();
    expect(plain).toMatch(/^(ERR_UNKNOWN_FILE_EXTENSION|loaded)$/);
    const worker = await serve([path.join(root, "app.mjs"), "--http", LOOPBACK, "--no-arbiter"]);
    expect(await (await fetch(`${worker.url}/`)).text()).toBe(plain);
  });
});
