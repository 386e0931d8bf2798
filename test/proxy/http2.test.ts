/**
 * HTTP/2 on the proxy's TLS listener, with real clients: node:http2's
 * client and Debian's curl --http2 against `frontServer(proxy, { tls,
 * http2: true })` on 127.0.0.1 port 0, in front of node:http workers on
 * port 0 that echo what they were sent. One h2 listener and one with
 * `http2: false` serve every case.
 *
 * The contract: ALPN picks h2 for an h2 client and http/1.1 for the others
 * on the same port; streams of one connection are routed by :authority and
 * path like requests; bodies arrive whole (with or without content-length);
 * the worker is spoken to over HTTP/1.1 with Host from :authority, cookies
 * joined, the forwarding headers and the request id; no connection-specific
 * header goes out on an h2 response; the proxy's own answers (404, 400, 413,
 * 502) refuse one stream and leave the connection serving; a worker that
 * breaks mid-body resets its stream; a connection idle past the keep-alive
 * timeout is closed; the access log says HTTP/2.0; static
 * files, compression and rate limits apply; WebSockets over HTTP/1.1 on the
 * same port still echo; a renewed certificate reaches new h2 connections.
 */
import { execFile } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import type net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CertPair, selfSignedPair } from "../helpers/certs.ts";
import WebSocket, { WebSocketServer } from "ws";
import { frontServer } from "../../src/proxy/listener.ts";
import { FrontProxy, type AccessEntry } from "../../src/proxy/server.ts";
import { watchCertificate } from "../../src/proxy/tls-reload.ts";
import { closeFrontDoor } from "../../src/http/front-door.ts";
import { LoopbackServers } from "../helpers/loopback.ts";

let root: string;
let A: CertPair;
let B: CertPair;
/** The files the h2 listener is configured with (a copy of A, overwritten with B by the reload case). */
let files: { cert: string; key: string };
const log: AccessEntry[] = [];
let proxy: FrontProxy;
let h2Port: number;
let h2Server: https.Server;
let h1OnlyPort: number;
const loopback = new LoopbackServers();
let stopWatching: () => void = () => undefined;
let wss: WebSocketServer;

const listen = (server: net.Server) => loopback.listen(server);

/** A worker stand-in: answers with what it was sent, as JSON; a few paths behave otherwise. */
function worker(name: string): http.Server {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      if (req.url === "/426") {
        res.writeHead(426, { Upgrade: "h2c", Connection: "Upgrade", "Content-Length": 0 });
        return res.end();
      }
      if (req.url === "/break") {
        res.writeHead(200, { "Content-Length": 1000 });
        res.write("x".repeat(10));
        setTimeout(() => req.socket.destroy(), 20);
        return;
      }
      if (req.url === "/slow") {
        setTimeout(() => res.end("slow"), IDLE_MS + 500);
        return;
      }
      // Heads HTTP/1.1 carries but node's HTTP/2 refuses: a single-value header twice.
      if (req.url === "/two-etags") {
        res.writeHead(200, [["Content-Type", "text/plain"], ["ETag", '"a"'], ["ETag", '"b"'], ["Content-Length", "2"]] as unknown as http.OutgoingHttpHeaders);
        return res.end("ok");
      }
      if (req.url === "/two-types") {
        res.writeHead(200, [["Content-Type", "text/plain"], ["Content-Type", "text/html"], ["Set-Cookie", "session=worker-secret"], ["Content-Length", "2"]] as unknown as http.OutgoingHttpHeaders);
        return res.end("ok");
      }
      if (req.url === "/text") {
        res.writeHead(200, { "Content-Type": "text/plain" });
        return res.end("hello h2 ".repeat(200));
      }
      const seen = { worker: name, method: req.method, url: req.url, rawHeaders: req.rawHeaders, headers: req.headers, bodyLength: body.byteLength, body: body.subarray(0, 64).toString("latin1") };
      res.writeHead(200, { "Content-Type": "application/json", "Keep-Alive": "timeout=5" });
      res.end(JSON.stringify(seen));
    });
  });
  server.on("upgrade", (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", (data, binary) => ws.send(data, { binary }))));
  return server;
}

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), "tsgi-h2-"));
  A = selfSignedPair(root, "a");
  B = selfSignedPair(root, "b");
  files = { cert: path.join(root, "live.crt"), key: path.join(root, "live.key") };
  copyFileSync(A.cert, files.cert);
  copyFileSync(A.key, files.key);
  writeFileSync(path.join(root, "page.html"), "<p>static over h2</p>\n");
  writeFileSync(path.join(root, "style.css"), "p { color: teal }\n".repeat(100));
  wss = new WebSocketServer({ noServer: true });
  const webPort = await listen(worker("web"));
  const apiPort = await listen(worker("api"));
  // A port nothing listens on: bound, then released.
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const downPort = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));

  proxy = new FrontProxy({
    routes: [
      { app: "web", host: "web.test" },
      { app: "site", host: "static.test" },
      { app: "down", host: "down.test" },
      { app: "limited", host: "limited.test" },
      { app: "queued", host: "queued.test" },
      { app: "api", path: "/api" },
    ],
    staticRoots: { site: root },
    compress: {
      web: { types: ["text/*"], minLength: 256, encodings: ["gzip"], levels: { br: 4, gzip: 6, zstd: 3 } },
      site: { types: ["text/*"], minLength: 256, encodings: ["br", "gzip"], levels: { br: 4, gzip: 6, zstd: 3 } },
    },
    clientLimits: {
      limited: { rate: { perSecond: 1, burst: 0, delay: 0, nodelay: false, status: 429, maxClients: 100 } },
      // 2 a second, one more waiting its turn (500 ms).
      queued: { rate: { perSecond: 2, burst: 1, delay: 0, nodelay: false, status: 429, maxClients: 100 } },
    },
    clientMaxBodySize: 1024 * 1024,
    onResponse: (entry) => log.push(entry),
  });
  proxy.setEndpoints("web", [{ id: "web.0", address: { kind: "tcp", host: "127.0.0.1", port: webPort } }]);
  proxy.setEndpoints("api", [{ id: "api.0", address: { kind: "tcp", host: "127.0.0.1", port: apiPort } }]);
  proxy.setEndpoints("limited", [{ id: "limited.0", address: { kind: "tcp", host: "127.0.0.1", port: webPort } }]);
  proxy.setEndpoints("queued", [{ id: "queued.0", address: { kind: "tcp", host: "127.0.0.1", port: webPort } }]);
  proxy.setEndpoints("down", [{ id: "down.0", address: { kind: "tcp", host: "127.0.0.1", port: downPort } }]);
  const credentials = { cert: readFileSync(files.cert), key: readFileSync(files.key) };
  const h2 = frontServer(proxy, { headerTimeoutMs: 5000, tls: credentials, http2: true });
  h2.keepAliveTimeout = IDLE_MS;
  h2Server = h2 as https.Server;
  h2Port = await listen(h2);
  h1OnlyPort = await listen(frontServer(proxy, { headerTimeoutMs: 5000, tls: credentials, http2: false }));
  stopWatching = watchCertificate([h2 as https.Server], files, { intervalMs: 50 });
});

afterAll(async () => {
  stopWatching();
  proxy?.close();
  wss?.close();
  await loopback.closeAll();
  rmSync(root, { recursive: true, force: true });
});

function connect(port = h2Port): http2.ClientHttp2Session {
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
  session.on("error", () => undefined);
  return session;
}

interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** The stream's error code when it was reset rather than ended. */
  reset?: number;
}

/** One stream; `body: "open"` sends the head and leaves the stream open (a body still to come). */
function request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | string | "open"): Promise<H2Answer> {
  return new Promise((resolve) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let status = 0;
    let got: http2.IncomingHttpHeaders = {};
    stream.on("response", (head) => {
      got = head;
      status = Number(head[":status"]);
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", () => undefined);
    stream.on("close", () => resolve({ status, headers: got, body: Buffer.concat(chunks), ...(stream.rstCode ? { reset: stream.rstCode } : {}) }));
    if (body === "open") stream.once("response", () => stream.close());
    else if (body !== undefined) stream.end(body);
  });
}

const json = (answer: H2Answer) => JSON.parse(answer.body.toString()) as { worker: string; method: string; url: string; rawHeaders: string[]; headers: http.IncomingHttpHeaders; bodyLength: number; body: string };

/** The h2 listener's keepAliveTimeout: how long a connection with no stream open is kept. */
const IDLE_MS = 1000;

const CONNECTION_SPECIFIC = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"];

/** The protocol ALPN settles on for a client offering `protocols`. */
async function negotiated(port: number, protocols: string[]): Promise<string | false> {
  const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ALPNProtocols: protocols });
  await once(socket, "secureConnect");
  const protocol = socket.alpnProtocol;
  socket.destroy();
  return protocol ?? false;
}

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile("curl", ["-sk", "--max-time", "5", ...args], (error, stdout) => (error ? reject(error) : resolve(stdout))),
  );
}

describe("HTTP/2 on the TLS listener", () => {
  it("offers h2 and http/1.1 on one port; with http2: false, HTTP/1.1 only", async () => {
    expect(await negotiated(h2Port, ["h2", "http/1.1"])).toBe("h2");
    expect(await negotiated(h2Port, ["http/1.1"])).toBe("http/1.1");
    expect(await negotiated(h1OnlyPort, ["h2", "http/1.1"])).not.toBe("h2");
    // curl --http2 gets HTTP/2 where offered, HTTP/1.1 where not; a client without ALPN is served HTTP/1.1.
    const resolve = (port: number) => ["--resolve", `web.test:${port}:127.0.0.1`];
    expect(await curl(["--http2", ...resolve(h2Port), "-o", "/dev/null", "-w", "%{http_version} %{http_code}", `https://web.test:${h2Port}/`])).toBe("2 200");
    expect(await curl(["--http2", ...resolve(h1OnlyPort), "-o", "/dev/null", "-w", "%{http_version} %{http_code}", `https://web.test:${h1OnlyPort}/`])).toBe("1.1 200");
    const plain = await new Promise<http.IncomingMessage>((done) => https.get({ host: "127.0.0.1", port: h2Port, path: "/api/x", rejectUnauthorized: false, agent: false }, done));
    plain.resume();
    expect([plain.statusCode, plain.httpVersion]).toEqual([200, "1.1"]);
  });

  it("routes many concurrent streams of one connection by :authority and path, each with its request id and no connection-specific header", async () => {
    const session = connect();
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        request(session, i % 2 ? { ":path": `/api/n${i}`, ":authority": "anything.test" } : { ":path": `/n${i}?q=${i}`, ":authority": "web.test", "x-request-id": `client-${i}` }),
      ),
    );
    session.close();
    answers.forEach((answer, i) => {
      expect(answer.status).toBe(200);
      const seen = json(answer);
      expect(seen.worker).toBe(i % 2 ? "api" : "web");
      expect(seen.url).toBe(i % 2 ? `/api/n${i}` : `/n${i}?q=${i}`);
      expect(answer.headers["x-request-id"]).toBe(i % 2 ? seen.headers["x-request-id"] : `client-${i}`);
      for (const name of CONNECTION_SPECIFIC) expect(answer.headers[name]).toBeUndefined();
    });
    const entry = log.find((e) => e.url === "/n2?q=2")!;
    expect(entry).toMatchObject({ httpVersion: "2.0", status: 200, app: "web", endpoint: "web.0", requestId: "client-2" });
  });

  it("speaks HTTP/1.1 to the worker: Host from :authority, no pseudo-header, cookies joined, forwarding headers", async () => {
    const session = connect();
    const answer = await request(session, { ":path": "/h", ":authority": "Web.Test:443", cookie: ["a=1", "b=2"], "x-forwarded-for": "6.6.6.6" });
    session.close();
    const seen = json(answer);
    expect(seen.rawHeaders.filter((_, i) => i % 2 === 0 && seen.rawHeaders[i]!.startsWith(":"))).toEqual([]);
    expect(seen.headers.host).toBe("Web.Test:443");
    expect(seen.headers.cookie).toBe("a=1; b=2");
    expect(seen.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen.headers["x-forwarded-proto"]).toBe("https");
    expect(seen.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("passes request bodies whole, with or without content-length; 413 past client_max_body_size", async () => {
    const session = connect();
    const body = Buffer.alloc(300_000, "b");
    // node's client sends no content-length: DATA frames until END_STREAM, read whole and sent on with one.
    const unframed = await request(session, { ":method": "POST", ":path": "/up", ":authority": "web.test" }, body);
    const framed = await request(session, { ":method": "PUT", ":path": "/up", ":authority": "web.test", "content-length": String(body.byteLength) }, body);
    const tooLarge = await request(session, { ":method": "POST", ":path": "/up", ":authority": "web.test" }, Buffer.alloc(1024 * 1024 + 1));
    const declaredTooLarge = await request(session, { ":method": "POST", ":path": "/up", ":authority": "web.test", "content-length": String(2 * 1024 * 1024) }, "open");
    const after = await request(session, { ":path": "/after", ":authority": "web.test" });
    const head = await request(session, { ":method": "HEAD", ":path": "/text", ":authority": "web.test" });
    session.close();
    for (const answer of [unframed, framed]) {
      expect(answer.status).toBe(200);
      expect(json(answer)).toMatchObject({ bodyLength: body.byteLength, body: "b".repeat(64) });
      expect(json(answer).headers["content-length"]).toBe(String(body.byteLength));
    }
    expect(tooLarge.status).toBe(413);
    expect(declaredTooLarge.status).toBe(413);
    expect(after.status).toBe(200);
    // HEAD: the worker's head, no body.
    expect([head.status, head.headers["content-type"], head.body.byteLength, head.reset]).toEqual([200, "text/plain", 0, undefined]);
  });

  it("refuses one stream with the proxy's own answers and keeps serving the connection", async () => {
    const session = connect();
    const notFound = await request(session, { ":path": "/", ":authority": "nowhere.test" });
    const badGateway = await request(session, { ":path": "/", ":authority": "down.test" });
    // RFC 9113 §8.3.1: a Host naming another entity than :authority is malformed.
    const confused = await request(session, { ":path": "/", ":authority": "web.test", host: "api.test" });
    // A header list over 32 KiB is refused (nginx's 4 x 8k header buffers); 200 small fields are fine (node alone resets past 128).
    const oversized = await request(session, { ":path": "/", ":authority": "web.test", ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`x-big-${i}`, "v".repeat(4000)])) });
    const manyFields = await request(session, { ":path": "/", ":authority": "web.test", ...Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x-f-${i}`, "v"])) });
    // CONNECT (a tunnel) is refused as on HTTP/1.1.
    const tunnel = await request(session, { ":method": "CONNECT", ":authority": "web.test:443" });
    const ok = await request(session, { ":path": "/", ":authority": "web.test" });
    session.close();
    expect([notFound.status, badGateway.status, confused.status, manyFields.status, tunnel.status, ok.status]).toEqual([404, 502, 400, 200, 405, 200]);
    // Refused before any pass runs: node's 431, or its stream reset (ENHANCE_YOUR_CALM), depending on where the list overflowed.
    expect(oversized.status === 431 || oversized.reset === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM).toBe(true);
    expect(tunnel.headers.allow).toBe("GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS");
    for (const answer of [notFound, badGateway, confused, tunnel]) {
      expect(answer.headers["x-request-id"]).toBeTruthy();
      expect(answer.headers.connection).toBeUndefined();
    }
    expect(log.find((e) => e.status === 502 && e.app === "down")).toMatchObject({ httpVersion: "2.0", error: expect.any(String) });
  });

  it("drops a worker's Upgrade on a 426, and resets the stream of a response the worker broke off", async () => {
    const session = connect();
    const upgradeRequired = await request(session, { ":path": "/426", ":authority": "web.test" });
    const broken = await request(session, { ":path": "/break", ":authority": "web.test" });
    const ok = await request(session, { ":path": "/", ":authority": "web.test" });
    session.close();
    expect(upgradeRequired.status).toBe(426);
    expect(upgradeRequired.headers.upgrade).toBeUndefined();
    expect(broken.status).toBe(200);
    expect(broken.body.byteLength).toBeLessThan(1000);
    expect(broken.reset).toBe(http2.constants.NGHTTP2_INTERNAL_ERROR);
    expect(ok.status).toBe(200);
  });

  it("answers 502 for a worker's head HTTP/2 cannot carry (a single-value header twice), with none of the worker's headers, and keeps serving", async () => {
    const session = connect();
    const etags = await request(session, { ":path": "/two-etags", ":authority": "web.test" });
    const types = await request(session, { ":path": "/two-types", ":authority": "web.test" });
    const ok = await request(session, { ":path": "/", ":authority": "web.test" });
    session.close();
    expect([etags.status, etags.headers.etag]).toEqual([502, undefined]);
    expect([types.status, types.headers["set-cookie"], types.headers["content-type"]]).toEqual([502, undefined, "text/plain; charset=utf-8"]);
    expect(types.body.toString()).toMatch(/^Bad Gateway: /);
    // The proxy process is still there: a new connection is served.
    const again = connect();
    const after = await request(again, { ":path": "/", ":authority": "web.test" });
    again.close();
    expect([ok.status, after.status]).toEqual([200, 200]);
  });

  it("serves static files, compresses, and rate-limits over h2 as over HTTP/1.1", async () => {
    const session = connect();
    const page = await request(session, { ":path": "/page.html", ":authority": "static.test" });
    const text = await request(session, { ":path": "/text", ":authority": "web.test", "accept-encoding": "gzip" });
    const css = await request(session, { ":path": "/style.css", ":authority": "static.test", "accept-encoding": "br" });
    const first = await request(session, { ":path": "/", ":authority": "limited.test" });
    const second = await request(session, { ":path": "/", ":authority": "limited.test" });
    session.close();
    expect([page.status, page.body.toString()]).toEqual([200, "<p>static over h2</p>\n"]);
    expect(text.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(text.body).toString()).toBe("hello h2 ".repeat(200));
    // A static file compressed on the fly: no Content-Length, the decoded bytes the file's.
    expect([css.status, css.headers["content-encoding"], css.headers["content-length"]]).toEqual([200, "br", undefined]);
    expect(brotliDecompressSync(css.body).toString()).toBe("p { color: teal }\n".repeat(100));
    expect([first.status, second.status]).toEqual([200, 429]);
  });

  it("a stream cancelled while its request waits its turn (rate_limit's burst) is logged 499 and never passed on; the connection serves on", async () => {
    const session = connect();
    expect((await request(session, { ":path": "/first", ":authority": "queued.test" })).status).toBe(200);
    const waiting = session.request({ ":path": "/cancelled", ":authority": "queued.test" });
    waiting.on("error", () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    waiting.close(http2.constants.NGHTTP2_CANCEL); // about 400 ms before its turn
    const deadline = Date.now() + 3000;
    while (!log.some((entry) => entry.url === "/cancelled") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const entry = log.find((candidate) => candidate.url === "/cancelled");
    expect(entry).toMatchObject({ status: 499, app: "queued" });
    expect(entry!.endpoint).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await request(session, { ":path": "/after", ":authority": "queued.test" })).status).toBe(200);
    session.close();
  });

  it("closes a connection left with no stream open for the keep-alive timeout, but not one whose stream waits for its worker", async () => {
    const session = connect();
    const closed = once(session, "close");
    const slow = await request(session, { ":path": "/slow", ":authority": "web.test" });
    expect([slow.status, slow.body.toString()]).toEqual([200, "slow"]);
    expect(session.closed || session.destroyed).toBe(false);
    await closed;
  });

  it("closes a connection that only pings for the keep-alive timeout: frames other than a stream do not keep it open", async () => {
    const session = connect();
    await once(session, "connect");
    const began = Date.now();
    const goaway = once(session, "goaway");
    const pinging = setInterval(() => {
      if (!session.closed && !session.destroyed) session.ping(() => undefined);
    }, IDLE_MS / 5);
    try {
      await once(session, "close");
    } finally {
      clearInterval(pinging);
    }
    await goaway;
    // Closed by the idle rule (IDLE_MS from its start), never by the pings' silence, which never came.
    expect(Date.now() - began).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(Date.now() - began).toBeLessThan(IDLE_MS * 4);
  });

  it("closes a connection trickling a HEADERS frame a byte at a time, as a slowloris client does", async () => {
    const socket = loopback.track(tls.connect({ host: "127.0.0.1", port: h2Port, rejectUnauthorized: false, ALPNProtocols: ["h2"] }));
    await once(socket, "secureConnect");
    expect(socket.alpnProtocol).toBe("h2");
    const began = Date.now();
    // The client preface and an empty SETTINGS frame (RFC 9113 §3.4), then a HEADERS frame on stream 1 whose
    // 64-byte payload comes one byte every IDLE_MS / 5: the stream never opens.
    socket.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
    socket.write(Buffer.from([0, 0, 64, 1, 4, 0, 0, 0, 1]));
    socket.on("data", () => undefined);
    socket.on("error", () => undefined);
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(Buffer.from([0]));
    }, IDLE_MS / 5);
    const closed = await Promise.race([once(socket, "close").then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), IDLE_MS * 4))]);
    clearInterval(trickle);
    socket.destroy();
    expect(closed, "the proxy closed the connection").toBe(true);
    expect(Date.now() - began).toBeLessThan(IDLE_MS * 4);
  });

  it("still upgrades WebSockets over HTTP/1.1 on the same port", async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${h2Port}/api/ws`, { rejectUnauthorized: false });
    await once(ws, "open");
    ws.send("ping over tls");
    const [message] = (await once(ws, "message")) as [Buffer];
    ws.close();
    expect(message.toString()).toBe("ping over tls");
  });

  it("serves a renewed certificate to new h2 connections", async () => {
    const presented = async () => {
      const session = connect();
      await once(session, "connect");
      const fingerprint = (session.socket as tls.TLSSocket).getPeerX509Certificate()!.fingerprint256;
      const answer = await request(session, { ":path": "/", ":authority": "web.test" });
      session.close();
      return { fingerprint, status: answer.status };
    };
    expect(await presented()).toEqual({ fingerprint: A.fingerprint, status: 200 });
    writeFileSync(files.cert, readFileSync(B.cert));
    writeFileSync(files.key, readFileSync(B.key));
    const deadline = Date.now() + 5000;
    let now = await presented();
    while (now.fingerprint !== B.fingerprint && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      now = await presented();
    }
    expect(now).toEqual({ fingerprint: B.fingerprint, status: 200 });
  });

  // Last: it stops the h2 listener.
  it("a graceful stop sends GOAWAY: the stream under way finishes, then the connection and the listener close", async () => {
    const session = connect();
    const closed = once(session, "close");
    const slow = request(session, { ":path": "/slow", ":authority": "web.test" });
    await new Promise((resolve) => setTimeout(resolve, 200));
    let answered = false;
    void slow.then(() => (answered = true));
    const goaway = once(session, "goaway").then(() => answered);
    const stopped = closeFrontDoor(h2Server);
    // GOAWAY comes at once, before the stream under way is answered (not only once the connection is idle).
    expect(await goaway).toBe(false);
    expect([(await slow).status, (await slow).body.toString()]).toEqual([200, "slow"]);
    await closed;
    await stopped;
    expect(h2Server.listening).toBe(false);
  });
});
