/**
 * `down` (and Ctrl-C) are bounded by graceful_timeout whatever the clients
 * do: a fault campaign saw workers signalled only after every client
 * request through the proxy had finished — 46 s with a 5 s graceful_timeout
 * and one slow request, and never with an endless stream and `timeout: 0`.
 * The promise: the stack is gone within graceful_timeout + 5 s.
 */
import { afterAll, describe, expect, it } from "vitest";
import http from "node:http";
import type { ChildProcess } from "node:child_process";
import { ROOT, isAlive, runCli } from "../helpers/serve.ts";
import { cleanUpStacks, pm2DaemonPid, stackDir, statusJson, up } from "../helpers/stack.ts";
import { record } from "../reliability/record.ts";

const started = new Set<ChildProcess>();
const seenPids = new Set<number>();
const dirs: string[] = [];

afterAll(() => cleanUpStacks(started, seenPids, dirs), 60_000);

const GRACE_S = 2;
const BOUND_MS = (GRACE_S + 5) * 1000;

/** Opens a request through the proxy and resolves once its response head (or an error) arrives; `ended` settles when the client is let go. */
function openRequest(url: string): Promise<{ ended: Promise<string> }> {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      const ended = new Promise<string>((done) => {
        res.on("end", () => done(`ended ${res.statusCode}`));
        res.on("error", () => done("reset"));
        res.on("close", () => done("closed"));
      });
      resolve({ ended });
    });
    req.on("error", () => resolve({ ended: Promise.resolve("error") }));
  });
}

describe("down is bounded by graceful_timeout, whatever the clients do", () => {
  for (const [what, route, timeout] of [
    ["a 60 s request in flight", "/slow?ms=60000", "30s"],
    ["an endless stream with timeout: 0", "/stream-forever", "0"],
  ] as const) {
    it(`${what}: the stack is gone within graceful_timeout + 5 s`, async () => {
      const { dir, file } = stackDir(`
proxy:
  listen: ["127.0.0.1:0"]
apps:
  web:
    module: ${ROOT}/test/fixtures/apps/lifecycle.ts
    instances: 2
    graceful_timeout: ${GRACE_S}s
    timeout: ${timeout}
    routes: [{ path: / }]
`);
      dirs.push(dir);
      const stack = await up(file, { onSpawn: (child) => started.add(child) });
      seenPids.add(stack.child.pid!);
      const workers = (await statusJson(file)).workers.map((row: any) => row.pid as number);
      for (const pid of workers) seenPids.add(pid);
      const daemon = pm2DaemonPid(dir)!;
      seenPids.add(daemon);
      // A slow request has no response head yet: it is in flight once the worker has it.
      const client = route.startsWith("/slow") ? { ended: openRequest(`${stack.url}${route}`).then((open) => open.ended) } : await openRequest(`${stack.url}${route}`);
      await new Promise((resolve) => setTimeout(resolve, 500));

      const asked = Date.now();
      const down = await runCli(["down", "-c", file], 60_000);
      const tookMs = Date.now() - asked;
      console.log(`down with ${what}: ${tookMs} ms (graceful_timeout ${GRACE_S} s)`);
      record({ id: "F3", done: `down with ${what}, graceful_timeout ${GRACE_S} s`, figure: `stack gone in ${tookMs} ms (bound ${BOUND_MS} ms)`, pass: tookMs < BOUND_MS });
      expect(down.code, down.stderr).toBe(0);
      expect(tookMs).toBeLessThan(BOUND_MS);
      expect(await stack.exited).toBe(0);
      for (const pid of [...workers, daemon]) expect(isAlive(pid)).toBe(false);
      // The client was let go, not left hanging.
      expect(await client.ended).toMatch(/^(ended|closed|reset|error)/);
    }, 60_000);
  }
});
