/**
 * W3: a real nginx (`uwsgi_pass`, the packaged uwsgi_params, `uwsgi_next_upstream
 * error timeout` as docs/uwsgi.md advises) in front of `tsgi-stack serve
 * --uwsgi -w 4`, the workers' own pre-fork master, under autocannon load
 * while the workers are chain-reloaded (SIGHUP) again and again: nginx must
 * answer every request 200 with the whole body — 0 nginx 5xx, counted both by
 * autocannon and in nginx's access log.
 *
 * nginx runs in the foreground from a temp dir and is stopped by its pid; a
 * missing nginx fails the test (`npm test` installs it first).
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { serve, sleep, stopAll } from "../helpers/serve.ts";
import { bound, reproduce } from "./bounds.ts";
import { cannon } from "./load.ts";
import { TSGI_TYPES } from "./real-stack.ts";
import { ms, record } from "./record.ts";
import { nginxConfig, startNginx } from "../helpers/nginx.ts";

const FILE = "test/reliability/nginx-reload.test.ts";
const UWSGI_PARAMS = "/etc/nginx/uwsgi_params";

const dirs: string[] = [];
const nginxes: ChildProcess[] = [];
afterAll(async () => {
  for (const child of nginxes) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGKILL");
  await stopAll();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}, 60_000);

const BODY = `${"uwsgi-reload".repeat(170)}\n`;
const APP = `${TSGI_TYPES}
const BODY = ${JSON.stringify(BODY)};
export const app: TsgiApp = (environ, start) => {
  start("200 OK", [["Content-Type", "text/plain"], ["Content-Length", String(BODY.length)]]);
  return [BODY];
};
`;

function nginxConf(dir: string, port: number, uwsgiPort: number): string {
  return nginxConfig(
    dir,
    `    log_format status '$status $upstream_status';
    access_log ${dir}/access.log status;
    upstream tsgi_app { server 127.0.0.1:${uwsgiPort}; }
    server {
        listen 127.0.0.1:${port};
        location / {
            include ${UWSGI_PARAMS};
            uwsgi_pass tsgi_app;
            uwsgi_next_upstream error timeout;
            uwsgi_next_upstream_tries 2;
        }
    }`,
    { errorLevel: "warn" },
  );
}

describe("nginx over uwsgi during rolling reloads", () => {
  it("W3: nginx uwsgi_pass -> 4 workers chain-reloaded under load: 0 nginx 5xx", async () => {
    const reloads = bound(5, 1);
    const rate = 100;
    // The load lasts until the last reload is done (plus a second), never longer than this.
    const capSeconds = bound(60, 30);
    const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-w3-"));
    dirs.push(dir);
    writeFileSync(path.join(dir, "app.ts"), APP);
    const workers = await serve([path.join(dir, "app.ts"), "--uwsgi", "127.0.0.1:0", "-w", "4", "--graceful-timeout", "10s"], {
      readyPattern: /worker\(s\) ready on (.+)$/m,
      timeoutMs: 30_000,
    });
    const uwsgiPort = Number(/uwsgi:\/\/127\.0\.0\.1:(\d+)/.exec(workers.listeners.join(" "))?.[1]);
    expect(uwsgiPort, workers.stdout()).toBeGreaterThan(0);
    const nginx = await startNginx(dir, (port) => nginxConf(dir, port, uwsgiPort), { attempts: 3, onSpawn: (child) => nginxes.push(child) });

    // A chain reload is done when its 4 old workers have stopped: count the workers' "stopped" lines.
    const stoppedLines = () => workers.stdout().match(/tsgi worker \d+: stopped/g)?.length ?? 0;
    const took: number[] = [];
    const begun = Date.now();
    const reloading = (async () => {
      for (let n = 1; n <= reloads; n++) {
        // The matrix's pace: a reload every 5 s at most, each after the one before has finished.
        await sleep(Math.max(0, begun + n * 5_000 - 3_000 - Date.now()));
        const asked = Date.now();
        process.kill(workers.pid, "SIGHUP");
        const deadline = Date.now() + 60_000;
        while (stoppedLines() < n * 4) {
          if (Date.now() > deadline) throw new Error(`W3: chain reload ${n} did not finish in 60 s:\n${workers.stdout().slice(-3000)}`);
          await sleep(50);
        }
        took.push(Date.now() - asked);
      }
      await sleep(1_000);
    })();
    const result = await cannon({ url: `http://127.0.0.1:${nginx.port}/`, rate, seconds: capSeconds, expectBody: BODY, until: reloading.catch(() => {}) });
    const loadSeconds = (Date.now() - begun) / 1000;
    await reloading;
    process.kill(nginx.child.pid!, "SIGTERM");
    await nginx.exited;
    const logged = readFileSync(path.join(dir, "access.log"), "utf8").trim().split("\n").filter(Boolean);
    const logged5xx = logged.filter((line) => line.startsWith("5"));
    // Requests nginx had to send to the upstream twice (an "error" on the first try): allowed, and shown.
    const retried = logged.filter((line) => line.includes(",")).length;
    const errorLog = readFileSync(path.join(dir, "error.log"), "utf8");
    const figure = `${logged5xx.length} / ${logged.length} nginx 5xx; load ${result.figure}; ${retried} sent upstream twice; ${took.length} reloads in ${loadSeconds.toFixed(0)} s, each ${ms(Math.min(...took))}-${ms(Math.max(...took))}`;
    const pass = logged5xx.length === 0 && result.failed === 0 && took.length === reloads && loadSeconds < capSeconds;
    record({ id: "W3", done: `nginx uwsgi_pass -> 4 workers, ${reloads} chain reloads at ${rate} req/s`, figure, pass });
    console.log(`W3: ${figure}`);
    expect(logged5xx, `W3: ${figure}\nnginx error.log:\n${errorLog.slice(-2000)}\nrerun: ${reproduce(FILE)}`).toEqual([]);
    expect(result.failures, figure).toEqual([]);
    expect(result.failed).toBe(0);
    expect(took.length).toBe(reloads);
    expect(loadSeconds, `W3: the reloads outlasted the ${capSeconds} s the load may last: ${figure}`).toBeLessThan(capSeconds);
    expect(logged.length).toBeGreaterThan(rate * loadSeconds * 0.8);

    process.kill(workers.pid, "SIGTERM");
    expect((await workers.exited).code, workers.stdout().slice(-2000)).toBe(0);
  }, 120_000);
});
