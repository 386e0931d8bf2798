/**
 * Zero-downtime reloads as a user drives them (issue #5), on a real stack
 * (`tsgi-stack up`, pm2, gateway workers, the front proxy) under a steady
 * load on loopback that checks every answer whole:
 *   - 10 rolling reloads (`tsgi-stack reload`, and SIGHUP) of a 2-instance
 *     app, each onto a new version of its code: 0 failed;
 *   - `instances` 2 -> 4 -> 1 -> 3 by editing the config file: 0 failed;
 *   - a config file that does not validate, saved over a running stack:
 *     ignored, reported in `status`, 0 failed; the next valid save applies;
 *   - new code that does not load: the reload fails, the old workers keep
 *     serving, the failing line is shown; fixing it reloads (`up --watch`);
 *   - a 5 s streaming response and an open WebSocket survive a reload.
 * "Failed" is the reliability matrix's: a status other than 200, a socket error, or a
 * body that is not exactly what the app sends.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { WebSocket } from "ws";
import { readStackLog } from "../helpers/log-lines.ts";
import { ROOT, isAlive, runCli, sleep } from "../helpers/serve.ts";
import { cleanUpStacks, pm2DaemonPid, stackDir, statusJson, up, type Up } from "../helpers/stack.ts";
import { record } from "../reliability/record.ts";

const started = new Set<ChildProcess>();
const seenPids = new Set<number>();
const dirs: string[] = [];

afterAll(() => cleanUpStacks(started, seenPids, dirs), 60_000);

/** The app, at a version: a 2 KB body naming version and pid, /stream (10 chunks over 5 s), and a WebSocket echo. */
function appSource(version: string, broken = false): string {
  return `import type { TsgiApp } from ${JSON.stringify(path.join(ROOT, "src/tsgi/types.ts"))};
export { upgrade } from ${JSON.stringify(path.join(ROOT, "test/fixtures/apps/websocket-echo.ts"))};
const VERSION = ${JSON.stringify(version)};
export const app: TsgiApp = (environ, start) => {
  if (environ.PATH_INFO === "/stream") {
    start("200 OK", [["Content-Type", "text/plain"]]);
    return (async function* () {
      for (let i = 0; i < 10; i++) {
        yield \`\${i}\\n\`;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();
  }
  const body = \`\${VERSION} \${process.pid}\\n\${"x".repeat(2000)}\\n\`;
  start("200 OK", [["Content-Type", "text/plain"], ["Content-Length", String(Buffer.byteLength(body))]]);
  return [body${broken ? " ;" : ""}];
};
`;
}

const BODY = /^(v\d+) (\d+)\nx{2000}\n$/;

function config(instances: number, extra = ""): string {
  return `proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
  access_log: off
apps:
  web:
    module: app.ts
    instances: ${instances}
    routes: [{ path: / }]
    watch: ["*.ts"]
    graceful_timeout: 8s
${extra}`;
}

async function startStack(instances: number, args: string[] = []): Promise<{ dir: string; file: string; stack: Up }> {
  const { dir, file } = stackDir(config(instances), "tsgi-reload-");
  dirs.push(dir);
  writeFileSync(path.join(dir, "app.ts"), appSource("v1"));
  const stack = await up(file, { onSpawn: (child) => started.add(child), args });
  return { dir, file, stack };
}

/** GET over a kept-alive connection: the status and the whole body, or the error. */
function get(agent: http.Agent, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => (res.complete ? resolve({ status: res.statusCode ?? 0, body }) : reject(new Error("truncated"))));
      res.on("aborted", () => reject(new Error("aborted")));
    });
    request.on("error", reject);
  });
}

interface Load {
  stop(): Promise<{ total: number; failed: string[]; p99Ms: number; versions: Set<string> }>;
}

/** A steady load: `rate` requests a second over up to 20 kept-alive connections, every answer checked. */
function load(url: string, rate = 250): Load {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
  const failed: string[] = [];
  const latencies: number[] = [];
  const versions = new Set<string>();
  const inFlight = new Set<Promise<void>>();
  let total = 0;
  const tick = 20;
  const timer = setInterval(() => {
    for (let i = 0; i < (rate * tick) / 1000; i++) {
      total++;
      const begun = performance.now();
      const done = get(agent, `${url}/`)
        .then(({ status, body }) => {
          latencies.push(performance.now() - begun);
          const match = BODY.exec(body);
          if (status !== 200 || !match) failed.push(`${status} ${body.slice(0, 60)}`);
          else versions.add(match[1]!);
        })
        .catch((error: Error) => void failed.push(error.message))
        .finally(() => inFlight.delete(done));
      inFlight.add(done);
    }
  }, tick);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all(inFlight);
      agent.destroy();
      latencies.sort((a, b) => a - b);
      return { total, failed, p99Ms: latencies[Math.floor(latencies.length * 0.99)] ?? 0, versions };
    },
  };
}

async function stopStack(stack: Up, dir: string): Promise<void> {
  const status = await statusJson(path.join(dir, "tsgi.yaml"));
  for (const row of status.workers) if (row.pid) seenPids.add(row.pid);
  const daemon = pm2DaemonPid(dir);
  if (daemon) seenPids.add(daemon);
  process.kill(stack.child.pid!, "SIGINT");
  expect(await stack.exited).toBe(0);
  // A worker that was draining a WebSocket or a stream may take a moment more after its close.
  const deadline = Date.now() + 10_000;
  while ([...seenPids].some(isAlive) && Date.now() < deadline) await sleep(100);
  expect([...seenPids].filter(isAlive)).toEqual([]);
}

async function untilReady(file: string, ready: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const status = await statusJson(file);
    const rows = status.workers.filter((row: any) => row.app === "web");
    if (rows.length === ready && rows.every((row: any) => row.state === "ready")) return;
    if (Date.now() > deadline) throw new Error(`web never settled at ${ready} ready workers: ${JSON.stringify(rows)}`);
    await sleep(250);
  }
}

describe("zero-downtime reloads under load", () => {
  it("10 rolling reloads of a 2-instance app at 250 req/s, each onto new code: 0 failed", async () => {
    const { dir, file, stack } = await startStack(2);
    const traffic = load(stack.url);
    for (let version = 2; version <= 11; version++) {
      writeFileSync(path.join(dir, "app.ts"), appSource(`v${version}`));
      if (version % 2 === 0) {
        const result = await runCli(["reload", "web", "-c", file], 60_000);
        expect(result.code, `${result.stdout}${result.stderr}\n--- up:\n${stack.output().slice(-6000)}`).toBe(0);
        expect(result.stdout).toMatch(/web: reloaded 2 workers in \d+ ms/);
      } else {
        process.kill(stack.child.pid!, "SIGHUP");
        const before = stack.output().split(/web: reloaded 2 workers/).length;
        const deadline = Date.now() + 60_000;
        while (stack.output().split(/web: reloaded 2 workers/).length === before && Date.now() < deadline) await sleep(100);
      }
    }
    await sleep(500);
    const result = await traffic.stop();
    console.log(`10 rolling reloads: ${result.failed.length} failed / ${result.total}, p99 ${result.p99Ms.toFixed(1)} ms`);
    expect(result.failed).toEqual([]);
    expect(result.total).toBeGreaterThan(2500);
    expect(result.versions.has("v11")).toBe(true);
    // Only the last version is served now.
    const agent = new http.Agent({ keepAlive: false });
    for (let i = 0; i < 4; i++) expect(BODY.exec((await get(agent, `${stack.url}/`)).body)?.[1]).toBe("v11");
    await stopStack(stack, dir);
  }, 180_000);

  it("instances 2 -> 4 -> 1 -> 3 by editing the config file under load: 0 failed", async () => {
    const { dir, file, stack } = await startStack(2);
    const traffic = load(stack.url);
    for (const instances of [4, 1, 3]) {
      writeFileSync(file, config(instances));
      await untilReady(file, instances);
      expect(stack.output()).toContain(`scaled web`);
    }
    const result = await traffic.stop();
    console.log(`scaling 2->4->1->3: ${result.failed.length} failed / ${result.total}, p99 ${result.p99Ms.toFixed(1)} ms`);
    expect(result.failed).toEqual([]);
    await stopStack(stack, dir);
  }, 120_000);

  it("an invalid config saved over a running stack is ignored and reported; the next valid save applies", async () => {
    const { dir, file, stack } = await startStack(2);
    const traffic = load(stack.url, 100);
    writeFileSync(file, `${config(2)}    instancs: 3\n`);
    const deadline = Date.now() + 10_000;
    let status = await statusJson(file);
    while (status.configErrors.length === 0 && Date.now() < deadline) {
      await sleep(200);
      status = await statusJson(file);
    }
    expect(status.configErrors).toEqual([expect.stringMatching(/tsgi\.yaml:12:5 apps\.web\.instancs: unknown key \(did you mean `instances`\?\)/)]);
    expect(stack.output()).toContain("not applied, the running config stays");
    // A valid save adding a route (a static folder) is live within 2 s.
    writeFileSync(path.join(dir, "note.txt"), "hello from a new route\n");
    writeFileSync(file, `${config(2)}  docs:\n    static: .\n    routes: [{ path: /docs }]\n`);
    const applied = Date.now();
    let answer = { status: 0, body: "" };
    while (Date.now() - applied < 5_000) {
      answer = await get(new http.Agent(), `${stack.url}/docs/note.txt`).catch(() => answer);
      if (answer.body === "hello from a new route\n") break;
      await sleep(100);
    }
    const applyMs = Date.now() - applied;
    expect(answer).toEqual({ status: 200, body: "hello from a new route\n" });
    expect(applyMs).toBeLessThan(2_000 + 500);
    expect((await statusJson(file)).configErrors).toEqual([]);
    const result = await traffic.stop();
    record({
      id: "R9",
      done: "invalid YAML saved over a running stack at 100 req/s, then a valid save adding a route",
      figure: `${result.failed.length} / ${result.total} failed, p99 ${result.p99Ms.toFixed(0)} ms; new route live after ${applyMs} ms`,
      pass: result.failed.length === 0 && applyMs < 2_500,
    });
    expect(result.failed).toEqual([]);
    await stopStack(stack, dir);
  }, 120_000);

  it("up --watch: a broken save keeps the old workers serving and shows the failing line; the fix reloads", async () => {
    const { dir, file, stack } = await startStack(1, ["--watch"]);
    const traffic = load(stack.url, 100);
    writeFileSync(path.join(dir, "app.ts"), appSource("v2", true));
    const deadline = Date.now() + 30_000;
    while (!stack.output().includes("reload failed") && Date.now() < deadline) await sleep(100);
    await sleep(200);
    const output = stack.output();
    expect(output).toContain("web: app.ts changed: reloading");
    expect(output).toContain("web: reload failed, the running workers keep serving");
    // The code frame is one multi-line message: one JSON record on a pipe, its lines as printed on a terminal.
    const messages = readStackLog(output)
      .map((line) => line.msg)
      .join("\n");
    expect(messages, output).toMatch(/app\.ts:16:\d+\n.*\n.*\n> 16 \|   return \[body ;\];\n\s+\|\s+\^/);
    const status = await statusJson(file);
    expect(status.reloadErrors.web.message).toBeTruthy();
    expect(status.reloadErrors.web.frame).toContain("> 16 |   return [body ;");
    writeFileSync(path.join(dir, "app.ts"), appSource("v3"));
    while (!stack.output().includes("web: fixed, serving the new code") && Date.now() < deadline + 30_000) await sleep(100);
    await sleep(300);
    const result = await traffic.stop();
    expect(result.failed).toEqual([]);
    expect(result.versions).toEqual(new Set(["v1", "v3"]));
    expect((await statusJson(file)).reloadErrors).toEqual({});
    await stopStack(stack, dir);
  }, 120_000);

  it("a config roll onto a module that does not load fails, and a later reload does not call the old code new", async () => {
    const { dir, file, stack } = await startStack(1);
    writeFileSync(path.join(dir, "broken.ts"), appSource("v2", true));
    writeFileSync(file, config(1).replace("module: app.ts", "module: broken.ts"));
    const deadline = Date.now() + 30_000;
    let status = await statusJson(file);
    while (!status.reloadErrors?.web && Date.now() < deadline) {
      await sleep(200);
      status = await statusJson(file);
    }
    expect(status.reloadErrors.web).toBeDefined();
    // The file still names the broken module: a reload tries it again, fails again, and says so.
    const again = await runCli(["reload", "-c", file], 60_000);
    expect(again.code).not.toBe(0);
    expect(again.stdout + again.stderr).not.toContain("fixed, serving the new code");
    expect(stack.output()).not.toContain("web: fixed, serving the new code");
    expect((await statusJson(file)).reloadErrors.web).toBeDefined();
    expect((await get(new http.Agent(), `${stack.url}/`)).body).toContain("v1");
    await stopStack(stack, dir);
  }, 120_000);

  it("a 5 s streaming response and an open WebSocket survive a reload of their app", async () => {
    const { dir, file, stack } = await startStack(1);
    const streamed = new Promise<string>((resolve, reject) => {
      http.get(`${stack.url}/stream`, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => (res.complete ? resolve(body) : reject(new Error("truncated"))));
        res.on("aborted", () => reject(new Error("aborted")));
      }).on("error", reject);
    });
    const socket = new WebSocket(`${stack.url.replace("http", "ws")}/ws`);
    await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
    const echo = (text: string) =>
      new Promise<string>((resolve) => {
        socket.once("message", (data) => resolve(String(data)));
        socket.send(text);
      });
    expect(await echo("before")).toBe("before");
    writeFileSync(path.join(dir, "app.ts"), appSource("v2"));
    const reload = await runCli(["reload", "-c", file], 60_000);
    expect(reload.code, reload.stderr).toBe(0);
    // The old worker is draining: its WebSocket and its stream go on.
    expect(await echo("after the reload")).toBe("after the reload");
    expect(await streamed).toBe("0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n");
    socket.close();
    await stopStack(stack, dir);
  }, 120_000);
});
