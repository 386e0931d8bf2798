/**
 * `status`, `scale` and `up`'s summary tell the truth, checked as a person
 * checks them against a real stack (real pm2, 127.0.0.1 port 0): the table's
 * memory in MiB and no colour into a pipe (colour on a terminal); `status
 * --watch` into a pipe, ended by Ctrl-C; `scale web
 * 3`, `+1`, `-1` and what the table says when the count is off the config's
 * (and that `reload` keeps it, as the table says); a config file saved with
 * errors and a watched app saved with a syntax error, shown under the table
 * until fixed; a worker failing its health check shown failing and out; and
 * `up`'s summary of an app that keeps crashing, which must not say ready.
 *
 * The health test needs the proxy processes' health checks wired into the
 * status (pool membership and health per worker); until then it fails on its
 * wait. Every process started is stopped by its pid at the end.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { readStackLog, readStackLogLine } from "../helpers/log-lines.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, ROOT, isAlive, runCli, sleep, waitFor } from "../helpers/serve.ts";
import { cleanUpStacks, pm2DaemonPid, stackDir, statusJson, up, type Up } from "../helpers/stack.ts";

const started = new Set<ChildProcess>();
const seenPids = new Set<number>();
const dirs: string[] = [];
const ESC = "\u001b[";

afterAll(async () => {
  await cleanUpStacks(started, seenPids, dirs);
  expect([...seenPids].filter(isAlive)).toEqual([]);
}, 90_000);

/** A JavaScript app (no loader: quick to boot) answering its pid; its /healthz fails while a file `sick.<pid>` is in its folder. */
function webApp(dir: string): string {
  return `import { existsSync } from "node:fs";
export const app = (environ, start) => {
  if (environ.PATH_INFO === "/healthz" && existsSync(${JSON.stringify(dir)} + "/sick." + process.pid)) {
    start("500 Internal Server Error", [["Content-Type", "text/plain"]]);
    return ["sick"];
  }
  start("200 OK", [["Content-Type", "text/plain"]]);
  return [String(process.pid)];
};
`;
}

const config = (instances: number | string) => `
state_dir: .tsgi
proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
apps:
  web:
    module: web.js
    instances: ${instances}
    routes: [{ path: /web }]
    health: { path: /healthz, interval: 200ms, timeout: 1s }
    watch: ["web.js"]
  site:
    static: public
    routes: [{ path: /site }]
`;

/** The environment of the run without its colour variables: what a pipe gets unless a user asks otherwise. */
const PLAIN_ENV: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: undefined, FORCE_COLOR: undefined };

/** The CLI with an environment of the test's (colour variables), run to its exit. */
async function cliWithEnv(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (data) => (stdout += data));
  child.stderr.on("data", (data) => (stderr += data));
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}


/** `status --json`, every worker pid noted for the final check. */
async function status(file: string): Promise<any> {
  const answer = await statusJson(file);
  for (const worker of answer.workers) if (worker.pid > 0) seenPids.add(worker.pid);
  return answer;
}

/** The table as a pipe gets it, which must exit 0. */
async function table(file: string): Promise<string> {
  const result = await cliWithEnv(["status", "-c", file], PLAIN_ENV);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

describe("status and scale against a running stack", () => {
  let dir: string;
  let file: string;
  let stack: Up;

  beforeAll(async () => {
    ({ dir, file } = stackDir(config(2), "tsgi-status-"));
    dirs.push(dir);
    writeFileSync(path.join(dir, "web.js"), webApp(dir));
    mkdirSync(path.join(dir, "public"));
    writeFileSync(path.join(dir, "public", "index.html"), "hello\n");
    stack = await up(file, { args: ["--watch"], onSpawn: (child) => (started.add(child), seenPids.add(child.pid!)) });
    const daemon = pm2DaemonPid(dir);
    if (daemon !== undefined) seenPids.add(daemon);
    await status(file);
  }, 90_000);

  afterAll(async () => {
    if (stack.child.exitCode === null) {
      process.kill(stack.child.pid!, "SIGINT");
      expect(await stack.exited, stack.output()).toBe(0);
    }
  }, 60_000);

  it("up: each worker's ready line with its pid and time, and a summary line per app, the static one included", () => {
    // The stack's log is JSON records on a pipe: their messages, one per line.
    const messages = readStackLog(stack.output())
      .map((line) => line.msg)
      .join("\n");
    expect(messages).toMatch(/^web\.\d+ ready \(pid \d+, \d+ ms\)$/m);
    expect(messages).toMatch(/^web\s+2\/2 ready\s+module web\.js {2}routes: \/web$/m);
    expect(messages).toMatch(/^site\s+static\s+folder \S*public {2}routes: \/site$/m);
  });

  it("status: memory labelled and printed in MiB; a static app as a row; no ANSI escapes into a pipe", async () => {
    const text = await table(file);
    expect(text).toMatch(/\nAPP\s+SLOT\s+PID\s+STATE\s+HEALTH\s+POOL\s+UPTIME\s+RESTARTS\s+MEMORY\s+CPU\s+REQS\s+ERRS\n/);
    expect(text).not.toMatch(/\bMB\b/);
    // pm2 samples memory every few seconds: a row shows MiB once it has.
    await waitFor("a worker's memory in MiB", async () => (/^web\s+\d+\s+\d+\s+ready\s.*\s\d+\.\d MiB\s/m.test(await table(file)) ? true : undefined));
    expect(text).toMatch(/^site\s+-\s+-\s+static\s/m);
    expect(text).not.toContain(ESC);
  });

  it("status: colour on a terminal and with FORCE_COLOR, none with NO_COLOR, the same words either way", async () => {
    // A terminal as a person has one: Node reads CI=true (set by CI runners) as a terminal without colours.
    const env = { ...PLAIN_ENV, TERM: "xterm-256color", CI: undefined };
    // A real terminal: script(1) runs the CLI on a pseudo-terminal.
    const command = [process.execPath, BIN, "status", "-c", file].map((arg) => `'${arg}'`).join(" ");
    const onTerminal = spawn("script", ["-qec", command, "/dev/null"], { env, stdio: ["ignore", "pipe", "inherit"] });
    let painted = "";
    onTerminal.stdout.on("data", (data) => (painted += data));
    const [code] = (await once(onTerminal, "exit")) as [number | null];
    expect(code).toBe(0);
    expect(painted).toContain(`${ESC}32mready${ESC}39m`);
    const forced = await cliWithEnv(["status", "-c", file], { ...env, FORCE_COLOR: "1" });
    expect(forced.stdout).toContain(`${ESC}32mready`);
    const noColour = await cliWithEnv(["status", "-c", file], { ...env, FORCE_COLOR: "1", NO_COLOR: "1" });
    expect(noColour.code).toBe(0);
    expect(noColour.stdout).not.toContain(ESC);
    // The same words: a row reads the same with the escapes taken out.
    const row = /^web\s+\d+\s+\d+\s+ready\s+\S+\s+in\s/m;
    expect(forced.stdout.replace(/\u001b\[[0-9;]*m/g, "")).toMatch(row);
    expect(noColour.stdout).toMatch(row);
  });

  it("status --watch into a pipe: a table per interval after a blank line, no escapes; Ctrl-C exits 0", async () => {
    const watch = spawn(process.execPath, [BIN, "status", "-c", file, "--watch", "--interval", "0.3"], { cwd: ROOT, env: PLAIN_ENV, stdio: ["ignore", "pipe", "pipe"] });
    started.add(watch);
    let output = "";
    watch.stdout.on("data", (data) => (output += data));
    const exited = once(watch, "exit");
    await waitFor("three frames", async () => (output.split(/^stack /m).length > 3 ? true : undefined));
    process.kill(watch.pid!, "SIGINT");
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
    const frames = output.split("\n\nstack ");
    expect(frames.length).toBeGreaterThanOrEqual(3);
    for (const frame of frames.slice(1)) expect(frame).toMatch(/^tsgi-\S+ \(pid \d+\) serving /);
    expect(output).not.toContain(ESC);
  });

  it("scale web 3 (config says 2): the table says so, reload keeps 3 as it says; -1 and +1 count from what runs; below 1 is refused naming the app", async () => {
    const three = await runCli(["scale", "web", "3", "-c", file], 60_000);
    expect(three.code, three.stderr).toBe(0);
    expect(three.stdout).toMatch(/^tsgi-stack: web\.\d+ ready \(pid \d+, \d+ ms\)$/m);
    expect(three.stdout.trimEnd().split("\n").at(-1)).toBe("tsgi-stack: web now runs 3 worker(s)");
    const scaled = "web: 3 worker(s) running, the config says 2 (scaled at run time: `reload` keeps 3;";
    expect(await table(file)).toContain(scaled);
    const json = await status(file);
    expect(json.pools.find((pool: any) => pool.app === "web")).toMatchObject({ instances: 3, configured: 2 });

    const reload = await runCli(["reload", "web", "-c", file], 120_000);
    expect(reload.code, reload.stdout + reload.stderr).toBe(0);
    expect(reload.stdout).toMatch(/tsgi-stack: web: reloaded 3 workers in \d+ ms/);
    expect((await status(file)).pools.find((pool: any) => pool.app === "web").instances).toBe(3);
    expect(await table(file)).toContain(scaled);

    // `-1` is the count, not an option.
    const down = await runCli(["scale", "web", "-1", "-c", file], 60_000);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout.trimEnd().split("\n").at(-1)).toBe("tsgi-stack: web now runs 2 worker(s) (was 3)");
    expect(await table(file)).not.toContain("the config says");
    const upOne = await runCli(["scale", "web", "+1", "-c", file], 60_000);
    expect(upOne.code, upOne.stderr).toBe(0);
    expect(upOne.stdout).toMatch(/^tsgi-stack: web\.\d+ ready \(pid \d+, \d+ ms\)$/m);
    expect(upOne.stdout.trimEnd().split("\n").at(-1)).toBe("tsgi-stack: web now runs 3 worker(s) (was 2)");

    const tooFew = await runCli(["scale", "web", "-3", "-c", file]);
    expect(tooFew.code).toBe(2);
    expect(tooFew.stderr).toBe("tsgi-stack: scale web -3: web runs 3 worker(s); an app keeps at least 1 (`down` stops the stack)\n");
    const staticApp = await runCli(["scale", "site", "+1", "-c", file]);
    expect(staticApp.code).toBe(1);
    expect(staticApp.stderr).toContain('cannot scale "site": it is a static app');

    const back = await runCli(["scale", "web", "2", "-c", file], 60_000);
    expect(back.code, back.stderr).toBe(0);
    await waitFor("web back to 2 workers", async () => ((await status(file)).workers.filter((w: any) => w.app === "web").length === 2 ? true : undefined));
  });

  it("a config file saved with errors is shown under the table until a valid one is saved", async () => {
    writeFileSync(file, config("lots"));
    const text = await waitFor("the config errors in status", async () => {
      const shown = await table(file);
      return shown.includes("config file has errors") ? shown : undefined;
    });
    const lines = text.split("\n");
    const header = lines.findIndex((line) => line.startsWith("APP "));
    const at = lines.findIndex((line) => line.includes("config file has errors; the running config stays until they are fixed:"));
    expect(at).toBeGreaterThan(header);
    expect(lines[at + 1]).toMatch(/^ {2}\S*tsgi\.yaml:\d+:\d+ apps\.web\.instances: /);
    expect((await status(file)).configErrors).toHaveLength(1);
    writeFileSync(file, config(2));
    await waitFor("the config errors to go", async () => ((await status(file)).configErrors.length === 0 ? true : undefined));
    expect(await table(file)).not.toContain("config file has errors");
  });

  it("a watched app saved with a syntax error: the reload error under the table, until fixed", async () => {
    const source = path.join(dir, "web.js");
    const good = readFileSync(source, "utf8");
    const servingPids = (await status(file)).workers.filter((w: any) => w.app === "web" && w.state === "ready").map((w: any) => w.pid);
    writeFileSync(source, good.replace("export const app", "export const app = ((\nexport const broken"));
    const text = await waitFor("the reload error in status", async () => {
      const shown = await table(file);
      return shown.includes("web: reload failed at") ? shown : undefined;
    });
    expect(text).toMatch(/web: reload failed at \S+, the running workers keep serving: /);
    // Node's own SyntaxError names no line of a JavaScript file, so there is no source frame to show here (a TypeScript one has it).
    expect(text).toContain("Unexpected token");
    // The old workers serve on.
    const ready = (await status(file)).workers.filter((w: any) => w.app === "web" && w.state === "ready").map((w: any) => w.pid);
    expect(ready.some((pid: number) => servingPids.includes(pid))).toBe(true);
    writeFileSync(source, good);
    await waitFor("the reload error to go", async () => (Object.keys((await status(file)).reloadErrors).length === 0 ? true : undefined), 30_000);
    // The error under the table is gone (the recent activity still tells of the failed reload, as history).
    expect(await table(file)).not.toContain("web: reload failed at");
  }, 60_000);

  // Needs the proxy processes' health checks in the status (the stack's wiring of WorkerStatus.health and inPool).
  it("a worker failing its health check: failing and out in the table, the pool's inPool below its ready count in --json", async () => {
    const before = await status(file);
    const victim = before.workers.find((w: any) => w.app === "web" && w.state === "ready");
    const sick = path.join(dir, `sick.${victim.pid}`);
    writeFileSync(sick, "");
    try {
      const json = await waitFor(
        "the worker's failing health check in status",
        async () => {
          const answer = await status(file);
          const row = answer.workers.find((w: any) => w.pid === victim.pid);
          return row?.health === "failing" && row.inPool === false ? answer : undefined;
        },
        15_000,
      );
      const web = json.pools.find((pool: any) => pool.app === "web");
      expect(web.inPool).toBeLessThan(web.ready);
      const text = await table(file);
      expect(text).toMatch(new RegExp(`^web\\s+${victim.slot}\\s+${victim.pid}\\s+ready\\s+failing\\s+out\\s`, "m"));
      expect(text).toContain(`web.${victim.slot}: out of the pool: `);
    } finally {
      rmSync(sick, { force: true });
    }
    await waitFor("the worker back in the pool", async () => ((await status(file)).workers.find((w: any) => w.pid === victim.pid)?.inPool ? true : undefined));
  });
});

describe("up's summary of an app that keeps crashing", () => {
  it("does not say ready: it says RESTARTING and the last exit; the static app is listed", async () => {
    const { dir, file } = stackDir(
      `
state_dir: .tsgi
proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
apps:
  crashy:
    module: crashy.js
    routes: [{ path: /crashy }]
    restart: { max_restarts: 100 }
  slow:
    command: ${JSON.stringify(`${process.execPath} slow.mjs`)}
    routes: [{ path: /slow }]
  site:
    static: public
    routes: [{ path: /site }]
`,
      "tsgi-crashy-",
    );
    dirs.push(dir);
    // Loads, gets ready, and exits 700 ms after it loaded: again and again.
    writeFileSync(path.join(dir, "crashy.js"), `setTimeout(() => process.exit(1), 700);\nexport const app = (environ, start) => { start("200 OK", []); return ["ok"]; };\n`);
    // Listens only after 6 s: up's summary comes after that, when crashy has exited at least once.
    writeFileSync(path.join(dir, "slow.mjs"), `import http from "node:http";\nsetTimeout(() => http.createServer((req, res) => res.end("ok")).listen(Number(process.env.PORT), "127.0.0.1"), 6000);\n`);
    mkdirSync(path.join(dir, "public"));
    const stack = await up(file, { timeoutMs: 120_000, onSpawn: (child) => (started.add(child), seenPids.add(child.pid!)) });
    const daemon = pm2DaemonPid(dir);
    if (daemon !== undefined) seenPids.add(daemon);
    try {
      // The summary's lines are the records marked `summary` (JSON on a pipe), in order.
      const lines = stack
        .output()
        .split("\n")
        .filter((line) => line.includes('"summary":true'))
        .map((line) => readStackLogLine(line).msg);
      const summary = lines.join("\n");
      const crashy = lines.findIndex((line) => /^crashy\s/.test(line));
      expect(lines[crashy], summary).toMatch(/^crashy\s+RESTARTING\s+module crashy\.js/);
      expect(lines[crashy + 1]).toMatch(/\d+ worker exit\(s\) since up, the last: crashy\.0 exited with code 1 after \d+ ms; `tsgi-stack logs crashy` says why/);
      expect(lines[crashy]).not.toMatch(/ready/);
      expect(summary).toMatch(/^slow\s+1\/1 ready\s+command /m);
      expect(summary).toMatch(/^site\s+static\s+folder \S*public/m);
    } finally {
      await status(file).catch(() => undefined);
      process.kill(stack.child.pid!, "SIGINT");
      expect(await stack.exited, stack.output()).toBe(0);
    }
  }, 150_000);
});
