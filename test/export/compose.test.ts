/**
 * `tsgi-stack export compose`: the Compose file, checked against the
 * Compose specification's own JSON Schema (compose-spec.json, as dclint
 * ships it) with ajv, then as a user reads it: a service per worker app with
 * the image, the worker's command line, replicas, healthcheck, grace period
 * and env; nginx in front with the nginx exporter's configuration carried in
 * the file (which `nginx -t` accepts once Compose has read it), the
 * listeners published, static folders mounted read-only. The healthcheck's
 * own script is run against a worker started with the service's command:
 * the proof that it checks what the stack checks.
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { Ajv } from "ajv";
import { parse } from "yaml";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { httpGet, runCli, serve, stopAll } from "../helpers/serve.ts";
import { NGINX, nginxConfig } from "../helpers/nginx.ts";

type Doc = Record<string, any>;

const require = createRequire(import.meta.url);
// dclint's exports list no schema file: found beside its package.json, where its package puts it.
const COMPOSE_SCHEMA = JSON.parse(readFileSync(path.join(path.dirname(require.resolve("dclint/package.json")), "schemas/compose.schema.json"), "utf8"));
// Its $schema names draft-07 by an https URL ajv does not know by that name; ajv's Ajv class is draft-07 itself.
const { $schema: _draft, ...composeSchema } = COMPOSE_SCHEMA;
const validate = new Ajv({ strict: false, allErrors: true }).compile(composeSchema);

const dirs: string[] = [];
afterEach(stopAll);
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const MOUNT_ECHO = `export default (environ, start) => {
  start("200 OK", [["content-type", "application/json"]]);
  return [JSON.stringify({ scriptName: environ.SCRIPT_NAME, pathInfo: environ.PATH_INFO })];
};
`;

const APPS = `apps:
  web:
    module: app.mjs
    instances: 3
    routes: [{ host: hello.example.com }, { path: /hello }]
    env: { NODE_ENV: production, PRICE: "$$5" }
    graceful_timeout: 25s
  site:
    static: public
    routes: [{ path: /static }]
`;

function configDir(apps = APPS): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-compose-"));
  dirs.push(dir);
  writeFileSync(path.join(dir, "app.mjs"), MOUNT_ECHO);
  mkdirSync(path.join(dir, "public"));
  const file = path.join(dir, "tsgi.yaml");
  writeFileSync(file, apps);
  return { dir, file };
}

/** The file `export compose` wrote, validated against the Compose specification's schema. */
async function exported(file: string, ...flags: string[]): Promise<{ text: string; doc: Doc }> {
  const result = await runCli(["export", "compose", "-c", file, "--image", "shop:1.2", ...flags]);
  expect(result.code, result.stderr).toBe(0);
  const doc = parse(result.stdout) as Doc;
  const valid = validate(doc);
  expect(validate.errors ?? [], JSON.stringify(validate.errors)).toEqual([]);
  expect(valid).toBe(true);
  return { text: result.stdout, doc };
}

/** `nginx -t` on the configuration as Compose hands it to nginx (`$$` read as `$`), the services' names as loopback. */
function nginxCheck(dir: string, content: string): { status: number | null; stderr: string } {
  const nginxDir = path.join(dir, "nginx");
  mkdirSync(nginxDir);
  const http = content.replace(/\$\$/g, "$").replace(/server [a-z][a-z0-9_-]*:8000;/g, "server 127.0.0.1:8000;").replace(/\/var\/log\/nginx\//g, `${nginxDir}/`);
  writeFileSync(path.join(nginxDir, "nginx.conf"), nginxConfig(nginxDir, http));
  // The access log is /dev/stdout, which nginx -t opens: a file here, as in a container its output is a pipe or a
  // terminal (node's own pipes are sockets, which open(2) of /dev/stdout refuses with ENXIO).
  const stdout = openSync(path.join(nginxDir, "stdout"), "w");
  try {
    return spawnSync(NGINX, ["-t", "-p", `${nginxDir}/`, "-c", path.join(nginxDir, "nginx.conf"), "-e", path.join(nginxDir, "error.log")], {
      encoding: "utf8",
      stdio: ["ignore", stdout, "pipe"],
    });
  } finally {
    closeSync(stdout);
  }
}

describe("export compose", () => {
  it("the Compose specification's schema is in force: it refuses what Compose would", () => {
    expect(validate({ services: { web: { image: "x", ports: { http: 80 } } } })).toBe(false);
    expect(validate({ services: { web: { image: "x", stop_grace_periods: "1s" } } })).toBe(false);
  });

  it("writes a valid Compose file: the worker service as the pod runs it, nginx in front with its configuration inside", async () => {
    const { dir, file } = configDir();
    const { doc } = await exported(file);
    const web = doc.services.web;
    expect(web.image).toBe("shop:1.2");
    // timeout (30 s by default) makes the worker leave by design: the arbiter replaces it inside the container.
    expect(web.entrypoint.slice(0, 6)).toEqual(["node", "/app/dist/cli/bin.js", "serve", "/app/app.mjs", "--workers", "1"]);
    expect(web.entrypoint).not.toContain("--no-arbiter");
    expect(web.entrypoint[web.entrypoint.indexOf("--script-name-header") + 1]).toBe("x-tsgi-script-name");
    // nginx is the only way in, and sends no header for a route at the root: no fallback mount.
    expect(web.entrypoint).not.toContain("--script-name");
    expect(web.working_dir).toBe("/app");
    expect(web.deploy.replicas).toBe(3);
    expect(web.deploy.resources).toBeUndefined();
    // graceful_timeout 25 s and the worker's 2 s exit margin.
    expect(web.stop_grace_period).toBe("27s");
    // Compose reads `$$` as `$`: the app gets its env as written.
    expect(web.environment).toEqual({ NODE_ENV: "production", PRICE: "$$5" });
    expect(web.healthcheck.test.slice(0, 3)).toEqual(["CMD", "node", "-e"]);

    expect(doc.services.site).toBeUndefined();
    const proxy = doc.services.proxy;
    expect(proxy.image).toBe("nginx:stable");
    expect(proxy.configs).toEqual([{ source: "nginx", target: "/etc/nginx/conf.d/default.conf" }]);
    expect(proxy.ports).toEqual([{ target: 80, published: "8080", host_ip: "127.0.0.1", protocol: "tcp" }]);
    // Bind mounts from the config's folder are relative, as Compose reads them against the project folder.
    expect(proxy.volumes).toEqual([{ type: "bind", source: "./public", target: "/srv/tsgi/static/site", read_only: true }]);
    // Compose restarts nginx when it recreates a worker service, so that nginx resolves the new containers.
    expect(proxy.depends_on).toEqual({ web: { condition: "service_started", restart: true } });
    const content: string = doc.configs.nginx.content;
    expect(content).toMatch(/upstream \S+ \{\n\s+server web:8000;/);
    expect(content).toContain('alias "/srv/tsgi/static/site/";');
    expect(content).toMatch(/listen 80 default_server;/);
    // Every nginx variable is written $$, which Compose reads back as $.
    expect(content).toContain("$$remote_addr");
    expect(content).not.toMatch(/(^|[^$])\$[a-z]/);
    const check = nginxCheck(dir, content);
    expect(check.status, check.stderr).toBe(0);
  });

  it("with proxy.tls: nginx listens with the certificate, mounted from here where the image has the config", async () => {
    const { dir, file } = configDir(`proxy:\n  tls: { cert: tls/cert.pem, key: tls/key.pem }\n${APPS}`);
    mkdirSync(path.join(dir, "tls"));
    writeFileSync(path.join(dir, "tls/cert.pem"), "");
    writeFileSync(path.join(dir, "tls/key.pem"), "");
    const { doc } = await exported(file, "--config-path", "/srv/shop/tsgi.yaml");
    const proxy = doc.services.proxy;
    expect(proxy.ports).toContainEqual({ target: 443, published: "8443", host_ip: "127.0.0.1", protocol: "tcp" });
    expect(proxy.volumes).toContainEqual({ type: "bind", source: "./tls/cert.pem", target: "/srv/shop/tls/cert.pem", read_only: true });
    expect(proxy.volumes).toContainEqual({ type: "bind", source: "./tls/key.pem", target: "/srv/shop/tls/key.pem", read_only: true });
    expect(doc.configs.nginx.content).toContain("listen 443 ssl");
    expect(doc.configs.nginx.content).toContain('ssl_certificate "/srv/shop/tls/cert.pem";');
    expect(doc.services.web.entrypoint[3]).toBe("/srv/shop/app.mjs");
  });

  it("error_pages: each file mounted read-only into nginx, where its error_page finds it", async () => {
    const { dir, file } = configDir(`proxy:\n  error_pages: { 502: pages/502.html }\n${APPS.replace("    graceful_timeout: 25s\n", "    graceful_timeout: 25s\n    error_pages: { 404: pages/404.html }\n")}`);
    mkdirSync(path.join(dir, "pages"));
    writeFileSync(path.join(dir, "pages", "502.html"), "<p>502</p>\n");
    writeFileSync(path.join(dir, "pages", "404.html"), "<p>404</p>\n");
    const { doc } = await exported(file);
    expect(doc.services.proxy.volumes).toEqual(
      expect.arrayContaining([
        { type: "bind", source: "./pages/502.html", target: "/srv/tsgi/error-pages/0.html", read_only: true },
        { type: "bind", source: "./pages/404.html", target: "/srv/tsgi/error-pages/1.html", read_only: true },
      ]),
    );
    const content: string = doc.configs.nginx.content;
    expect(content).toContain('alias "/srv/tsgi/error-pages/0.html";');
    expect(content).toContain("error_page 502 /__tsgi_error/0.html;");
    const check = nginxCheck(dir, content);
    expect(check.status, check.stderr).toBe(0);
  });

  it("refuses a health check nginx cannot act on unless forced, naming its key and writing nothing", async () => {
    const { dir, file } = configDir(APPS.replace("    graceful_timeout: 25s\n", "    graceful_timeout: 25s\n    health: { path: /healthz }\n"));
    const out = path.join(dir, "compose.yaml");
    const refused = await runCli(["export", "compose", "-c", file, "-o", out]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("apps.web.health");
    expect(existsSync(out)).toBe(false);
    const { text } = await exported(file, "--force");
    expect(text.split("\n").filter((line) => line.startsWith("#")).some((line) => line.startsWith("#   apps.web.health: "))).toBe(true);
  });

  it("refuses max_memory and a changed restart, naming each key; --force writes the limit with the arbiter's share; timeout 0 runs the worker alone", async () => {
    const { dir, file } = configDir(APPS.replace("    graceful_timeout: 25s\n", "    graceful_timeout: 25s\n    max_memory: 256M\n    restart: { backoff: 1s }\n"));
    const out = path.join(dir, "compose.yaml");
    const refused = await runCli(["export", "compose", "-c", file, "-o", out]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("apps.web.max_memory: 256 MiB");
    expect(refused.stderr).toContain("apps.web.restart: backoff 1000 ms: the arbiter in the container replaces a worker that dies");
    expect(existsSync(out)).toBe(false);
    const { text, doc } = await exported(file, "--force");
    expect(text).toMatch(/^#   apps\.web\.restart: .*Docker restarts a container that exits/m);
    expect(doc.services.web.deploy.resources.limits.memory).toBe("320m");

    writeFileSync(file, APPS.replace("    graceful_timeout: 25s\n", "    graceful_timeout: 25s\n    max_memory: 256M\n    timeout: 0\n"));
    const alone = (await exported(file, "--force")).doc.services.web;
    expect(alone.entrypoint.slice(4, 5)).toEqual(["--no-arbiter"]);
    expect(alone.deploy.resources.limits.memory).toBe("256m");
  });

  it("the healthcheck, run against a worker started with the service's command, passes and checks the health path unmounted", async () => {
    const { dir, file } = configDir(APPS.replace("    graceful_timeout: 25s\n", "    graceful_timeout: 25s\n    health: { path: /healthz, timeout: 3s }\n"));
    const { doc } = await exported(file, "--force");
    const web = doc.services.web;
    const argv: string[] = web.entrypoint.map((arg: string) => arg.replace(/\$\$/g, "$"));
    const args = argv.slice(3).map((arg) => (arg.startsWith("/app/") ? path.join(dir, arg.slice("/app/".length)) : arg === "0.0.0.0:8000" ? "127.0.0.1:0" : arg));
    const worker = await serve(args);
    const port = new URL(worker.url).port;
    const [, node, flag, script] = web.healthcheck.test as string[];
    expect([node, flag]).toEqual(["node", "-e"]);
    expect(script).toContain("/healthz");
    const check = spawnSync(process.execPath, ["-e", script!.replace(":8000", `:${port}`).replace("(8000,", `(${port},`)], { encoding: "utf8", timeout: 10_000 });
    expect(check.status, check.stderr).toBe(0);
    // The check asks for /healthz as the stack's own check does: not mounted under /hello.
    const headers = JSON.parse(/headers:(\{[^}]*\})/.exec(script!)![1]!);
    expect(JSON.parse((await httpGet(`${worker.url}/healthz`, headers)).body)).toEqual({ scriptName: "", pathInfo: "/healthz" });
    // A route at the root: nginx sends no mount header, and the app is not mounted.
    expect(JSON.parse((await httpGet(`${worker.url}/hello/x`)).body)).toEqual({ scriptName: "", pathInfo: "/hello/x" });
    expect(JSON.parse((await httpGet(`${worker.url}/hello/x`, { "x-tsgi-script-name": "/hello" })).body)).toEqual({ scriptName: "/hello", pathInfo: "/x" });
    // A worker that is not there fails it.
    const stopped = spawnSync(process.execPath, ["-e", script!.replace(":8000", ":1")], { encoding: "utf8", timeout: 10_000 });
    expect(stopped.status).toBe(1);
  });
});
