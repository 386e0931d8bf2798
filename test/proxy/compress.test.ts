/**
 * Compression through the real FrontProxy on loopback (port 0), as a client
 * sees it: the bytes decoded with node:zlib (gzip, brotli) must be exactly
 * what the worker sent. The worker is a real gateway worker (`tsgi-stack
 * serve` of test/fixtures/apps/compressible.ts) where the body matters, and
 * a small node:http upstream where the test needs a response head the
 * worker would not send (204, 206, Content-Encoding, no-transform…). Also:
 * curl --compressed, a slow multi-megabyte stream arriving piece by piece,
 * a client that does not read holding the worker back (no body buffered
 * whole), the access log counting the compressed bytes, and a static
 * folder's precompressed .br/.gz files and its other files compressed on
 * the fly (one proxy for those: types, min_length, Range, HEAD, 304, a
 * 3 MiB file, index and fallback files).
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readFileSync } from "node:fs";
import http from "node:http";
import type net from "node:net";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FrontProxy, type AccessEntry, type FrontProxyOptions } from "../../src/proxy/server.ts";
import type { CompressPolicy } from "../../src/proxy/compress/negotiate.ts";
import { fixture, type Served, serve, stopAll } from "../helpers/serve.ts";
import { jsonBody, streamPiece } from "../fixtures/apps/compressible.ts";
import { LoopbackServers } from "../helpers/loopback.ts";

const loopback = new LoopbackServers();
const proxies: FrontProxy[] = [];
const tempDirs: string[] = [];

afterEach(async () => {
  for (const proxy of proxies.splice(0)) proxy.close();
  await loopback.closeAll();
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const listen = (server: http.Server) => loopback.listen(server);

const POLICY: CompressPolicy = {
  types: ["text/*", "application/json", "application/javascript"],
  minLength: 256,
  encodings: ["br", "gzip"],
  levels: { gzip: 6, br: 4, zstd: 3 },
};

interface Front {
  port: number;
  log: AccessEntry[];
}

/** A FrontProxy with app `web` at / (workers given as ports), compressing by POLICY unless told otherwise. */
async function front(workerPorts: number[], options: Partial<FrontProxyOptions> = {}): Promise<Front> {
  const log: AccessEntry[] = [];
  const proxy = new FrontProxy({ routes: [{ app: "web" }], compress: { web: POLICY }, onResponse: (entry) => log.push(entry), ...options });
  proxies.push(proxy);
  proxy.setEndpoints(
    "web",
    workerPorts.map((port, i) => ({ id: `web.${i}`, address: { kind: "tcp", host: "127.0.0.1", port } })),
  );
  return { port: await listen(http.createServer(proxy.handle)), log };
}

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body's bytes as they came over the wire (not decoded). */
  body: Buffer;
}

function request(port: number, urlPath: string, headers: Record<string, string> = {}, method = "GET"): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: urlPath, method, agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

function decode(body: Buffer, encoding: string | undefined): Buffer {
  if (encoding === "gzip") return zlib.gunzipSync(body);
  if (encoding === "br") return zlib.brotliDecompressSync(body);
  if (encoding === undefined) return body;
  throw new Error(`unexpected Content-Encoding ${encoding}`);
}

/** A node:http upstream answering every request with `handler`. */
async function upstream(handler: http.RequestListener): Promise<number> {
  return listen(http.createServer(handler));
}

describe("compression in front of a real gateway worker", () => {
  let worker: Served;
  let workerPort: number;
  beforeAll(async () => {
    worker = await serve([fixture("compressible.ts"), "--interface", "node", "--http", "127.0.0.1:0", "--no-arbiter"]);
    workerPort = Number(new URL(worker.url).port);
  }, 30_000);
  afterAll(() => stopAll());

  it.each(["gzip", "br"])("%s: decodes to exactly the worker's bytes; Vary, weak ETag, chunked, no Content-Length", async (coding) => {
    const { port, log } = await front([workerPort]);
    const direct = await request(workerPort, "/json?kb=20");
    expect(direct.body.toString()).toBe(jsonBody(20));
    const answer = await request(port, "/json?kb=20", { "Accept-Encoding": coding });
    expect(answer.status).toBe(200);
    expect(answer.headers["content-encoding"]).toBe(coding);
    expect(answer.headers.vary).toBe("Accept-Encoding");
    expect(answer.headers.etag).toBe('W/"v1"');
    expect(answer.headers["content-length"]).toBeUndefined();
    expect(answer.headers["transfer-encoding"]).toBe("chunked");
    expect(decode(answer.body, coding).equals(direct.body)).toBe(true);
    expect(answer.body.byteLength).toBeLessThan(direct.body.byteLength / 3);
    // The access log (and the metrics made from it) count the bytes sent: the compressed ones.
    await waitUntil(() => log.length === 1);
    expect(log[0]).toMatchObject({ status: 200, bytes: answer.body.byteLength, endpoint: "web.0" });
  });

  it("a browser's Accept-Encoding gets br; none gets the plain body, with Vary", async () => {
    const { port } = await front([workerPort]);
    const browser = await request(port, "/json?kb=20", { "Accept-Encoding": "gzip, deflate, br, zstd" });
    expect(browser.headers["content-encoding"]).toBe("br");
    const plain = await request(port, "/json?kb=20");
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.headers.vary).toBe("Accept-Encoding");
    expect(plain.headers.etag).toBe('"v1"');
    expect(plain.body.toString()).toBe(jsonBody(20));
  });

  it("an app without `compress` is not compressed", async () => {
    const { port } = await front([workerPort], { compress: {} });
    const answer = await request(port, "/json?kb=20", { "Accept-Encoding": "gzip, br" });
    expect(answer.headers["content-encoding"]).toBeUndefined();
    expect(answer.headers.vary).toBeUndefined();
    expect(Number(answer.headers["content-length"])).toBe(answer.body.byteLength);
  });

  it("curl --compressed (as on Debian) gets the worker's body", async () => {
    const curl = spawnSync("curl", ["--version"], { encoding: "utf8" });
    if (curl.status !== 0) return; // no curl on this machine
    const { port } = await front([workerPort]);
    const out = await new Promise<{ code: number | null; stdout: Buffer; stderr: string }>((resolve) => {
      const child = spawn("curl", ["-sS", "--compressed", "-D", "-", "-o", "-", `http://127.0.0.1:${port}/json?kb=20`]);
      const chunks: Buffer[] = [];
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
      child.on("exit", (code) => resolve({ code, stdout: Buffer.concat(chunks), stderr }));
    });
    expect(out.code, out.stderr).toBe(0);
    const text = out.stdout.toString("latin1");
    const split = text.indexOf("\r\n\r\n");
    expect(text.slice(0, split)).toMatch(/^content-encoding: (br|gzip|zstd)$/im);
    expect(out.stdout.subarray(split + 4).toString()).toBe(jsonBody(20));
  });

  it("a slow stream of several MB arrives piece by piece, before the worker has finished", async () => {
    const { port } = await front([workerPort]);
    const pieces = 40;
    const expected = Array.from({ length: pieces }, (_, i) => streamPiece(i, i === pieces - 1)).join("");
    const started = Date.now();
    const result = await new Promise<{ firstAt: number; endAt: number; text: string; encoding?: string }>((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port, path: `/stream?chunks=${pieces}&ms=40`, agent: false, headers: { "Accept-Encoding": "gzip" } }, (res) => {
        const gunzip = zlib.createGunzip();
        let text = "";
        let firstAt = 0;
        res.pipe(gunzip);
        gunzip.on("data", (chunk: Buffer) => {
          if (firstAt === 0) firstAt = Date.now();
          text += chunk.toString();
        });
        gunzip.on("end", () => resolve({ firstAt, endAt: Date.now(), text, encoding: res.headers["content-encoding"] }));
        gunzip.on("error", reject);
      });
      req.on("error", reject);
    });
    expect(result.encoding).toBe("gzip");
    expect(result.text.length).toBe(expected.length);
    expect(result.text === expected).toBe(true);
    // The worker takes about 40 × 40 ms; the first decoded bytes came long before its end.
    expect(result.endAt - started).toBeGreaterThan(1200);
    expect(result.firstAt - started).toBeLessThan((result.endAt - started) / 2);
  });
});

describe("a large body of known length (not gathered: streamed)", () => {
  it.each(["gzip", "br"])("%s: a body of known length above 64 KiB is streamed through the encoder, and decodes exactly", async (coding) => {
    const big = Buffer.from(Array.from({ length: 6000 }, (_, i) => `line ${i}: ${"lorem ipsum ".repeat(3)}\n`).join(""));
    expect(big.byteLength).toBeGreaterThan(64 * 1024);
    const port = await upstream((req, res) => {
      req.resume();
      res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": big.byteLength });
      res.end(big);
    });
    const { port: proxyPort, log } = await front([port]);
    const answer = await request(proxyPort, "/big", { "Accept-Encoding": coding });
    expect(answer.headers["content-encoding"]).toBe(coding);
    expect(answer.headers["content-length"]).toBeUndefined();
    expect(decode(answer.body, coding).equals(big)).toBe(true);
    await waitUntil(() => log.length === 1);
    expect(log[0]!.bytes).toBe(answer.body.byteLength);
  });
});

describe("a worker's Accept-Ranges", () => {
  it("is dropped from a compressed answer (a Range request is answered uncompressed: its bytes would not fit) and kept on a plain one", async () => {
    const text = "a resumable download\n".repeat(40);
    const port = await upstream((req, res) => {
      req.resume();
      res.writeHead(200, { "Content-Type": "text/plain", "Accept-Ranges": "bytes", ETag: '"v1"', "Content-Length": Buffer.byteLength(text) });
      res.end(text);
    });
    const { port: proxyPort } = await front([port]);
    const compressed = await request(proxyPort, "/", { "Accept-Encoding": "gzip" });
    expect([compressed.headers["content-encoding"], compressed.headers["accept-ranges"], compressed.headers.etag]).toEqual(["gzip", undefined, 'W/"v1"']);
    const plain = await request(proxyPort, "/");
    expect([plain.headers["content-encoding"], plain.headers["accept-ranges"], plain.headers.etag]).toEqual([undefined, "bytes", '"v1"']);
  });
});

describe("what is never compressed (each with a client that accepts gzip and br)", () => {
  const TEXT = "hello, compressible world\n".repeat(40);

  it.each([
    ["HEAD", "HEAD", 200, { "Content-Type": "text/plain", "Content-Length": String(TEXT.length) }],
    ["204", "GET", 204, { "Content-Type": "text/plain" }],
    ["304", "GET", 304, { "Content-Type": "text/plain", ETag: '"x"' }],
    ["206", "GET", 206, { "Content-Type": "text/plain", "Content-Range": `bytes 0-${TEXT.length - 1}/${TEXT.length * 2}` }],
    ["already encoded", "GET", 200, { "Content-Type": "text/plain", "Content-Encoding": "identity" }],
    ["no-transform", "GET", 200, { "Content-Type": "text/plain", "Cache-Control": "private, no-transform" }],
    ["below min_length", "GET", 200, { "Content-Type": "text/plain", "Content-Length": "100" }],
    ["a type not listed", "GET", 200, { "Content-Type": "image/png" }],
    ["no Content-Type", "GET", 200, {}],
  ] as const)("%s", async (_name, method, status, headers) => {
    const port = await upstream((req, res) => {
      req.resume();
      res.writeHead(status, headers);
      if (status === 204 || status === 304 || req.method === "HEAD") return void res.end();
      res.end("Content-Length" in headers ? TEXT.slice(0, Number(headers["Content-Length"])) : TEXT);
    });
    const { port: proxyPort } = await front([port]);
    const answer = await request(proxyPort, "/x", { "Accept-Encoding": "gzip, br" }, method);
    expect(answer.status).toBe(status);
    expect(answer.headers["content-encoding"]).toBe("Content-Encoding" in headers ? headers["Content-Encoding"] : undefined);
    if (method === "GET" && status !== 204 && status !== 304) expect(answer.body.toString()).toBe("Content-Length" in headers ? TEXT.slice(0, Number(headers["Content-Length"])) : TEXT);
    else expect(answer.body.byteLength).toBe(0);
  });

  it("a WebSocket upgrade is tunnelled untouched", async () => {
    const server = http.createServer(() => {});
    const port = await listen(server);
    server.on("upgrade", (_req, socket) => {
      socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
      socket.on("data", (data) => socket.write(data));
    });
    const proxy = new FrontProxy({ routes: [{ app: "web" }], compress: { web: POLICY } });
    proxies.push(proxy);
    proxy.setEndpoints("web", [{ id: "web.0", address: { kind: "tcp", host: "127.0.0.1", port } }]);
    const front = http.createServer(proxy.handle);
    front.on("upgrade", proxy.handleUpgrade);
    const proxyPort = await listen(front);
    const echoed = await new Promise<{ head: string; echo: string }>((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1",
        port: proxyPort,
        path: "/ws",
        agent: false,
        headers: { Connection: "Upgrade", Upgrade: "websocket", "Accept-Encoding": "gzip, br", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13" },
      });
      req.on("upgrade", (res, socket) => {
        socket.write("ping text ping text");
        socket.once("data", (data: Buffer) => {
          socket.destroy();
          resolve({ head: JSON.stringify(res.headers), echo: data.toString() });
        });
      });
      req.on("error", reject);
      req.end();
    });
    expect(echoed.head).not.toMatch(/content-encoding/i);
    expect(echoed.echo).toBe("ping text ping text");
  });
});

describe("backpressure: the compressed body is streamed, never buffered whole", () => {
  it("a client that stops reading holds the worker back; then everything arrives, decoded exactly", async () => {
    // Text that gzip cannot shrink much (random hex, in pieces larger than its 32 KiB window).
    const piece = Buffer.from(randomBytes(48 * 1024).toString("hex"));
    const total = 400; // × 96 KiB = 37.5 MiB
    let written = 0;
    let finished = false;
    const port = await upstream((req, res) => {
      req.resume();
      res.writeHead(200, { "Content-Type": "text/plain" });
      let i = 0;
      const more = () => {
        while (i < total) {
          i++;
          written += piece.byteLength;
          if (!res.write(piece)) return void res.once("drain", more);
        }
        finished = true;
        res.end();
      };
      more();
    });
    const { port: proxyPort } = await front([port]);
    const received = await new Promise<{ length: number; heldBack: number; finishedEarly: boolean; ok: boolean }>((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port: proxyPort, path: "/big", agent: false, headers: { "Accept-Encoding": "gzip" } }, (res) => {
        res.pause();
        setTimeout(() => {
          const heldBack = written;
          const finishedEarly = finished;
          const gunzip = zlib.createGunzip();
          let length = 0;
          let ok = true;
          let offset = 0;
          gunzip.on("data", (chunk: Buffer) => {
            // Every piece is the same: compare as it comes, without keeping it all.
            for (let j = 0; j < chunk.byteLength; j++) if (chunk[j] !== piece[(offset + j) % piece.byteLength]) ok = false;
            offset += chunk.byteLength;
            length += chunk.byteLength;
          });
          gunzip.on("end", () => resolve({ length, heldBack, finishedEarly, ok }));
          gunzip.on("error", reject);
          res.pipe(gunzip);
        }, 1500);
      });
      req.on("error", reject);
    });
    // Socket buffers on loopback hold a few MiB each way; the rest waited in the worker, unwritten.
    expect(received.finishedEarly).toBe(false);
    expect(received.heldBack).toBeLessThan((total * piece.byteLength) / 2);
    expect(received.length).toBe(total * piece.byteLength);
    expect(received.ok).toBe(true);
  }, 60_000);
});

describe("a static folder's precompressed files", () => {
  const JS = "export const greeting = 'hello';\n".repeat(50);
  let root: string;
  const write = (name: string, data: string | Buffer) => writeFileSync(path.join(root, name), data);

  async function site(): Promise<number> {
    root = mkdtempSync(path.join(os.tmpdir(), "tsgi-precompressed-"));
    tempDirs.push(root);
    write("app.js", JS);
    write("app.js.br", zlib.brotliCompressSync(JS));
    write("app.js.gz", zlib.gzipSync(JS));
    write("plain.css", "body { color: teal }\n".repeat(30));
    mkdirSync(path.join(root, "docs"));
    write("docs/index.html", "<!doctype html><title>docs</title>\n".repeat(20));
    write("docs/index.html.gz", zlib.gzipSync("<!doctype html><title>docs</title>\n".repeat(20)));
    write(".secret", "no");
    write(".secret.gz", zlib.gzipSync("no"));
    const proxy = new FrontProxy({ routes: [{ app: "site" }], staticRoots: { site: root }, compress: { site: POLICY } });
    proxies.push(proxy);
    return listen(http.createServer(proxy.handle));
  }

  it("serves .br or .gz by Accept-Encoding, with the plain file's type, Vary and an ETag of its own", async () => {
    const port = await site();
    const plain = await request(port, "/app.js");
    expect(plain.body.toString()).toBe(JS);
    expect(plain.headers.vary).toBe("Accept-Encoding");
    expect(plain.headers["content-encoding"]).toBeUndefined();

    const br = await request(port, "/app.js", { "Accept-Encoding": "gzip, br" });
    expect(br.headers["content-encoding"]).toBe("br");
    expect(br.headers["content-type"]).toBe(plain.headers["content-type"]);
    expect(br.headers["content-type"]).toMatch(/javascript/);
    expect(br.headers.vary).toBe("Accept-Encoding");
    expect(br.body.equals(readFileSync(path.join(root, "app.js.br")))).toBe(true);
    expect(zlib.brotliDecompressSync(br.body).toString()).toBe(JS);
    expect(br.headers.etag).toMatch(/-br"$/);
    expect(br.headers.etag).not.toBe(plain.headers.etag);

    const gz = await request(port, "/app.js", { "Accept-Encoding": "gzip" });
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(zlib.gunzipSync(gz.body).toString()).toBe(JS);
    expect(gz.headers.etag).not.toBe(br.headers.etag);

    // Conditional requests compare with the sibling's own ETag.
    const again = await request(port, "/app.js", { "Accept-Encoding": "br", "If-None-Match": br.headers.etag! });
    expect(again.status).toBe(304);
    const stale = await request(port, "/app.js", { "Accept-Encoding": "br", "If-None-Match": plain.headers.etag! });
    expect(stale.status).toBe(200);
  });

  it("a folder's index.html.gz; no sibling: compressed on the fly; a dotfile's sibling stays hidden", async () => {
    const port = await site();
    const index = await request(port, "/docs/", { "Accept-Encoding": "gzip, br" });
    expect(index.status).toBe(200);
    expect(index.headers["content-encoding"]).toBe("gzip");
    expect(index.headers["content-type"]).toMatch(/text\/html/);
    expect(zlib.gunzipSync(index.body).toString()).toContain("<title>docs</title>");
    const css = await request(port, "/plain.css", { "Accept-Encoding": "gzip, br" });
    expect(css.headers["content-encoding"]).toBe("br");
    expect(decode(css.body, "br").toString()).toBe("body { color: teal }\n".repeat(30));
    expect((await request(port, "/.secret", { "Accept-Encoding": "gzip" })).status).toBe(404);
    expect((await request(port, "/app.js.missing", { "Accept-Encoding": "gzip" })).status).toBe(404);
  });

  it("a static app without `compress` serves only plain files, without Vary", async () => {
    await site();
    const proxy = new FrontProxy({ routes: [{ app: "site" }], staticRoots: { site: root } });
    proxies.push(proxy);
    const port = await listen(http.createServer(proxy.handle));
    const answer = await request(port, "/app.js", { "Accept-Encoding": "gzip, br" });
    expect(answer.headers["content-encoding"]).toBeUndefined();
    expect(answer.headers.vary).toBeUndefined();
    expect(answer.body.toString()).toBe(JS);
  });
});

describe("a static folder's files compressed on the fly", () => {
  // One proxy for the block: `site` (compress by POLICY, Cache-Control rules) and `spa` (its fallback), with the access log.
  const CSS = "body { color: teal; margin: 0 auto; }\n".repeat(500);
  const JS = "export function greet(name) { return `hello ${name}`; }\n".repeat(100);
  const SMALL_CSS = "p { margin: 0 }\n".repeat(5);
  const PNG = randomBytes(4096);
  const PRE = "export const precompressed = true;\n".repeat(40);
  const SPA_INDEX = "<!doctype html><title>spa</title><main id=app></main>\n".repeat(20);
  let big: Buffer;
  let root: string;
  let port: number;
  const log: AccessEntry[] = [];
  let proxy: FrontProxy;
  let server: http.Server;

  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), "tsgi-on-the-fly-"));
    const write = (name: string, data: string | Buffer) => {
      mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
      writeFileSync(path.join(root, name), data);
    };
    // 3 MiB: far past the one-call size, so it goes through a zlib stream.
    big = Buffer.from(randomBytes(1536 * 1024).toString("hex"));
    write("site/style.css", CSS);
    write("site/app.js", JS);
    write("site/small.css", SMALL_CSS);
    write("site/logo.png", PNG);
    write("site/big.js", big);
    write("site/pre.js", PRE);
    write("site/pre.js.br", zlib.brotliCompressSync(PRE));
    write("site/docs/index.html", SPA_INDEX);
    write("site/.hidden.css", CSS);
    write("spa/index.html", SPA_INDEX);
    proxy = new FrontProxy({
      routes: [
        { app: "spa", path: "/spa" },
        { app: "site", path: "/" },
      ],
      staticRoots: { site: path.join(root, "site"), spa: path.join(root, "spa") },
      staticSites: {
        site: { cache: { maxAgeSeconds: 600, immutable: ["*.js"], noCache: [] } },
        spa: { fallback: "/index.html", cache: { maxAgeSeconds: 0, immutable: [], noCache: ["*.html"] } },
      },
      compress: { site: POLICY, spa: { ...POLICY, types: ["text/html"] } },
      onResponse: (entry) => log.push(entry),
    });
    server = http.createServer(proxy.handle);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    proxy.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(root, { recursive: true, force: true });
  });

  /** The access log's line for the next response (the log is written once the response is finished). */
  async function logged(answer: Promise<Raw>): Promise<[Raw, AccessEntry]> {
    const before = log.length;
    const raw = await answer;
    await waitUntil(() => log.length > before);
    return [raw, log[before]!];
  }

  it.each([
    ["gzip", "/style.css", CSS, /^text\/css/, "public, max-age=600"],
    ["br", "/style.css", CSS, /^text\/css/, "public, max-age=600"],
    ["gzip", "/app.js", JS, /javascript/, "public, max-age=31536000, immutable"],
    ["br", "/app.js", JS, /javascript/, "public, max-age=31536000, immutable"],
  ])("%s of %s: exactly the file's bytes; chunked, weak ETag, Last-Modified and Cache-Control kept; the log counts the wire bytes", async (coding, file, content, type, cacheControl) => {
    const plain = await request(port, file);
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.headers["content-length"]).toBe(String(content.length));
    const [answer, entry] = await logged(request(port, file, { "Accept-Encoding": coding }));
    expect(answer.status).toBe(200);
    expect(answer.headers["content-encoding"]).toBe(coding);
    expect(decode(answer.body, coding).toString()).toBe(content);
    expect(answer.body.byteLength).toBeLessThan(content.length);
    expect(answer.headers["content-length"]).toBeUndefined();
    expect(answer.headers["transfer-encoding"]).toBe("chunked");
    expect(answer.headers["accept-ranges"]).toBeUndefined();
    expect(answer.headers.vary).toBe("Accept-Encoding");
    expect(answer.headers["content-type"]).toMatch(type);
    expect(answer.headers["content-type"]).toBe(plain.headers["content-type"]);
    expect(answer.headers.etag).toMatch(/^W\//);
    expect(answer.headers.etag).toBe(plain.headers.etag);
    expect(answer.headers["last-modified"]).toBe(plain.headers["last-modified"]);
    expect(answer.headers["cache-control"]).toBe(cacheControl);
    expect(entry).toMatchObject({ status: 200, bytes: answer.body.byteLength });
  });

  it("below min_length, an image type, no Accept-Encoding, a refused coding: the plain file, with its length and Vary", async () => {
    const cases: [string, Record<string, string>, string | Buffer][] = [
      ["/small.css", { "Accept-Encoding": "gzip, br" }, SMALL_CSS],
      ["/logo.png", { "Accept-Encoding": "gzip, br" }, PNG],
      ["/style.css", {}, CSS],
      ["/style.css", { "Accept-Encoding": "br;q=0, gzip;q=0, deflate" }, CSS],
    ];
    for (const [file, headers, content] of cases) {
      const answer = await request(port, file, headers);
      expect(answer.status, file).toBe(200);
      expect(answer.headers["content-encoding"], file).toBeUndefined();
      expect(answer.headers["content-length"], file).toBe(String(content.length));
      expect(answer.headers.vary, file).toBe("Accept-Encoding");
      expect(answer.body.equals(Buffer.from(content)), file).toBe(true);
    }
  });

  it("a Range request gets the plain bytes it asks for (206)", async () => {
    const answer = await request(port, "/style.css", { "Accept-Encoding": "gzip, br", Range: "bytes=5-24" });
    expect(answer.status).toBe(206);
    expect(answer.headers["content-encoding"]).toBeUndefined();
    expect(answer.headers["content-range"]).toBe(`bytes 5-24/${CSS.length}`);
    expect(answer.body.toString()).toBe(CSS.slice(5, 25));
  });

  it("HEAD: the head a GET gets, without a Content-Length, and no body", async () => {
    const get = await request(port, "/style.css", { "Accept-Encoding": "gzip" });
    const [head, entry] = await logged(request(port, "/style.css", { "Accept-Encoding": "gzip" }, "HEAD"));
    expect(head.status).toBe(200);
    expect(head.body.byteLength).toBe(0);
    expect(head.headers["content-encoding"]).toBe("gzip");
    expect(head.headers["content-length"]).toBeUndefined();
    for (const name of ["content-type", "etag", "last-modified", "cache-control", "vary"]) expect(head.headers[name], name).toBe(get.headers[name]);
    expect(entry).toMatchObject({ status: 200, bytes: 0 });
  });

  it("If-None-Match with the weak ETag (or its strong form) is 304; another is 200 compressed; If-Match that fails is 412", async () => {
    const first = await request(port, "/app.js", { "Accept-Encoding": "br" });
    const weak = first.headers.etag!;
    for (const tag of [weak, weak.slice(2)]) {
      const again = await request(port, "/app.js", { "Accept-Encoding": "br", "If-None-Match": tag });
      expect(again.status, tag).toBe(304);
      expect(again.headers["content-encoding"]).toBeUndefined();
      expect(again.headers.etag).toBe(weak);
      expect(again.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
      expect(again.body.byteLength).toBe(0);
    }
    const changed = await request(port, "/app.js", { "Accept-Encoding": "br", "If-None-Match": 'W/"0-0"' });
    expect(changed.status).toBe(200);
    expect(decode(changed.body, "br").toString()).toBe(JS);
    const failed = await request(port, "/app.js", { "Accept-Encoding": "br", "If-Match": '"0-0"' });
    expect(failed.status).toBe(412);
    expect(failed.headers["content-encoding"]).toBeUndefined();
    expect(failed.headers["content-length"]).toBe(String(failed.body.byteLength));
  });

  it("a precompressed sibling the client accepts still wins; a coding without one is compressed on the fly", async () => {
    const br = await request(port, "/pre.js", { "Accept-Encoding": "br, gzip" });
    expect(br.headers["content-encoding"]).toBe("br");
    expect(br.body.equals(readFileSync(path.join(root, "site/pre.js.br")))).toBe(true);
    expect(br.headers["content-length"]).toBe(String(br.body.byteLength));
    const gzip = await request(port, "/pre.js", { "Accept-Encoding": "gzip" });
    expect(gzip.headers["content-encoding"]).toBe("gzip");
    expect(gzip.headers["content-length"]).toBeUndefined();
    expect(zlib.gunzipSync(gzip.body).toString()).toBe(PRE);
  });

  it.each(["gzip", "br"])("%s: a 3 MiB file is streamed through intact", async (coding) => {
    const [answer, entry] = await logged(request(port, "/big.js", { "Accept-Encoding": coding }));
    expect(answer.headers["content-encoding"]).toBe(coding);
    expect(decode(answer.body, coding).equals(big)).toBe(true);
    expect(entry).toMatchObject({ status: 200, bytes: answer.body.byteLength });
  });

  it("a client that leaves mid-file: the encoder and the file are dropped, the log counts less than the file, the next request is served", async () => {
    const before = log.length;
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, path: "/big.js", agent: false, headers: { "Accept-Encoding": "gzip" } }, (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.on("error", () => {});
      req.on("close", resolve);
      req.once("socket", (socket) => socket.once("error", reject));
      req.end();
    });
    await waitUntil(() => log.length > before);
    expect(log[before]!.bytes).toBeLessThan(big.byteLength);
    const next = await request(port, "/style.css", { "Accept-Encoding": "gzip" });
    expect(zlib.gunzipSync(next.body).toString()).toBe(CSS);
  });

  it("a folder's index file, and a single-page app's fallback, are compressed like any file; dotfiles stay 404", async () => {
    const index = await request(port, "/docs/", { "Accept-Encoding": "gzip" });
    expect(index.status).toBe(200);
    expect(index.headers["content-encoding"]).toBe("gzip");
    expect(zlib.gunzipSync(index.body).toString()).toBe(SPA_INDEX);
    const route = await request(port, "/spa/users/42", { "Accept-Encoding": "br" });
    expect(route.status).toBe(200);
    expect(route.headers["content-encoding"]).toBe("br");
    expect(route.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(route.headers["cache-control"]).toBe("no-cache");
    expect(zlib.brotliDecompressSync(route.body).toString()).toBe(SPA_INDEX);
    const unchanged = await request(port, "/spa/users/42", { "Accept-Encoding": "br", "If-None-Match": route.headers.etag! });
    expect(unchanged.status).toBe(304);
    const hidden = await request(port, "/.hidden.css", { "Accept-Encoding": "gzip" });
    expect(hidden.status).toBe(404);
    expect(hidden.headers["content-encoding"]).toBeUndefined();
    const missing = await request(port, "/spa/missing.js", { "Accept-Encoding": "gzip" });
    expect(missing.status).toBe(404);
    expect(missing.headers["content-encoding"]).toBeUndefined();
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
