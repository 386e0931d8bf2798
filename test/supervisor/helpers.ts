/**
 * @module test/supervisor/helpers
 *
 * What the supervisor tests share: a fresh state dir per test file (so pm2's
 * home is a temp dir, never ~/.pm2), pool specs with test-sized timeouts,
 * HTTP over a unix socket or loopback port, and OS-level checks that a stack
 * left nothing behind — every worker we start carries TSGI_STACK=<id> in its
 * environment, so /proc finds them whatever pm2 believes.
 */
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { PoolSpec, WorkerAddress } from "../../src/supervisor/types.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export function tempStateDir(label: string): string {
  // Short: unix socket paths under it must stay under ~100 bytes.
  return mkdtempSync(path.join(os.tmpdir(), `tsgi-${label}-`));
}

export function modulePool(name: string, module: string, instances: number, overrides: Partial<PoolSpec> = {}): PoolSpec {
  return {
    name,
    kind: "module",
    module,
    instances,
    env: {},
    cwd: ROOT,
    maxRequests: 0,
    maxRequestsJitter: 0,
    timeoutMs: 30_000,
    gracefulTimeoutMs: 5000,
    readyTimeoutMs: 30_000,
    restart: { maxRestarts: 3, backoffMs: 100, minUptimeMs: 1000 },
    ...overrides,
  };
}

export function commandPool(name: string, command: string, instances: number, overrides: Partial<PoolSpec> = {}): PoolSpec {
  return { ...modulePool(name, "", instances), kind: "command", module: undefined, command, ...overrides };
}

export interface Reply {
  status: number;
  body: string;
}

/** One GET to a worker, over its unix socket or loopback port; a fresh connection each time. */
export function get(address: WorkerAddress, urlPath = "/"): Promise<Reply> {
  const target = address.kind === "unix" ? { socketPath: address.path } : { host: address.host, port: address.port };
  return new Promise((resolve, reject) => {
    const req = http.get({ ...target, path: urlPath, agent: false, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

import { procStat } from "../../src/contract/pids.ts";
import { isAlive, processesMarked } from "../../src/supervisor/probes.ts";

export { isAlive };

/** Pids of live processes whose environment says they belong to this stack (TSGI_STACK=<id>), or to one app of it. */
export function processesOfStack(stackId: string, app?: string): number[] {
  return processesMarked([`TSGI_STACK=${stackId}`, ...(app === undefined ? [] : [`TSGI_APP=${app}`])]);
}

/** ~/.pm2's existence and mtime: the tests prove the supervisor never touches it. */
export function globalPm2Fingerprint(): string {
  const dir = path.join(os.homedir(), ".pm2");
  return existsSync(dir) ? `exists, mtime ${statSync(dir).mtimeMs}` : "absent";
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` returns a value (not undefined/false) or the time is up. */
export async function eventually<T>(check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** Resident set size of a pid, in bytes (Linux). */
export function rss(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) * 1024 : 0;
}

/**
 * Processes a test saw, each known by its pid and its start time (field 22
 * of /proc/PID/stat): a pid the kernel gave to another process since (pids
 * wrap at 32768 on a small machine) is not one of ours, so it is not
 * counted as left behind.
 */
export class SeenProcesses {
  private readonly started = new Map<number, string>();

  add(pid: number): void {
    const start = startTime(pid);
    if (pid > 0 && start !== undefined && !this.started.has(pid)) this.started.set(pid, start);
  }

  /** The seen processes that still run, each described (pid, state, command line) for the failure message. */
  stillRunning(): string[] {
    return [...this.started]
      .filter(([pid, start]) => isAlive(pid) && startTime(pid) === start)
      .map(([pid]) => describeProcess(pid));
  }
}

const startTime = (pid: number) => procStat(pid)?.[19];

/** `pid (state) command line`, or just the pid once it is gone. */
export function describeProcess(pid: number): string {
  try {
    const state = procStat(pid)?.[0] ?? "?";
    const command = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
    return `${pid} (${state}) ${command}`;
  } catch {
    return String(pid);
  }
}
