/**
 * @module test/admin/fixture
 *
 * A two-app stack for the admin listener's tests: `web` (2 workers, with a
 * health check) and `api` (1 worker, none), both the same small TSGI app:
 * GET /boom answers 500; GET /crash ends the worker without an answer; GET /sick makes the worker that takes it fail its
 * health checks from then on; /slow?ms=N answers after N ms. Each answer
 * names the worker's pid.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import type { ChildProcess } from "node:child_process";
import { cleanUpStacks, stackDir, statusJson, up, type Up } from "../helpers/stack.ts";
import { httpGet, sleep } from "../helpers/serve.ts";

export const APP = `
let healthy = true;
export default async function app(environ, startResponse) {
  const path = environ.PATH_INFO;
  const text = (status, body) => { startResponse(status, [["content-type", "text/plain"]]); return [body]; };
  if (path.endsWith("/health")) return healthy ? text("200 OK", "ok") : text("500 Internal Server Error", "sick");
  if (path.endsWith("/sick")) { healthy = false; return text("200 OK", "sick from now on: " + process.pid); }
  if (path.endsWith("/boom")) return text("500 Internal Server Error", "boom");
  if (path.endsWith("/crash")) process.exit(1);
  if (path.endsWith("/slow")) {
    const ms = Number(new URLSearchParams(environ.QUERY_STRING).get("ms") ?? 100);
    await new Promise((resolve) => setTimeout(resolve, ms));
  }
  return text("200 OK", "hello from " + process.pid);
}
`;

export function twoAppConfig(admin = `"127.0.0.1:0"`, extra = ""): string {
  return `proxy:
  listen: ["127.0.0.1:0"]
  admin: ${admin}
  access_log: off
${extra}apps:
  web:
    module: app.mjs
    instances: 2
    routes: [{ path: / }]
    health: { path: /health, interval: 500ms, timeout: 1s }
  api:
    module: app.mjs
    instances: 1
    routes: [{ path: /api }]
`;
}

/** Every process a test file starts, for its afterAll. */
export class Started {
  readonly children = new Set<ChildProcess>();
  readonly pids = new Set<number>();
  readonly dirs: string[] = [];

  async up(config: string, env?: Record<string, string>): Promise<{ file: string; dir: string; stack: Up }> {
    const { dir, file } = stackDir(config, "tsgi-admin-");
    this.dirs.push(dir);
    writeFileSync(path.join(dir, "app.mjs"), APP);
    const stack = await up(file, { onSpawn: (child) => this.children.add(child), ...(env ? { env } : {}) });
    return { file, dir, stack };
  }

  cleanUp(): Promise<void> {
    return cleanUpStacks(this.children, this.pids, this.dirs);
  }
}

/** The two-app stack up: its config file, the front proxy's URL and the admin listener's. */
export async function twoAppStack(started: Started): Promise<{ file: string; front: string; admin: string }> {
  const { file, stack } = await started.up(twoAppConfig());
  return { file, front: stack.url, admin: await adminUrl(file) };
}

/** The admin listener's base URL ("http://127.0.0.1:PORT"), from `status --json`. */
export async function adminUrl(file: string): Promise<string> {
  const status = await statusJson(file);
  return `http://${status.admin}`;
}

/** Polls `read` until `done` says yes (or the time is up: then the last value is returned, for the assertion to show). */
export async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(200);
  }
}

export async function getJson(url: string, headers: Record<string, string> = {}): Promise<any> {
  const answer = await httpGet(url, headers);
  return JSON.parse(answer.body);
}
