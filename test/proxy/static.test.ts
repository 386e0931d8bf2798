/**
 * Static apps: the FrontProxy serving a folder itself (proxy/static.ts), on a
 * real node:http server at 127.0.0.1 port 0, because what a user checks is
 * what goes over the socket: bodies and Content-Type, the caching headers
 * and 304s, ranges, HEAD, index.html and the folder redirect, 405, and above
 * all that no request — however its path is spelled, whatever symlink it
 * goes through — ever gets a byte of a file outside the folder. A secret
 * file sits beside the served folder, and every traversal attempt is checked
 * for its content. Raw requests go over a plain socket, so that no client
 * library cleans the path up first.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FrontProxy, type AccessEntry, type FrontProxyOptions } from "../../src/proxy/server.ts";
import { pathProblem } from "../../src/proxy/static.ts";

// ---- plumbing: every server is closed and every temp dir removed after each test ----

const servers: http.Server[] = [];
const sockets = new Set<net.Socket>();
const proxies: FrontProxy[] = [];
let tmp = "";
/** The served folder, inside tmp. */
let site = "";

const SECRET = "TOP-SECRET-beside-the-root";
const HELLO = "hello, static world\n";
const INDEX = "<!doctype html><title>home</title>\n";
const DOCS_INDEX = "<!doctype html><title>docs</title>\n";
/** Big enough that the proxy is still streaming it when a client walks away. */
const BIG_SIZE = 8 * 1024 * 1024;

beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), "tsgi-static-"));
  site = path.join(tmp, "site");
  mkdirSync(path.join(site, "docs"), { recursive: true });
  mkdirSync(path.join(site, "empty"));
  mkdirSync(path.join(site, ".git"));
  mkdirSync(path.join(tmp, "outside"));
  // Beside the root: what every traversal is after.
  writeFileSync(path.join(tmp, "secret.txt"), SECRET);
  writeFileSync(path.join(tmp, "outside", "index.html"), SECRET);
  writeFileSync(path.join(tmp, "outside", "page.txt"), SECRET);
  writeFileSync(path.join(site, "hello.txt"), HELLO);
  writeFileSync(path.join(site, "index.html"), INDEX);
  writeFileSync(path.join(site, "style.css"), "body { color: teal; }\n");
  writeFileSync(path.join(site, "app.js"), "console.log('hi');\n");
  writeFileSync(path.join(site, "data.json"), '{"ok":true}\n');
  writeFileSync(path.join(site, "logo.png"), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  writeFileSync(path.join(site, "noext"), "no extension\n");
  writeFileSync(path.join(site, "docs", "index.html"), DOCS_INDEX);
  writeFileSync(path.join(site, "my file.txt"), "spaced\n");
  writeFileSync(path.join(site, "100%.txt"), "percent\n");
  writeFileSync(path.join(site, "café.txt"), "accent\n");
  writeFileSync(path.join(site, "big.bin"), Buffer.alloc(BIG_SIZE, 0x61));
  writeFileSync(path.join(site, ".env"), `${SECRET} in a dotfile`);
  writeFileSync(path.join(site, ".git", "config"), `${SECRET} in .git`);
  // Symlinks: out of the folder (file, folder, a folder's index.html), onto a dotfile, and one that stays inside.
  symlinkSync(path.join(tmp, "secret.txt"), path.join(site, "leak.txt"));
  symlinkSync("../secret.txt", path.join(site, "relative-leak.txt"));
  symlinkSync(path.join(tmp, "outside"), path.join(site, "out"));
  mkdirSync(path.join(site, "trap"));
  symlinkSync(path.join(tmp, "outside", "index.html"), path.join(site, "trap", "index.html"));
  symlinkSync(".env", path.join(site, "env.txt"));
  symlinkSync("hello.txt", path.join(site, "alias.txt"));
  symlinkSync("docs", path.join(site, "current"));
});

afterEach(async () => {
  for (const proxy of proxies.splice(0)) proxy.close();
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  rmSync(tmp, { recursive: true, force: true });
});


interface Front {
  port: number;
  log: AccessEntry[];
}

/** A FrontProxy serving `site` under /assets (and anything else in `options`), on 127.0.0.1 port 0. */
async function front(options: Partial<FrontProxyOptions> = {}): Promise<Front> {
  const log: AccessEntry[] = [];
  const proxy = new FrontProxy({
    routes: [{ app: "assets", path: "/assets" }],
    staticRoots: { assets: site },
    onResponse: (entry) => log.push(entry),
    ...options,
  });
  proxies.push(proxy);
  const server = http.createServer(proxy.handle);
  servers.push(server);
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as net.AddressInfo).port, log };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

function request(port: number, urlPath: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
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
    req.end(options.body);
  });
}

/** Waits until the access log has `count` entries (it is written when a response is finished). */
async function entries(log: AccessEntry[], count: number): Promise<AccessEntry[]> {
  for (let i = 0; i < 200 && log.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  return log;
}

/** Exact bytes out, everything the proxy sends back until it closes: for paths a client library would clean up. */
function raw(port: number, requestText: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(requestText));
    let text = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk) => (text += chunk));
    socket.on("end", () => resolve(text));
    socket.on("close", () => resolve(text));
    socket.on("error", reject);
  });
}

const rawGet = (port: number, target: string, host = "static.test") =>
  raw(port, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

const statusOf = (response: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);

// ---- the tests ----

describe("static apps: files", () => {
  it("serves a file under the mount, with its body, Content-Type and caching headers", async () => {
    const { port, log } = await front();
    const answer = await request(port, "/assets/hello.txt");
    expect(answer.status).toBe(200);
    expect(answer.text).toBe(HELLO);
    expect(answer.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(answer.headers["content-length"]).toBe(String(HELLO.length));
    expect(answer.headers.etag).toMatch(/^W\/".+"$/);
    expect(new Date(answer.headers["last-modified"]!).getTime()).not.toBeNaN();
    expect(answer.headers["accept-ranges"]).toBe("bytes");
    expect(answer.headers["cache-control"]).toBe("public, max-age=0");
    expect(await entries(log, 1)).toEqual([expect.objectContaining({ app: "assets", status: 200, bytes: HELLO.length, url: "/assets/hello.txt" })]);
  });

  it("Content-Type follows the extension", async () => {
    const { port } = await front();
    const types: Record<string, RegExp> = {
      "/assets/style.css": /^text\/css/,
      "/assets/app.js": /^(text|application)\/javascript/,
      "/assets/data.json": /^application\/json/,
      "/assets/logo.png": /^image\/png$/,
      "/assets/index.html": /^text\/html/,
      "/assets/noext": /^application\/octet-stream$/,
    };
    for (const [urlPath, type] of Object.entries(types)) {
      const answer = await request(port, urlPath);
      expect(answer.status, urlPath).toBe(200);
      expect(answer.headers["content-type"], urlPath).toMatch(type);
    }
    expect([...(await request(port, "/assets/logo.png")).body]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  });

  it("a query string does not change the file", async () => {
    const { port } = await front();
    const answer = await request(port, "/assets/hello.txt?v=3&x=%2e%2e");
    expect(answer.status).toBe(200);
    expect(answer.text).toBe(HELLO);
  });

  it("a missing file: 404 with a short text body naming the path", async () => {
    const { port, log } = await front();
    const answer = await request(port, "/assets/missing.png");
    expect(answer.status).toBe(404);
    expect(answer.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(answer.headers["x-content-type-options"]).toBe("nosniff");
    expect(answer.headers.etag).toBeUndefined();
    expect(answer.text).toBe("Not Found: /assets/missing.png\n");
    expect(await entries(log, 1)).toEqual([expect.objectContaining({ status: 404, bytes: answer.body.length })]);
    // A file asked for as a folder is missing too.
    expect((await request(port, "/assets/hello.txt/")).status).toBe(404);
  });

  it("file names with spaces, % and non-ASCII, percent-encoded", async () => {
    const { port } = await front();
    expect((await request(port, "/assets/my%20file.txt")).text).toBe("spaced\n");
    expect((await request(port, "/assets/100%25.txt")).text).toBe("percent\n");
    expect((await request(port, "/assets/caf%C3%A9.txt")).text).toBe("accent\n");
    // Decoded once, not twice: %2520 is a file named "%20", which is not there.
    expect((await request(port, "/assets/my%2520file.txt")).status).toBe(404);
  });

  it("a mount that is itself percent-encoded is taken off as the client spelled it", async () => {
    const { port } = await front({ routes: [{ app: "assets", path: "/my%20assets" }] });
    const answer = await request(port, "/my%20assets/my%20file.txt");
    expect(answer.status).toBe(200);
    expect(answer.text).toBe("spaced\n");
  });

  it("a host-only route serves the folder at the root of the host", async () => {
    const { port } = await front({ routes: [{ app: "site", host: "static.test" }], staticRoots: { site } });
    const home = await request(port, "/", { headers: { host: "static.test" } });
    expect(home.status).toBe(200);
    expect(home.text).toBe(INDEX);
    expect((await request(port, "/hello.txt", { headers: { host: "static.test" } })).text).toBe(HELLO);
    const folder = await request(port, "/docs", { headers: { host: "static.test" } });
    expect(folder.status).toBe(301);
    expect(folder.headers.location).toBe("/docs/");
    // Another host has no route.
    expect((await request(port, "/hello.txt", { headers: { host: "other.test" } })).status).toBe(404);
  });
});

describe("static apps: conditional requests, ranges, HEAD", () => {
  it("304 for If-None-Match with the ETag of a first response, and for If-Modified-Since", async () => {
    const { port, log } = await front();
    const first = await request(port, "/assets/hello.txt");
    const again = await request(port, "/assets/hello.txt", { headers: { "if-none-match": first.headers.etag! } });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers.etag).toBe(first.headers.etag);
    const since = await request(port, "/assets/hello.txt", { headers: { "if-modified-since": first.headers["last-modified"]! } });
    expect(since.status).toBe(304);
    // Another ETag: the file again.
    const other = await request(port, "/assets/hello.txt", { headers: { "if-none-match": 'W/"other"' } });
    expect(other.status).toBe(200);
    expect(other.text).toBe(HELLO);
    expect((await entries(log, 4))[1]).toEqual(expect.objectContaining({ status: 304, bytes: 0 }));
  });

  it("412 for If-Match with another ETag", async () => {
    const { port } = await front();
    const answer = await request(port, "/assets/hello.txt", { headers: { "if-match": '"nope"' } });
    expect(answer.status).toBe(412);
    expect(answer.text).toBe("Precondition Failed: /assets/hello.txt\n");
  });

  it("If-Match compares strongly (RFC 9110 §13.1.1): the file's own weak ETag fails, 412; `*` passes", async () => {
    const { port } = await front();
    const first = await request(port, "/assets/hello.txt");
    expect(first.headers.etag).toMatch(/^W\//);
    const weak = await request(port, "/assets/hello.txt", { headers: { "if-match": first.headers.etag! } });
    expect(weak.status).toBe(412);
    const any = await request(port, "/assets/hello.txt", { headers: { "if-match": "*" } });
    expect([any.status, any.text]).toEqual([200, HELLO]);
  });

  it("If-Range (RFC 9110 §13.1.5): a date equal to Last-Modified keeps the Range; a later date or a weak ETag sends the whole file, 200", async () => {
    const { port } = await front();
    const first = await request(port, "/assets/hello.txt");
    const lastModified = first.headers["last-modified"]!;
    const same = await request(port, "/assets/hello.txt", { headers: { range: "bytes=0-4", "if-range": lastModified } });
    expect([same.status, same.text]).toEqual([206, "hello"]);
    // A copy from a second later (the file was since replaced by an older one, say): its bytes may not fit.
    const later = new Date(Date.parse(lastModified) + 1000).toUTCString();
    const stale = await request(port, "/assets/hello.txt", { headers: { range: "bytes=0-4", "if-range": later } });
    expect([stale.status, stale.text, stale.headers["content-range"]]).toEqual([200, HELLO, undefined]);
    // The file's ETag is weak: If-Range needs a strong one, so the Range is ignored.
    const weak = await request(port, "/assets/hello.txt", { headers: { range: "bytes=0-4", "if-range": first.headers.etag! } });
    expect([weak.status, weak.text]).toEqual([200, HELLO]);
  });

  it("206 with Content-Range for a Range request, suffix ranges too", async () => {
    const { port, log } = await front();
    const answer = await request(port, "/assets/hello.txt", { headers: { range: "bytes=0-4" } });
    expect(answer.status).toBe(206);
    expect(answer.text).toBe("hello");
    expect(answer.headers["content-range"]).toBe(`bytes 0-4/${HELLO.length}`);
    expect(answer.headers["content-length"]).toBe("5");
    const tail = await request(port, "/assets/hello.txt", { headers: { range: "bytes=-6" } });
    expect(tail.status).toBe(206);
    expect(tail.text).toBe(HELLO.slice(-6));
    expect((await entries(log, 2))[0]).toEqual(expect.objectContaining({ status: 206, bytes: 5 }));
  });

  it("416 with Content-Range bytes */size for a range past the end", async () => {
    const { port } = await front();
    const answer = await request(port, "/assets/hello.txt", { headers: { range: "bytes=1000-2000" } });
    expect(answer.status).toBe(416);
    expect(answer.headers["content-range"]).toBe(`bytes */${HELLO.length}`);
    expect(answer.text).toBe("Range Not Satisfiable: /assets/hello.txt\n");
    expect(answer.headers.etag).toBeUndefined();
  });

  it("HEAD: the GET's headers and no body", async () => {
    const { port, log } = await front();
    const response = await raw(port, "HEAD /assets/hello.txt HTTP/1.1\r\nHost: static.test\r\nConnection: close\r\n\r\n");
    expect(statusOf(response)).toBe(200);
    expect(response).toMatch(/\r\ncontent-length: 20\r\n/i);
    expect(response).toMatch(/\r\ncontent-type: text\/plain; charset=utf-8\r\n/i);
    expect(response).toMatch(/\r\netag: W\//i);
    expect(response.endsWith("\r\n\r\n")).toBe(true); // nothing after the head
    expect(await entries(log, 1)).toEqual([expect.objectContaining({ method: "HEAD", status: 200, bytes: 0 })]);
    const missing = await raw(port, "HEAD /assets/missing HTTP/1.1\r\nHost: static.test\r\nConnection: close\r\n\r\n");
    expect(statusOf(missing)).toBe(404);
    expect(missing.endsWith("\r\n\r\n")).toBe(true);
  });
});

describe("static apps: folders", () => {
  it("index.html for a folder URL, the mount's own included", async () => {
    const { port } = await front();
    const home = await request(port, "/assets/");
    expect(home.status).toBe(200);
    expect(home.text).toBe(INDEX);
    expect(home.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect((await request(port, "/assets/docs/")).text).toBe(DOCS_INDEX);
  });

  it("a folder URL without its slash: 301 to the slash form, mount and query kept", async () => {
    const { port, log } = await front();
    const docs = await request(port, "/assets/docs?lang=en");
    expect(docs.status).toBe(301);
    expect(docs.headers.location).toBe("/assets/docs/?lang=en");
    const mount = await request(port, "/assets");
    expect(mount.status).toBe(301);
    expect(mount.headers.location).toBe("/assets/");
    expect((await entries(log, 2))[0]).toEqual(expect.objectContaining({ status: 301 }));
  });

  it("never a redirect to another host (//evil.test)", async () => {
    mkdirSync(path.join(site, "evil.test"));
    const { port } = await front({ routes: [{ app: "site", host: "static.test" }], staticRoots: { site } });
    const response = await rawGet(port, "//evil.test");
    expect(statusOf(response)).toBe(301);
    expect(response).toMatch(/\r\nLocation: \/evil\.test\/\r\n/i);
  });

  it("a folder without index.html: 404, no listing", async () => {
    const { port } = await front();
    const answer = await request(port, "/assets/empty/");
    expect(answer.status).toBe(404);
    expect(answer.text).toBe("Not Found: /assets/empty/\n");
  });
});

describe("static apps: methods", () => {
  it("405 with Allow: GET, HEAD for anything else", async () => {
    const { port, log } = await front();
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
      const answer = await request(port, "/assets/hello.txt", { method, body: method === "OPTIONS" ? undefined : "x=1" });
      expect(answer.status, method).toBe(405);
      expect(answer.headers.allow, method).toBe("GET, HEAD");
      expect(answer.text).toBe(`Method Not Allowed: /assets/hello.txt: a static folder answers GET and HEAD, not ${method}\n`);
    }
    expect((await entries(log, 5)).map((entry) => entry.status)).toEqual([405, 405, 405, 405, 405]);
  });
});

describe("static apps: nothing outside the folder, ever", () => {
  // Every spelling of "one folder up" a client could send, each through the /assets mount.
  const TRAVERSALS = [
    "/assets/../secret.txt",
    "/assets/%2e%2e/secret.txt",
    "/assets/%2E%2E/secret.txt",
    "/assets/.%2e/secret.txt",
    "/assets/%2e./secret.txt",
    "/assets/..%2fsecret.txt",
    "/assets/..%2Fsecret.txt",
    "/assets/%2e%2e%2fsecret.txt",
    "/assets/..%5csecret.txt",
    "/assets/..\\secret.txt",
    "/assets/%2e%2e%5csecret.txt",
    "/assets/docs/../../secret.txt",
    "/assets/docs/%2e%2e/%2e%2e/secret.txt",
    "/assets//../secret.txt",
    "/assets/./../secret.txt",
    "/assets/%252e%252e/secret.txt",
    "/assets/%252e%252e%252fsecret.txt",
    "/assets/%c0%ae%c0%ae/secret.txt",
    "/assets/%00/../secret.txt",
    "/assets/secret.txt%00",
    "/assets/..%00/secret.txt",
    "/assets/%2e%2e/site/../secret.txt",
    "/assets/....//secret.txt",
    "/assets/..;/secret.txt",
    "/assets/%2e%2e/outside/page.txt",
    "/assets/%2e%2e/outside/",
  ];

  it.each(TRAVERSALS)("%s: refused, and no secret", async (target) => {
    const { port } = await front();
    const response = await rawGet(port, target);
    expect(response).not.toContain(SECRET);
    expect([400, 403, 404]).toContain(statusOf(response));
  });

  it("the same through a host-only route at the root, and in absolute form", async () => {
    const { port } = await front({ routes: [{ app: "site", host: "static.test" }], staticRoots: { site } });
    const targets = [
      ...TRAVERSALS.map((target) => target.replace(/^\/assets/, "")),
      "/../secret.txt",
      "http://static.test/../secret.txt",
      "http://static.test/%2e%2e/secret.txt",
    ];
    for (const target of targets) {
      const response = await rawGet(port, target);
      expect(response, target).not.toContain(SECRET);
      expect([400, 403, 404], target).toContain(statusOf(response));
    }
  });

  it("the refusals say why: 400 for a path no link has", async () => {
    const { port } = await front();
    expect(statusOf(await rawGet(port, "/assets/..%2fsecret.txt"))).toBe(400);
    expect(statusOf(await rawGet(port, "/assets/..\\secret.txt"))).toBe(400);
    expect(statusOf(await rawGet(port, "/assets/hello.txt%00"))).toBe(400);
    expect(statusOf(await rawGet(port, "/assets/%c0%ae"))).toBe(400);
    const answer = await request(port, "/assets/..%2fsecret.txt");
    expect(answer.text).toBe("Bad Request: /assets/..%2fsecret.txt: an encoded / or \\ in the path\n");
  });

  it("dot segments, plain or percent-encoded, are removed before routing (as nginx does): /assets/%2e%2e/x is /x, outside the folder's route", async () => {
    const { port } = await front();
    expect(statusOf(await rawGet(port, "/assets/%2e%2e/secret.txt"))).toBe(404);
    expect(statusOf(await rawGet(port, "/assets/../assets/hello.txt"))).toBe(200);
    expect(statusOf(await rawGet(port, "/assets/sub/%2E%2E/hello.txt"))).toBe(200);
  });

  it("a path beside the mount is not under it (/assetsX, /assets%2f..)", async () => {
    const { port } = await front();
    for (const target of ["/assetsX/hello.txt", "/assets%2f..%2fsecret.txt", "/assets..%2fsecret.txt"]) {
      const response = await rawGet(port, target);
      expect(statusOf(response), target).toBe(404);
      expect(response).toContain("no app is routed");
    }
  });

  it("dotfiles and dot-folders: 404, however spelled", async () => {
    const { port } = await front();
    for (const target of ["/assets/.env", "/assets/%2eenv", "/assets/.git/config", "/assets/.git/", "/assets/.git", "/assets/docs/../.env"]) {
      const response = await rawGet(port, target);
      expect(response, target).not.toContain(SECRET);
      expect([400, 404], target).toContain(statusOf(response));
    }
    const answer = await request(port, "/assets/.env");
    expect(answer.status).toBe(404);
    expect(answer.text).toBe("Not Found: /assets/.env\n");
  });

  it("symlinks are followed inside the folder only", async () => {
    const { port } = await front();
    // Inside: a file and a folder link work.
    expect((await request(port, "/assets/alias.txt")).text).toBe(HELLO);
    expect((await request(port, "/assets/current/")).text).toBe(DOCS_INDEX);
    // Out of the folder, by absolute or relative link, through a linked folder, or as a folder's index.html: 404.
    for (const target of ["/assets/leak.txt", "/assets/relative-leak.txt", "/assets/out/page.txt", "/assets/out/", "/assets/trap/", "/assets/trap/index.html"]) {
      const answer = await request(port, target);
      expect(answer.status, target).toBe(404);
      expect(answer.text, target).not.toContain(SECRET);
      expect(answer.text, target).toBe(`Not Found: ${target}\n`);
    }
    // Onto a dotfile inside the folder: as hidden as the dotfile.
    const env = await request(port, "/assets/env.txt");
    expect(env.status).toBe(404);
    expect(env.text).not.toContain(SECRET);
  });

  it("a root that is itself a symlink serves its target", async () => {
    const linked = path.join(tmp, "linked-site");
    symlinkSync(site, linked);
    const { port } = await front({ staticRoots: { assets: linked } });
    expect((await request(port, "/assets/hello.txt")).text).toBe(HELLO);
    expect((await request(port, "/assets/leak.txt")).status).toBe(404);
  });

  it("pathProblem: the verdict on each spelling", () => {
    expect(pathProblem("/a/b.txt")).toEqual({ decoded: "/a/b.txt" });
    expect(pathProblem("")).toEqual({ decoded: "" });
    expect(pathProblem("/my%20file")).toEqual({ decoded: "/my file" });
    expect(pathProblem("/%2e%2e/x")).toMatchObject({ status: 400 });
    expect(pathProblem("/a%2Fb")).toMatchObject({ status: 400 });
    expect(pathProblem("/a%5Cb")).toMatchObject({ status: 400 });
    expect(pathProblem("/a\\b")).toMatchObject({ status: 400 });
    expect(pathProblem("/a%00")).toMatchObject({ status: 400 });
    expect(pathProblem("/%E0%A4%A")).toMatchObject({ status: 400 });
    expect(pathProblem("http://x/y")).toMatchObject({ status: 400 });
    expect(pathProblem("/.htpasswd")).toMatchObject({ status: 404 });
    expect(pathProblem("/./a")).toEqual({ decoded: "/./a" });
  });
});

describe("static apps: errors never crash the proxy", () => {
  it("a folder removed while the proxy runs: 404, and the proxy goes on", async () => {
    const { port } = await front({
      routes: [
        { app: "assets", path: "/assets" },
        { app: "gone", path: "/gone" },
      ],
      staticRoots: { assets: site, gone: path.join(tmp, "no-such-folder") },
    });
    const answer = await request(port, "/gone/hello.txt");
    expect(answer.status).toBe(404);
    expect(answer.text).toBe("Not Found: /gone/hello.txt\n");
    expect((await request(port, "/assets/hello.txt")).status).toBe(200);
  });

  it("a client that leaves mid-file: logged with the bytes sent, and the next request is served", async () => {
    const { port, log } = await front();
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port, path: "/assets/big.bin", agent: false }, (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.on("error", (error: NodeJS.ErrnoException) => (error.code === "ECONNRESET" ? resolve() : reject(error)));
    });
    const [entry] = await entries(log, 1);
    expect(entry).toEqual(expect.objectContaining({ status: 200, url: "/assets/big.bin" }));
    expect(entry!.bytes).toBeGreaterThan(0);
    expect(entry!.bytes).toBeLessThan(BIG_SIZE);
    expect((await request(port, "/assets/hello.txt")).text).toBe(HELLO);
  });

  it("a whole big file: every byte, and the log says so", async () => {
    const { port, log } = await front();
    const answer = await request(port, "/assets/big.bin");
    expect(answer.status).toBe(200);
    expect(answer.body.length).toBe(BIG_SIZE);
    expect((await entries(log, 1))[0]).toEqual(expect.objectContaining({ status: 200, bytes: BIG_SIZE }));
  });
});
