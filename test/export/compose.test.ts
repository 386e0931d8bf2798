/**
 * `tsgi-stack export compose`: the Compose file, checked against the
 * Compose specification's own JSON Schema (compose-spec.json, as dclint
 * ships it) with ajv, then as a user reads it: a service per worker app with
 * the image, the worker's command line, replicas, healthcheck, grace period
 * and env; nginx in front with the nginx exporter's configuration carried in
 * the file, the listeners published, static folders mounted read-only. The
 * healthcheck's own script is run against a worker started with the
 * service's command: the proof that it checks what the stack checks.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { Ajv } from "ajv";
import { parse } from "yaml";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.ts";
import type { StackConfig } from "../../src/config/schema.ts";
import { composeFile, type NginxRenderer } from "../../src/export/compose.ts";
import { httpGet, serve, stopAll } from "../helpers/serve.ts";

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
    max_memory: 256M
    graceful_timeout: 25s
  site:
    static: public
    routes: [{ path: /static }]
`;

function loaded(apps = APPS): { dir: string; file: string; config: StackConfig } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-compose-"));
  dirs.push(dir);
  writeFileSync(path.join(dir, "app.mjs"), MOUNT_ECHO);
  mkdirSync(path.join(dir, "public"));
  const file = path.join(dir, "tsgi.yaml");
  writeFileSync(file, apps);
  const result = loadConfig(file);
  if (!result.ok) throw new Error(result.errors.map((error) => error.format()).join("\n"));
  return { dir, file, config: result.config };
}

/** Stands in for the nginx exporter: asks the target what the real one asks, and writes it down. */
const stubNginx: NginxRenderer = (config, target) =>
  [
    `# ${target.name}`,
    ...Object.keys(config.apps).map((app) => {
      const upstream = target.upstream(app, "http");
      return "servers" in upstream ? `upstream ${app} { server ${upstream.servers.join("; server ")}; }` : `# ${app}: ${upstream.unreachable}`;
    }),
    ...Object.entries(config.apps).flatMap(([app, settings]) => (settings.static ? [`location /static/ { alias ${target.staticFolder(app, settings.static)}/; }`] : [])),
    `listen ${target.listen.http.join(" ")}; log_format x '$remote_addr $request';`,
    "",
  ].join("\n");

function exported(config: StackConfig, file: string, force = false): { text: string; doc: Doc } {
  const text = composeFile({ config, configFile: file, image: "shop:1.2", force, nginx: stubNginx });
  const doc = parse(text) as Doc;
  const valid = validate(doc);
  expect(validate.errors ?? [], JSON.stringify(validate.errors)).toEqual([]);
  expect(valid).toBe(true);
  return { text, doc };
}

describe("export compose", () => {
  it("the Compose specification's schema is in force: it refuses what Compose would", () => {
    expect(validate({ services: { web: { image: "x", ports: { http: 80 } } } })).toBe(false);
    expect(validate({ services: { web: { image: "x", stop_grace_periods: "1s" } } })).toBe(false);
  });

  it("writes a valid Compose file: the worker service as the pod runs it, nginx in front with its configuration inside", () => {
    const { dir, file, config } = loaded();
    const { doc } = exported(config, file);
    const web = doc.services.web;
    expect(web.image).toBe("shop:1.2");
    expect(web.entrypoint.slice(0, 5)).toEqual(["node", "/app/node_modules/tsgi-stack/dist/cli/bin.js", "serve", "/app/app.mjs", "--no-arbiter"]);
    expect(web.entrypoint).toContain("x-tsgi-script-name");
    expect(web.deploy.replicas).toBe(3);
    expect(web.deploy.resources.limits.memory).toBe("256m");
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
    expect(proxy.volumes).toEqual([{ type: "bind", source: path.join(dir, "public"), target: "/srv/tsgi/static/site", read_only: true }]);
    expect(proxy.depends_on).toEqual({ web: { condition: "service_started" } });
    const content: string = doc.configs.nginx.content;
    expect(content).toContain("upstream web { server web:8000; }");
    expect(content).toContain("alias /srv/tsgi/static/site/;");
    // nginx's variables reach nginx as written once Compose has read the file.
    expect(content.replace(/\$\$/g, "$")).toContain("log_format x '$remote_addr $request';");
    expect(content).not.toMatch(/(^|[^$])\$[a-z]/);
  });

  it("refuses a health check nginx cannot act on unless forced, naming its key", () => {
    const { file, config } = loaded(APPS.replace("    graceful_timeout: 25s\n", "    graceful_timeout: 25s\n    health: { path: /healthz }\n"));
    expect(() => composeFile({ config, configFile: file, image: "shop:1.2", force: false, nginx: stubNginx })).toThrow(/apps\.web\.health/);
    const { text } = exported(config, file, true);
    expect(text.split("\n").filter((line) => line.startsWith("#")).some((line) => line.startsWith("#   apps.web.health: "))).toBe(true);
  });

  it("the healthcheck, run against a worker started with the service's command, passes and checks the health path unmounted", async () => {
    const { dir, file, config } = loaded(APPS.replace("    graceful_timeout: 25s\n", "    graceful_timeout: 25s\n    health: { path: /healthz, timeout: 3s }\n"));
    const { doc } = exported(config, file, true);
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
    expect(JSON.parse((await httpGet(`${worker.url}/hello/x`, { "x-tsgi-script-name": "/hello" })).body)).toEqual({ scriptName: "/hello", pathInfo: "/x" });
    // A worker that is not there fails it.
    const stopped = spawnSync(process.execPath, ["-e", script!.replace(":8000", ":1")], { encoding: "utf8", timeout: 10_000 });
    expect(stopped.status).toBe(1);
  });
});
