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
import { type ChildProcess, execFileSync, spawnSync } from "node:child_process";
import http from "node:http";
import type net from "node:net";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { NGINX, nginxConfig, startNginx } from "../helpers/nginx.ts";
import { runCli } from "../helpers/serve.ts";
import { loadConfig } from "../../src/config/load.ts";
import { FrontProxy } from "../../src/proxy/server.ts";
import { frontProxyOptions } from "../../src/stack/proxy-settings.ts";

const dirs: string[] = [];
/** The nginx processes and proxy servers a test started, stopped by their own handles. */
const nginxes: ChildProcess[] = [];
const fronts: { proxy: FrontProxy; server: http.Server }[] = [];
afterAll(async () => {
  for (const child of nginxes) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGTERM");
  for (const { proxy, server } of fronts) {
    proxy.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function folder(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-export-nginx-"));
  dirs.push(dir);
  writeFileSync(path.join(dir, "app.mjs"), "export default (environ, start) => { start('200 OK', []); return ['ok']; };\n");
  mkdirSync(path.join(dir, "public"));
  writeFileSync(path.join(dir, "public", "index.html"), "<!doctype html><title>spa</title>\n");
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
    compress: { types: [text/*, application/json], min_length: 512, level: { gzip: 5 } }
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
    compress: { encodings: [br, gzip] }
    index: [index.html, index.htm]
    fallback: /index.html
    cache: { max_age: 1h, immutable: ["assets/**", "*.woff2"] }
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

/**
 * The real nginx on `exported` (its listener 127.0.0.1:18080 moved to a free
 * port) and the stack's own proxy on the same config, both on loopback:
 * their ports, to ask both the same thing.
 */
async function serveBoth(dir: string, exported: string, file: string): Promise<{ nginx: { port: number }; ours: number }> {
  const nginxDir = path.join(dir, "nginx");
  mkdirSync(nginxDir);
  const nginx = await startNginx(
    nginxDir,
    (port) => nginxConfig(nginxDir, `include /etc/nginx/mime.types;\n${exported.replaceAll("127.0.0.1:18080", `127.0.0.1:${port}`)}`),
    { onSpawn: (child) => nginxes.push(child) },
  );
  const loaded = loadConfig(file);
  if (!loaded.ok) expect.fail("the config does not load");
  const proxy = new FrontProxy(frontProxyOptions(loaded.config));
  const server = http.createServer(proxy.handle);
  fronts.push({ proxy, server });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { nginx, ours: (server.address() as net.AddressInfo).port };
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
    // Its index list, its fallback (a map to named locations) and its Cache-Control (a map of $uri).
    const files = block(text, "location /lc/files/");
    expect(files).toContain("index index.html index.htm;");
    const cacheVar = files.find((line) => line.startsWith("add_header Cache-Control "))!.split(" ")[2]!.replace(/;$/, "");
    const fallbackVar = files.find((line) => line.startsWith("try_files "))!.split(" ")[3]!.replace(/;$/, "");
    expect(block(text, `map $uri ${cacheVar}`)).toEqual([
      // picomatch's regex of *.html, its backslashes doubled inside nginx's quotes.
      String.raw`"~^/lc/files/(?:.*/)?(?:(?!\\.)(?=.)[^/]*?\\.html\\/?)$" "no-cache";`,
      expect.stringMatching(/^"~\^\/lc\/files\/\(\?:assets.*" "public, max-age=31536000, immutable";$/),
      expect.stringMatching(/woff2.*" "public, max-age=31536000, immutable";$/),
      'default "public, max-age=3600";',
    ]);
    const rewrite = block(text, `map $uri ${fallbackVar}`)[1]!.split(" ")[1]!.replace(/;$/, "");
    expect(text).toContain(`location ${rewrite} { rewrite ^ "/lc/files/index.html" last; }`);
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
    // compress as nginx's gzip (whoever asked, proxied or not; text/* as its common types, text/html being nginx's always),
    // gzip_static for a static app's .gz siblings and gzip on for its other files; br named in a comment, nginx's core having none;
    // no gzip where not asked.
    const lc = block(text, "location = /lc");
    expect(lc).toEqual(expect.arrayContaining(["gzip on;", "gzip_vary on;", "gzip_proxied any;", "gzip_comp_level 5;", "gzip_min_length 512;"]));
    const types = lc.find((line) => line.startsWith("gzip_types "))!.slice("gzip_types ".length, -1).split(" ");
    expect(types).toEqual(expect.arrayContaining(["text/css", "text/plain", "text/javascript", "application/json"]));
    expect(types).not.toContain("text/html");
    expect(lc).toContain("# compress.encodings: br, zstd are not in nginx's core; nginx answers those clients with gzip");
    expect(files).toEqual(expect.arrayContaining(["gzip_static on;", "gzip on;", "gzip_vary on;", "gzip_proxied any;", "gzip_comp_level 6;", "gzip_min_length 256;"]));
    expect(files.filter((line) => line === "gzip_vary on;")).toHaveLength(1);
    expect(files.some((line) => line.startsWith("gzip_types ") && line.includes(" text/css") && line.includes(" application/javascript"))).toBe(true);
    expect(files.some((line) => line.startsWith("#") && line.includes("br"))).toBe(true);
    const twoServer = text.split(/^server \{$/m).find((server) => server.includes("server_name two.test;"))!;
    expect(twoServer).not.toContain("gzip");
    // The access log in JSON, in the folder given.
    expect(text).toMatch(new RegExp(`access_log "${dir}/tsgi-[0-9a-f]+\\.access\\.log" \\S+_json;`));
  });
});

describe("export nginx: the proxy's own answers and headers", () => {
  it("writes redirect apps, trailing_slash, headers and https_redirect where they take effect, and nginx -t accepts it", async () => {
    const dir = folder();
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=x"], { stdio: "ignore" });
    const file = path.join(dir, "tsgi.yaml");
    writeFileSync(
      file,
      `
proxy:
  listen: ["127.0.0.1:18080"]
  tls: { cert: cert.pem, key: key.pem, listen: ["127.0.0.1:18443"] }
  https_redirect: {}
apps:
  web:
    module: app.mjs
    routes: [{ path: / }]
    trailing_slash: add
    headers: { Strict-Transport-Security: max-age=31536000, Content-Security-Policy: "default-src 'self'", X-Powered-By: null }
  api:
    module: app.mjs
    routes: [{ path: /api }]
    trailing_slash: remove
  files:
    static: public
    routes: [{ path: /files }]
    headers: { X-Content-Type-Options: nosniff }
  moved:
    redirect: { to: "https://new.test/manual", status: 308 }
    routes: [{ path: /docs }]
  query:
    redirect: { to: "/new?src=old", status: 302 }
    routes: [{ path: /q }]
  www:
    redirect: { to: "https://example.com" }
    routes: [{ host: www.example.com }]
    headers: { Cache-Control: no-store }
`,
    );
    const result = await runCli(["export", "nginx", "-c", file, "--http", "--log-dir", dir]);
    expect(result.code, result.stderr).toBe(0);
    const text = result.stdout;
    const check = nginxCheck(dir, text);
    expect(check.stderr).toContain("test is successful");
    // https_redirect: a map, then at the top of every server a 400 without Host and the redirect to tls.listen's port.
    expect(text).toMatch(/map "\$scheme\|\$http_host\|\$uri" \$\S+_to_https \{\n {4}default 0;\n {4}"~\^http\\\\\|\[\^\|\]\*\\\\\|\/\\\\\.well-known\/acme-challenge\(\/\|\$\)" 0;/);
    expect(text.match(/return 308 https:\/\/\$host:18443\$request_uri; \}/g)).toHaveLength(2); // www.example.com's server and the default one
    // The default server (the last): the apps routed without a host.
    const main = text.slice(text.lastIndexOf("\nserver {"));
    // headers: the worker's copy hidden, ours on every status, in each location of the app (add_header is not inherited into one that has its own).
    for (const location of ["location /", "location = /api", "location /api/"]) {
      const lines = block(main, location);
      const ours = location === "location /" ? 2 : 0;
      expect(lines.filter((line) => line.endsWith(" always;") && line.startsWith("add_header "))).toHaveLength(ours);
    }
    expect(block(main, "location /")).toEqual(expect.arrayContaining(["proxy_hide_header Strict-Transport-Security;", 'add_header Strict-Transport-Security "max-age=31536000" always;']));
    // null: the worker's header hidden, none added.
    expect(block(main, "location /").filter((line) => line.includes("X-Powered-By"))).toEqual(["proxy_hide_header X-Powered-By;"]);
    expect(block(main, "location /files/")).toContain('add_header X-Content-Type-Options "nosniff" always;');
    // trailing_slash and redirects as `if … return`, from $request_uri.
    expect(block(main, "location /")[0]).toMatch(/^if \(\$request_uri ~ .*\) \{ return 308 "\/\$tsgi_path\/\$tsgi_query"; \}$/);
    expect(block(main, "location /api/")[0]).toMatch(/\{ return 308 "\/\$tsgi_path\$tsgi_query"; \}$/);
    expect(block(main, "location /docs/")).toEqual([
      'if ($request_uri ~ "^/docs(?<tsgi_rest>/[^?]*)") { return 308 "https://new.test/manual$tsgi_rest$is_args$args"; }',
      'return 308 "https://new.test/manual$is_args$args";',
    ]);
    expect(block(main, "location /q/")[1]).toMatch(/^return 302 "\/new\?src=old\$\S+_and_args";$/);
    // The host-only redirect app's server: its own location, its header in it.
    expect(block(text, "location /")).toEqual([
      'add_header Cache-Control "no-store" always;',
      'if ($request_uri ~ "^/(?<tsgi_rest>[^?]*)") { return 301 "https://example.com/$tsgi_rest$is_args$args"; }',
      'return 301 "https://example.com/$is_args$args";',
    ]);
    expect(text).toMatch(/map \$args \$\S+_and_args \{\n {4}"" "";\n {4}default &\$args;\n\}/);
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

describe("export nginx: error_pages", () => {
  it("writes error_page and an internal location per file; live, nginx serves them for its own 404 and 502 only, never over a worker's 500", async () => {
    const dir = folder();
    mkdirSync(path.join(dir, "pages"));
    writeFileSync(path.join(dir, "pages", "404.html"), "<p>stack 404</p>\n");
    writeFileSync(path.join(dir, "pages", "5xx.html"), "<p>stack 5xx</p>\n");
    writeFileSync(path.join(dir, "pages", "api-502.html"), "<p>api 502</p>\n");
    const file = path.join(dir, "tsgi.yaml");
    writeFileSync(
      file,
      `proxy:
  error_pages: { 404: pages/404.html, 5xx: pages/5xx.html }
apps:
  web:
    module: app.mjs
    routes: [{ path: /web }]
  api:
    module: app.mjs
    routes: [{ path: /api }]
    error_pages: { 502: pages/api-502.html }
    headers: { X-Frame-Options: DENY }
  admin:
    module: app.mjs
    routes: [{ path: /admin }]
    headers: { X-Frame-Options: SAMEORIGIN }
`,
    );
    const result = await runCli(["export", "nginx", "-c", file, "--http", "--log-dir", dir]);
    expect(result.code, result.stderr).toBe(0);
    const text = result.stdout;
    expect(nginxCheck(dir, text).status).toBe(0);
    expect(text).toContain("error_page 404 /__tsgi_error/0.html;");
    expect(text).toContain("error_page 500 501 502 503 504 505 507 /__tsgi_error/1.html;");
    // Each sends the Allow a 405 had where it was made (error_page's redirect drops it), from a map of $status.
    const allow = expect.stringMatching(/^add_header Allow \$tsgi_\w+_error_allow always;$/);
    expect(block(text, "location = /__tsgi_error/0.html")).toEqual(["internal;", `alias "${dir}/pages/404.html";`, "types { }", 'default_type "text/html; charset=utf-8";', allow]);
    // The app's 502 over the stack's 5xx, in the app's locations; nothing turns upstream interception on.
    // An app with headers has page locations of its own, carrying them (error_page is an internal redirect: the location's are lost).
    const apiLines = block(text, "location /api/").filter((line) => line.startsWith("error_page 5"));
    expect(apiLines).toEqual([expect.stringMatching(/^error_page 500 501 503 504 505 507 \/__tsgi_error\/\d+\.html;$/), expect.stringMatching(/^error_page 502 \/__tsgi_error\/\d+\.html;$/)]);
    expect(block(text, `location = ${apiLines[1]!.split(" ").at(-1)!.slice(0, -1)}`)).toEqual(["internal;", `alias "${dir}/pages/api-502.html";`, "types { }", 'default_type "text/html; charset=utf-8";', 'add_header X-Frame-Options "DENY" always;', allow]);
    expect(block(text, "location /web/")).toContain("error_page 500 501 502 503 504 505 507 /__tsgi_error/1.html;");
    expect(text).not.toMatch(/intercept_errors on/);

    // Live: a worker on web's upstream socket that answers its own 500; api's socket has no one behind it (502).
    const worker = http.createServer((_req, res) => res.writeHead(500, { "Content-Type": "application/json" }).end('{"worker":500}'));
    mkdirSync(path.join(dir, ".tsgi", "upstreams"), { recursive: true });
    await new Promise<void>((resolve) => worker.listen(path.join(dir, ".tsgi", "upstreams", "web.0.sock"), resolve));
    const nginxDir = path.join(dir, "nginx-live");
    mkdirSync(nginxDir);
    const children: ChildProcess[] = [];
    try {
      const nginx = await startNginx(nginxDir, (port) => nginxConfig(nginxDir, text.replace("listen 127.0.0.1:8080 default_server;", `listen 127.0.0.1:${port} default_server;`)), {
        onSpawn: (child) => children.push(child),
      });
      const get = async (urlPath: string) => {
        const response = await fetch(`http://127.0.0.1:${nginx.port}${urlPath}`);
        return { status: response.status, type: response.headers.get("content-type"), frame: response.headers.get("x-frame-options"), body: await response.text() };
      };
      expect(await get("/web/x")).toEqual({ status: 500, type: "application/json", frame: null, body: '{"worker":500}' });
      // The app's headers on its page (its own, or the stack's), as the stack's proxy sends them on its answers for the app.
      expect(await get("/api/x")).toEqual({ status: 502, type: "text/html; charset=utf-8", frame: "DENY", body: "<p>api 502</p>\n" });
      expect(await get("/admin/x")).toEqual({ status: 502, type: "text/html; charset=utf-8", frame: "SAMEORIGIN", body: "<p>stack 5xx</p>\n" });
      expect(await get("/nothing")).toEqual({ status: 404, type: "text/html; charset=utf-8", frame: null, body: "<p>stack 404</p>\n" });
    } finally {
      for (const child of children) child.kill();
      await Promise.all(children.map((child) => (child.exitCode === null && child.signalCode === null ? new Promise((resolve) => child.once("exit", resolve)) : undefined)));
      worker.closeAllConnections();
      await new Promise((resolve) => worker.close(resolve));
    }
  });

  it("a static app's location takes the server's pages, or its own over them: its folder's 404 is replaced in both proxies", async () => {
    const dir = folder();
    writeFileSync(path.join(dir, "404.html"), "<p>404</p>\n");
    writeFileSync(path.join(dir, "403.html"), "<p>403</p>\n");
    const file = path.join(dir, "tsgi.yaml");
    writeFileSync(
      file,
      `proxy:\n  error_pages: { 4xx: 404.html }\napps:\n  files:\n    static: public\n    routes: [{ path: /files }]\n  other:\n    static: public\n    routes: [{ path: /other }]\n    error_pages: { 403: 403.html }\n`,
    );
    const result = await runCli(["export", "nginx", "-c", file]);
    expect(result.code, result.stderr).toBe(0);
    expect(nginxCheck(dir, result.stdout).status).toBe(0);
    expect(block(result.stdout, "location /files/").some((line) => line.startsWith("error_page"))).toBe(false);
    expect(block(result.stdout, "location /other/")).toEqual(expect.arrayContaining(["error_page 403 /__tsgi_error/1.html;"]));
  });
});

describe("export nginx: a static app's index, fallback and cache, served by the real nginx", () => {
  it("answers every path as the stack's own proxy does: status, Cache-Control and bytes, and gzip on the fly", async () => {
    const dir = folder();
    const write = (file: string, content: string) => {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), content);
    };
    write("spa/index.html", "<!doctype html><title>spa</title>\n");
    write("spa/assets/app.3f9a2c1b.js", "console.log('built');\n");
    write("spa/robots.txt", "User-agent: *\n");
    write("spa/docs/index.htm", "<!doctype html><title>docs</title>\n");
    write("spa/.env", "SECRET=1\n");
    write("spa/style.css", "body { color: teal }\n".repeat(40));
    write("pages/stack404.html", "<p>stack 404</p>\n");
    write("pages/shop404.html", "<p>shop 404</p>\n");
    write("pages/4xx.html", "<p>stack 4xx</p>\n");
    const file = path.join(dir, "tsgi.yaml");
    writeFileSync(
      file,
      `proxy: { listen: ["127.0.0.1:18080"], error_pages: { 404: pages/stack404.html, 4xx: pages/4xx.html } }
apps:
  spa:
    static: spa
    routes: [{ path: /app }]
    index: [index.html, index.htm]
    fallback: /index.html
    cache: { max_age: 10m, immutable: ["assets/**"] }
    compress: { min_length: 20, encodings: [gzip] }
    headers: { Referrer-Policy: no-referrer }
  bare:
    static: spa
    routes: [{ path: /bare }]
    index: []
  shop:
    static: spa
    routes: [{ path: /shop }]
    fallback: /index.html
    headers: { X-Frame-Options: DENY }
    error_pages: { 404: pages/shop404.html }
`,
    );
    const exported = await runCli(["export", "nginx", "-c", file, "--http", "--log-dir", dir]);
    expect(exported.code, exported.stderr).toBe(0);
    const { nginx, ours } = await serveBoth(dir, exported.stdout, file);

    const get = (port: number, urlPath: string) =>
      new Promise<{ status: number; cacheControl: string | undefined; body: string }>((resolve, reject) => {
        http
          .get({ host: "127.0.0.1", port, path: urlPath, agent: false }, (res) => {
            let body = "";
            res.on("data", (chunk: Buffer) => (body += chunk));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, cacheControl: res.headers["cache-control"], body: res.statusCode === 200 ? body : "" }));
          })
          .on("error", reject);
      });
    const paths = ["/app/", "/app/users/42", "/app/about/", "/app/missing.js", "/app/users/jane.doe/", "/app/assets/app.3f9a2c1b.js", "/app/assets/gone.0000beef.js", "/app/robots.txt", "/app/docs/", "/app/.env", "/bare/", "/bare/docs/", "/bare/robots.txt"];
    for (const urlPath of paths) {
      const [theirs, mine] = await Promise.all([get(nginx.port, urlPath), get(ours, urlPath)]);
      // The stack says public, max-age=0 where nginx says nothing: a folder without `cache` (bare) is not compared on it.
      if (urlPath.startsWith("/bare/") && mine.status === 200) mine.cacheControl = undefined;
      expect(theirs, urlPath).toEqual(mine);
    }
    expect((await get(ours, "/app/users/42")).body).toContain("<title>spa</title>");
    expect((await get(ours, "/app/users/jane.doe/")).body).toContain("<title>spa</title>");

    // error_pages with the app's headers: a missing file (the fallback's named 404 too) and a dotfile get the app's page,
    // or the stack's, with the app's headers; an unrouted path the stack's page without them.
    const page = (port: number, urlPath: string) =>
      new Promise<{ status: number; headers: (string | string[] | undefined)[]; body: string }>((resolve, reject) => {
        http
          .get({ host: "127.0.0.1", port, path: urlPath, agent: false }, (res) => {
            let body = "";
            res.on("data", (chunk: Buffer) => (body += chunk));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: [res.headers["x-frame-options"], res.headers["referrer-policy"]], body }));
          })
          .on("error", reject);
      });
    const pages: [string, Awaited<ReturnType<typeof page>>][] = [
      ["/shop/missing.js", { status: 404, headers: ["DENY", undefined], body: "<p>shop 404</p>\n" }],
      ["/shop/.env", { status: 404, headers: ["DENY", undefined], body: "<p>shop 404</p>\n" }],
      ["/app/missing.js", { status: 404, headers: [undefined, "no-referrer"], body: "<p>stack 404</p>\n" }],
      ["/app/.env", { status: 404, headers: [undefined, "no-referrer"], body: "<p>stack 404</p>\n" }],
      ["/bare/missing.js", { status: 404, headers: [undefined, undefined], body: "<p>stack 404</p>\n" }],
      ["/nothing", { status: 404, headers: [undefined, undefined], body: "<p>stack 404</p>\n" }],
    ];
    for (const [urlPath, expected] of pages) {
      const [theirs, mine] = await Promise.all([page(nginx.port, urlPath), page(ours, urlPath)]);
      expect(mine, urlPath).toEqual(expected);
      expect(theirs, urlPath).toEqual(mine);
    }
    expect((await page(nginx.port, "/shop/users/1")).headers).toEqual(["DENY", undefined]);

    // A 405 served as a page keeps its Allow (RFC 9110 §15.5.6): a static folder's, and the front door's for TRACE.
    const refused = (port: number, method: string, urlPath: string) =>
      new Promise<{ status: number; allow: string | undefined; frame: string | string[] | undefined; body: string }>((resolve, reject) => {
        http
          .request({ host: "127.0.0.1", port, path: urlPath, method, agent: false }, (res) => {
            let body = "";
            res.on("data", (chunk: Buffer) => (body += chunk));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, allow: res.headers.allow, frame: res.headers["x-frame-options"], body }));
          })
          .on("error", reject)
          .end();
      });
    const refusals: [string, string, Awaited<ReturnType<typeof refused>>][] = [
      ["POST", "/shop/index.html", { status: 405, allow: "GET, HEAD", frame: "DENY", body: "<p>stack 4xx</p>\n" }],
      ["DELETE", "/app/style.css", { status: 405, allow: "GET, HEAD", frame: undefined, body: "<p>stack 4xx</p>\n" }],
      ["TRACE", "/app/", { status: 405, allow: "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS", frame: undefined, body: "<p>stack 4xx</p>\n" }],
    ];
    for (const [method, urlPath, expected] of refusals) {
      const [theirs, mine] = await Promise.all([refused(nginx.port, method, urlPath), refused(ours, method, urlPath)]);
      expect(mine, `${method} ${urlPath}`).toEqual(expected);
      expect(theirs, `${method} ${urlPath}`).toEqual(mine);
    }

    // compress: a file without a .gz sibling gzipped on the fly by both, the fallback and an index file too; HEAD without a length.
    const gzipped = (port: number, urlPath: string, method = "GET") =>
      new Promise<{ status: number; encoding: string | undefined; length: string | undefined; vary: string | undefined; body: string }>((resolve, reject) => {
        http
          .request({ host: "127.0.0.1", port, path: urlPath, method, agent: false, headers: { "Accept-Encoding": "gzip" } }, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (chunk: Buffer) => chunks.push(chunk));
            res.on("end", () => {
              const raw = Buffer.concat(chunks);
              const body = res.headers["content-encoding"] === "gzip" && raw.length > 0 ? zlib.gunzipSync(raw) : raw;
              resolve({ status: res.statusCode ?? 0, encoding: res.headers["content-encoding"], length: res.headers["content-length"], vary: res.headers.vary, body: body.toString() });
            });
          })
          .on("error", reject)
          .end();
      });
    for (const [urlPath, method] of [["/app/style.css", "GET"], ["/app/users/42", "GET"], ["/app/docs/", "GET"], ["/app/style.css", "HEAD"]] as const) {
      const [theirs, mine] = await Promise.all([gzipped(nginx.port, urlPath, method), gzipped(ours, urlPath, method)]);
      expect(mine, `${method} ${urlPath}`).toMatchObject({ status: 200, encoding: "gzip", length: undefined, vary: "Accept-Encoding" });
      expect(theirs, `${method} ${urlPath}`).toEqual(mine);
    }
  });
});

describe("export nginx: a `$` in the config's own words", () => {
  it("reaches the client as itself in headers, redirects, a static folder, its fallback and an error page, as from the stack's own proxy", async () => {
    const dir = folder();
    const write = (file: string, content: string) => {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), content);
    };
    // nginx reads `$name` as a variable wherever a value may hold one; each of these would have been one.
    write("pub$lic/shell$page.html", "<!doctype html><title>shell</title>\n");
    write("pub$lic/price.txt", "5$\n");
    write("pages/$404.html", "<p>no such $thing</p>\n");
    const file = path.join(dir, "tsgi.yaml");
    writeFileSync(
      file,
      `proxy: { listen: ["127.0.0.1:18080"], error_pages: { 404: "pages/$404.html" } }
apps:
  shop:
    static: "pub$lic"
    routes: [{ path: /shop }]
    fallback: "/shell$page.html"
    headers: { X-Price: "5$ or $1 or $uri or $" }
  moved:
    redirect: { to: "/new$place?from=$old", status: 302, keep_path: false, keep_query: true }
    routes: [{ path: /old }]
`,
    );
    const exported = await runCli(["export", "nginx", "-c", file, "--http", "--log-dir", dir]);
    expect(exported.code, exported.stderr).toBe(0);
    // Faithful now: no difference is noted for them.
    expect(exported.stdout).not.toMatch(/^# .*variable/m);
    expect(exported.stdout).toContain('\ngeo $tsgi_dollar { default "$"; }\n');
    expect(nginxCheck(dir, exported.stdout).stderr).toContain("test is successful");
    const { nginx, ours } = await serveBoth(dir, exported.stdout, file);

    const get = (port: number, urlPath: string) =>
      new Promise<{ status: number; price: string | undefined; location: string | undefined; body: string }>((resolve, reject) => {
        http
          .get({ host: "127.0.0.1", port, path: urlPath, agent: false }, (res) => {
            let body = "";
            res.on("data", (chunk: Buffer) => (body += chunk));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, price: res.headers["x-price"] as string | undefined, location: res.headers.location, body: res.statusCode === 302 ? "" : body }));
          })
          .on("error", reject);
      });
    const expected: [string, Awaited<ReturnType<typeof get>>][] = [
      ["/shop/price.txt", { status: 200, price: "5$ or $1 or $uri or $", location: undefined, body: "5$\n" }],
      ["/shop/some/page", { status: 200, price: "5$ or $1 or $uri or $", location: undefined, body: "<!doctype html><title>shell</title>\n" }],
      ["/shop/gone.js", { status: 404, price: "5$ or $1 or $uri or $", location: undefined, body: "<p>no such $thing</p>\n" }],
      ["/old/x?a=1", { status: 302, price: undefined, location: "/new$place?from=$old&a=1", body: "" }],
    ];
    for (const [urlPath, answer] of expected) {
      const [theirs, mine] = await Promise.all([get(nginx.port, urlPath), get(ours, urlPath)]);
      expect(mine, urlPath).toEqual(answer);
      expect(theirs, urlPath).toEqual(mine);
    }
  });
});
