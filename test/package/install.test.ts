/**
 * The package as a user gets it: `npm pack` of this checkout, installed with
 * `npm install <tarball>` into a fresh project outside the repo (with the
 * user's own express, typescript and @types), then used the three ways a user
 * uses it — TypeScript against its declarations (strict, NodeNext,
 * skipLibCheck off), `import … from "tsgi-stack"` in a plain .mjs, and
 * `tsgi-stack up` over a .ts Express app, a .js TSGI app and a `command:` app.
 *
 * The node binary under test is $TSGI_TEST_NODE when set (.ci/run runs this
 * file again on Node 24 that way), else the one running vitest. Its folder
 * goes first on the children's PATH, so that npm, npx and a `command:` app's
 * `node` are that binary too.
 *
 * The steps share the project and run in order. Fixture files are in
 * test/fixtures/package-project/. The install step needs the npm registry.
 * dist/ is packed as built (`npm test` builds it first; run alone, build
 * first if src/ changed): it is built only when missing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const FIXTURES = path.join(ROOT, "test/fixtures/package-project");
const NODE = process.env.TSGI_TEST_NODE || process.execPath;

/** The children's environment: NODE's folder first on PATH, and none of the npm_* variables of an enclosing `npm test`. */
const childEnv: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) && key !== "INIT_CWD"),
);
childEnv.PATH = `${path.dirname(NODE)}${path.delimiter}${process.env.PATH ?? ""}`;
childEnv.npm_config_update_notifier = "false";

/** What `NODE -v` prints, e.g. "v24.1.0": the version every app of the project must report. */
const nodeVersion = spawnSync(NODE, ["-v"], { encoding: "utf8" }).stdout?.trim() ?? "";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const started = new Set<ChildProcess>();
const tempDirs: string[] = [];
let packDir = "";
let project = "";
let tarball = "";

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (SIGKILLed by its pid after `timeoutMs`), with the children's environment. */
async function run(command: string, args: string[], cwd: string, timeoutMs: number): Promise<Ran> {
  const child = spawn(command, args, { cwd, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  started.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (data) => (stdout += data));
  child.stderr!.on("data", (data) => (stderr += data));
  const timer = setTimeout(() => {
    stderr += `\n[test: killed after ${timeoutMs} ms]`;
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGKILL");
  }, timeoutMs);
  const [code, signal] = (await once(child, "close")) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  started.delete(child);
  return { code, signal, stdout, stderr };
}

const describeRun = (what: string, result: Ran) =>
  `${what} exited ${result.code ?? result.signal}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;

/** A port free on 127.0.0.1 just now: bound on port 0, then closed. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, "close");
  return port;
}

/** GET on a fresh connection, closed afterwards; rejects after 10 s. */
function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, headers: { connection: "close" }, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`GET ${url}: no answer in 10 s`)));
    request.on("error", reject);
  });
}

/** Every live process (but this one) whose command line or working directory mentions `dir`. */
function processesUnder(dir: string): Array<{ pid: number; cmdline: string }> {
  const found: Array<{ pid: number; cmdline: string }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline = "";
    let cwd = "";
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").trim();
    } catch {
      continue; // gone meanwhile
    }
    try {
      cwd = readlinkSync(`/proc/${entry}/cwd`);
    } catch {
      // a zombie, or gone meanwhile
    }
    if (cmdline === "") continue; // a zombie: already dead
    if (cmdline.includes(dir) || cwd === dir || cwd.startsWith(dir + path.sep)) found.push({ pid: Number(entry), cmdline: `${cmdline} (cwd ${cwd})` });
  }
  return found;
}

function killPid(pid: number, signal: NodeJS.Signals = "SIGKILL"): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

beforeAll(() => {
  expect(nodeVersion, `${NODE} -v printed no version`).toMatch(/^v\d+\.\d+\.\d+$/);
  packDir = mkdtempSync(path.join(os.tmpdir(), "tsgi-pack-"));
  project = mkdtempSync(path.join(os.tmpdir(), "tsgi-consumer-"));
  tempDirs.push(packDir, project);
});

afterAll(async () => {
  // A stack left up by a failed test: Ctrl-C first, so that it stops its own workers and pm2.
  for (const child of started) if (child.exitCode === null && child.signalCode === null) killPid(child.pid!, "SIGINT");
  const deadline = Date.now() + 30_000;
  while ([...started].some((child) => child.exitCode === null && child.signalCode === null) && Date.now() < deadline) await sleep(100);
  for (const child of started) if (child.exitCode === null && child.signalCode === null) killPid(child.pid!);
  if (project) {
    const pidFile = path.join(project, ".tsgi/pm2/pm2.pid");
    if (existsSync(pidFile)) killPid(Number(readFileSync(pidFile, "utf8")));
    for (const { pid } of processesUnder(project)) killPid(pid);
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe(`the packed tarball, installed in a fresh project (Node.js ${nodeVersion}, ${NODE})`, () => {
  it("npm pack ships the build and its declarations, and no tests, benchmarks or build cache", async () => {
    if (!existsSync(path.join(ROOT, "dist/cli/bin.js"))) {
      const build = await run("npm", ["run", "build"], ROOT, 180_000);
      expect(build.code, describeRun("npm run build", build)).toBe(0);
    }
    // --ignore-scripts: pack the build that `npm test` made (its pretest), without the `prepare` rebuild
    // that would rewrite dist/ under the other test files' running CLIs (esbuild rewrites
    // dist/config/typebox.js on every build).
    const pack = await run("npm", ["pack", "--ignore-scripts", "--pack-destination", packDir], ROOT, 180_000);
    expect(pack.code, describeRun("npm pack", pack)).toBe(0);
    const tarballs = readdirSync(packDir).filter((name) => name.endsWith(".tgz"));
    expect(tarballs).toHaveLength(1);
    tarball = path.join(packDir, tarballs[0]!);

    const list = await run("tar", ["tzf", tarball], packDir, 60_000);
    expect(list.code, describeRun("tar tzf", list)).toBe(0);
    const files = list.stdout.split("\n").filter(Boolean);
    expect(files).toEqual(
      expect.arrayContaining(["package/package.json", "package/dist/index.js", "package/dist/index.d.ts", "package/dist/cli/bin.js"]),
    );
    expect(files.filter((file) => file.startsWith("package/test/"))).toEqual([]);
    expect(files.filter((file) => file.startsWith("package/bench/"))).toEqual([]);
    expect(files.filter((file) => file.endsWith(".tsbuildinfo"))).toEqual([]);
    expect(files.filter((file) => file.startsWith("package/node_modules/"))).toEqual([]);
  }, 240_000);

  it("installs with npm install <tarball> and the user's own express, typescript and @types", async () => {
    expect(tarball, "no tarball: the pack step failed").not.toBe("");
    writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2) + "\n");
    const install = await run(
      "npm",
      ["install", "--omit=dev", "--no-audit", "--no-fund", tarball, "express@5", "typescript@5", "@types/node@20", "@types/express@5"],
      project,
      180_000,
    );
    expect(install.code, describeRun("npm install", install)).toBe(0);
    const installed = JSON.parse(readFileSync(path.join(project, "node_modules/tsgi-stack/package.json"), "utf8"));
    expect(installed.name).toBe("tsgi-stack");
    expect(existsSync(path.join(project, "node_modules/tsgi-stack/dist/index.d.ts"))).toBe(true);
    expect(existsSync(path.join(project, "node_modules/.bin/tsgi-stack"))).toBe(true);
    for (const file of ["tsconfig.json", "types.ts", "serve.mjs", "api.ts", "plain.js", "server.cjs"]) {
      copyFileSync(path.join(FIXTURES, file), path.join(project, file));
    }
  }, 240_000);

  it("type-checks a strict NodeNext project against its declarations (skipLibCheck off)", async () => {
    expect(existsSync(path.join(project, "node_modules/typescript/bin/tsc")), "typescript not installed: the install step failed").toBe(true);
    const tsc = await run(NODE, ["node_modules/typescript/bin/tsc", "-p", "."], project, 180_000);
    expect(tsc.code, describeRun("tsc -p .", tsc)).toBe(0);
  }, 240_000);

  it('serves a Fetch handler through toNodeListener from a plain .mjs that imports "tsgi-stack"', async () => {
    const child = spawn(NODE, ["serve.mjs"], { cwd: project, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    started.add(child);
    let output = "";
    child.stdout!.on("data", (data) => (output += data));
    child.stderr!.on("data", (data) => (output += data));
    try {
      const deadline = Date.now() + 30_000;
      let port: number | undefined;
      while (port === undefined) {
        const match = /listening on port (\d+)/.exec(output);
        if (match) port = Number(match[1]);
        else if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) throw new Error(`serve.mjs did not start:\n${output}`);
        else await sleep(50);
      }
      const response = await get(`http://127.0.0.1:${port}/x`);
      expect(response).toEqual({ status: 200, body: "hi /x" });
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = once(child, "exit");
        killPid(child.pid!, "SIGTERM");
        await gone;
      }
      started.delete(child);
    }
  }, 60_000);

  it("tsgi-stack up runs a .ts Express app, a .js TSGI app and a command: app behind its proxy, and Ctrl-C stops all of it", async () => {
    expect(existsSync(path.join(project, "node_modules/.bin/tsgi-stack")), "tsgi-stack not installed: the install step failed").toBe(true);
    const port = await freePort();
    let admin = await freePort();
    while (admin === port) admin = await freePort();
    writeFileSync(
      path.join(project, "tsgi.yaml"),
      `proxy:
  listen: ["127.0.0.1:${port}"]
  admin: "127.0.0.1:${admin}"
apps:
  api:
    module: api.ts
    routes: [{ path: /api }]
  plain:
    module: plain.js
    routes: [{ path: /plain }]
  legacy:
    command: "node server.cjs"
    routes: [{ path: /legacy }]
`,
    );

    // The installed bin, as the README runs it.
    const validate = await run("npx", ["--no-install", "tsgi-stack", "validate", "-c", "tsgi.yaml"], project, 60_000);
    expect(validate.code, describeRun("npx tsgi-stack validate", validate)).toBe(0);

    const pm2Home = path.join(os.homedir(), ".pm2");
    const pm2HomeBefore = existsSync(pm2Home);

    const stack = spawn(NODE, ["node_modules/.bin/tsgi-stack", "up", "-c", "tsgi.yaml"], { cwd: project, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    started.add(stack);
    let output = "";
    stack.stdout!.on("data", (data) => (output += data));
    stack.stderr!.on("data", (data) => (output += data));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      stack.once("exit", (code, signal) => resolve({ code, signal })),
    );

    const base = `http://127.0.0.1:${port}`;
    const expected: Record<string, string> = {
      "/api/hello": `api /api /hello ${nodeVersion}`,
      "/plain/x": `plain /plain /x ${nodeVersion}`,
      "/legacy/y": `legacy /legacy/y ${nodeVersion}`,
    };
    const last: Record<string, string> = {};
    const pending = new Set(Object.keys(expected));
    const deadline = Date.now() + 60_000;
    while (pending.size > 0) {
      if (stack.exitCode !== null || stack.signalCode !== null) throw new Error(`up exited (${stack.exitCode ?? stack.signalCode}) before serving:\n${output}`);
      if (Date.now() > deadline) throw new Error(`not every route answered within 60 s: ${JSON.stringify(last, null, 2)}\nup's output:\n${output}`);
      for (const route of [...pending]) {
        try {
          const response = await get(base + route);
          last[route] = `${response.status} ${response.body}`;
          if (response.status === 200 && response.body === expected[route]) pending.delete(route);
        } catch (error) {
          last[route] = String(error);
        }
      }
      if (pending.size > 0) await sleep(250);
    }
    // `up` prints its summary once everything is ready: the routes may answer a moment before the line arrives.
    const printedBy = Date.now() + 10_000;
    while (!output.includes(`serving on ${base}/`) && Date.now() < printedBy) await sleep(50);
    expect(output).toContain(`serving on ${base}/`);

    killPid(stack.pid!, "SIGINT");
    const timeout = sleep(30_000).then(() => "timeout" as const);
    const result = await Promise.race([exited, timeout]);
    expect(result, `up did not exit within 30 s of SIGINT:\n${output}`).not.toBe("timeout");
    expect(result, `up's output:\n${output}`).toEqual({ code: 0, signal: null });
    started.delete(stack);

    // Nothing of the stack is left: no worker, no pm2 daemon, no command app.
    let left = processesUnder(project);
    for (let i = 0; i < 20 && left.length > 0; i++) {
      await sleep(100);
      left = processesUnder(project);
    }
    for (const { pid } of left) killPid(pid);
    expect(left.map(({ pid, cmdline }) => `${pid}: ${cmdline}`), `processes left after up exited:\n${output}`).toEqual([]);

    if (!pm2HomeBefore) expect(existsSync(pm2Home), `${pm2Home} was created`).toBe(false);
  }, 180_000);
});
