/**
 * The supervisor's pure parts, without pm2: the crash policy, the process
 * spec a slot becomes, names and paths, and the event loop.
 */
import { describe, expect, it } from "vitest";
import { describeExitCode, judgeExit, judgeNotReady, pm2Limits } from "../../src/supervisor/crash-policy.ts";
import { KILL_MARGIN_MS } from "../../src/contract/stopping.ts";
import { processSpec, shellCommand, type LaunchContext } from "../../src/supervisor/launch.ts";
import { EventLoop } from "../../src/contract/event-loop.ts";
import os from "node:os";
import { rmSync } from "node:fs";
import path from "node:path";
import type { ProcessManager } from "../../src/supervisor/process-manager.ts";
import { Supervisor } from "../../src/supervisor/supervisor.ts";
import { blockedWorkers, checkPeriodMs, heartbeatFile } from "../../src/supervisor/heartbeats.ts";
import { toPm2Event } from "../../src/supervisor/pm2-client.ts";
import { newPool, newSlot, poolState, readyEndpoints, report } from "../../src/supervisor/pool.ts";
import {
  checkNamePart,
  formatWorkerAddress,
  freeSlots,
  parseProcessName,
  parseWorkerAddress,
  processName,
  statePaths,
} from "../../src/supervisor/slots.ts";
import { commandPool, modulePool } from "./helpers.ts";

const policy = { maxRestarts: 3, backoffMs: 100, minUptimeMs: 1000 };

describe("crash policy", () => {
  it("names the worker's own exit codes in its messages, and only those", () => {
    expect(describeExitCode(4)).toBe("code 4 (APP_LOAD_ERROR)");
    expect(describeExitCode(0)).toBe("code 0 (OK)");
    expect(describeExitCode(1)).toBe("code 1");
  });

  it("halts at once on APP_LOAD_ERROR and BOOT_ERROR, however long the worker lived", () => {
    expect(judgeExit({ exitCode: 4, uptimeMs: 60_000, crashesSoFar: 0 }, policy)).toMatchObject({ action: "halt", reason: "app-load-error" });
    expect(judgeExit({ exitCode: 3, uptimeMs: 10, crashesSoFar: 0 }, policy)).toMatchObject({ action: "halt", reason: "boot-error" });
  });

  it("replaces a worker after a recycle, a timeout or a kill, and a long life resets the crash count", () => {
    for (const exitCode of [0, 5, 1, 137]) {
      expect(judgeExit({ exitCode, uptimeMs: 5000, crashesSoFar: 2 }, policy)).toEqual({ action: "replace", crashes: 0 });
    }
  });

  it("counts crashes in a row and halts on the one past maxRestarts", () => {
    let crashes = 0;
    const verdicts = [];
    for (let i = 0; i < 4; i++) {
      const verdict = judgeExit({ exitCode: 1, uptimeMs: 50, crashesSoFar: crashes }, policy);
      verdicts.push(verdict.action);
      crashes = verdict.crashes;
    }
    expect(verdicts).toEqual(["replace", "replace", "replace", "halt"]);
    expect(judgeNotReady(3, policy)).toMatchObject({ action: "halt", reason: "crash-loop" });
    expect(judgeNotReady(0, policy)).toEqual({ action: "replace", crashes: 1 });
  });

  it("sets pm2's limits so pm2 gives up on the same exit as we do, and never restarts on a fatal code", () => {
    expect(pm2Limits(policy)).toEqual({ maxRestarts: 4, minUptimeMs: 1000, backoffMs: 100, stopExitCodes: [3, 4] });
    // pm2's schema refuses min_uptime < 100 ms, and a back-off of 0 would mean "no back-off" to pm2.
    expect(pm2Limits({ maxRestarts: 0, backoffMs: 0, minUptimeMs: 10 })).toMatchObject({ maxRestarts: 1, minUptimeMs: 100, backoffMs: 1 });
  });
});

describe("launch: a slot as a pm2 process", () => {
  const context: LaunchContext = {
    stackId: "s1",
    paths: statePaths("/state"),
    workerBin: "/repo/dist/cli/bin.js",
    nodePath: "/usr/bin/node",
    shell: "/bin/sh",
  };

  it("runs a module app as one gateway worker on its socket, with the worker's limits", () => {
    const pool = modulePool("hello", "examples/hello/app.ts", 2, { maxRequests: 1000, maxRequestsJitter: 50, maxMemoryBytes: 256 * 1024 ** 2 });
    const address = { kind: "unix", path: "/state/sockets/hello.1.sock" } as const;
    const spec = processSpec(context, pool, 1, "tsgi:s1:hello:1", address);
    expect(spec.executable).toBe("/usr/bin/node");
    expect(spec.args).toEqual([
      "/repo/dist/cli/bin.js",
      "serve",
      "examples/hello/app.ts",
      "--no-arbiter",
      "--socket",
      "/state/sockets/hello.1.sock",
      "--interface",
      "auto",
      "--max-requests",
      "1000",
      "--max-requests-jitter",
      "50",
      "--timeout",
      "30000ms",
      "--graceful-timeout",
      "5000ms",
      "--multiprocess",
      "--script-name-header",
      "x-tsgi-script-name",
      "--allow-trace",
      "--heartbeat-file",
      "/state/heartbeats/tsgi_s1_hello_1.beat",
    ]);
    expect(spec).toMatchObject({
      waitReady: true,
      listenTimeoutMs: 30_000,
      killTimeoutMs: 5000 + KILL_MARGIN_MS,
      maxMemoryBytes: 256 * 1024 ** 2,
      maxRestarts: 4,
      stopExitCodes: [3, 4],
      outFile: "/state/logs/hello.1.out.log",
      errFile: "/state/logs/hello.1.err.log",
      env: { TSGI_STACK: "s1", TSGI_APP: "hello", TSGI_SLOT: "1", TSGI_ADDRESS: "unix:/state/sockets/hello.1.sock" },
    });
  });

  it("puts a module worker on loopback TCP when its socket path would be too long to bind", () => {
    const spec = processSpec(context, modulePool("hello", "app.ts", 1), 0, "tsgi:s1:hello:0", { kind: "tcp", host: "127.0.0.1", port: 4000 });
    expect(spec.args.slice(4, 6)).toEqual(["--http", "127.0.0.1:4000"]);
    expect(spec.env.PORT).toBeUndefined();
  });

  it("runs a command app through the shell with PORT set, and readiness is ours (no wait_ready)", () => {
    const pool = commandPool("legacy", "node server.js", 1, { env: { A: "b" } });
    const spec = processSpec(context, pool, 0, "tsgi:s1:legacy:0", { kind: "tcp", host: "127.0.0.1", port: 4321 });
    expect(spec.executable).toBe("/bin/sh");
    expect(spec.args).toEqual(["-c", "exec node server.js"]);
    expect(spec.waitReady).toBe(false);
    expect(spec.env).toMatchObject({ A: "b", PORT: "4321", TSGI_ADDRESS: "tcp:127.0.0.1:4321" });
  });

  it("execs a simple command (so its pid and memory are the server's) and leaves shell syntax alone", () => {
    expect(shellCommand(`node -e "require('http').createServer((q,s)=>s.end()).listen(process.env.PORT)"`)).toMatch(/^exec node -e/);
    expect(shellCommand("python3 -m http.server $PORT")).toBe("exec python3 -m http.server $PORT");
    for (const command of ["cd app && node server.js", "FOO=1 node s.js", "a | b", "exec node x", "node a; node b", "exit 1", ". ./env.sh", "ulimit -n 4096"]) {
      expect(shellCommand(command)).toBe(command);
    }
  });
});

describe("slots: names and paths", () => {
  it("names processes tsgi:<stack>:<app>:<slot> and reads them back", () => {
    expect(processName("s1", "hello", 3)).toBe("tsgi:s1:hello:3");
    expect(parseProcessName("s1", "tsgi:s1:hello:3")).toEqual({ app: "hello", slot: 3 });
    expect(parseProcessName("s1", "tsgi:s2:hello:3")).toBeUndefined();
    expect(parseProcessName("s1", "tsgi:s1:hello")).toBeUndefined();
    expect(() => checkNamePart("app name", "a:b")).toThrow(/letters, digits/);
  });

  it("reuses the lowest free slot numbers", () => {
    expect(freeSlots([0, 2], 3)).toEqual([1, 3, 4]);
    expect(freeSlots([], 0)).toEqual([]);
  });

  it("carries an address in the environment both ways", () => {
    for (const address of [{ kind: "unix", path: "/s/a.0.sock" }, { kind: "tcp", host: "127.0.0.1", port: 80 }] as const) {
      expect(parseWorkerAddress(formatWorkerAddress(address))).toEqual(address);
    }
  });
});

describe("pool views", () => {
  it("puts only ready slots in the membership, and the report says how many", () => {
    const pool = newPool(modulePool("hello", "x.ts", 2));
    const a = newSlot(0, "tsgi:s:hello:0", { kind: "unix", path: "/a" });
    const b = newSlot(1, "tsgi:s:hello:1", { kind: "unix", path: "/b" });
    pool.slots.set(0, a).set(1, b);
    expect(poolState(pool)).toBe("starting");
    Object.assign(a, { state: "ready", pid: 10, settled: true });
    Object.assign(b, { state: "down", settled: true });
    expect(readyEndpoints(pool)).toEqual([{ slot: 0, pid: 10, address: { kind: "unix", path: "/a" } }]);
    expect(Object.isFrozen(readyEndpoints(pool))).toBe(true);
    expect(report(pool)).toEqual({ app: "hello", state: "degraded", instances: 2, ready: 1 });
  });
});

describe("pm2 bus events in our words", () => {
  it("reads process events, a child's typed message and logs", () => {
    expect(toPm2Event("process:event", { event: "exit", at: 5, process: { name: "n", pm_uptime: 2, exit_code: 4, status: "stopped" } })).toEqual({
      kind: "exit",
      name: "n",
      at: 5,
      startedAt: 2,
      exitCode: 4,
      status: "stopped",
    });
    // ForkMode.js publishes process.send({ type, data }) under the message's own type.
    expect(toPm2Event("tsgi:ready", { at: 1, data: { pid: 7 }, process: { name: "n" } })).toEqual({ kind: "message", name: "n", at: 1, type: "tsgi:ready", data: { pid: 7 } });
    expect(toPm2Event("process:msg", { at: 1, raw: "ready", process: { name: "n" } })).toMatchObject({ kind: "raw", raw: "ready" });
    // Output never travels the bus (disable_logs): were a line to arrive, it is not an event of ours.
    expect(toPm2Event("log:err", { data: "x\n", process: { name: "n" } })).toBeUndefined();
    expect(toPm2Event("process:event", { event: "start", process: { name: "n" } })).toBeUndefined();
  });
});

describe("event loop", () => {
  it("dispatches in order, never inside the caller, and goes on after a handler throws", async () => {
    const seen: string[] = [];
    const errors: unknown[] = [];
    let drains = 0;
    const loop: EventLoop<string> = new EventLoop<string>(
      (event) => {
        seen.push(event);
        if (event === "a") loop.enqueue("c");
        if (event === "bad") throw new Error("boom");
      },
      () => drains++,
      (error) => errors.push(error),
    );
    loop.enqueue("a");
    loop.enqueue("bad");
    loop.enqueue("b");
    expect(seen).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual(["a", "bad", "b", "c"]);
    expect(errors).toHaveLength(1);
    expect(drains).toBe(1);
  });
});

describe("heartbeats: a worker whose event loop is blocked", () => {
  const worker = (pid: number, timeoutMs: number) => ({ app: "hello", slot: 0, pid, file: `/state/heartbeats/${pid}.beat`, timeoutMs });

  it("is blocked once its file is older than the timeout plus one beat, and not before", () => {
    const now = 100_000;
    const beats: Record<string, { mtimeMs: number; pid: number }> = {
      "/state/heartbeats/1.beat": { mtimeMs: now - 30_000 - 1000, pid: 1 }, // exactly at the limit: still alive
      "/state/heartbeats/2.beat": { mtimeMs: now - 30_000 - 1001, pid: 2 },
      "/state/heartbeats/3.beat": { mtimeMs: now - 200, pid: 3 },
    };
    const blocked = blockedWorkers([worker(1, 30_000), worker(2, 30_000), worker(3, 1000)], (file) => beats[file], now);
    expect(blocked).toEqual([{ ...worker(2, 30_000), silentMs: 31_001 }]);
  });

  it("says nothing of a worker still booting (no file) or of a file left by the slot's previous process", () => {
    const stale = { mtimeMs: 0, pid: 41 };
    expect(blockedWorkers([worker(42, 1000)], () => undefined, 100_000)).toEqual([]);
    expect(blockedWorkers([worker(42, 1000)], () => stale, 100_000)).toEqual([]);
  });

  it("looks as often as the most frequent beat, at most once a second", () => {
    expect(checkPeriodMs([])).toBe(1000);
    expect(checkPeriodMs([worker(1, 30_000), worker(2, 2000)])).toBe(200);
    expect(checkPeriodMs([worker(1, 100)])).toBe(50);
  });

  it("is asked for on a module worker's command line when its app has a timeout, in the state dir", () => {
    const context: LaunchContext = { stackId: "demo-1", paths: statePaths("/state"), workerBin: "/pkg/dist/cli/bin.js", nodePath: "/usr/bin/node", shell: "/bin/sh" };
    const address = { kind: "unix", path: "/state/sockets/hello.0.sock" } as const;
    const withTimeout = processSpec(context, modulePool("hello", "app.ts", 1, { timeoutMs: 30_000 }), 0, "tsgi:demo-1:hello:0", address);
    expect(withTimeout.args.join(" ")).toContain(`--heartbeat-file ${heartbeatFile(context.paths, "tsgi:demo-1:hello:0")}`);
    expect(heartbeatFile(context.paths, "tsgi:demo-1:hello:0")).toBe("/state/heartbeats/tsgi_demo-1_hello_0.beat");
    const without = processSpec(context, modulePool("hello", "app.ts", 1, { timeoutMs: 0 }), 0, "tsgi:demo-1:hello:0", address);
    expect(without.args).not.toContain("--heartbeat-file");
  });
});

describe("the process-manager seam", () => {
  it("connects through SupervisorOptions.connectProcessManager, in the stack's own pm2 home, and lists only its own processes", async () => {
    const calls: string[] = [];
    const fake: ProcessManager = {
      start: async () => Promise.reject(new Error("not in this test")),
      stop: async () => undefined,
      restart: async () => undefined,
      delete: async (name) => void calls.push(`delete ${name}`),
      list: async (prefix = "") => (calls.push(`list ${prefix}`), []),
      onEvent: () => () => undefined,
      disconnect: async () => void calls.push("disconnect"),
      daemonAlive: () => true,
      killDaemon: async () => void calls.push("killDaemon"),
    };
    const homes: string[] = [];
    const supervisor = new Supervisor({
      stackId: "seam-1",
      stateDir: path.join(os.tmpdir(), `tsgi-seam-${process.pid}`),
      connectProcessManager: async (options) => (homes.push(options.home), fake),
    });
    expect(await supervisor.start([])).toEqual([]);
    await supervisor.stop();
    expect(homes).toEqual([path.join(os.tmpdir(), `tsgi-seam-${process.pid}`, "pm2")]);
    expect(calls).toContain("list tsgi:seam-1:");
    expect(calls.at(-1)).toBe("killDaemon");
    rmSync(path.join(os.tmpdir(), `tsgi-seam-${process.pid}`), { recursive: true, force: true });
  });
});

describe("the telltale line of a failed worker's stderr", () => {
  it.each([
    ["the gateway worker's own line wins", ["Error: x", "tsgi-stack: cannot load app a.ts: boom", "    at y"], "tsgi-stack: cannot load app a.ts: boom"],
    [
      "a command app's uncaught error, not Node's version trailer",
      ["/srv/app/server.js:3", "    throw new Error('no DATABASE_URL');", "    ^", "", "Error: no DATABASE_URL", "    at Object.<anonymous> (/srv/app/server.js:3:11)", "    at Module._compile (node:internal/modules/cjs/loader:1554:14)", "", "Node.js v20.20.2"],
      "Error: no DATABASE_URL",
    ],
    [
      "a listen error with its code",
      ["node:events:497", "      throw er; // Unhandled 'error' event", "      ^", "", "Error: listen EADDRINUSE: address already in use 127.0.0.1:3000", "    at Server.setupListenHandle [as _listen2] (node:net:1897:16)", "Node.js v20.20.2"],
      "Error: listen EADDRINUSE: address already in use 127.0.0.1:3000",
    ],
    ["a typed error with a code in brackets", ["TypeError [ERR_INVALID_ARG_TYPE]: The \"path\" argument must be of type string", "    at x", "Node.js v22.1.0"], 'TypeError [ERR_INVALID_ARG_TYPE]: The "path" argument must be of type string'],
    ["anything else: the last line that says something", ["starting…", "python: can't open file 'app.py'", ""], "python: can't open file 'app.py'"],
  ] as [string, string[], string][])("%s", async (_what, stderr, expected) => {
    const { telltaleLine } = await import("../../src/supervisor/crash-policy.ts");
    expect(telltaleLine(stderr)).toBe(expected);
  });
});

describe("how a worker ended: the signal behind pm2's code 0", () => {
  const log = [
    "2026-12-06T06:43:40: PM2 log: App [tsgi:s:web:0:0] starting in -fork mode-",
    "2026-12-06T06:43:43: PM2 log: App [tsgi:s:web:0:0] exited with code [0] via signal [SIGKILL]",
    "2026-12-06T06:43:44: PM2 log: App [tsgi:s:web:1:1] exited with code [1] via signal [SIGINT]",
    "2026-12-06T06:43:45: PM2 log: App [tsgi:s:web:2:2] exited with code [0] via signal [SIGINT]",
    "",
  ].join("\n");

  it.each([
    ["a SIGKILL pm2 reported as code 0", "tsgi:s:web:0", 0, "SIGKILL"],
    ["an exit with a code: pm2 writes SIGINT when there was no signal", "tsgi:s:web:1", 1, undefined],
    ["code 0 and SIGINT: a plain exit (pm2's default word)", "tsgi:s:web:2", 0, undefined],
    ["a line for another exit code is not this exit", "tsgi:s:web:0", 3, undefined],
    ["no line for the process", "tsgi:s:other:0", 0, undefined],
  ] as [string, string, number, string | undefined][])("%s", async (_what, name, code, signal) => {
    const { signalFromDaemonLog } = await import("../../src/supervisor/pm2-client.ts");
    expect(signalFromDaemonLog(log, name, code)).toBe(signal);
  });

  it("reads a shell's 128 + n as signal n, and nothing else", async () => {
    const { signalOfShellCode, describeEnd } = await import("../../src/supervisor/crash-policy.ts");
    expect(signalOfShellCode(137)).toBe("SIGKILL");
    expect(signalOfShellCode(143)).toBe("SIGTERM");
    expect(signalOfShellCode(1)).toBeUndefined();
    expect(signalOfShellCode(128)).toBeUndefined();
    expect(describeEnd(0, "SIGKILL")).toBe("killed by SIGKILL");
    expect(describeEnd(4, undefined)).toBe("exited with code 4 (APP_LOAD_ERROR)");
  });
});

describe("heartbeats: a worker that stops beating leaves balancing before it is killed", () => {
  it("is unresponsive after a few beats (at least 2 s), never later than it counts as blocked", async () => {
    const { unresponsiveAfterMs, staleAfterMs } = await import("../../src/contract/heartbeat.ts");
    expect(unresponsiveAfterMs(30_000)).toBe(3000);
    expect(unresponsiveAfterMs(5_000)).toBe(2000);
    expect(unresponsiveAfterMs(1_000)).toBe(staleAfterMs(1_000));
    for (const timeout of [100, 1000, 30_000, 600_000]) expect(unresponsiveAfterMs(timeout)).toBeLessThanOrEqual(Math.min(5000, staleAfterMs(timeout)));
  });

  it("reads each worker's own file: silent past the threshold, fresh, or (another pid, no file) nothing", async () => {
    const { responsiveness } = await import("../../src/supervisor/heartbeats.ts");
    const worker = (pid: number) => ({ app: "web", slot: pid, pid, file: `/beats/${pid}`, timeoutMs: 30_000 });
    const [silent, fresh, previous, missing] = [worker(1), worker(2), worker(3), worker(4)];
    const now = 100_000;
    const files: Record<string, { mtimeMs: number; pid: number }> = {
      "/beats/1": { mtimeMs: now - 3500, pid: 1 },
      "/beats/2": { mtimeMs: now - 500, pid: 2 },
      "/beats/3": { mtimeMs: now - 9000, pid: 99 },
    };
    const found = responsiveness([silent, fresh, previous, missing], (file) => files[file], now);
    expect([...found].map(([w, unresponsive]) => [w.pid, unresponsive])).toEqual([
      [1, true],
      [2, false],
    ]);
  });
});
