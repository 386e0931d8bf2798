/**
 * A static folder's `index`, `fallback` and `cache` (proxy/static-site.ts,
 * served by proxy/static.ts): one FrontProxy on 127.0.0.1 port 0 for the
 * whole file, several static apps on it, node:http clients. What a user
 * checks: the Cache-Control of each kind of file (hashed assets immutable,
 * HTML no-cache, the rest max-age), a single-page app's routes answered with
 * its index.html (200, its type, its ETag, 304 and HEAD, its precompressed
 * sibling) while missing assets stay 404, and the index list in order, or
 * none.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import type net from "node:net";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FrontProxy } from "../../src/proxy/server.ts";
import { cacheControlOf, compileStaticSite, isPageRoute } from "../../src/proxy/static-site.ts";

const SPA_INDEX = "<!doctype html><title>spa</title><script src=/app/assets/app.3f9a2c1b.js></script>\n";
const HASHED_JS = "console.log('built');\n";
const HOME = "<!doctype html><title>home.htm</title>\n";
const DOCS_INDEX = "<!doctype html><title>docs</title>\n";

let tmp = "";
let proxy: FrontProxy;
let server: http.Server;
let port = 0;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), "tsgi-static-site-"));
  const write = (file: string, content: string | Buffer) => {
    mkdirSync(path.dirname(path.join(tmp, file)), { recursive: true });
    writeFileSync(path.join(tmp, file), content);
  };
  write("spa/index.html", SPA_INDEX);
  write("spa/index.html.br", zlib.brotliCompressSync(SPA_INDEX));
  write("spa/assets/app.3f9a2c1b.js", HASHED_JS);
  write("spa/robots.txt", "User-agent: *\n");
  write("spa/.secret/notes", "never");
  write("listed/home.htm", HOME);
  write("listed/index.html", "<!doctype html><title>second in the list</title>\n");
  write("listed/docs/index.html", DOCS_INDEX);
  write("bare/hello.txt", "hello\n");
  write("bare/docs/index.html", DOCS_INDEX);
  // A fallback that is a link out of its folder: served never, as any such link.
  write("outside.html", "SECRET beside the folder\n");
  mkdirSync(path.join(tmp, "linked"));
  symlinkSync(path.join(tmp, "outside.html"), path.join(tmp, "linked", "shell.html"));
  proxy = new FrontProxy({
    routes: [
      { app: "spa", path: "/app" },
      { app: "listed", path: "/listed" },
      { app: "bare", path: "/bare" },
      { app: "linked", path: "/linked" },
    ],
    staticRoots: { spa: path.join(tmp, "spa"), listed: path.join(tmp, "listed"), bare: path.join(tmp, "bare"), linked: path.join(tmp, "linked") },
    staticSites: {
      spa: { fallback: "/index.html", cache: { maxAgeSeconds: 3600, immutable: ["assets/**"], noCache: ["*.html"] } },
      listed: { index: ["home.htm", "index.html"] },
      bare: { index: [] },
      linked: { fallback: "/shell.html" },
    },
    compress: { spa: { types: ["text/*"], minLength: 0, encodings: ["br", "gzip"], levels: { gzip: 6, br: 4, zstd: 3 } } },
  });
  server = http.createServer(proxy.handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  proxy?.close();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  rmSync(tmp, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

function request(urlPath: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: urlPath, method: options.method ?? "GET", agent: false, headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString("utf8") });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("cache: Cache-Control by file name", () => {
  it("hashed assets are immutable for a year, HTML is no-cache, the rest max_age", async () => {
    const hashed = await request("/app/assets/app.3f9a2c1b.js");
    expect(hashed.status).toBe(200);
    expect(hashed.text).toBe(HASHED_JS);
    expect(hashed.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    const robots = await request("/app/robots.txt");
    expect(robots.headers["cache-control"]).toBe("public, max-age=3600");
    const home = await request("/app/");
    expect(home.text).toBe(SPA_INDEX);
    expect(home.headers["cache-control"]).toBe("no-cache");
    expect((await request("/app/index.html")).headers["cache-control"]).toBe("no-cache");
  });

  it("a 304 keeps the file's Cache-Control; an error answer has none", async () => {
    const first = await request("/app/assets/app.3f9a2c1b.js");
    const again = await request("/app/assets/app.3f9a2c1b.js", { headers: { "If-None-Match": first.headers.etag! } });
    expect(again.status).toBe(304);
    expect(again.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    const missing = await request("/app/assets/gone.3f9a2c1b.js");
    expect(missing.status).toBe(404);
    expect(missing.headers["cache-control"]).toBeUndefined();
  });

  it("a folder without `cache` keeps send's public, max-age=0", async () => {
    const hello = await request("/bare/hello.txt");
    expect(hello.status).toBe(200);
    expect(hello.headers["cache-control"]).toBe("public, max-age=0");
  });
});

describe("fallback: a single-page app's routes", () => {
  it("answers a page route where nothing exists with the fallback file: 200, its type, its ETag, no-cache", async () => {
    const index = await request("/app/index.html");
    for (const route of ["/app/users/42", "/app/about/", "/app/settings?tab=profile"]) {
      const answer = await request(route);
      expect(answer.status, route).toBe(200);
      expect(answer.text, route).toBe(SPA_INDEX);
      expect(answer.headers["content-type"], route).toBe("text/html; charset=utf-8");
      expect(answer.headers.etag, route).toBe(index.headers.etag);
      expect(answer.headers["cache-control"], route).toBe("no-cache");
    }
  });

  it("conditional requests and HEAD work on the fallback as on the file itself", async () => {
    const first = await request("/app/users/42");
    const unchanged = await request("/app/users/7", { headers: { "If-None-Match": first.headers.etag! } });
    expect(unchanged.status).toBe(304);
    expect(unchanged.body.length).toBe(0);
    const head = await request("/app/users/42", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers["content-length"]).toBe(String(Buffer.byteLength(SPA_INDEX)));
    expect(head.body.length).toBe(0);
  });

  it("serves the fallback's precompressed sibling to a client that accepts it", async () => {
    const answer = await request("/app/users/42", { headers: { "Accept-Encoding": "br, gzip" } });
    expect(answer.status).toBe(200);
    expect(answer.headers["content-encoding"]).toBe("br");
    expect(answer.headers.vary).toBe("Accept-Encoding");
    expect(answer.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(answer.headers["cache-control"]).toBe("no-cache");
    expect(zlib.brotliDecompressSync(answer.body).toString()).toBe(SPA_INDEX);
  });

  it("a missing file (a dot in its last segment), a dotfile and a method other than GET/HEAD do not fall back", async () => {
    for (const missing of ["/app/missing.js", "/app/assets/app.0000beef.css", "/app/favicon.ico"]) {
      const answer = await request(missing);
      expect(answer.status, missing).toBe(404);
      expect(answer.headers["content-type"], missing).toBe("text/plain; charset=utf-8");
    }
    expect((await request("/app/.secret/notes")).status).toBe(404);
    expect((await request("/app/.secret/route")).status).toBe(404);
    expect((await request("/app/users/42", { method: "POST" })).status).toBe(405);
  });

  it("a fallback that links out of the folder is 404, its target never sent", async () => {
    const answer = await request("/linked/users/42");
    expect(answer.status).toBe(404);
    expect(answer.text).not.toContain("SECRET");
  });
});

describe("index: the files of a folder URL", () => {
  it("serves the first index file that exists, in the list's order", async () => {
    expect((await request("/listed/")).text).toBe(HOME);
    expect((await request("/listed/docs/")).text).toBe(DOCS_INDEX);
    const redirect = await request("/listed/docs");
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe("/listed/docs/");
  });

  it("index: [] answers a folder URL 403, after the usual slash redirect (no loop), and files as ever", async () => {
    expect((await request("/bare/")).status).toBe(403);
    const redirect = await request("/bare/docs");
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe("/bare/docs/");
    expect((await request("/bare/docs/")).status).toBe(403);
    expect((await request("/bare/docs/index.html")).text).toBe(DOCS_INDEX);
  });
});

describe("the rules alone", () => {
  it("no_cache before immutable before max_age; a glob without / matches the file name anywhere", () => {
    const rule = cacheControlOf({ maxAgeSeconds: 60, immutable: ["*.woff2", "static/**"], noCache: ["*.html", "static/sw.js"] });
    expect(rule("fonts/inter.woff2")).toBe("public, max-age=31536000, immutable");
    expect(rule("static/js/main.1a2b.js")).toBe("public, max-age=31536000, immutable");
    expect(rule("static/sw.js")).toBe("no-cache");
    expect(rule("static/page.html")).toBe("no-cache");
    expect(rule("img/logo.png")).toBe("public, max-age=60");
  });

  it("a page route has no dot in its last segment", () => {
    expect(isPageRoute("/users/42")).toBe(true);
    expect(isPageRoute("/about/")).toBe(true);
    // A trailing slash makes any last segment a page route (the docs' advice for names with a dot), as in the nginx export.
    expect(isPageRoute("/users/jane.doe/")).toBe(true);
    expect(isPageRoute("/v1.2/notes")).toBe(true);
    expect(isPageRoute("/missing.js")).toBe(false);
    expect(isPageRoute("/users/john.doe")).toBe(false);
  });

  it("the fallback path is handed to send percent-encoded", () => {
    expect(compileStaticSite({ fallback: "/app shell/100%.html" }).fallback).toEqual({ decoded: "/app shell/100%.html", raw: "/app%20shell/100%25.html" });
    expect(compileStaticSite(undefined).cacheControl).toBeUndefined();
  });
});

describe("a reload", () => {
  it("swaps the rules at once: without `cache` and `fallback`, send's max-age=0 and 404 again", async () => {
    proxy.reconfigure({
      routes: [{ app: "spa", path: "/app" }],
      staticRoots: { spa: path.join(tmp, "spa") },
    });
    expect((await request("/app/assets/app.3f9a2c1b.js")).headers["cache-control"]).toBe("public, max-age=0");
    expect((await request("/app/users/42")).status).toBe(404);
  });
});
