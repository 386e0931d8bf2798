/**
 * `tsgi-stack up` end to end, as a user runs it: one YAML file with three
 * apps (a TSGI app with 2 instances, an Express app with 2, a `command:`
 * app), real pm2 in the stack's own state dir, the front proxy on port 0.
 * Routing, both instances taking traffic, a SIGKILLed worker replaced,
 * `status`, a second `up` refused, Ctrl-C leaving no process behind, the
 * detached mode, and the bad inputs that must stop `up` before anything runs.
 */
import { rmSync, writeFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { readStackLog } from "../helpers/log-lines.ts";
import { ROOT, httpGet, isAlive, runCli, sleep } from "../helpers/serve.ts";
import { pm2DaemonPid, stackDir, statusJson, up } from "../helpers/stack.ts";

const started = new Set<ChildProcess>();
/** Every pid seen during a test (workers, pm2 daemons), checked dead at the end. */
const seenPids = new Set<number>();

afterAll(async () => {
  for (const child of started) if (child.exitCode === null) process.kill(child.pid!, "SIGKILL");
  for (const pid of seenPids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
});

const THREE_APPS = `
state_dir: .tsgi
proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
apps:
  hello:
    module: ${ROOT}/test/fixtures/apps/lifecycle.ts
    instances: 2
    routes: [{ host: hello.localhost }, { path: /mounted }]
  shop:
    module: ${ROOT}/test/fixtures/apps/express-pid.ts
    instances: 2
    routes: [{ host: shop.localhost }]
  legacy:
    command: node ${ROOT}/examples/legacy/server.js
    routes: [{ path: /legacy }]
`;

/** What each of `count` requests to `url` with `host` answered. */
async function bodies(url: string, host: string, count: number): Promise<string[]> {
  const answers: string[] = [];
  for (let i = 0; i < count; i++) {
    const response = await httpGet(url, { host });
    expect(response.status).toBe(200);
    answers.push(response.body);
  }
  return answers;
}

describe("tsgi-stack up: three apps on one config", () => {
  it("routes to each app, balances over both instances, replaces a killed worker, stops clean", async () => {
    const { dir, file } = stackDir(THREE_APPS);
    const stack = await up(file, { onSpawn: (child) => started.add(child) });
    seenPids.add(stack.child.pid!);

    // One line per app, then the URL.
    expect(stack.output()).toMatch(/hello\s+2\/2 ready/);
    expect(stack.output()).toMatch(/shop\s+2\/2 ready/);
    expect(stack.output()).toMatch(/legacy\s+1\/1 ready/);

    // Each route answers from the right app; both instances of each pool take traffic.
    const helloPids = new Set(await bodies(`${stack.url}/pid`, "hello.localhost", 6));
    expect(helloPids.size).toBe(2);
    // A path route mounts the app: it sees /pid under SCRIPT_NAME /mounted.
    expect(helloPids.has((await httpGet(`${stack.url}/mounted/pid`)).body)).toBe(true);
    const shopAnswers = await bodies(`${stack.url}/pid`, "shop.localhost", 6);
    expect(shopAnswers.every((body) => body.startsWith("express "))).toBe(true);
    expect(new Set(shopAnswers).size).toBe(2);
    const legacy = await httpGet(`${stack.url}/legacy/x`);
    expect(legacy.body).toMatch(/^Hello from a plain node:http server \(pid \d+\): GET \/legacy\/x/);
    expect((await httpGet(`${stack.url}/nowhere`, { host: "other.localhost" })).status).toBe(404);

    // `status` lists every worker; the pm2 processes live in the stack's own state dir.
    const status = await statusJson(file);
    expect(status.workers.map((row: any) => `${row.app}.${row.slot}:${row.state}`).sort()).toEqual([
      "hello.0:ready",
      "hello.1:ready",
      "legacy.0:ready",
      "shop.0:ready",
      "shop.1:ready",
    ]);
    for (const row of status.workers) seenPids.add(row.pid);
    expect(status.state).toBe("running");
    const daemon = pm2DaemonPid(dir);
    expect(daemon).toBeGreaterThan(0);
    seenPids.add(daemon!);
    // The access log has a line per request, naming the app and the worker.
    const accessLog = readFileSync(path.join(dir, ".tsgi", "logs", "access.log"), "utf8");
    expect(accessLog).toMatch(/"GET \/pid HTTP\/1\.1" 200 \d+ "-" "-" app=hello worker=hello\.[01] rt=\d+\.\d{3} rid=[0-9a-f-]{36}\n/);
    const table = await runCli(["status", "-c", file]);
    expect(table.stdout).toMatch(/APP\s+SLOT\s+PID\s+STATE\s+HEALTH\s+POOL\s+UPTIME\s+RESTARTS\s+MEMORY\s+CPU\s+REQS\s+ERRS/);

    // A second `up` of the same stack is refused.
    const second = await runCli(["up", "-c", file]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/already running \(pid \d+\)/);

    // SIGKILL one hello worker: it is replaced, and the pool serves from two workers again.
    // Meanwhile every GET is answered: one the dead worker cannot take goes to the other.
    const victim = status.workers.find((row: any) => row.app === "hello" && row.slot === 0).pid;
    process.kill(victim, "SIGKILL");
    const killedAt = Date.now();
    let replacement: number | undefined;
    const duringRecovery: number[] = [];
    while (Date.now() - killedAt < 15_000) {
      for (let i = 0; i < 4; i++) duringRecovery.push((await httpGet(`${stack.url}/pid`, { host: "hello.localhost" })).status);
      const row = (await statusJson(file)).workers.find((each: any) => each.app === "hello" && each.slot === 0);
      if (row.state === "ready" && row.pid !== victim) {
        replacement = row.pid;
        break;
      }
      await sleep(100);
    }
    expect(replacement).toBeDefined();
    expect(duringRecovery.filter((code) => code !== 200)).toEqual([]);
    seenPids.add(replacement!);
    const afterKill = new Set(await bodies(`${stack.url}/pid`, "hello.localhost", 6));
    expect(afterKill.has(String(replacement))).toBe(true);
    expect(afterKill.has(String(victim))).toBe(false);

    // Ctrl-C: everything the stack started is gone.
    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
    await sleep(200);
    const alive = [...seenPids].filter(isAlive);
    expect(alive).toEqual([]);
  });

  it("two config files in one folder: the second is refused by name, and status/down of it never touch the first's stack", async () => {
    const config = `
proxy: { listen: ["127.0.0.1:0"], admin: "127.0.0.1:0" }
apps:
  hello:
    module: ${ROOT}/test/fixtures/apps/lifecycle.ts
    routes: [{ path: /h }]
`;
    const { dir, file: a } = stackDir(config);
    const b = path.join(dir, "b.yaml");
    writeFileSync(b, config);
    const stack = await up(a);
    started.add(stack.child);
    const second = await runCli(["up", "-c", b]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`state_dir .tsgi is in use by the stack of ${a}`);
    for (const command of ["status", "down", "reload"]) {
      const result = await runCli([command, "-c", b], 30_000);
      expect(result.code, command).toBe(1);
      expect(result.stderr, command).toContain(`the stack of ${b} is not running (its state_dir is in use by the stack of ${a}`);
    }
    // The first stack is untouched: still running, still serving.
    const status = await statusJson(a);
    expect(status.state).toBe("running");
    expect((await httpGet(`${stack.url}/h/pid`)).status).toBe(200);
    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
  });

  it("the state dir's sockets/ folder removed under a running stack: the workers bind new sockets and serve again", async () => {
    const { dir, file } = stackDir(`
proxy: { listen: ["127.0.0.1:0"], admin: "127.0.0.1:0" }
apps:
  hello:
    module: ${ROOT}/test/fixtures/apps/lifecycle.ts
    instances: 2
    routes: [{ path: /h }]
    health: { path: /pid, interval: 500ms }
`);
    const stack = await up(file);
    started.add(stack.child);
    const before = (await statusJson(file)).workers.map((row: any) => row.pid as number);
    rmSync(path.join(dir, ".tsgi", "sockets"), { recursive: true, force: true });
    const removedAt = Date.now();
    let answer = { status: 0, body: "" };
    let pids: number[] = before;
    while (Date.now() - removedAt < 15_000) {
      pids = (await statusJson(file)).workers.filter((row: any) => row.state === "ready").map((row: any) => row.pid as number);
      answer = await httpGet(`${stack.url}/h/pid`);
      if (answer.status === 200 && pids.length === 2 && pids.every((pid) => !before.includes(pid))) break;
      await sleep(200);
    }
    expect(answer.status).toBe(200);
    expect(pids.every((pid) => !before.includes(pid)), stack.output()).toBe(true);
    expect(stack.output()).toMatch(/its socket .*sockets\/hello\.\d\.sock was removed: restarting it/);
    // A restart afterwards works too: nothing is left half-made.
    const restart = await runCli(["restart", "-c", file], 60_000);
    expect(restart.code, restart.stderr).toBe(0);
    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
  });

  it("restart and scale whose new workers cannot load exit 1, naming the app and why", async () => {
    const { dir, file } = stackDir(`
proxy: { listen: ["127.0.0.1:0"], admin: "127.0.0.1:0" }
apps:
  web:
    module: app.mjs
    routes: [{ path: /w }]
    restart: { max_restarts: 1, backoff: 100ms }
`);
    const flag = path.join(dir, "broken");
    writeFileSync(
      path.join(dir, "app.mjs"),
      `import { existsSync } from "node:fs";\nif (existsSync(${JSON.stringify(flag)})) throw new Error("the dependency is down");\nexport const app = (e, start) => { start("200 OK", []); return ["ok"]; };\n`,
    );
    const stack = await up(file);
    started.add(stack.child);
    writeFileSync(flag, "");
    const scaled = await runCli(["scale", "web", "2", "-c", file], 60_000);
    expect(scaled.code).toBe(1);
    expect(scaled.stderr).toMatch(/scale web 2 did not complete: web: \d of 2 worker\(s\) ready/);
    const restarted = await runCli(["restart", "web", "-c", file], 60_000);
    expect(restarted.code).toBe(1);
    expect(restarted.stderr).toMatch(/restart did not complete: web: \d of \d worker\(s\) ready/);
    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
  });

  it("a second Ctrl-C says how long the drain may still take, counted from the first", async () => {
    const { file } = stackDir(`
proxy: { listen: ["127.0.0.1:0"], admin: "127.0.0.1:0" }
apps:
  hello:
    module: ${ROOT}/test/fixtures/apps/lifecycle.ts
    routes: [{ path: /h }]
    graceful_timeout: 6s
`);
    const stack = await up(file);
    started.add(stack.child);
    const slow = httpGet(`${stack.url}/h/slow?ms=2500`).catch(() => undefined);
    await sleep(300);
    process.kill(stack.child.pid!, "SIGINT");
    await sleep(1000);
    process.kill(stack.child.pid!, "SIGINT");
    await sleep(300);
    const line = /still stopping: the workers' drain may take (\d+\.\d) s more/.exec(stack.output());
    expect(line, stack.output()).not.toBeNull();
    // 6 s of graceful_timeout, about 1 s of which had passed at the second Ctrl-C.
    expect(Number(line![1])).toBeLessThan(5.5);
    expect(Number(line![1])).toBeGreaterThan(3);
    await slow;
    expect(await stack.exited).toBe(0);
  });

  it("runs detached: up -d returns, status and down reach it, nothing is left", async () => {
    const { dir, file } = stackDir(THREE_APPS);
    const detached = await runCli(["up", "-c", file, "--detach"], 60_000);
    expect(detached.code, detached.stderr).toBe(0);
    expect(detached.stdout).toMatch(/running in the background \(pid (\d+)\)/);
    const status = await statusJson(file);
    expect(status.state).toBe("running");
    expect(status.workers.every((row: any) => row.state === "ready" && row.pid > 0)).toBe(true);
    seenPids.add(status.pid);
    for (const row of status.workers) seenPids.add(row.pid);
    seenPids.add(pm2DaemonPid(dir)!);
    expect((await httpGet(`http://${status.listen[0]}/legacy/`)).status).toBe(200);
    // The workers' output is in their own files only: stack.log holds the stack's lines, not a second copy.
    const hello = status.workers.find((row: any) => row.app === "hello" && row.slot === 0);
    expect(readFileSync(path.join(dir, ".tsgi", "logs", "hello.0.out.log"), "utf8")).toContain(`tsgi worker ${hello.pid}: ready:`);
    // stack.log is a file, so its records are JSON lines (stack/stack-log.ts).
    const stackLog = readStackLog(readFileSync(path.join(dir, ".tsgi", "stack.log"), "utf8"));
    expect(stackLog.filter((line) => line.app !== undefined)).toEqual([]);
    expect(stackLog.find((line) => line.msg.startsWith("serving on "))).toMatchObject({ json: true });
    // A command app's too, through the shell that runs it.
    expect(readFileSync(path.join(dir, ".tsgi", "logs", "legacy.0.out.log"), "utf8")).toMatch(/legacy server listening on http:\/\/127\.0\.0\.1:\d+/);

    const down = await runCli(["down", "-c", file], 60_000);
    expect(down.code, down.stderr).toBe(0);
    await sleep(200);
    expect([...seenPids].filter(isAlive)).toEqual([]);
    expect((await runCli(["status", "-c", file])).stderr).toMatch(/is not running/);
  });
});

describe("tsgi-stack up: bad input stops it before anything runs", () => {
  it.each([
    ["a missing file", null, /config file not found: .*nope\.yaml/],
    ["a YAML syntax error", "apps:\n  hello: [unclosed\n", /tsgi\.yaml:\d+:\d+/],
    ["an unknown key", "apps:\n  hello:\n    module: x.ts\n    instancs: 2\n", /apps\.hello\.instancs.*did you mean .?instances/],
    ["a module that does not exist", "apps:\n  hello:\n    module: missing/app.ts\n    routes: [{ path: /x }]\n", /apps\.hello\.module.*missing\/app\.ts/],
  ])("%s: a clear error, exit 1", async (_what, config, expected) => {
    const file = config === null ? path.join(os.tmpdir(), "nope.yaml") : stackDir(config).file;
    const result = await runCli(["up", "-c", file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(expected);
    expect(result.stdout).not.toMatch(/serving on/);
  });

  it("a port already in use: one line naming it, exit 1, no pm2 started", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const { dir, file } = stackDir(THREE_APPS.replace('listen: ["127.0.0.1:0"]', `listen: ["127.0.0.1:${port}"]`));
      const result = await runCli(["up", "-c", file]);
      expect(result.code).toBe(1);
      // The config key that names the address, and no "stopping … draining" for a stack that never served.
      expect(result.stderr).toContain(`proxy.listen[0]: cannot listen on 127.0.0.1:${port}: listen EADDRINUSE`);
      expect(result.stdout).not.toContain("stopping");
      expect(pm2DaemonPid(dir)).toBeUndefined();
      const admin = stackDir(THREE_APPS.replace(/admin: "?127\.0\.0\.1:0"?/, `admin: "127.0.0.1:${port}"`));
      const onAdmin = await runCli(["up", "-c", admin.file]);
      expect(onAdmin.code).toBe(1);
      expect(onAdmin.stderr).toContain(`proxy.admin: cannot listen on 127.0.0.1:${port}`);
    } finally {
      blocker.close();
    }
  });

  it("an app that cannot load: its error is printed once, with the app's own frames only, then one line naming the app", async () => {
    const { dir, file } = stackDir(`
proxy: { listen: ["127.0.0.1:0"], admin: "127.0.0.1:0" }
apps:
  broken:
    module: app.mjs
    routes: [{ path: /b }]
`);
    writeFileSync(path.join(dir, "app.mjs"), 'export const app = () => [];\nthrow new Error("DATABASE_URL is not set");\n');
    const result = await runCli(["up", "-c", file], 60_000);
    expect(result.code).toBe(1);
    const output = result.stdout + result.stderr;
    expect(output.split("DATABASE_URL is not set").length - 1).toBe(2); // the worker's one line, and its Error: line
    expect(output.match(/cannot load app/g)).toHaveLength(1);
    expect(output).toContain(`app.mjs:2:7`);
    expect(output).not.toMatch(/node:internal|node_modules|dist\/gateway/);
    expect(result.stderr).toMatch(/app "broken" did not start \(why is above\)/);
    expect(result.stdout).not.toContain("stopping: closing listeners");
  });

  it("a command that exits at once: the app is named with its output, exit 1, nothing left running", async () => {
    const { dir, file } = stackDir(`
proxy: { listen: ["127.0.0.1:0"], admin: "127.0.0.1:0" }
apps:
  broken:
    command: node -e "console.error('no database configured'); process.exit(1)"
    routes: [{ path: /b }]
    restart: { max_restarts: 2, backoff: 100ms }
`);
    const result = await runCli(["up", "-c", file], 60_000);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/app "broken" did not start/);
    expect(result.stderr).toContain("no database configured");
    const daemon = pm2DaemonPid(dir);
    if (daemon !== undefined) expect(isAlive(daemon)).toBe(false);
  });
});
