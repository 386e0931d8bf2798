/**
 * Each process of the stack imports only what its role needs, as built in
 * dist/: a gateway worker never loads the config schema, the supervisor, the
 * proxy, pm2 or a TypeScript loader (for a JavaScript app); `status` and the
 * other commands that talk to a running stack load neither the schema nor the
 * proxy; `validate` loads no supervisor or proxy. Every module a process
 * resolves is recorded by a resolve hook of Node's own (module.register), the
 * way one would check it by hand.
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { BIN, ROOT } from "../helpers/serve.ts";

const work = mkdtempSync(path.join(os.tmpdir(), "tsgi-lean-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// A resolve hook that appends every URL resolved to $MODULE_LOG, and the --import file that registers it.
writeFileSync(
  path.join(work, "hooks.mjs"),
  'import { appendFileSync } from "node:fs";\n' +
    "export async function resolve(specifier, context, next) {\n" +
    "  const resolved = await next(specifier, context);\n" +
    '  appendFileSync(process.env.MODULE_LOG, resolved.url + "\\n");\n' +
    "  return resolved;\n" +
    "}\n",
);
writeFileSync(path.join(work, "register.mjs"), `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(path.join(work, "hooks.mjs")).href)});\n`);
writeFileSync(
  path.join(work, "app.mjs"),
  'export const app = (environ, start) => { start("200 OK", [["Content-Type", "text/plain"]]); return ["hi"]; };\n',
);

/** Runs the CLI with the hook until it prints `until` (then stops it) or exits; the modules it loaded, as paths under the package. */
function modulesLoadedBy(name: string, args: string[], until?: RegExp): Promise<string[]> {
  const log = path.join(work, `${name}.log`);
  writeFileSync(log, "");
  const child = spawn(process.execPath, ["--import", path.join(work, "register.mjs"), BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, MODULE_LOG: log },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const onData = (data: Buffer) => {
    output += data;
    if (until?.test(output)) child.kill("SIGTERM");
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  return new Promise((resolve) => {
    child.once("exit", () => {
      clearTimeout(timer);
      const urls = readFileSync(log, "utf8").split("\n").filter((url) => url.startsWith("file:"));
      resolve([...new Set(urls.map((url) => path.relative(ROOT, new URL(url).pathname)))]);
    });
  });
}

const matching = (modules: string[], pattern: RegExp) => modules.filter((module) => pattern.test(module));

describe("lean processes: each role loads what it needs", () => {
  it("a gateway worker of a JavaScript app: the gateway and TSGI, no config schema, supervisor, proxy, pm2 or TypeScript loader", async () => {
    const modules = await modulesLoadedBy("serve", ["serve", path.join(work, "app.mjs"), "--no-arbiter", "--http", "127.0.0.1:0"], /ready: /);
    expect(matching(modules, /^dist\/gateway\/worker\.js$/)).toHaveLength(1);
    expect(matching(modules, /^dist\/(config\/(schema|load|typebox)|supervisor|proxy|stack)\b/)).toEqual([]);
    expect(matching(modules, /node_modules\/(pm2|tsx|esbuild|@sinclair|yaml|chokidar)\//)).toEqual([]);
  });

  it("status (a stack that is not running): no config schema, proxy, supervisor or pm2", async () => {
    const modules = await modulesLoadedBy("status", ["status", "-c", path.join(ROOT, "config.example.yaml")]);
    expect(matching(modules, /^dist\/cli\/commands\/control\.js$/)).toHaveLength(1);
    expect(matching(modules, /^dist\/(config\/(schema|load|typebox)|supervisor|proxy|gateway)\b/)).toEqual([]);
    expect(matching(modules, /node_modules\/(pm2|tsx|@sinclair)\//)).toEqual([]);
  });

  it("validate: the config loader and its bundled schema library, no supervisor, proxy or pm2", async () => {
    const modules = await modulesLoadedBy("validate", ["validate", "-c", path.join(ROOT, "config.example.yaml")]);
    expect(matching(modules, /^dist\/config\/(load|typebox)\.js$/)).toHaveLength(2);
    expect(matching(modules, /^dist\/(supervisor|stack|gateway\/worker)\b/)).toEqual([]);
    // Of the proxy, only the two pure rules the redirect-loop check shares with it (which app a path goes to, where a
    // redirect sends it), so that validate judges a loop as the proxy would route it; they import nothing.
    expect(matching(modules, /^dist\/proxy\//).sort()).toEqual(["dist/proxy/redirects.js", "dist/proxy/router.js"]);
    // TypeBox is inside dist/config/typebox.js (one file), never its ~250 files.
    expect(matching(modules, /node_modules\/(pm2|tsx|@sinclair)\//)).toEqual([]);
  });
});
