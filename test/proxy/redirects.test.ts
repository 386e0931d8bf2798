/**
 * The proxy's own answers and per-app headers on real sockets (issue #13):
 * `redirect` apps, `trailing_slash`, `headers` and `proxy.https_redirect`,
 * each configured from YAML through the loader and stack/proxy-settings.ts
 * (what a proxy process runs from). Two FrontProxies on 127.0.0.1 port 0 in
 * front of one node:http worker: one with plain listeners that serve the
 * apps, one whose plain listener redirects to its HTTPS listener (node:https
 * with the test certificate). Clients are node:http/https and raw sockets,
 * so that paths such as `//evil.com` go out exactly as written.
 */
import fs from "node:fs";
import os from "node:os";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import nodePath from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.ts";
import { FrontProxy, type AccessEntry } from "../../src/proxy/server.ts";
import { frontProxyOptions } from "../../src/stack/proxy-settings.ts";
import { selfSignedPair } from "../helpers/certs.ts";

let certDir: string;

const servers: net.Server[] = [];
const proxies: FrontProxy[] = [];
const log: AccessEntry[] = [];

async function listen(server: net.Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as net.AddressInfo).port;
}

function optionsFrom(yaml: string) {
  const result = parseConfig(yaml, { file: "tsgi.yaml", dir: "/srv", env: {}, probe: (p) => (p === "/srv" ? "dir" : p.startsWith("/srv/certs/") ? "file" : undefined) });
  if (!result.ok) expect.fail(result.errors.map((error) => error.format()).join("\n"));
  return frontProxyOptions(result.config);
}

const APPS = `
apps:
  web:
    command: "node server.js"
    routes: [{ host: app.test }]
    trailing_slash: add
    headers:
      Strict-Transport-Security: max-age=31536000
      X-Frame-Options: DENY
      X-Worker: null
  api:
    command: "node server.js"
    routes: [{ path: /api }]
    trailing_slash: remove
  down:
    command: "node server.js"
    routes: [{ path: /down }]
    headers: { X-App: down, vary: Origin, content-type: application/json }
  moved:
    redirect: { to: "https://new.test/manual", status: 308 }
    routes: [{ path: /docs }]
    headers: { Cache-Control: no-store }
  plain:
    redirect: { to: "/new?src=old", status: 302, keep_path: false }
    routes: [{ path: /plain }]
  bare:
    redirect: { to: "/here", keep_query: false }
    routes: [{ path: /bare }]
  local:
    redirect: { to: / }
    routes: [{ host: old.test, path: /go }]
  www:
    redirect: { to: "https://example.com" }
    routes: [{ host: www.example.com }]
`;

let plainPort: number;
let redirectingPort: number;
let tlsPort: number;

beforeAll(async () => {
  // The worker echoes what it was asked, with headers of its own that `headers` replaces.
  const worker = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { "Content-Type": "application/json", "X-Frame-Options": "SAMEORIGIN", "X-Worker": "yes" });
    res.end(JSON.stringify({ method: req.method, url: req.url }));
  });
  const workerPort = await listen(worker);
  const endpoint = { id: "w.0", address: { kind: "tcp" as const, host: "127.0.0.1", port: workerPort } };

  const plain = new FrontProxy({ ...optionsFrom(APPS), onResponse: (entry) => log.push(entry) });
  for (const app of ["web", "api"]) plain.setEndpoints(app, [{ ...endpoint, id: `${app}.0` }]);
  const plainFront = http.createServer(plain.handle);
  plainFront.on("upgrade", plain.handleUpgrade);
  plainPort = await listen(plainFront);

  // `port: 8443` in the Location: the HTTPS listener's own port is the kernel's pick (the default takes tls.listen's first).
  const redirecting = new FrontProxy(
    optionsFrom(`proxy:\n  tls: { cert: certs/cert.pem, key: certs/key.pem }\n  https_redirect: { port: 8443 }\n${APPS}`),
  );
  redirecting.setEndpoints("web", [endpoint]);
  const redirectingFront = http.createServer(redirecting.handle);
  redirectingFront.on("upgrade", redirecting.handleUpgrade);
  redirectingPort = await listen(redirectingFront);
  certDir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "tsgi-redirects-"));
  const { cert, key } = selfSignedPair(certDir, "app.test");
  const tls = { cert: fs.readFileSync(cert), key: fs.readFileSync(key) };
  tlsPort = await listen(https.createServer(tls, redirecting.handle));
  proxies.push(plain, redirecting);
});

afterAll(async () => {
  for (const proxy of proxies) proxy.close();
  await Promise.all(
    servers.map((server) => {
      (server as http.Server).closeAllConnections?.();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    }),
  );
  if (certDir) fs.rmSync(certDir, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  raw: string[];
  body: string;
}

function request(port: number, path: string, host: string, options: { method?: string; tls?: boolean; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const send = options.tls ? https.request : http.request;
    const req = send(
      { host: "127.0.0.1", port, path, method: options.method ?? "GET", agent: false, headers: { Host: host, ...options.headers }, rejectUnauthorized: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, raw: res.rawHeaders, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** The raw answer to raw request bytes (a request node:http would not send as written). */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(text));
    let answer = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk) => (answer += chunk));
    socket.on("end", () => resolve(answer));
    socket.on("error", reject);
  });
}

const location = async (path: string, host = "any.test") => {
  const reply = await request(plainPort, path, host);
  return `${reply.status} ${reply.headers.location ?? "-"}`;
};

describe("redirect apps", () => {
  it("send the path below the route and the query on, as configured, with a short body", async () => {
    const reply = await request(plainPort, "/docs/a/b?x=1&y=2", "any.test");
    expect(reply.status).toBe(308);
    expect(reply.headers.location).toBe("https://new.test/manual/a/b?x=1&y=2");
    expect(reply.body).toBe("Permanent Redirect: https://new.test/manual/a/b?x=1&y=2\n");
    expect(reply.headers["x-request-id"]).toBeTruthy();
    // A browser gets the same line: a redirect is no error, so no error page (and no Vary: Accept).
    const browser = await request(plainPort, "/docs/a", "any.test", { headers: { Accept: "text/html,application/xhtml+xml,*/*;q=0.8" } });
    expect([browser.status, browser.headers["content-type"], browser.body, browser.headers.vary]).toEqual([
      308,
      "text/plain; charset=utf-8",
      "Permanent Redirect: https://new.test/manual/a\n",
      undefined,
    ]);
    expect(await location("/docs")).toBe("308 https://new.test/manual");
    expect(await location("/docs/")).toBe("308 https://new.test/manual/");
    // keep_path: false, `to`'s own query first; keep_query: false drops the request's.
    expect(await location("/plain/x/y?q=1")).toBe("302 /new?src=old&q=1");
    expect(await location("/bare/x?q=1")).toBe("301 /here/x");
    // A host-only route moves the whole host; the default status is 301.
    expect(await location("/a/b?x=1", "www.example.com")).toBe("301 https://example.com/a/b?x=1");
    expect(await location("/", "www.example.com")).toBe("301 https://example.com/");
    expect(await location("/?x=1", "www.example.com")).toBe("301 https://example.com/?x=1");
  });

  it("keep the path's percent-encoding; a raw byte outside ASCII never reaches a Location", async () => {
    expect(await location("/docs/a%2Fb%20c/%E2%82%AC", "x.test")).toBe("308 https://new.test/manual/a%2Fb%20c/%E2%82%AC");
    // node's strict parser refuses the byte itself (redirect-rules.test.ts: were one let through, it would be %-encoded).
    const answer = await raw(plainPort, "GET /docs/caf\xe9 HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
  });

  it("never send a client to another host through a `//` path (no open redirect)", async () => {
    // `/go` redirects to `/` + what follows it: `/go//evil.com` would be `//evil.com`, another host to a browser.
    expect(await location("/go//evil.com", "old.test")).toBe("301 /evil.com");
    expect(await location("/go//evil.com/x?y=1", "old.test")).toBe("301 /evil.com/x?y=1");
    expect(await location("/go/\\evil.com", "old.test")).toBe("301 /evil.com");
    expect(await location("/go///evil.com", "old.test")).toBe("301 /evil.com");
    expect(await location("/go/a/b", "old.test")).toBe("301 /a/b");
    // An absolute target keeps its own host whatever the path (as nginx's $request_uri would).
    expect(await location("//evil.com", "www.example.com")).toBe("301 https://example.com//evil.com");
  });

  it("answer HEAD with the same head and no body, and log a 3xx with no error code and no body bytes", async () => {
    const reply = await request(plainPort, "/docs/x", "any.test", { method: "HEAD" });
    expect([reply.status, reply.headers.location, reply.body]).toEqual([308, "https://new.test/manual/x", ""]);
    const entry = log.find((candidate) => candidate.url === "/docs/x" && candidate.method === "HEAD");
    expect(entry).toMatchObject({ status: 308, app: "moved", bytes: 0 });
    expect(entry?.error).toBeUndefined();
    expect(entry?.endpoint).toBeUndefined();
  });

  it("answer an upgrade request with the redirect too", async () => {
    const answer = await raw(plainPort, "GET /docs/ws HTTP/1.1\r\nHost: x.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 308 Permanent Redirect\r\n/);
    expect(answer).toContain("\r\nLocation: https://new.test/manual/ws\r\n");
  });
});

describe("trailing_slash", () => {
  it("add: 308 to the slash form with the query kept; a file name and the slash form itself pass", async () => {
    expect(await location("/a/b?x=1", "app.test")).toBe("308 /a/b/?x=1");
    const post = await request(plainPort, "/form", "app.test", { method: "POST" });
    expect([post.status, post.headers.location]).toEqual([308, "/form/"]);
    const file = await request(plainPort, "/app.js", "app.test");
    expect([file.status, JSON.parse(file.body).url]).toEqual([200, "/app.js"]);
    const slashed = await request(plainPort, "/a/b/?x=1", "app.test");
    expect([slashed.status, JSON.parse(slashed.body).url]).toEqual([200, "/a/b/?x=1"]);
    // `//evil` gets its slash on the same host, never a Location of another (`//evil/`).
    expect(await location("//evil", "app.test")).toBe("308 /evil/");
  });

  it("remove: 308 to the path without its slash; the route's own path and `/` are left alone", async () => {
    expect(await location("/api/users/?page=2")).toBe("308 /api/users?page=2");
    expect(await location("/api/")).toBe("308 /api");
    const bare = await request(plainPort, "/api/users?page=2", "any.test");
    expect([bare.status, JSON.parse(bare.body).url]).toEqual([200, "/api/users?page=2"]);
  });
});

describe("headers", () => {
  it("are set on a worker's responses, replacing the worker's header of the same name; null removes the worker's", async () => {
    const reply = await request(plainPort, "/a/", "app.test");
    expect(reply.status).toBe(200);
    expect(reply.headers["strict-transport-security"]).toBe("max-age=31536000");
    expect(reply.raw.filter((_, i) => i % 2 === 0 && reply.raw[i]!.toLowerCase() === "x-frame-options")).toHaveLength(1);
    expect(reply.headers["x-frame-options"]).toBe("DENY");
    expect(reply.headers["x-worker"]).toBeUndefined();
    expect((await request(plainPort, "/api/x", "any.test")).headers["x-worker"]).toBe("yes");
    // The proxy's own redirect for the app carries them too (nginx's `always`).
    expect((await request(plainPort, "/a", "app.test")).headers["strict-transport-security"]).toBe("max-age=31536000");
  });

  it("are set on the proxy's own errors and redirects for the app, and on no other app", async () => {
    const down = await request(plainPort, "/down", "any.test");
    expect([down.status, down.headers["x-app"]]).toEqual([503, "down"]);
    // The app's Vary joins the proxy's (one header, in any case of its name); the proxy's body keeps its own Content-Type.
    const page = await request(plainPort, "/down", "any.test", { headers: { Accept: "text/html" } });
    expect(page.raw.filter((_, i) => i % 2 === 0 && /^vary$/i.test(page.raw[i]!))).toHaveLength(1);
    expect([page.headers.vary, page.headers["content-type"]]).toEqual(["Accept, Origin", "text/html; charset=utf-8"]);
    expect(down.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect((await request(plainPort, "/docs", "any.test")).headers["cache-control"]).toBe("no-store");
    const api = await request(plainPort, "/api/x", "any.test");
    expect([api.headers["x-app"], api.headers["strict-transport-security"]]).toEqual([undefined, undefined]);
  });
});

describe("proxy.https_redirect", () => {
  it("sends every request on the plain listener to HTTPS: same host, the configured port, path and query as sent", async () => {
    const get = await request(redirectingPort, "/a/b?x=1", "app.test");
    expect([get.status, get.headers.location]).toEqual([308, "https://app.test:8443/a/b?x=1"]);
    const withPort = await request(redirectingPort, "/x", "app.test:8080", { method: "POST" });
    expect([withPort.status, withPort.headers.location]).toEqual([308, "https://app.test:8443/x"]);
    const ipv6 = await request(redirectingPort, "//evil.com/%2F", "[::1]:80");
    expect(ipv6.headers.location).toBe("https://[::1]:8443//evil.com/%2F");
    // Before routing: even a host no route names.
    expect((await request(redirectingPort, "/", "nowhere.test")).headers.location).toBe("https://nowhere.test:8443/");
  });

  it("refuses to make a Location without a valid Host: none (HTTP/1.0) or a malformed one gets 400", async () => {
    expect(await raw(redirectingPort, "GET /x HTTP/1.0\r\n\r\n")).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw(redirectingPort, "GET /x HTTP/1.1\r\nHost: evil.com/x\r\n\r\n")).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw(redirectingPort, "GET /x HTTP/1.1\r\nHost: a@evil.com\r\n\r\n")).toMatch(/^HTTP\/1\.1 400 /);
  });

  it("leaves ACME's challenge path on plain HTTP, and the HTTPS listener serves the apps", async () => {
    // (With a slash at the end: the app's trailing_slash: add would redirect the bare token.)
    const acme = await request(redirectingPort, "/.well-known/acme-challenge/token/", "app.test");
    expect([acme.status, JSON.parse(acme.body).url]).toEqual([200, "/.well-known/acme-challenge/token/"]);
    expect((await request(redirectingPort, "/.well-known/other", "app.test")).headers.location).toBe("https://app.test:8443/.well-known/other");
    const secure = await request(tlsPort, "/a/?x=1", "app.test", { tls: true });
    expect([secure.status, JSON.parse(secure.body).url, secure.headers["strict-transport-security"]]).toEqual([200, "/a/?x=1", "max-age=31536000"]);
  });
});

describe("OPTIONS * (RFC 9112 §3.2.4: a question about the server, at no path)", () => {
  const head = (answer: string) => answer.split("\r\n\r\n")[0]!;
  it("is never redirected to a Location made of `*`: https_redirect and trailing_slash leave it to the worker, a redirect app refuses it, 400", async () => {
    const https = head(await raw(redirectingPort, "OPTIONS * HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"));
    expect(https).toMatch(/^HTTP\/1\.1 200 /);
    expect(https).not.toMatch(/^location:/im);
    const slash = head(await raw(plainPort, "OPTIONS * HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"));
    expect(slash).toMatch(/^HTTP\/1\.1 200 /);
    const redirect = head(await raw(plainPort, "OPTIONS * HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"));
    expect(redirect).toMatch(/^HTTP\/1\.1 400 /);
    expect(redirect).not.toMatch(/^location:/im);
  });
});
