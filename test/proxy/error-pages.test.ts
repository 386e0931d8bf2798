/**
 * The proxy's own error answers as a user sees them (issue #13 item 5): two
 * FrontProxy instances on 127.0.0.1 port 0, configured from YAML files on
 * disk through the loader and stack/proxy-settings.ts (what a proxy process
 * runs from) — one without `error_pages` (the default pages), one with pages
 * on the stack and on apps — in front of a real node:http worker that
 * answers its own 404 and 500, and an app whose worker is unreachable.
 * Clients are node:http, with a browser's Accept, curl's, or none.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.ts";
import { escapeHtml } from "../../src/proxy/error-pages/default-page.ts";
import { prefersHtml } from "../../src/proxy/error-pages/negotiate.ts";
import { ErrorPages } from "../../src/proxy/error-pages/pages.ts";
import { FrontProxy } from "../../src/proxy/server.ts";
import { plan, type StackPlan } from "../../src/stack/plan.ts";
import { frontProxyOptions } from "../../src/stack/proxy-settings.ts";
import { type PlanRunner, Reloader } from "../../src/stack/reload.ts";

/** Firefox's Accept for a page. */
const BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
/** curl's default. */
const CURL = "*/*";

describe("the pure rules: Accept negotiation, page lookup, escaping", () => {
  it.each([
    [BROWSER, true],
    ["text/html", true],
    ["text/html, */*", true],
    ["text/html;q=0.9, text/plain;q=0.5", true],
    ["TEXT/HTML; Q=1", true],
    [undefined, false],
    ["", false],
    [CURL, false],
    ["text/*", false],
    ["application/json", false],
    ["text/plain, text/html", false],
    ["text/html;q=0.5, text/plain", false],
    ["text/html;q=0, */*", false],
    ["text/html;q=bogus", false],
    ["*/*;q=0.1, text/html;q=0.1", true],
  ])("Accept %j -> HTML %s", (accept, html) => {
    expect(prefersHtml(accept)).toBe(html);
  });

  it("ErrorPages: the app's map before the stack's, an exact status before its class", () => {
    const pages = new ErrorPages({ stack: { "502": "stack 502", "4xx": "stack 4xx" }, apps: { api: { "5xx": "api 5xx", "404": "api 404" } } });
    const text = (app: string | undefined, status: number) => pages.pageFor(app, status)?.toString();
    expect(text("api", 502)).toBe("api 5xx");
    expect(text("api", 404)).toBe("api 404");
    expect(text("api", 429)).toBe("stack 4xx");
    expect(text("web", 502)).toBe("stack 502");
    expect(text("web", 503)).toBeUndefined();
    expect(text(undefined, 404)).toBe("stack 4xx");
    expect(new ErrorPages().pageFor("api", 502)).toBeUndefined();
  });

  it("escapeHtml escapes what could open a tag or leave an attribute", () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  });
});

// ---- plumbing: a folder of pages and configs, servers and proxies closed after all ----

const dir = mkdtempSync(path.join(os.tmpdir(), "tsgi-error-pages-"));
const servers: http.Server[] = [];
const proxies: FrontProxy[] = [];

afterAll(async () => {
  for (const proxy of proxies) proxy.close();
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  rmSync(dir, { recursive: true, force: true });
});

async function listen(server: http.Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as net.AddressInfo).port;
}

/** A port nothing listens on (bound, then closed): connecting to it is refused at once. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const PAGES = {
  "stack-404.html": "<!doctype html><title>stack 404</title><p>Nothing here.</p>\n",
  "stack-5xx.html": "<!doctype html><title>stack 5xx</title><p>Our side broke.</p>\n",
  "api-502.html": "<!doctype html><title>api 502</title><p>The API is down. ✓</p>\n",
  "web-4xx.html": "<!doctype html><title>web 4xx</title><p>That was refused.</p>\n",
};

const APPS = `apps:
  web:
    command: "node server.js"
    routes: [{ path: /web }]
  api:
    command: "node api.js"
    routes: [{ path: /api }]
    retry: { tries: 1 }
  other:
    command: "node other.js"
    routes: [{ path: /other }]
    retry: { tries: 1 }
  files:
    static: site
    routes: [{ path: /files }]
`;

/** A FrontProxy from a config file written in `dir`, `web` on the real worker, `api` and `other` on a closed port. */
async function proxyFrom(name: string, yaml: string, workerPort: number, downPort: number): Promise<number> {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  const loaded = loadConfig(file);
  if (!loaded.ok) expect.fail(loaded.errors.map((error) => error.format()).join("\n"));
  const proxy = new FrontProxy(frontProxyOptions(loaded.config));
  proxies.push(proxy);
  proxy.setEndpoints("web", [{ id: "web.0", address: { kind: "tcp", host: "127.0.0.1", port: workerPort } }]);
  for (const app of ["api", "other"]) proxy.setEndpoints(app, [{ id: `${app}.0`, address: { kind: "tcp", host: "127.0.0.1", port: downPort } }]);
  return listen(http.createServer(proxy.handle));
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(port: number, urlPath: string, options: { accept?: string; method?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, path: urlPath, method: options.method ?? "GET", agent: false, headers: options.accept === undefined ? {} : { Accept: options.accept } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

let plainPort = 0;
let pagesPort = 0;

beforeAll(async () => {
  mkdirSync(path.join(dir, "pages"));
  mkdirSync(path.join(dir, "site"));
  writeFileSync(path.join(dir, "site", "index.html"), "<p>home</p>\n");
  for (const [name, html] of Object.entries(PAGES)) writeFileSync(path.join(dir, "pages", name), html);
  const workerPort = await listen(
    http.createServer((req, res) => {
      // The worker's own errors, in its own words: the proxy must pass them on as they are (a command app sees its mount too).
      if (req.url?.endsWith("/own500")) return res.writeHead(500, { "Content-Type": "application/json" }).end('{"error":"worker 500"}');
      if (req.url?.endsWith("/own404")) return res.writeHead(404, { "Content-Type": "text/plain" }).end("worker's own 404");
      res.end("ok");
    }),
  );
  const downPort = await closedPort();
  plainPort = await proxyFrom("plain", APPS, workerPort, downPort);
  const pages = `proxy:
  error_pages:
    404: pages/stack-404.html
    5xx: pages/stack-5xx.html
${APPS.replace("    routes: [{ path: /web }]\n", "    routes: [{ path: /web }]\n    error_pages: { 4xx: pages/web-4xx.html }\n").replace(
  "    routes: [{ path: /api }]\n",
  "    routes: [{ path: /api }]\n    error_pages:\n      502: pages/api-502.html\n",
)}`;
  pagesPort = await proxyFrom("pages", pages, workerPort, downPort);
});

describe("the default pages (no error_pages)", () => {
  it("a client without Accept, or curl's */*, gets the plain text as ever, with Vary: Accept", async () => {
    for (const accept of [undefined, CURL, "application/json"]) {
      const reply = await request(plainPort, "/nothing", { accept });
      expect(reply.status).toBe(404);
      expect(reply.body.toString()).toBe(`Not Found: no app is routed for 127.0.0.1:${plainPort}/nothing\n`);
      expect(reply.headers["content-type"]).toBe("text/plain; charset=utf-8");
      expect(reply.headers.vary).toBe("Accept");
    }
  });

  it("a browser gets a self-contained HTML page: status, reason, what happened, the request id", async () => {
    const reply = await request(plainPort, "/nothing", { accept: BROWSER });
    const html = reply.body.toString();
    expect(reply.status).toBe(404);
    expect(reply.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(reply.headers.vary).toBe("Accept");
    expect(Number(reply.headers["content-length"])).toBe(reply.body.byteLength);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain("<title>404 Not Found</title>");
    expect(html).toContain(`No app is routed for 127.0.0.1:${plainPort}/nothing.`);
    expect(html).toContain(`<code>${reply.headers["x-request-id"]}</code>`);
    expect(html).not.toMatch(/<script|src=|href=|url\(/i);
  });

  it("what the client sent is escaped in the page", async () => {
    const reply = await request(plainPort, "/<b>x</b>", { accept: BROWSER });
    expect(reply.status).toBe(404);
    expect(reply.body.toString()).toContain("/&lt;b&gt;x&lt;/b&gt;.");
    expect(reply.body.toString()).not.toContain("<b>");
  });

  it("an unreachable worker: a 502 page for a browser, plain text for curl", async () => {
    const page = await request(plainPort, "/api/x", { accept: BROWSER });
    expect(page.status).toBe(502);
    expect(page.body.toString()).toContain("<title>502 Bad Gateway</title>");
    expect(page.body.toString()).toContain("App &quot;api&quot; did not answer.");
    const text = await request(plainPort, "/api/x", { accept: CURL });
    expect(text.status).toBe(502);
    expect(text.body.toString()).toBe('Bad Gateway: app "api" did not answer\n');
  });

  it("a static folder's own 404 stays its plain text (no default HTML page there)", async () => {
    const reply = await request(plainPort, "/files/missing.html", { accept: BROWSER });
    expect(reply.status).toBe(404);
    expect(reply.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(reply.body.toString()).toBe("Not Found: /files/missing.html\n");
  });

  it("HEAD gets the head alone, its Content-Length the page's", async () => {
    const get = await request(plainPort, "/nothing", { accept: BROWSER });
    const head = await request(plainPort, "/nothing", { accept: BROWSER, method: "HEAD" });
    expect(head.status).toBe(404);
    expect(head.body.byteLength).toBe(0);
    expect(head.headers["content-type"]).toBe("text/html; charset=utf-8");
    // The request id differs between the two (a UUID each, same length): so does nothing else.
    expect(Number(head.headers["content-length"])).toBe(get.body.byteLength);
  });

  it("a worker's own 500 and 404 pass through untouched, whatever the Accept", async () => {
    const own500 = await request(plainPort, "/web/own500", { accept: BROWSER });
    expect(own500.status).toBe(500);
    expect(own500.headers["content-type"]).toBe("application/json");
    expect(own500.body.toString()).toBe('{"error":"worker 500"}');
    expect(own500.headers.vary).toBeUndefined();
    const own404 = await request(plainPort, "/web/own404", { accept: BROWSER });
    expect(own404.body.toString()).toBe("worker's own 404");
  });
});

describe("error_pages from files", () => {
  const page = (name: keyof typeof PAGES) => PAGES[name];

  it("the stack's page for a status, to every client, with the original status and no Vary", async () => {
    for (const accept of [undefined, CURL, BROWSER]) {
      const reply = await request(pagesPort, "/nothing", { accept });
      expect(reply.status).toBe(404);
      expect(reply.headers["content-type"]).toBe("text/html; charset=utf-8");
      expect(reply.headers.vary).toBeUndefined();
      expect(reply.body.toString()).toBe(page("stack-404.html"));
      expect(Number(reply.headers["content-length"])).toBe(Buffer.byteLength(page("stack-404.html")));
    }
  });

  it("a class of the stack's (5xx) answers an app without pages", async () => {
    const reply = await request(pagesPort, "/other/x", { accept: CURL });
    expect(reply.status).toBe(502);
    expect(reply.body.toString()).toBe(page("stack-5xx.html"));
  });

  it("the app's page wins over the stack's: api's 502 over the stack's 5xx (its bytes exactly, UTF-8)", async () => {
    const reply = await request(pagesPort, "/api/x", { accept: CURL });
    expect(reply.status).toBe(502);
    expect(reply.body.toString()).toBe(page("api-502.html"));
    expect(Number(reply.headers["content-length"])).toBe(Buffer.byteLength(page("api-502.html")));
  });

  it("an app's class page (4xx) answers its 405 (TRACE), and HEAD gets its head alone", async () => {
    const trace = await request(pagesPort, "/web/x", { method: "TRACE" });
    expect(trace.status).toBe(405);
    expect(trace.headers.allow).toBeTruthy();
    expect(trace.body.toString()).toBe(page("web-4xx.html"));
    const head = await request(pagesPort, "/nothing", { method: "HEAD" });
    expect(head.status).toBe(404);
    expect(head.body.byteLength).toBe(0);
    expect(Number(head.headers["content-length"])).toBe(Buffer.byteLength(page("stack-404.html")));
  });

  it("never a worker's bytes replaced: its own 404 and 500 pass through, under an app with 4xx and a stack with 5xx pages", async () => {
    const own404 = await request(pagesPort, "/web/own404", { accept: BROWSER });
    expect(own404.status).toBe(404);
    expect(own404.body.toString()).toBe("worker's own 404");
    const own500 = await request(pagesPort, "/web/own500", { accept: BROWSER });
    expect(own500.status).toBe(500);
    expect(own500.body.toString()).toBe('{"error":"worker 500"}');
  });

  it("a static folder's own 404 takes the page too, as nginx's error_page does; its files are untouched", async () => {
    const missing = await request(pagesPort, "/files/missing.html", { accept: CURL });
    expect(missing.status).toBe(404);
    expect(missing.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(missing.body.toString()).toBe(page("stack-404.html"));
    const found = await request(pagesPort, "/files/", { accept: CURL });
    expect(found.status).toBe(200);
    expect(found.body.toString()).toBe("<p>home</p>\n");
  });

  it("a page file removed after loading is still served as it was read", async () => {
    rmSync(path.join(dir, "pages", "stack-5xx.html"));
    const reply = await request(pagesPort, "/other/x");
    expect(reply.body.toString()).toBe(page("stack-5xx.html"));
    writeFileSync(path.join(dir, "pages", "stack-5xx.html"), page("stack-5xx.html"));
  });
});

describe("error_pages across a reload", () => {
  const reloadDir = path.join(dir, "reload");
  const file = path.join(reloadDir, "tsgi.yaml");

  function runner(): PlanRunner & { applied: StackPlan[] } {
    const loaded = loadConfig(file);
    if (!loaded.ok) expect.fail(loaded.errors.map((error) => error.format()).join("\n"));
    const applied: StackPlan[] = [];
    const state = {
      applied,
      current: plan(loaded.config),
      apply: async (next: StackPlan) => {
        applied.push(next);
        state.current = next;
      },
      roll: async () => ({ app: "web", ok: true, replaced: 0, ms: 0 }),
    };
    return state;
  }

  it("an edited page is a changed setting a reload applies; a missing one refuses the reload and the running pages stay", async () => {
    mkdirSync(reloadDir);
    writeFileSync(path.join(reloadDir, "502.html"), "<p>first</p>\n");
    writeFileSync(file, "proxy:\n  error_pages:\n    502: 502.html\napps:\n  web:\n    command: node server.js\n    routes: [{ path: /w }]\n");
    const stack = runner();
    const reloader = new Reloader(stack, { configFile: file, say: () => undefined });
    expect(stack.current.proxy.settings.proxy.errorPages).toEqual({ stack: { "502": "<p>first</p>\n" } });

    writeFileSync(path.join(reloadDir, "502.html"), "<p>second</p>\n");
    const edited = await reloader.reloadConfig();
    expect(edited.config).toBe("applied");
    expect(edited.changes).toContain("proxy routing and settings updated");
    expect(stack.current.proxy.settings.proxy.errorPages).toEqual({ stack: { "502": "<p>second</p>\n" } });

    rmSync(path.join(reloadDir, "502.html"));
    const refused = await reloader.reloadConfig();
    expect(refused.config).toBe("invalid");
    expect(refused.configErrors).toEqual([`${file}:3:5 proxy.error_pages["502"]: no such file: ${path.join(reloadDir, "502.html")}`]);
    expect(stack.applied).toHaveLength(1);
    expect(stack.current.proxy.settings.proxy.errorPages).toEqual({ stack: { "502": "<p>second</p>\n" } });
  });

  it("validate: a page over 1 MiB is named with its size", () => {
    const big = path.join(reloadDir, "big.html");
    writeFileSync(big, Buffer.alloc(1024 * 1024 + 1, "a"));
    writeFileSync(path.join(reloadDir, "big.yaml"), "apps:\n  web:\n    command: node server.js\n    error_pages: { 5xx: big.html }\n");
    const loaded = loadConfig(path.join(reloadDir, "big.yaml"));
    expect(loaded.ok).toBe(false);
    if (!loaded.ok) {
      expect(loaded.errors.map((error) => error.format())).toEqual([
        `${path.join(reloadDir, "big.yaml")}:4:20 apps.web.error_pages["5xx"]: ${big} is 1048577 bytes; at most 1048576 (1 MiB)`,
      ]);
    }
  });
});
