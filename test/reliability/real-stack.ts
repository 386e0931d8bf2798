/**
 * @module test/reliability/real-stack
 *
 * The real stack for a reliability test: `tsgi-stack up` (pm2, gateway
 * workers, the front proxy) on 127.0.0.1 port 0 in a temp dir, with the
 * app's source written next to its tsgi.yaml. A `Stacks` keeps every process
 * a test file starts, so that `stop` (the test's own, which checks that
 * nothing is left) and `cleanUp` (the file's afterAll, for a test that failed
 * half-way) stop them by pid.
 */
import type { ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import { ROOT, isAlive, runCli, sleep } from "../helpers/serve.ts";
import { cleanUpStacks, pm2DaemonPid, stackDir, statusJson, up, type Up } from "../helpers/stack.ts";

export interface RealStack {
  dir: string;
  file: string;
  stack: Up;
  /** "http://127.0.0.1:PORT" of the front proxy. */
  url: string;
  /** Every pid of this stack seen so far (up, workers, pm2): all must be gone after stop. */
  pids: Set<number>;
}

/** The import line of the TSGI types, for app sources written by the tests. */
export const TSGI_TYPES = `import type { TsgiApp } from ${JSON.stringify(path.join(ROOT, "src/tsgi/types.ts"))};`;

/** proxy: on loopback port 0, no access log (the tests count answers, not log lines). */
export function proxyConfig(limits = ""): string {
  return `proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
  access_log: off
${limits ? `  limits: { ${limits} }\n` : ""}`;
}

export class Stacks {
  readonly started = new Set<ChildProcess>();
  readonly seenPids = new Set<number>();
  readonly dirs: string[] = [];

  /** Writes `config` and `files` (name -> source) to a new temp dir and runs `up` there. */
  async start(config: string, files: Record<string, string>, args: string[] = []): Promise<RealStack> {
    const { dir, file } = stackDir(config, "tsgi-reliability-");
    this.dirs.push(dir);
    for (const [name, source] of Object.entries(files)) writeFileSync(path.join(dir, name), source);
    const stack = await up(file, { onSpawn: (child) => this.started.add(child), args });
    this.seenPids.add(stack.child.pid!);
    return { dir, file, stack, url: stack.url, pids: new Set([stack.child.pid!]) };
  }

  /** The pids of `app`'s workers, as `status` shows them (remembered for the clean-up). */
  async workerPids(s: RealStack, app: string): Promise<number[]> {
    const status = await statusJson(s.file);
    const pids = status.workers.filter((row: any) => row.app === app && row.pid).map((row: any) => Number(row.pid));
    for (const pid of pids) this.seen(s, pid);
    return pids;
  }

  /**
   * The pids of the gateway workers serving `module` (a file in the stack's dir), read from /proc: a
   * fault injector that must keep its pace cannot wait for a `status` CLI process on a busy machine.
   */
  workerPidsFromProc(s: RealStack, module: string): number[] {
    const wanted = path.join(s.dir, module);
    const pids: number[] = [];
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
        if (argv.includes("serve") && argv.includes(wanted)) pids.push(Number(name));
      } catch {
        // Gone between the listing and the read.
      }
    }
    for (const pid of pids) this.seen(s, pid);
    return pids.sort((a, b) => a - b);
  }

  /** Waits until `app` has `count` ready workers; throws naming what it saw instead. */
  async untilReady(s: RealStack, app: string, count: number, timeoutMs = 30_000): Promise<number[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await statusJson(s.file);
      const rows = status.workers.filter((row: any) => row.app === app);
      for (const row of rows) if (row.pid) this.seen(s, Number(row.pid));
      if (rows.length === count && rows.every((row: any) => row.state === "ready")) return rows.map((row: any) => Number(row.pid));
      if (Date.now() > deadline) throw new Error(`${app} never had ${count} ready workers: ${JSON.stringify(rows)}`);
      await sleep(200);
    }
  }

  /** Remembers `pid` as the stack's, for stop() and for the file's clean-up. */
  seen(s: RealStack, pid: number): void {
    s.pids.add(pid);
    this.seenPids.add(pid);
  }

  /** `tsgi-stack reload APP`: its exit code and output. */
  reload(file: string, app: string, timeoutMs = 60_000): ReturnType<typeof runCli> {
    return runCli(["reload", app, "-c", file], timeoutMs);
  }

  /** Ctrl-C to `up`, which must exit 0 and leave no worker, proxy or pm2 daemon alive. */
  async stop(s: RealStack): Promise<void> {
    const { dir, file, stack } = s;
    if (stack.child.exitCode === null) {
      const status = await statusJson(file);
      for (const row of status.workers) if (row.pid) this.seen(s, Number(row.pid));
    }
    const daemon = pm2DaemonPid(dir);
    if (daemon) this.seen(s, daemon);
    if (stack.child.exitCode === null) process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited, stack.output().slice(-4000)).toBe(0);
    const deadline = Date.now() + 15_000;
    while ([...s.pids].some(isAlive) && Date.now() < deadline) await sleep(100);
    expect([...s.pids].filter(isAlive), "processes left running after the stack stopped").toEqual([]);
  }

  /** For afterAll: whatever a failed test left running is stopped by pid, and the temp dirs go. */
  cleanUp(): Promise<void> {
    return cleanUpStacks(this.started, this.seenPids, this.dirs);
  }
}
