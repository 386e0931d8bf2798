/**
 * The front proxy in processes of its own (`proxy.workers`), as a user runs
 * it: `tsgi-stack up` with two proxy processes on one port. Both take
 * traffic; a proxy process SIGKILLed under load is replaced and no
 * connection is refused meanwhile (the stack process keeps the listening
 * socket, so new connections wait in its queue): only the connections the
 * killed process had accepted are lost, as with a killed nginx worker;
 * `proxy.workers` changes on a config reload; Ctrl-C leaves no proxy process
 * behind, and nor does a stack process that is killed.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { WebSocket } from "ws";
import http from "node:http";
import { ROOT, isAlive, runCli, sleep } from "../helpers/serve.ts";
import { cleanUpStacks, pm2DaemonPid, stackDir, statusJson, up } from "../helpers/stack.ts";

const started = new Set<ChildProcess>();
/** Every pid seen (stacks, proxy processes, workers, pm2 daemons), killed in afterAll if a test left one. */
const seenPids = new Set<number>();
const dirs: string[] = [];

afterAll(() => cleanUpStacks(started, seenPids, dirs), 60_000);

const config = (workers: number | string) => `
proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
  workers: ${workers}
apps:
  hello:
    module: ${ROOT}/test/fixtures/apps/lifecycle.ts
    instances: 2
    routes: [{ path: /hello }]
`;

/** CPU ticks (user + system) a process has used so far. */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** One GET on a fresh connection: its status, or the socket error's code. */
function getOnce(url: string): Promise<string> {
  return new Promise((resolve) => {
    const request = http.get(url, { agent: false, timeout: 10_000 }, (response) => {
      response.resume();
      response.on("end", () => resolve(String(response.statusCode)));
      response.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** `clients` loops of GETs on fresh connections until `stop()`; every outcome counted. */
function load(url: string, clients: number) {
  const outcomes = new Map<string, number>();
  let running = true;
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      const outcome = await getOnce(url);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return Object.fromEntries(outcomes);
    },
  };
}

async function proxiesReady(file: string, count: number, timeoutMs = 15_000): Promise<any[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { proxies } = await statusJson(file);
    if (proxies.length === count && proxies.every((proxy: any) => proxy.state === "ready")) return proxies;
    if (Date.now() > deadline) throw new Error(`proxies not ready: ${JSON.stringify(proxies)}`);
    await sleep(100);
  }
}

/** A temp dir with `yaml` as its tsgi.yaml (and `prepare` run in it), `up` started and serving; every pid recorded for afterAll. */
async function startStack(yaml: string, prepare?: (dir: string) => void) {
  const { dir, file } = stackDir(yaml);
  dirs.push(dir);
  prepare?.(dir);
  const stack = await up(file, { onSpawn: (child) => started.add(child) });
  seenPids.add(stack.child.pid!);
  return { dir, file, stack };
}

describe("proxy.workers: the front proxy in processes of its own", () => {
  it("two proxy processes share the port, both take traffic, and killing them under load refuses no connection", async () => {
    const { file, stack } = await startStack(config(2));
    const before = await proxiesReady(file, 2);
    const pids = before.map((proxy: any) => proxy.pid as number);
    for (const pid of pids) seenPids.add(pid);
    expect(new Set(pids).size).toBe(2);
    expect(pids).not.toContain(stack.child.pid);
    for (const row of (await statusJson(file)).workers) seenPids.add(row.pid);

    // Both accept: the kernel spreads fresh connections over the processes listening on the one socket.
    const ticks = pids.map(cpuTicks);
    const warm = load(`${stack.url}/hello/pid`, 8);
    await sleep(1500);
    const warmOutcomes = await warm.stop();
    expect(Object.keys(warmOutcomes)).toEqual(["200"]);
    pids.forEach((pid, index) => expect(cpuTicks(pid) - ticks[index]!, `proxy process ${pid} took no traffic`).toBeGreaterThan(3));

    // One killed, then the other, then both at once: each is replaced, and the socket held by the stack queues what arrives meanwhile.
    const traffic = load(`${stack.url}/hello/pid`, 8);
    await sleep(300);
    process.kill(pids[0]!, "SIGKILL");
    await sleep(700);
    const [, second] = await proxiesReady(file, 2);
    process.kill(second.pid, "SIGKILL");
    await sleep(700);
    const both = await proxiesReady(file, 2);
    for (const proxy of both) process.kill(proxy.pid, "SIGKILL");
    await sleep(700);
    const { "200": ok = 0, ECONNRESET: reset = 0, ...others } = await traffic.stop();
    // Never refused; reset only what a killed process held: at most one request per client for each of the 4 kills.
    expect(others).toEqual({});
    expect(reset).toBeLessThanOrEqual(8 * 4);
    expect(ok).toBeGreaterThan(100);

    const after = await proxiesReady(file, 2);
    for (const proxy of after) seenPids.add(proxy.pid);
    expect(after.map((proxy: any) => proxy.restarts).reduce((a: number, b: number) => a + b, 0)).toBe(4);
    expect(stack.output()).toMatch(/proxy process 0 \(pid \d+\) exited \(SIGKILL\): starting another/);

    // Ctrl-C: every proxy process goes with the stack.
    const proxyPids = [...pids, ...both.map((proxy: any) => proxy.pid), ...after.map((proxy: any) => proxy.pid)];
    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
    expect(proxyPids.filter(isAlive)).toEqual([]);
  }, 120_000);

  it("follows proxy.workers on a config reload, and serves throughout", async () => {
    const { file, stack } = await startStack(config(1));
    const [first] = await proxiesReady(file, 1);
    seenPids.add(first.pid);

    const traffic = load(`${stack.url}/hello/pid`, 4);
    writeFileSync(file, config(3));
    const reloaded = await runCli(["reload", "-c", file], 60_000);
    expect(reloaded.code, reloaded.stderr).toBe(0);
    const three = await proxiesReady(file, 3);
    for (const proxy of three) seenPids.add(proxy.pid);
    expect(three.map((proxy: any) => proxy.pid)).toContain(first.pid);

    writeFileSync(file, config(1));
    expect((await runCli(["reload", "-c", file], 60_000)).code).toBe(0);
    const [only] = await proxiesReady(file, 1);
    expect(only.pid).toBe(first.pid);
    const outcomes = await traffic.stop();
    expect(outcomes).toEqual({ "200": expect.any(Number) });
    const retired = three.map((proxy: any) => proxy.pid).filter((pid: number) => pid !== first.pid);
    const deadline = Date.now() + 10_000;
    while (retired.some(isAlive) && Date.now() < deadline) await sleep(100);
    expect(retired.filter(isAlive)).toEqual([]);

    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
    expect(isAlive(first.pid)).toBe(false);
  }, 120_000);

  it("a proxy process never outlives its stack: SIGKILL the stack process and the proxies leave on their own", async () => {
    const { dir, file, stack } = await startStack(config(2));
    const proxies = await proxiesReady(file, 2);
    for (const proxy of proxies) seenPids.add(proxy.pid);
    for (const row of (await statusJson(file)).workers) seenPids.add(row.pid);
    seenPids.add(pm2DaemonPid(dir)!);

    process.kill(stack.child.pid!, "SIGKILL");
    await stack.exited;
    const deadline = Date.now() + 10_000;
    while (proxies.some((proxy: any) => isAlive(proxy.pid)) && Date.now() < deadline) await sleep(100);
    expect(proxies.map((proxy: any) => proxy.pid).filter(isAlive)).toEqual([]);
  }, 60_000);

  it("stops within the apps' graceful timeout with a WebSocket open, closing the tunnel", async () => {
    const { file, stack } = await startStack(`
proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
apps:
  chat:
    module: ${ROOT}/test/fixtures/apps/websocket-echo.ts
    graceful_timeout: 2s
    routes: [{ path: /chat }]
`);
    for (const proxy of await proxiesReady(file, 1)) seenPids.add(proxy.pid);
    for (const row of (await statusJson(file)).workers) seenPids.add(row.pid);

    const socket = new WebSocket(`${stack.url.replace("http", "ws")}/chat/ws`);
    await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
    const echoed = new Promise((resolve) => socket.once("message", (data) => resolve(String(data))));
    socket.send("still here");
    expect(await echoed).toBe("still here");
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));

    const asked = Date.now();
    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
    expect(Date.now() - asked).toBeLessThan(15_000);
    await closed;
  }, 60_000);

  it("a full disk under the access log costs no request: the lines are dropped and said, the proxy serves on", async () => {
    // The log file is /dev/full: opening works, every write fails with ENOSPC.
    const { file, stack } = await startStack(config(1), (dir) => {
      mkdirSync(path.join(dir, ".tsgi", "logs"), { recursive: true });
      symlinkSync("/dev/full", path.join(dir, ".tsgi", "logs", "access.log"));
    });
    const [proxy] = await proxiesReady(file, 1);
    seenPids.add(proxy.pid);
    for (const row of (await statusJson(file)).workers) seenPids.add(row.pid);

    const traffic = load(`${stack.url}/hello/pid`, 4);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await traffic.stop()).toEqual({ "200": expect.any(Number) });
    expect(stack.output()).toMatch(/proxy: access log: cannot write \(ENOSPC\): \d+ line\(s\) dropped/);
    const [after] = await proxiesReady(file, 1);
    expect(after.pid).toBe(proxy.pid);
    expect(after.restarts).toBe(0);

    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
  }, 60_000);
});
