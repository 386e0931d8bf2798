/**
 * A static app end to end, as a user runs one: `tsgi-stack up` on a YAML
 * file with a static folder (a relative path, resolved from the file's
 * folder) beside a module app. Files come from the folder through the
 * running proxy, a missing one is 404, the module app still answers,
 * `status` lists the static app with its folder and no workers, `restart`
 * of it is refused by name, and Ctrl-C leaves nothing behind. A stack of
 * static apps alone starts no pm2 daemon at all.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { ROOT, httpGet, isAlive, runCli, sleep } from "../helpers/serve.ts";
import { cleanUpStacks, pm2DaemonPid, stackDir, statusJson, up } from "../helpers/stack.ts";

const started = new Set<ChildProcess>();
/** Every pid seen during a test (the stack, workers, pm2 daemons), checked dead at the end. */
const seenPids = new Set<number>();
const dirs: string[] = [];

afterAll(() => cleanUpStacks(started, seenPids, dirs), 60_000);

const CSS = "body { color: teal; }\n";
const INDEX = "<!doctype html><title>site</title>\n";

/** A stack dir with `public/` (index.html, style.css) beside its tsgi.yaml. */
function withSite(config: string): { dir: string; file: string } {
  const made = stackDir(config, "tsgi-static-");
  dirs.push(made.dir);
  mkdirSync(path.join(made.dir, "public"));
  writeFileSync(path.join(made.dir, "public", "index.html"), INDEX);
  writeFileSync(path.join(made.dir, "public", "style.css"), CSS);
  writeFileSync(path.join(made.dir, "secret.txt"), "beside the folder, never served");
  return made;
}

/** GET with the path sent exactly as given (a URL string would have its dot segments resolved first). */
function getPath(base: string, rawPath: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const request = http.get({ host: hostname, port, path: rawPath, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    request.on("error", reject);
  });
}

describe("tsgi-stack up: a static app beside a module app", () => {
  it("serves the folder, 404s what is missing, shows it in status, stops clean", async () => {
    const { dir, file } = withSite(`
proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
apps:
  site:
    static: public
    routes: [{ path: /static }]
  hello:
    module: ${ROOT}/test/fixtures/apps/lifecycle.ts
    routes: [{ path: /hello }]
`);
    const stack = await up(file, { onSpawn: (child) => started.add(child) });
    seenPids.add(stack.child.pid!);

    const css = await httpGet(`${stack.url}/static/style.css`);
    expect(css.status).toBe(200);
    expect(css.body).toBe(CSS);
    expect(css.headers["content-type"]).toBe("text/css; charset=utf-8");
    expect(css.headers.etag).toBeDefined();
    expect((await httpGet(`${stack.url}/static/style.css`, { "if-none-match": css.headers.etag as string })).status).toBe(304);
    expect((await httpGet(`${stack.url}/static/`)).body).toBe(INDEX);
    const folder = await httpGet(`${stack.url}/static`);
    expect(folder.status).toBe(301);
    expect(folder.headers.location).toBe("/static/");
    const missing = await httpGet(`${stack.url}/static/missing.css`);
    expect(missing.status).toBe(404);
    expect(missing.body).toBe("Not Found: /static/missing.css\n");
    const traversal = await getPath(stack.url, "/static/%2e%2e/secret.txt");
    // Dot segments are removed before routing, as nginx does: /static/%2e%2e/secret is /secret, which no route serves.
    expect(traversal.status).toBe(404);
    expect(traversal.body).not.toContain("never served");
    // The module app beside it is served by its worker as ever.
    const pid = await httpGet(`${stack.url}/hello/pid`);
    expect(pid.status).toBe(200);
    seenPids.add(Number(pid.body));

    // status: the static app with its folder and no workers; the module app's worker alone in workers and pools.
    const status = await statusJson(file);
    expect(status.apps).toEqual([
      { app: "site", kind: "static", routes: ["*/static"], folder: path.join(realpathSync(dir), "public") },
      { app: "hello", kind: "module", routes: ["*/hello"] },
    ]);
    expect(status.workers.map((row: any) => `${row.app}.${row.slot}:${row.state}`)).toEqual(["hello.0:ready"]);
    expect(status.pools.map((pool: any) => pool.app)).toEqual(["hello"]);
    for (const row of status.workers) seenPids.add(row.pid);
    seenPids.add(pm2DaemonPid(dir)!);
    const table = await runCli(["status", "-c", file]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/\nsite\s+-\s+-\s+static\s/);
    expect(table.stdout).toContain(`site: static files from ${path.join(realpathSync(dir), "public")}, served by the proxy (no workers)`);

    // A static app has no workers to restart or scale: refused by name, and the stack goes on.
    const restart = await runCli(["restart", "site", "-c", file]);
    expect(restart.code).toBe(1);
    expect(restart.stderr).toContain(`cannot restart "site": it is a static app`);
    const scale = await runCli(["scale", "site", "2", "-c", file]);
    expect(scale.code).toBe(1);
    expect(scale.stderr).toContain(`cannot scale "site": it is a static app`);
    expect((await httpGet(`${stack.url}/static/style.css`)).status).toBe(200);

    // The access log names the static app for its requests.
    const accessLog = readFileSync(path.join(dir, ".tsgi", "logs", "access.log"), "utf8");
    expect(accessLog).toMatch(/"GET \/static\/style\.css HTTP\/1\.1" 200 22 .* app=site /);
    expect(accessLog).toMatch(/"GET \/static\/missing\.css HTTP\/1\.1" 404 \d+ .* app=site /);

    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
    await sleep(200);
    expect([...seenPids].filter(isAlive)).toEqual([]);
  });

  it("static apps alone: no pm2 daemon is started", async () => {
    const { dir, file } = withSite(`
proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
apps:
  site:
    static: public
    routes: [{ host: site.localhost }]
`);
    const stack = await up(file, { onSpawn: (child) => started.add(child) });
    seenPids.add(stack.child.pid!);
    const home = await httpGet(`${stack.url}/`, { host: "site.localhost" });
    expect(home.status).toBe(200);
    expect(home.body).toBe(INDEX);
    const status = await statusJson(file);
    expect(status.workers).toEqual([]);
    expect(status.apps).toEqual([{ app: "site", kind: "static", routes: ["site.localhost/"], folder: path.join(realpathSync(dir), "public") }]);
    expect(pm2DaemonPid(dir)).toBeUndefined();
    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
  });
});
