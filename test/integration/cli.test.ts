/**
 * The control commands against a real stack, as a user drives them from a
 * second terminal: one `tsgi-stack up -c FILE` (real pm2 in the stack's own
 * state dir, the lifecycle fixture with 2 instances behind a host route, the
 * proxy and admin listeners on 127.0.0.1 port 0), then `validate`, `status`
 * (and the admin /status page), `logs` and `logs -f`, `restart` (with
 * traffic flowing throughout: no request may fail), `scale` up and down, and
 * the refusals: an unknown app, a stack that is not running. The stack is
 * stopped with SIGINT at the end, and every pid seen must be gone.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STAMPED } from "../helpers/log-lines.ts";
import { BIN, ROOT, httpGet, isAlive, runCli, sleep, waitFor } from "../helpers/serve.ts";
import { pm2DaemonPid, stackDir as makeStackDir, statusJson, up } from "../helpers/stack.ts";

const HOST = "hello.localhost";
const STARTUP_MS = 60_000;

/** Every pid seen (the stack, its pm2 daemon, every worker, `logs -f`): all must be gone at the end. */
const seenPids = new Set<number>();
const children = new Set<ChildProcess>();
/** The temp dirs made here, removed once everything in them has stopped. */
const dirs: string[] = [];

function stackDir(config: string): { dir: string; file: string } {
  const made = makeStackDir(config, "tsgi-cli-");
  dirs.push(made.dir);
  return made;
}

const CONFIG = `
state_dir: .tsgi
proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
apps:
  hello:
    module: ${ROOT}/test/fixtures/apps/lifecycle.ts
    instances: 2
    routes: [{ host: ${HOST} }]
`;

interface Stack {
  dir: string;
  file: string;
  child: ChildProcess;
  /** "http://127.0.0.1:PORT" of the front proxy. */
  url: string;
  /** "http://127.0.0.1:PORT/status" of the admin listener: the status page's address `up` prints, and /status. */
  adminUrl: string;
  output: () => string;
  exited: Promise<number | null>;
}

let stack: Stack;

async function startStack(): Promise<Stack> {
  const { dir, file } = stackDir(CONFIG);
  const { child, url, match, output, exited } = await up(file, {
    timeoutMs: STARTUP_MS,
    // The line up to the admin URL, which this file needs too.
    serving: /serving on (http:\/\/[^/\s]+)\/.*\(status page (http:\/\/[^/\s]+)\//,
    onSpawn: (spawned) => {
      children.add(spawned);
      seenPids.add(spawned.pid!);
    },
  });
  return { dir, file, child, url, adminUrl: `${match[2]!}/status`, output, exited };
}

interface Row {
  app: string;
  slot: number;
  pid: number;
  state: string;
}

async function status(): Promise<{ state: string; pid: number; listen: string[]; admin: string; workers: Row[] }> {
  const parsed = await statusJson(stack.file);
  for (const row of parsed.workers as Row[]) if (row.pid > 0) seenPids.add(row.pid);
  return parsed;
}

/** The pids of the ready workers, by `status`. */
async function readyPids(): Promise<number[]> {
  return (await status()).workers
    .filter((row) => row.state === "ready")
    .map((row) => row.pid)
    .sort();
}

/** The pids that answered `count` sequential GET /pid through the proxy. */
async function answeringPids(count: number): Promise<number[]> {
  const pids = new Set<number>();
  for (let i = 0; i < count; i++) {
    const response = await httpGet(`${stack.url}/pid`, { host: HOST });
    expect(response.status).toBe(200);
    pids.add(Number(response.body));
  }
  return [...pids].sort();
}


beforeAll(async () => {
  stack = await startStack();
  const daemon = pm2DaemonPid(stack.dir);
  if (daemon !== undefined) seenPids.add(daemon);
}, STARTUP_MS);

afterAll(async () => {
  if (stack && stack.child.exitCode === null) {
    process.kill(stack.child.pid!, "SIGINT");
    const code = await Promise.race([stack.exited, sleep(60_000).then(() => "timeout" as const)]);
    expect(code, stack.output()).toBe(0);
  }
  await sleep(300);
  const alive = [...seenPids].filter(isAlive);
  // Whatever survived is stopped by its pid, then reported.
  for (const pid of alive) process.kill(pid, "SIGKILL");
  for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGKILL");
  if (alive.length === 0) for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  expect(alive).toEqual([]);
}, 90_000);

describe("tsgi-stack control commands against a running stack", () => {
  it("validate -c FILE: exit 0 and a one-line summary, starting nothing", async () => {
    const result = await runCli(["validate", "-c", stack.file]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`${stack.file}: ok: 1 app (hello), 2 instances, 1 route\n`);
  });

  it("status of a config that is not running: exit 1, 'is not running'", async () => {
    const { file } = stackDir(CONFIG);
    const result = await runCli(["status", "-c", file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`tsgi-stack: the stack of ${file} is not running\n`);
    expect(result.stdout).toBe("");
  });

  it("status and the admin GET /status agree: running, 2 ready workers, the up process's pid", async () => {
    const cli = await status();
    expect(cli.state).toBe("running");
    expect(cli.pid).toBe(stack.child.pid);
    expect(cli.workers.map((row) => `${row.app}.${row.slot}:${row.state}`)).toEqual(["hello.0:ready", "hello.1:ready"]);
    expect(`http://${cli.listen[0]}`).toBe(stack.url);
    expect(stack.adminUrl).toBe(`http://${cli.admin}/status`);

    const admin = await httpGet(stack.adminUrl);
    expect(admin.status).toBe(200);
    expect(admin.headers["content-type"]).toMatch(/^application\/json(;|$)/);
    const page = JSON.parse(admin.body);
    expect(page).toMatchObject({ state: "running", pid: stack.child.pid, stackId: expect.stringMatching(/^tsgi-[0-9a-f]{8}$/) });
    expect(page.workers.map((row: Row) => [row.slot, row.pid])).toEqual(cli.workers.map((row) => [row.slot, row.pid]));
    expect((await answeringPids(6)).length).toBe(2);
  });

  it("logs APP: the workers' lines, prefixed 'APP.SLOT | ' and stamped with their time, with each worker's ready: line", async () => {
    const pids = await readyPids();
    const result = await runCli(["logs", "hello", "-c", stack.file]);
    expect(result.code, result.stderr).toBe(0);
    const lines = (result.stdout + result.stderr).split("\n").filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatch(new RegExp(`^hello\\.[01] \\| ${STAMPED}`));
    const rows = (await status()).workers;
    for (const pid of pids) {
      const slot = rows.find((row) => row.pid === pid)!.slot;
      expect(result.stdout).toMatch(new RegExp(`^hello\\.${slot} \\| ${STAMPED}tsgi worker ${pid}: ready: `, "m"));
    }
  });

  it("restart nope: exit 1 naming the known apps, nothing restarted", async () => {
    const before = await readyPids();
    const result = await runCli(["restart", "nope", "-c", stack.file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('tsgi-stack: no app named "nope" (apps: hello)\n');
    expect(await readyPids()).toEqual(before);
  });

  it("restart APP: every pid changes, and sequential requests throughout are all answered 200", async () => {
    const before = await readyPids();
    expect(before).toHaveLength(2);
    let restarting = true;
    const restart = runCli(["restart", "hello", "-c", stack.file], 60_000).finally(() => (restarting = false));
    const failures: string[] = [];
    let requests = 0;
    const answeredBy = new Set<number>();
    while (restarting) {
      requests += 1;
      try {
        const response = await httpGet(`${stack.url}/pid`, { host: HOST });
        if (response.status === 200) answeredBy.add(Number(response.body));
        else failures.push(`${response.status} ${response.body.trim()}`);
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
    const result = await restart;
    expect(result.code, result.stderr).toBe(0);
    // Each new worker's ready line as it comes, then the outcome.
    expect(result.stdout).toMatch(/^tsgi-stack: hello\.\d+ ready \(pid \d+, \d+ ms\)$/m);
    expect(result.stdout.trimEnd().split("\n").at(-1)).toBe("tsgi-stack: restarted hello");
    expect(requests).toBeGreaterThan(10);
    expect(failures, `${failures.length} of ${requests} requests failed during the restart`).toEqual([]);

    const after = await readyPids();
    expect(after).toHaveLength(2);
    for (const pid of after) expect(before).not.toContain(pid);
    // Traffic flowed through the handover: old workers answered during the restart (the last new worker
    // may become ready just as the command returns, so whether it answered inside the window is a race);
    // afterwards the new workers, and only they, answer.
    expect(before.some((pid) => answeredBy.has(pid))).toBe(true);
    expect(after.some((pid) => answeredBy.has(pid))).toBe(true);
    expect(await answeringPids(6)).toEqual(after);
    for (const pid of before) await waitFor(`old worker ${pid} to exit`, async () => (isAlive(pid) ? undefined : true));
  });

  it("logs APP -f: keeps printing, and shows the new worker's ready: line after a restart", async () => {
    const follow = spawn(process.execPath, [BIN, "logs", "hello", "-f", "-c", stack.file], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    children.add(follow);
    seenPids.add(follow.pid!);
    let output = "";
    follow.stdout!.on("data", (data) => (output += data));
    follow.stderr!.on("data", (data) => (output += data));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => follow.once("exit", (_code, signal) => resolve(signal)));
    try {
      const before = await readyPids();
      await waitFor("the existing lines", async () => (before.every((pid) => output.includes(`tsgi worker ${pid}: ready:`)) ? true : undefined));

      const restart = await runCli(["restart", "hello", "-c", stack.file], 60_000);
      expect(restart.code, restart.stderr).toBe(0);
      const after = await readyPids();
      for (const pid of after) {
        expect(before).not.toContain(pid);
        await waitFor(`logs -f to print worker ${pid}'s ready: line`, async () =>
          new RegExp(`^hello\\.\\d+ \\| ${STAMPED}tsgi worker ${pid}: ready: `, "m").test(output) ? true : undefined,
        );
      }
      expect(follow.exitCode).toBeNull();
    } finally {
      process.kill(follow.pid!, "SIGTERM");
      expect(await exited).toBe("SIGTERM");
    }
  });

  it("scale APP 3: three ready workers, and traffic reaches all three", async () => {
    const result = await runCli(["scale", "hello", "3", "-c", stack.file], 60_000);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^tsgi-stack: hello\.\d+ ready \(pid \d+, \d+ ms\)$/m);
    expect(result.stdout.trimEnd().split("\n").at(-1)).toBe("tsgi-stack: hello now runs 3 worker(s)");
    const rows = (await status()).workers;
    // Slot numbers are whatever the restart before left free: three distinct slots, all ready.
    expect(rows.map((row) => `${row.app}:${row.state}`)).toEqual(["hello:ready", "hello:ready", "hello:ready"]);
    expect(new Set(rows.map((row) => row.slot)).size).toBe(3);
    const pids = await readyPids();
    expect(new Set(pids).size).toBe(3);
    expect(await answeringPids(9)).toEqual(pids);
    const table = await runCli(["status", "-c", stack.file]);
    expect(table.stdout.split("\n").filter((line) => /^hello\s+\d\s+\d+\s+ready\s/.test(line))).toHaveLength(3);
  });

  it("scale APP 1: one worker left, the others gone, and traffic reaches only that one", async () => {
    const before = await readyPids();
    const result = await runCli(["scale", "hello", "1", "-c", stack.file], 60_000);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trimEnd().split("\n").at(-1)).toBe("tsgi-stack: hello now runs 1 worker(s)");
    // The extra workers leave the proxy at once, then drain and go.
    const ready = await readyPids();
    expect(ready).toHaveLength(1);
    expect(await answeringPids(6)).toEqual(ready);
    const rows = await waitFor("the scaled-down slots to go", async () => {
      const workers = (await status()).workers;
      return workers.length === 1 ? workers : undefined;
    });
    expect(rows.map((row) => `${row.app}.${row.state}`)).toEqual(["hello.ready"]);
    for (const pid of before.filter((pid) => pid !== ready[0])) {
      await waitFor(`scaled-down worker ${pid} to exit`, async () => (isAlive(pid) ? undefined : true));
    }
  });

  it("scale with a bad count (exit 2) or an unknown app (exit 1): the reason, and the pool unchanged", async () => {
    // A count that is not a number of workers is a usage error (exit 2), caught before the stack is asked.
    const zero = await runCli(["scale", "hello", "0", "-c", stack.file]);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/scale hello 0: N must be a whole number from 1 to 256/);
    const unknown = await runCli(["scale", "nope", "2", "-c", stack.file]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('tsgi-stack: no app named "nope" (apps: hello)\n');
    expect(await readyPids()).toHaveLength(1);
  });
});
