/**
 * `tsgi-stack export nginx`: what it writes for a config that uses every
 * setting nginx has an equivalent for is accepted by `nginx -t` (Debian's
 * nginx) in both protocols, and says what the config says (balancing,
 * limits, timeouts, retries, trusted proxies, TLS, the access log); what
 * nginx cannot reach (a command app, socket paths too long) fails the
 * export naming the key, unless --force, which writes the rest and lists
 * the difference as a comment. The live behaviour behind nginx is
 * test/integration/nginx-front.test.ts.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NGINX, nginxConfig } from "../helpers/nginx.ts";
import { runCli } from "../helpers/serve.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function folder(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-export-nginx-"));
  dirs.push(dir);
  writeFileSync(path.join(dir, "app.mjs"), "export default (environ, start) => { start('200 OK', []); return ['ok']; };\n");
  mkdirSync(path.join(dir, "public"));
  return dir;
}

/** A config using every setting nginx has a word for. */
function everything(dir: string): string {
  const cert = path.join(dir, "cert.pem");
  const key = path.join(dir, "key.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"], { stdio: "ignore" });
  const file = path.join(dir, "tsgi.yaml");
  writeFileSync(
    file,
    `
proxy:
  listen: ["127.0.0.1:18080", "[::1]:18080"]
  tls: { cert: cert.pem, key: key.pem, listen: ["127.0.0.1:18443"] }
  trusted_proxies: ["10.0.0.0/8", "192.168.1.1"]
  access_log: json
  limits:
    client_max_body_size: 2m
    header_timeout: 7s
    body_timeout: 9s
    connect_timeout: 3s
    upstream_timeout: 45s
    upstream_keepalive: 8
    upstream_keepalive_timeout: 2500ms
    websocket_idle_timeout: 2m
apps:
  rr:
    module: app.mjs
    instances: 3
    routes: [{ path: / }]
    rate_limit: { rate: 10r/s, burst: 20, nodelay: true }
    conn_limit: { max: 10, status: 503, max_clients: 100000 }
  lc:
    module: app.mjs
    balance: least_conn
    routes: [{ path: /lc }, { host: "*.lc.test" }]
    retry: { tries: 1 }
  sticky:
    module: app.mjs
    balance: ip_hash
    routes: [{ host: sticky.test, path: /s }]
    retry: { tries: 4, non_idempotent: true }
  two:
    module: app.mjs
    balance: random_two
    routes: [{ host: two.test }]
    rate_limit: { rate: 30r/m, burst: 12, delay: 8, status: 503 }
  files:
    static: public
    routes: [{ path: /lc/files }]
    rate_limit: { rate: 5r/s }
`,
  );
  return file;
}

/** `nginx -t` on the export as a conf.d file of a whole nginx.conf: its exit code and what it said. */
function nginxCheck(dir: string, exported: string): { status: number | null; stderr: string } {
  const nginxDir = path.join(dir, `nginx-${Math.random().toString(36).slice(2)}`);
  mkdirSync(nginxDir);
  writeFileSync(path.join(nginxDir, "nginx.conf"), nginxConfig(nginxDir, exported));
  return spawnSync(NGINX, ["-t", "-p", `${nginxDir}/`, "-c", path.join(nginxDir, "nginx.conf"), "-e", path.join(nginxDir, "error.log")], { encoding: "utf8" });
}

/** The lines of the block that starts with `opening` (an upstream, a location), to its closing brace. */
function block(text: string, opening: string): string[] {
  const lines = text.split("\n");
  const start = lines.findIndex((line) => line.trim() === `${opening} {`);
  expect(start, `no block "${opening}" in:\n${text}`).toBeGreaterThanOrEqual(0);
  const indent = lines[start]!.length - lines[start]!.trimStart().length;
  const end = lines.findIndex((line, index) => index > start && line.trim() === "}" && line.length - 1 === indent);
  return lines.slice(start + 1, end).map((line) => line.trim());
}

describe.each(["uwsgi", "http"] as const)("export nginx --%s", (protocol) => {
  it("writes a config nginx -t accepts, with the config's balancing, limits, timeouts, retries and TLS", async () => {
    const dir = folder();
    const file = everything(dir);
    const result = await runCli(["export", "nginx", "-c", file, `--${protocol}`, "--log-dir", dir]);
    expect(result.code, result.stderr).toBe(0);
    const text = result.stdout;
    const check = nginxCheck(dir, text);
    expect(check.stderr).toContain("test is successful");
    expect(check.status).toBe(0);

    const suffix = protocol === "uwsgi" ? "_uwsgi" : "";
    const upstream = (app: string) => block(text, `upstream ${text.match(new RegExp(`upstream (\\S+_${app}${suffix}) \\{`))![1]}`);
    // round robin is nginx's default; the others by name; whole-address hashing for ip_hash; 8 idle connections per worker.
    expect(upstream("rr").filter((line) => line.startsWith("server "))).toHaveLength(3);
    if (protocol === "http") expect(upstream("rr")).toEqual(expect.arrayContaining(["keepalive 24;", "keepalive_timeout 2500ms;"]));
    expect(upstream("rr").some((line) => /least_conn|hash|random/.test(line))).toBe(false);
    expect(upstream("lc")).toContain("least_conn;");
    expect(upstream("sticky")).toContain("hash $remote_addr consistent;");
    expect(upstream("two")).toContain("random two least_conn;");
    // The upstreams are the stack's links, in its state dir.
    expect(upstream("rr")[0]).toBe(`server unix:${dir}/.tsgi/upstreams/rr.0${protocol === "uwsgi" ? ".uwsgi" : ""}.sock max_fails=0;`);

    // Limits and timeouts by nginx's names.
    const pass = protocol === "uwsgi" ? "uwsgi" : "proxy";
    for (const line of ["client_max_body_size 2097152;", "client_header_timeout 7s;", "client_body_timeout 9s;", `${pass}_connect_timeout 3s;`, `${pass}_read_timeout 45s;`]) {
      expect(text).toContain(line);
    }
    // Listeners, TLS, and the servers by host (a wildcard as nginx writes it).
    expect(text).toContain("listen [::1]:18080 default_server;");
    // HTTP/2 on by default: the listen parameter nginx 1.22 knows (`http2 on;` came in 1.25.1).
    expect(text).toContain("listen 127.0.0.1:18443 ssl http2;");
    expect(text).toContain(`ssl_certificate "${dir}/cert.pem";`);
    for (const host of ["sticky.test", "*.lc.test", "two.test", "_"]) expect(text).toContain(`server_name ${host};`);
    // Retries: none for lc; four, POSTs included, for sticky.
    expect(block(text, "location = /lc")).toContain(`${pass}_next_upstream off;`);
    expect(block(text, "location /s/")).toEqual(expect.arrayContaining([`${pass}_next_upstream error timeout non_idempotent;`, `${pass}_next_upstream_tries 4;`]));
    // Slashes are not merged, as the stack's router does not; uwsgi upstreams have no keepalive (nginx keeps none).
    expect(text).toContain("merge_slashes off;");
    expect(upstream("rr").filter((line) => line.startsWith("keepalive"))).toHaveLength(protocol === "http" ? 2 : 0);
    // A static folder mounted inside another app's path route.
    expect(block(text, "location /lc/files/")).toContain(`alias "${dir}/public/";`);
    // Trusted proxies: the client address from X-Forwarded-For only when a trusted peer sent it.
    expect(text).toContain("set_real_ip_from 10.0.0.0/8;");
    expect(text).toContain("set_real_ip_from 192.168.1.1;");
    // rate_limit and conn_limit as limit_req and limit_conn, keyed by the client address after realip, in each of the app's locations.
    const zone = (app: string, kind: string) => text.match(new RegExp(`zone=(\\S+_${app}_${kind}):`))![1];
    expect(text).toContain(`limit_req_zone $binary_remote_addr zone=${zone("rr", "req")}:1m rate=10r/s;`);
    expect(text).toContain(`limit_conn_zone $binary_remote_addr zone=${zone("rr", "conn")}:4m;`);
    expect(text).toContain(`limit_req_zone $binary_remote_addr zone=${zone("two", "req")}:1m rate=30r/m;`);
    for (const line of [`limit_req zone=${zone("rr", "req")} burst=20 nodelay;`, "limit_req_status 429;", `limit_conn ${zone("rr", "conn")} 10;`, "limit_conn_status 503;"]) {
      expect(text).toContain(line);
    }
    expect(text).toContain(`limit_req zone=${zone("two", "req")} burst=12 delay=8;`);
    expect(block(text, "location /lc/files/")).toContain(`limit_req zone=${zone("files", "req")};`);
    expect(block(text, "location /lc/")).not.toContain(`limit_req zone=${zone("rr", "req")} burst=20 nodelay;`);
    // The access log in JSON, in the folder given.
    expect(text).toMatch(new RegExp(`access_log "${dir}/tsgi-[0-9a-f]+\\.access\\.log" \\S+_json;`));
  });
});

describe("export nginx: proxy.tls.http2", () => {
  it("false: the TLS listener without http2, and nginx accepts it", async () => {
    const dir = folder();
    const file = everything(dir);
    writeFileSync(file, readFileSync(file, "utf8").replace('listen: ["127.0.0.1:18443"] }', 'listen: ["127.0.0.1:18443"], http2: false }'));
    const result = await runCli(["export", "nginx", "-c", file, "--log-dir", dir]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("listen 127.0.0.1:18443 ssl;");
    expect(result.stdout).not.toContain("http2");
    expect(nginxCheck(dir, result.stdout).status).toBe(0);
  });
});

describe("export nginx: what nginx cannot reach", () => {
  const withCommand = (dir: string) => {
    const file = path.join(dir, "tsgi.yaml");
    writeFileSync(file, `apps:\n  web:\n    module: app.mjs\n    routes: [{ path: /web }]\n  legacy:\n    command: "node server.js"\n    routes: [{ path: /legacy }]\n`);
    return file;
  };

  it("refuses a command app by its key, writing nothing", async () => {
    const dir = folder();
    const out = path.join(dir, "out.conf");
    const result = await runCli(["export", "nginx", "-c", withCommand(dir), "-o", out]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("apps.legacy.command");
    expect(result.stderr).toContain("--force");
    expect(existsSync(out)).toBe(false);
  });

  it("with --force writes the rest, the difference listed as a comment, and nginx accepts it", async () => {
    const dir = folder();
    const out = path.join(dir, "out.conf");
    const result = await runCli(["export", "nginx", "-c", withCommand(dir), "--force", "--log-dir", dir, "-o", out]);
    expect(result.code, result.stderr).toBe(0);
    const text = readFileSync(out, "utf8");
    expect(text).toMatch(/^# Written with --force: nginx does not do what tsgi\.yaml says here:\n# {3}apps\.legacy\.command: .*nearest: its routes answer 404$/m);
    expect(block(text, "location /legacy/")).toEqual(["return 404;"]);
    expect(block(text, "location /web/").some((line) => line.startsWith("uwsgi_pass "))).toBe(true);
    expect(nginxCheck(dir, text).status).toBe(0);
  });

  it("refuses allow_trace, which nginx cannot honour (it answers TRACE 405 itself), by its key", async () => {
    const dir = folder();
    const file = path.join(dir, "tsgi.yaml");
    writeFileSync(file, `apps:\n  web:\n    module: app.mjs\n    allow_trace: true\n    routes: [{ path: / }]\n`);
    const result = await runCli(["export", "nginx", "-c", file]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/apps\.web\.allow_trace: nginx answers TRACE with 405 itself/);
  });

  it("refuses socket paths too long for a unix socket, naming the app", async () => {
    const dir = folder();
    const file = path.join(dir, "tsgi.yaml");
    writeFileSync(file, `state_dir: ${"deep/".repeat(20)}state\napps:\n  web:\n    module: app.mjs\n    routes: [{ path: / }]\n`);
    const result = await runCli(["export", "nginx", "-c", file]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/apps\.web\.module: the state dir's socket paths .* too long/);
  });
});

describe("export nginx --config-path: written for another machine", () => {
  it("names every path of the config under the folder given, and none of this one's", async () => {
    const dir = folder();
    const file = everything(dir);
    const result = await runCli(["export", "nginx", "-c", file, "--config-path", "/srv/shop/tsgi.yaml", "--log-dir", "/var/log/nginx"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).not.toContain(dir);
    expect(result.stdout).toContain("server unix:/srv/shop/.tsgi/upstreams/rr.0.uwsgi.sock max_fails=0;");
    expect(result.stdout).toContain('alias "/srv/shop/public/";');
    expect(result.stdout).toContain('ssl_certificate "/srv/shop/cert.pem";');
  });
});
