/**
 * nginx in front, as an operator sets it up: `tsgi-stack up --no-proxy`
 * runs the workers, `tsgi-stack export nginx` writes the config, `nginx -t`
 * accepts it, and Debian's nginx started on it serves every route of the
 * stack — over uwsgi and over HTTP — as the stack's own proxy would: the
 * app and mount each route gives (SCRIPT_NAME / PATH_INFO, a host route
 * ranking above a path route of another app, prefixes matched at a segment
 * boundary), a client's own mount header ignored, TRACE refused, WebSockets
 * upgraded, static files served with the folder redirect and dotfiles
 * hidden. Then it keeps serving through two rolling reloads back to back
 * with not one failed request, the new workers answering after.
 */
import { type ChildProcess, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { BIN, ROOT, runCli, sleep } from "../helpers/serve.ts";
import { NGINX, nginxConfig, startNginx } from "../helpers/nginx.ts";
import { cleanUpStacks, stackDir, statusJson, up } from "../helpers/stack.ts";

const started = new Set<ChildProcess>();
const seenPids = new Set<number>();
const dirs: string[] = [];
afterAll(() => cleanUpStacks(started, seenPids, dirs), 60_000);

const APP = `export default (environ, start) => {
  start("200 OK", [["content-type", "text/plain"]]);
  return [[environ.SCRIPT_NAME, environ.PATH_INFO, environ.QUERY_STRING, environ.REQUEST_METHOD, process.pid,
    environ.HTTP_HOST, environ.HTTP_X_FORWARDED_FOR, environ.HTTP_X_FORWARDED_PREFIX ?? "-", environ.HTTP_X_TSGI_SCRIPT_NAME ?? "-"].join("|")];
};
`;

const CONFIG = `
proxy:
  listen: ["127.0.0.1:\${NGINX_PORT:-0}"]
  admin: "127.0.0.1:0"
apps:
  web:
    module: app.mjs
    instances: 2
    routes: [{ path: /web }, { host: web.test }]
    health: { path: /healthz, interval: 1s }
    graceful_timeout: 5s
  chat:
    module: ${ROOT}/test/fixtures/apps/websocket-echo.ts
    routes: [{ path: /chat }]
  files:
    static: public
    routes: [{ path: /files }]
`;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, target: string, { method = "GET", headers = {}, agent }: { method?: string; headers?: Record<string, string>; agent?: http.Agent } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: target, method, headers, agent: agent ?? false, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

/** The app's answer: [SCRIPT_NAME, PATH_INFO, QUERY_STRING, REQUEST_METHOD, pid, Host, X-Forwarded-For, X-Forwarded-Prefix, the mount header]. */
const fields = (answer: Answer) => answer.body.split("|");

/** A stack without its proxy and nginx in front of it, the config exported with `protocol`. */
async function frontedStack(protocol: "uwsgi" | "http") {
  const { dir, file } = stackDir(CONFIG, `tsgi-nginx-${protocol}-`);
  dirs.push(dir);
  writeFileSync(path.join(dir, "app.mjs"), APP);
  mkdirSync(path.join(dir, "public", "docs"), { recursive: true });
  writeFileSync(path.join(dir, "public", "hello.txt"), "hello from a folder\n");
  writeFileSync(path.join(dir, "public", "docs", "index.html"), "<h1>docs</h1>\n");
  writeFileSync(path.join(dir, "public", ".secret"), "hidden\n");
  const stack = await up(file, { args: ["--no-proxy"], serving: /serving without a front proxy: .* through (\S+)\/\s/, onSpawn: (child) => started.add(child) });
  const nginxDir = path.join(dir, "nginx");
  mkdirSync(nginxDir);
  const exported = (port: number) => {
    const result = spawnSync(process.execPath, [BIN, "export", "nginx", "-c", file, `--${protocol}`, "--log-dir", nginxDir], {
      encoding: "utf8",
      env: { ...process.env, NGINX_PORT: String(port) },
    });
    if (result.status !== 0) throw new Error(`export nginx failed: ${result.stderr}`);
    return result.stdout;
  };
  // nginx -t on the file as exported, before nginx runs it.
  writeFileSync(path.join(nginxDir, "check.conf"), nginxConfig(nginxDir, exported(1)));
  const check = spawnSync(NGINX, ["-t", "-p", `${nginxDir}/`, "-c", path.join(nginxDir, "check.conf"), "-e", path.join(nginxDir, "error.log")], { encoding: "utf8" });
  expect(check.status, check.stderr).toBe(0);
  expect(check.stderr).toContain("test is successful");
  const nginx = await startNginx(nginxDir, (port) => nginxConfig(nginxDir, exported(port), { errorLevel: "warn" }), {
    onSpawn: (child) => started.add(child),
  });
  return { dir, file, stack, port: nginx.port, nginx };
}

/** GETs from `clients` loops, kept-alive connections to nginx, until stop(); every outcome counted, and the pids that answered. */
function load(port: number, target: string, clients: number) {
  const outcomes = new Map<string, number>();
  const pids = new Set<string>();
  let running = true;
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      const outcome = await request(port, target, { agent })
        .then((answer) => {
          if (answer.status === 200) pids.add(fields(answer)[4]!);
          return String(answer.status);
        })
        .catch((error: NodeJS.ErrnoException) => error.code ?? error.message);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
  });
  return {
    outcomes,
    pids,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

describe.each(["uwsgi", "http"] as const)("nginx in front of `up --no-proxy`, over %s", (protocol) => {
  it(
    "serves every route as the stack's proxy would, and keeps serving through rolling reloads with 0 failed requests",
    async () => {
      const { file, port, stack } = await frontedStack(protocol);
      for (const pid of (await statusJson(file)).workers.map((worker: { pid: number }) => worker.pid)) seenPids.add(pid);

      // A path route: the mount is SCRIPT_NAME, the rest PATH_INFO, the query kept.
      expect(fields(await request(port, "/web/a/b?x=1")).slice(0, 4)).toEqual(["/web", "/a/b", "x=1", "GET"]);
      expect(fields(await request(port, "/web")).slice(0, 2)).toEqual(["/web", ""]);
      // At a segment boundary: /webx is no route; nor is //web/a (slashes are not merged, as in the stack's router).
      expect((await request(port, "/webx")).status).toBe(404);
      expect((await request(port, "//web/a")).status).toBe(404);
      expect((await request(port, "/nowhere")).status).toBe(404);
      // A host route: no mount; and it ranks above another app's path route, as in the stack's router.
      expect(fields(await request(port, "/a", { headers: { host: "web.test" } })).slice(0, 2)).toEqual(["", "/a"]);
      expect(fields(await request(port, "/chat/x", { headers: { host: "web.test" } })).slice(0, 2)).toEqual(["", "/chat/x"]);
      // A client cannot move the mount point by sending the stack's mount header itself, nor pass the app
      // forwarding headers of its own: the app sees the front's, and the Host as sent, port included.
      const spoofed = fields(
        await request(port, "/web/a", { headers: { "x-tsgi-script-name": "/evil", "x-forwarded-prefix": "/evil", "x-forwarded-for": "6.6.6.6" } }),
      );
      expect(spoofed.slice(0, 2)).toEqual(["/web", "/a"]);
      expect(spoofed.slice(5, 8)).toEqual([`127.0.0.1:${port}`, "127.0.0.1", "-"]);
      expect(spoofed[8]).not.toBe("/evil");
      expect(fields(await request(port, "/a", { headers: { host: "web.test", "x-tsgi-script-name": "/evil" } })).slice(0, 2)).toEqual(["", "/a"]);
      // POST reaches the app; TRACE is refused at the front (web does not allow it).
      expect(fields(await request(port, "/web/p", { method: "POST", headers: { "content-length": "0" } }))[3]).toBe("POST");
      expect((await request(port, "/web/", { method: "TRACE" })).status).toBe(405);

      // The WebSocket app: plain requests, and an upgrade echoing a message.
      expect((await request(port, "/chat/hi")).body).toBe("plain /hi upgrade=-");
      const socket = new WebSocket(`ws://127.0.0.1:${port}/chat/ws`);
      const echoed = await new Promise<string>((resolve, reject) => {
        socket.once("open", () => socket.send("over nginx"));
        socket.once("message", (data) => resolve(String(data)));
        socket.once("error", reject);
      });
      socket.close();
      expect(echoed).toBe("over nginx");

      // The static folder: files, the folder's slash redirect and index, dotfiles hidden, GET and HEAD only.
      const file1 = await request(port, "/files/hello.txt");
      expect([file1.status, file1.body]).toEqual([200, "hello from a folder\n"]);
      const folder = await request(port, "/files/docs");
      expect([folder.status, folder.headers.location]).toEqual([301, "/files/docs/"]);
      expect((await request(port, "/files/docs/")).body).toBe("<h1>docs</h1>\n");
      const bare = await request(port, "/files");
      expect([bare.status, bare.headers.location]).toEqual([301, "/files/"]);
      expect((await request(port, "/files/.secret")).status).toBe(404);
      expect((await request(port, "/files/hello.txt", { method: "POST", headers: { "content-length": "0" } })).status).toBe(405);

      // Rolling reloads under load: nginx's connections reach the old workers or the new ones, never nothing.
      const before = new Set((await statusJson(file)).workers.filter((worker: { app: string }) => worker.app === "web").map((worker: { pid: number }) => String(worker.pid)));
      const traffic = load(port, "/web/load", 4);
      await sleep(500);
      for (let round = 0; round < 2; round++) {
        const reload = await runCli(["reload", "web", "-c", file], 60_000);
        expect(reload.code, reload.stdout + reload.stderr).toBe(0);
      }
      await sleep(1000);
      await traffic.stop();
      const after: string[] = (await statusJson(file)).workers.filter((worker: { app: string }) => worker.app === "web").map((worker: { pid: number }) => String(worker.pid));
      for (const pid of after) seenPids.add(Number(pid));
      const total = [...traffic.outcomes.values()].reduce((sum, count) => sum + count, 0);
      expect(Object.fromEntries(traffic.outcomes)).toEqual({ "200": total });
      expect(total).toBeGreaterThan(50);
      // The old workers answered before, the new ones after: nginx followed the links to them.
      expect(after.some((pid) => before.has(pid))).toBe(false);
      const answeredBy = new Set<string>();
      for (let i = 0; i < 8; i++) answeredBy.add(fields(await request(port, "/web/after"))[4]!);
      expect([...answeredBy].every((pid) => after.includes(pid))).toBe(true);

      const down = await runCli(["down", "-c", file], 60_000);
      expect(down.code, down.stderr).toBe(0);
      await stack.exited;
    },
    180_000,
  );
});

describe("nginx in front when the stack process dies", () => {
  it(
    "keeps reaching the workers, which run on, and through the next `up --no-proxy`, which takes them over",
    async () => {
      const { file, port, stack } = await frontedStack("uwsgi");
      const workers = (await statusJson(file)).workers.map((worker: { pid: number }) => worker.pid);
      for (const pid of workers) seenPids.add(pid);
      const traffic = load(port, "/web/still", 2);
      process.kill(stack.child.pid!, "SIGKILL");
      await stack.exited;
      await sleep(500);
      const again = await up(file, { args: ["--no-proxy"], serving: /serving without a front proxy: .* through (\S+)\/\s/, onSpawn: (child) => started.add(child) });
      await sleep(500);
      await traffic.stop();
      const total = [...traffic.outcomes.values()].reduce((sum, count) => sum + count, 0);
      expect(Object.fromEntries(traffic.outcomes)).toEqual({ "200": total });
      expect(total).toBeGreaterThan(20);
      for (const worker of (await statusJson(file)).workers) seenPids.add(worker.pid);
      const down = await runCli(["down", "-c", file], 60_000);
      expect(down.code, down.stderr).toBe(0);
      await again.exited;
    },
    120_000,
  );
});
