/**
 * @module test/supervisor/helpers
 *
 * What the supervisor tests share: a fresh state dir per test file (so pm2's
 * home is a temp dir, never ~/.pm2), pool specs with test-sized timeouts,
 * HTTP over a unix socket or loopback port, and OS-level checks that a stack
 * left nothing behind — every worker we start carries TSGI_STACK=<id> in its
 * environment, so /proc finds them whatever pm2 believes.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
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

import { isAlive } from "../../src/supervisor/probes.ts";

export { isAlive };

/** Pids of live processes whose environment says they belong to this stack (TSGI_STACK=<id>). */
export function processesOfStack(stackId: string): number[] {
  const marker = `\0TSGI_STACK=${stackId}\0`;
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = `\0${readFileSync(`/proc/${entry}/environ`, "latin1")}`;
      if (environ.includes(marker) && isAlive(Number(entry))) pids.push(Number(entry));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return pids;
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
