/**
 * A request stuck in an infinite loop under `tsgi-stack up` (the reliability matrix
 * R7): the worker's event loop is blocked, so nothing inside it can act. The
 * supervisor sees the worker's heartbeat file go stale, SIGKILLs it (Gunicorn's
 * arbiter does the same to a worker that stops notifying), says so in the
 * output and in the worker's log, and pm2 starts a new one. The client of the
 * stuck request gets an answer, not a hang.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { ROOT, httpGet, runCli, sleep } from "../helpers/serve.ts";
import { cleanUpStacks, stackDir, statusJson, up } from "../helpers/stack.ts";

const started = new Set<ChildProcess>();
const seenPids = new Set<number>();
const dirs: string[] = [];

afterAll(() => cleanUpStacks(started, seenPids, dirs), 60_000);

describe("a worker whose event loop is blocked", () => {
  it("is killed by the supervisor at its timeout and replaced; the stuck request is answered", async () => {
    const { dir, file } = stackDir(`
proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
  limits: { upstream_timeout: 20s }
apps:
  hello:
    module: ${ROOT}/test/fixtures/apps/lifecycle.ts
    instances: 1
    timeout: 1s
    retry: { tries: 1 }
    routes: [{ path: /hello }]
`);
    dirs.push(dir);
    const stack = await up(file, { onSpawn: (child) => started.add(child) });
    seenPids.add(stack.child.pid!);
    const before = Number((await httpGet(`${stack.url}/hello/pid`)).body);
    seenPids.add(before);
    // The supervisor watches it: the worker runs no watchdog thread of its own.
    expect(readFileSync(`/proc/${before}/cmdline`, "utf8").split("\0")).toContain("--heartbeat-file");

    const asked = Date.now();
    const stuck = await httpGet(`${stack.url}/hello/spin`);
    const answeredAfter = Date.now() - asked;
    // The worker died under the request: the proxy says so (502), well before its own 20 s upstream timeout.
    expect(stuck.status).toBe(502);
    expect(answeredAfter).toBeLessThan(5_000);

    let after = before;
    const deadline = Date.now() + 15_000;
    while (after === before && Date.now() < deadline) {
      const answer = await httpGet(`${stack.url}/hello/pid`);
      if (answer.status === 200) after = Number(answer.body);
      else await sleep(100);
    }
    seenPids.add(after);
    expect(after).not.toBe(before);
    expect(stack.output()).toMatch(new RegExp(`hello\\.0 \\(pid ${before}\\): event loop blocked for \\d+ ms \\(timeout 1000 ms\\): killed for replacement`));
    const logs = await runCli(["logs", "hello", "-c", file, "-n", "50"]);
    expect(logs.stdout + logs.stderr).toContain(`tsgi worker ${before}: event loop blocked for`);
    const status = await statusJson(file);
    expect(status.workers.map((row: any) => [row.pid, row.state])).toEqual([[after, "ready"]]);

    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
  }, 60_000);

  it("a stopped worker (SIGSTOP: alive, silent) leaves balancing within 5 s with no health check, and comes back on SIGCONT", async () => {
    const { dir, file } = stackDir(`
proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
apps:
  hello:
    module: ${ROOT}/test/fixtures/apps/lifecycle.ts
    instances: 2
    routes: [{ path: /hello }]
`);
    dirs.push(dir);
    const stack = await up(file, { onSpawn: (child) => started.add(child) });
    seenPids.add(stack.child.pid!);
    const workers = (await statusJson(file)).workers.map((row: any) => row.pid as number);
    for (const pid of workers) seenPids.add(pid);
    const [stopped, other] = workers as [number, number];
    process.kill(stopped, "SIGSTOP");
    try {
      const stoppedAt = Date.now();
      let out = false;
      while (!out && Date.now() - stoppedAt < 10_000) {
        const row = (await statusJson(file)).workers.find((each: any) => each.pid === stopped);
        out = row?.state === "unresponsive";
        if (!out) await sleep(200);
      }
      const outAfter = Date.now() - stoppedAt;
      expect(out).toBe(true);
      expect(outAfter).toBeLessThan(5_000);
      // Every request now goes to the other worker, answered at once.
      for (let i = 0; i < 10; i++) {
        const answer = await httpGet(`${stack.url}/hello/pid`);
        expect(answer.status).toBe(200);
        expect(Number(answer.body)).toBe(other);
      }
      expect(stack.output()).toMatch(new RegExp(`pid ${stopped}\\): no heartbeat for \\d+ ms \\(stopped or stuck\\): out of balancing`));
    } finally {
      process.kill(stopped, "SIGCONT");
    }
    const resumedAt = Date.now();
    let back = false;
    while (!back && Date.now() - resumedAt < 10_000) {
      back = (await statusJson(file)).workers.some((row: any) => row.pid === stopped && row.state === "ready");
      if (!back) await sleep(200);
    }
    expect(back).toBe(true);
    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
  }, 60_000);
});
