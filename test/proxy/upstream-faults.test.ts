/**
 * The proxy's own HTTP/1.1 client (src/proxy/upstream/) against workers that
 * misbehave, through a real FrontProxy on a front listener
 * (frontServer(proxy)) at 127.0.0.1 port 0. Upstreams are either raw
 * net.Servers scripted byte by byte — so the test, not node:http, decides the
 * framing — or node:http servers, whose connections are counted. What is
 * checked is what a client (or an operator reading the access log) would see:
 *   - U4: bad framing from a worker is a 502 with none of the worker's bytes,
 *     logged as 502, and the next request is served on a new connection;
 *   - U6: a response cut short is never passed on as a complete one;
 *   - a response longer than its Content-Length does not leak into the next
 *     request on a reused connection;
 *   - keep-alive to workers: reused, bounded (upstreamKeepalive), swept when
 *     idle (upstreamKeepaliveTimeoutMs), and L5: no keep-alive race reaches a
 *     client;
 *   - L4: a stalled request body gets 408 and a closed connection (bodyTimeoutMs),
 *     a slow but steady one does not;
 *   - upstreamTimeoutMs mid-body, and only for the worker's silence (not a
 *     slow-reading or pausing client's), the retry policy (tries,
 *     nonIdempotent), 100-continue both ways, HEAD with a Content-Length.
 */
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { FrontProxy, type AccessEntry, type FrontProxyOptions } from "../../src/proxy/server.ts";
import { frontServer } from "../../src/proxy/listener.ts";
import { ConnectionPool } from "../../src/proxy/upstream/pool.ts";
import type { Endpoint } from "../../src/proxy/balancing/selector.ts";
import { failedFigure, record } from "../reliability/record.ts";

// ---- plumbing: every server, socket, agent and proxy is closed after each test ----

const servers: net.Server[] = [];
/** Every connection any of those servers accepted, and every client socket a test opened: destroyed after each test. */
const sockets = new Set<net.Socket>();
const proxies: FrontProxy[] = [];
const agents: http.Agent[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  for (const proxy of proxies.splice(0)) proxy.close();
  for (const agent of agents.splice(0)) agent.destroy();
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))));
});

function track(socket: net.Socket): net.Socket {
  sockets.add(socket);
  socket.once("close", () => sockets.delete(socket));
  return socket;
}

function listen(server: net.Server): Promise<number> {
  servers.push(server);
  server.on("connection", (socket: net.Socket) => track(socket));
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

const tcp = (id: string, port: number): Endpoint => ({ id, address: { kind: "tcp", host: "127.0.0.1", port } });

// ---- upstreams ----

/** One request as a raw upstream read it. */
interface RawRequest {
  method: string;
  url: string;
  head: string;
  body: Buffer;
}

interface RawUpstream {
  endpoint: Endpoint;
  /** "METHOD url" of every request read, in order. */
  requests: string[];
  /** Connections accepted so far. */
  connections(): number;
  /** Connections open now. */
  open(): number;
}

/**
 * A raw TCP upstream: reads request heads (and Content-Length bodies) and
 * lets `respond` write whatever bytes it likes. `connection` counts from 0
 * per upstream, `onConnection` from 0 per connection.
 */
async function rawUpstream(
  respond: (socket: net.Socket, request: RawRequest, at: { connection: number; onConnection: number }) => void,
  id = "web.raw",
): Promise<RawUpstream> {
  const requests: string[] = [];
  let connections = 0;
  let open = 0;
  const server = net.createServer((socket) => {
    const connection = connections++;
    open++;
    socket.once("close", () => open--);
    socket.on("error", () => undefined);
    let onConnection = 0;
    let buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end === -1) return;
        const head = buffer.toString("latin1", 0, end);
        const length = Number(/\r\ncontent-length:[ \t]*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.byteLength < end + 4 + length) return;
        const body = buffer.subarray(end + 4, end + 4 + length);
        buffer = buffer.subarray(end + 4 + length);
        const [method = "", url = ""] = head.split(" ");
        requests.push(`${method} ${url}`);
        respond(socket, { method, url, head, body }, { connection, onConnection: onConnection++ });
      }
    });
  });
  const port = await listen(server);
  return { endpoint: tcp(id, port), requests, connections: () => connections, open: () => open };
}

interface HttpUpstream {
  endpoint: Endpoint;
  server: http.Server;
  /** Requests whose body was read whole, as "METHOD url body". */
  seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }>;
  connections(): number;
  open(): number;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

/**
 * A node:http upstream that reads each body whole, records it, then calls
 * `handler`. `closeIdleAfterMs` makes it close a kept-alive connection idle
 * that long after a response, exactly: node 20.20 adds a fixed 1000 ms to
 * keepAliveTimeout before it really closes (HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER
 * in lib/_http_server.js), so keepAliveTimeout 300 alone closes at 1.3 s.
 */
async function httpUpstream(
  handler: Handler,
  id = "web.http",
  options: { keepAliveTimeout?: number; closeIdleAfterMs?: number } = {},
): Promise<HttpUpstream> {
  const seen: HttpUpstream["seen"] = [];
  let connections = 0;
  let open = 0;
  const server = http.createServer((req, res) => {
    if (options.closeIdleAfterMs !== undefined) {
      // Runs after node's own 'finish' listener (which sets keepAliveTimeout + 1 s), so this timeout wins;
      // node clears it again when the next request arrives on the connection.
      const socket = req.socket;
      res.once("finish", () => socket.setTimeout(options.closeIdleAfterMs!));
    }
    let body = "";
    req.setEncoding("latin1");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      handler(req, res, body);
    });
  });
  if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout;
  server.on("connection", (socket: net.Socket) => {
    connections++;
    open++;
    socket.once("close", () => open--);
  });
  const port = await listen(server);
  return { endpoint: tcp(id, port), server, seen, connections: () => connections, open: () => open };
}

const answerText =
  (text: string): Handler =>
  (_req, res) => {
    res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(text) });
    res.end(text);
  };

// ---- the proxy ----

interface Front {
  proxy: FrontProxy;
  port: number;
  log: AccessEntry[];
}

/** A FrontProxy routing host web.test to app "web", on a front listener at 127.0.0.1 port 0. */
async function front(options: Partial<FrontProxyOptions> = {}): Promise<Front> {
  const log: AccessEntry[] = [];
  const proxy = new FrontProxy({ routes: [{ app: "web", host: "web.test" }], onResponse: (entry) => log.push(entry), ...options });
  proxies.push(proxy);
  const port = await listen(frontServer(proxy, { headerTimeoutMs: 10_000 }));
  return { proxy, port, log };
}

// ---- clients ----

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** True only when the whole message arrived (res.complete, and "end" was emitted). */
  complete: boolean;
  /** The error or abort that ended the response early, if any. */
  broken?: string;
}

/**
 * One request on a fresh connection (or on `agent`'s); a response that
 * breaks mid-body resolves with complete: false; no response at all within
 * `timeoutMs` resolves with status 0.
 */
function request(
  port: number,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string; agent?: http.Agent; timeoutMs?: number } = {},
): Promise<Answer> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (answer: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(answer);
    };
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method: options.method ?? "GET",
        path: options.path ?? "/",
        agent: options.agent ?? false,
        headers: { host: "web.test", ...options.headers },
      },
      (res) => {
        let body = "";
        const finish = (broken?: string) =>
          settle({ status: res.statusCode ?? 0, headers: res.headers, body, complete: broken === undefined && res.complete, ...(broken ? { broken } : {}) });
        res.setEncoding("latin1");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => finish(res.complete ? undefined : "ended incomplete"));
        res.on("aborted", () => finish("aborted"));
        res.on("error", (error) => finish(error.message));
        res.on("close", () => finish(res.complete ? undefined : "closed"));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      settle({ status: 0, headers: {}, body: "", complete: false, broken: "no response in time" });
    }, options.timeoutMs ?? 10_000);
    req.on("error", (error) => settle({ status: 0, headers: {}, body: "", complete: false, broken: error.message }));
    req.end(options.body);
  });
}

const get = (port: number, path = "/", timeoutMs?: number) => request(port, { path, timeoutMs });

interface RawExchange {
  text: string;
  /** The proxy closed the connection (rather than the test giving up). */
  closed: boolean;
  /** Milliseconds from the connection to its close (or to giving up). */
  ms: number;
}

/** Raw bytes in, raw bytes out until the proxy closes the connection (or `timeoutMs` passes). */
function raw(port: number, bytes: string, timeoutMs = 10_000): Promise<RawExchange> {
  return new Promise((resolve) => {
    const startedAt = Date.now();
    const socket = track(net.connect(port, "127.0.0.1", () => socket.write(bytes, "latin1")));
    let text = "";
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed, ms: Date.now() - startedAt });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("error", () => undefined);
    socket.on("close", () => finish(true));
  });
}

/** Header names (lowercase) of a raw HTTP response, with their values. */
function rawHeaders(response: string): Array<[string, string]> {
  return response
    .slice(0, response.indexOf("\r\n\r\n"))
    .split("\r\n")
    .slice(1)
    .map((line) => {
      const colon = line.indexOf(":");
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as [string, string];
    });
}

const CLOSE_GET = "GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n";
const GOOD = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";

// ---- the tests ----

describe("U4: bad framing from a worker is a 502, with nothing of the worker's response", () => {
  const MARK = "UPSTREAM-BODY";
  const cases: Array<[string, string]> = [
    ["two Content-Length, identical", `HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Length: 13\r\nX-Marker: upstream-header\r\n\r\n${MARK}`],
    ["two Content-Length, different", `HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Length: 5\r\nX-Marker: upstream-header\r\n\r\n${MARK}`],
    ["Content-Length and Transfer-Encoding", `HTTP/1.1 200 OK\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\nX-Marker: upstream-header\r\n\r\nd\r\n${MARK}\r\n0\r\n\r\n`],
    ["Transfer-Encoding: gzip", `HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nX-Marker: upstream-header\r\n\r\n${MARK}`],
    ["Transfer-Encoding: chunked, gzip", `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\nX-Marker: upstream-header\r\n\r\nd\r\n${MARK}\r\n0\r\n\r\n`],
    ["a head over 16 KiB", `HTTP/1.1 200 OK\r\nX-Marker: upstream-header\r\nX-Big: ${"b".repeat(17 * 1024)}\r\nContent-Length: 13\r\n\r\n${MARK}`],
    ["status line HTTP/2 200", `HTTP/2 200 OK\r\nX-Marker: upstream-header\r\nContent-Length: 13\r\n\r\n${MARK}`],
    ["status line ICY 200 OK", `ICY 200 OK\r\nX-Marker: upstream-header\r\nContent-Length: 13\r\n\r\n${MARK}`],
    ["status line HTTP/1.1 20", `HTTP/1.1 20 OK\r\nX-Marker: upstream-header\r\nContent-Length: 13\r\n\r\n${MARK}`],
    ["a control character in the reason phrase", `HTTP/1.1 200 O\x01K\r\nX-Marker: upstream-header\r\nContent-Length: 13\r\n\r\n${MARK}`],
    ["bare LF line ends", `HTTP/1.1 200 OK\nX-Marker: upstream-header\nContent-Length: 13\n\n${MARK}`],
    ["a 101 to a request that did not ask to upgrade", `HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\nX-Marker: upstream-header\r\n\r\n${MARK}`],
  ];

  it.each(cases)("%s: 502, logged as 502, and the next request is served on a new connection", async (_what, bad) => {
    // The first connection gets the bad response (and is kept open, as a worker would); later ones a good one.
    const worker = await rawUpstream((socket, _request, { connection }) => socket.write(connection === 0 ? bad : GOOD, "latin1"));
    const { proxy, port, log } = await front({ upstreamTimeoutMs: 3000 });
    proxy.setEndpoints("web", [worker.endpoint]);

    const answer = await raw(port, CLOSE_GET, 5000);
    expect(answer.text).toMatch(/^HTTP\/1\.1 502 /);
    expect(answer.text).not.toContain(MARK);
    expect(answer.text).not.toContain("upstream-header");
    // A 502 from the proxy, not a 504 after waiting for the worker.
    expect(answer.ms).toBeLessThan(2500);
    await sleep(20);
    expect(log.map((entry) => entry.status)).toEqual([502]);

    const next = await get(port);
    expect(next).toMatchObject({ status: 200, body: "ok", complete: true });
    expect(worker.connections()).toBe(2);
  });

  it.each([
    ["a bad status line", "HTTP/2 200 internal-token-1111\r\nContent-Length: 0\r\n\r\n", "internal-token-1111"],
    ["a bad header name", "HTTP/1.1 200 OK\r\nX-Session Id: internal-token-2222\r\nContent-Length: 0\r\n\r\n", "internal-token-2222"],
    ["a bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5internal-token-3333\r\n\r\n", "internal-token-3333"],
    ["a bad Transfer-Encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: internal-token-4444\r\n\r\n", "internal-token-4444"],
  ])("%s: the 502's body does not repeat the worker's bytes to the client", async (_what, bad, secret) => {
    const worker = await rawUpstream((socket) => socket.write(bad, "latin1"));
    const { proxy, port } = await front();
    proxy.setEndpoints("web", [worker.endpoint]);
    const answer = await raw(port, CLOSE_GET);
    expect(answer.text).toMatch(/^HTTP\/1\.1 502 /);
    expect(answer.text).not.toContain(secret);
  });
});

describe("U6: a response cut short is never passed on as complete", () => {
  const cases: Array<[string, string, "end" | "destroy"]> = [
    ["Content-Length 100, 10 bytes, then FIN", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", "end"],
    ["Content-Length 100, 10 bytes, then reset", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", "destroy"],
    ["Content-Length 100, the head only, then FIN", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", "end"],
    ["chunked, a whole chunk, then FIN", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n", "end"],
    ["chunked, in the middle of a chunk's data, then FIN", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n0123456789", "end"],
    ["chunked, after the last chunk but before its final CRLF, then FIN", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n", "end"],
    ["chunked, then bad chunk framing", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789XXzz\r\n0\r\n\r\n", "end"],
  ];

  it.each(cases)("%s: the client sees an incomplete message", async (_what, partial, how) => {
    const worker = await rawUpstream((socket) => {
      socket.write(partial, "latin1");
      setTimeout(() => (how === "end" ? socket.end() : socket.destroy()), 50);
    });
    const { proxy, port, log } = await front();
    proxy.setEndpoints("web", [worker.endpoint]);

    const answer = await get(port);
    expect(answer.complete).toBe(false);
    expect(answer.broken).toBeDefined();
    // The worker's head reaches the client, then as much of the body as the worker sent: visibly cut short (nginx does the same).
    expect(answer.status).toBe(200);
    expect("0123456789".startsWith(answer.body)).toBe(true);

    // The same on the wire: the head, no terminating chunk, and never as many bytes as Content-Length says.
    const wire = await raw(port, CLOSE_GET);
    expect(wire.closed).toBe(true);
    expect(wire.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(wire.text.endsWith("0\r\n\r\n")).toBe(false);
    const length = rawHeaders(wire.text).find(([name]) => name === "content-length")?.[1];
    if (length !== undefined) expect(wire.text.length - wire.text.indexOf("\r\n\r\n") - 4).toBeLessThan(Number(length));
    await sleep(20);
    // Logged as what was really sent: the worker's status, and the body bytes that went out.
    expect(log).toHaveLength(2);
    for (const entry of log) expect(entry).toMatchObject({ status: 200 });
    expect(log[0]!.bytes).toBe(Buffer.byteLength(answer.body));
  });
});

describe("response headers that are not hop-by-hop instructions", () => {
  it("a 426 keeps its Upgrade (RFC 9110 §15.5.22), though the worker's Connection names it", async () => {
    const worker = await rawUpstream((socket) =>
      socket.end("HTTP/1.1 426 Upgrade Required\r\nUpgrade: TLS/1.2, HTTP/1.1\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n", "latin1"),
    );
    const { proxy, port } = await front();
    proxy.setEndpoints("web", [worker.endpoint]);
    const wire = await raw(port, CLOSE_GET);
    expect(wire.text).toMatch(/^HTTP\/1\.1 426 /);
    expect(rawHeaders(wire.text)).toContainEqual(["upgrade", "TLS/1.2, HTTP/1.1"]);
  });

  it("an Upgrade that Connection does not name is information, and is passed on; one it names is not", async () => {
    const worker = await rawUpstream((socket, request) =>
      socket.write(
        request.url === "/named"
          ? "HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nConnection: upgrade\r\nContent-Length: 2\r\n\r\nok"
          : "HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nok",
        "latin1",
      ),
    );
    const { proxy, port } = await front();
    proxy.setEndpoints("web", [worker.endpoint]);
    expect(rawHeaders((await raw(port, CLOSE_GET)).text)).toContainEqual(["upgrade", "h2c"]);
    const named = await raw(port, "GET /named HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n");
    expect(rawHeaders(named.text).map(([name]) => name)).not.toContain("upgrade");
  });

  it("of two Expires headers, the first is passed on", async () => {
    const worker = await rawUpstream((socket) =>
      socket.write("HTTP/1.1 200 OK\r\nExpires: Thu, 01 Dec 2033 16:00:00 GMT\r\nExpires: 0\r\nContent-Length: 2\r\n\r\nok", "latin1"),
    );
    const { proxy, port } = await front();
    proxy.setEndpoints("web", [worker.endpoint]);
    const expires = rawHeaders((await raw(port, CLOSE_GET)).text).filter(([name]) => name === "expires");
    expect(expires).toEqual([["expires", "Thu, 01 Dec 2033 16:00:00 GMT"]]);
  });
});

describe("a response longer than its framing says", () => {
  it("extra bytes after Content-Length in the same write: the client gets exactly the declared bytes, and they never answer the next request", async () => {
    const worker = await rawUpstream((socket) => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"));
    const { proxy, port } = await front();
    proxy.setEndpoints("web", [worker.endpoint]);
    for (let i = 0; i < 3; i++) {
      const answer = await get(port, `/${i}`);
      expect(answer).toMatchObject({ status: 200, body: "hello", complete: true });
    }
    // A connection that sent too much is not reused: one per request.
    expect(worker.connections()).toBe(3);
    expect(worker.requests).toEqual(["GET /0", "GET /1", "GET /2"]);
  });

  it("extra bytes arriving after the response, while the connection is idle: it is not reused", async () => {
    const worker = await rawUpstream((socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
      setTimeout(() => socket.writable && socket.write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"), 50);
    });
    const { proxy, port } = await front();
    proxy.setEndpoints("web", [worker.endpoint]);
    for (let i = 0; i < 3; i++) {
      expect(await get(port, `/${i}`)).toMatchObject({ status: 200, body: "hello", complete: true });
      await sleep(200);
    }
    expect(worker.connections()).toBe(3);
  });

  it("extra bytes after the last chunk: the client gets the chunked body only, and the connection is not reused", async () => {
    const worker = await rawUpstream((socket) =>
      socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"),
    );
    const { proxy, port } = await front();
    proxy.setEndpoints("web", [worker.endpoint]);
    for (let i = 0; i < 3; i++) expect(await get(port, `/${i}`)).toMatchObject({ status: 200, body: "hello", complete: true });
    expect(worker.connections()).toBe(3);
  });

  it("a 204 followed by a body: the client gets the 204, and the body never answers the next request", async () => {
    const worker = await rawUpstream((socket) => socket.write("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"));
    const { proxy, port } = await front();
    proxy.setEndpoints("web", [worker.endpoint]);
    for (let i = 0; i < 3; i++) expect(await get(port, `/${i}`)).toMatchObject({ status: 204, body: "", complete: true });
    expect(worker.connections()).toBe(3);
  });
});

describe("keep-alive connections to workers", () => {
  it("200 sequential requests reuse a connection or two", async () => {
    const worker = await httpUpstream(answerText("a"));
    const { proxy, port } = await front();
    proxy.setEndpoints("web", [worker.endpoint]);
    for (let i = 0; i < 200; i++) expect((await get(port, `/${i}`)).body).toBe("a");
    expect(worker.seen).toHaveLength(200);
    expect(worker.connections()).toBeLessThanOrEqual(2);
  });

  it("upstreamKeepalive 0: every request opens a new connection, and none stays open", async () => {
    const worker = await httpUpstream(answerText("a"));
    const { proxy, port } = await front({ upstreamKeepalive: 0 });
    proxy.setEndpoints("web", [worker.endpoint]);
    for (let i = 0; i < 20; i++) expect((await get(port, `/${i}`)).body).toBe("a");
    expect(worker.connections()).toBe(20);
    await sleep(200);
    expect(worker.open()).toBe(0);
  });

  it("20 concurrent requests with upstreamKeepalive 4: all answered, and afterwards at most 4 idle connections stay open", async () => {
    const worker = await httpUpstream((req, res, body) => setTimeout(() => answerText("a")(req, res, body), 100));
    const { proxy, port } = await front({ upstreamKeepalive: 4 });
    proxy.setEndpoints("web", [worker.endpoint]);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => get(port, `/${i}`)));
    expect(answers.map((answer) => answer.status)).toEqual(Array(20).fill(200));
    expect(worker.connections()).toBe(20);
    await sleep(300);
    expect(worker.open()).toBeGreaterThanOrEqual(1);
    expect(worker.open()).toBeLessThanOrEqual(4);
    // And those are the ones reused next.
    for (let i = 0; i < 4; i++) expect((await get(port, "/again")).body).toBe("a");
    expect(worker.connections()).toBe(20);
  });

  it("idle sweep: after upstreamKeepaliveTimeoutMs without traffic the proxy closes its idle connections, long before the worker would", async () => {
    const closedAt: number[] = [];
    const worker = await httpUpstream(answerText("a"), "web.http", { keepAliveTimeout: 10_000 });
    worker.server.on("connection", (socket: net.Socket) => {
      // 'end' is the peer's FIN: the proxy, not this server, closed it.
      socket.once("end", () => closedAt.push(Date.now()));
    });
    const { proxy, port } = await front({ upstreamKeepaliveTimeoutMs: 300 });
    proxy.setEndpoints("web", [worker.endpoint]);
    expect((await get(port)).body).toBe("a");
    const answeredAt = Date.now();
    await sleep(100);
    expect(worker.open()).toBe(1); // kept alive for now
    while (worker.open() > 0 && Date.now() - answeredAt < 3000) await sleep(25);
    expect(worker.open()).toBe(0);
    expect(closedAt).toHaveLength(1);
    expect(closedAt[0]! - answeredAt).toBeLessThan(2500);
    // The next request simply opens a new one.
    expect((await get(port)).body).toBe("a");
    expect(worker.connections()).toBe(2);
  });
});

describe("L5: the keep-alive race never reaches a client", () => {
  /** GETs in bursts on a keep-alive client agent, separated by idle gaps drawn from 150..350 ms. */
  async function bursts(port: number, count: number, perBurst: number, seed: number): Promise<{ total: number; failures: string[] }> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
    agents.push(agent);
    let state = seed;
    const random = () => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state / 2147483648;
    };
    const failures: string[] = [];
    let total = 0;
    for (let burst = 0; burst < count; burst++) {
      const answers = await Promise.all(
        Array.from({ length: perBurst }, (_, i) => {
          const path = `/b${burst}/r${i}`;
          return request(port, { path, agent }).then((answer) => ({ path, answer }));
        }),
      );
      for (const { path, answer } of answers) {
        total++;
        if (answer.status !== 200 || !answer.complete || answer.body !== bodyFor(path)) failures.push(`${path}: ${answer.status} ${answer.broken ?? ""}`);
      }
      await sleep(150 + random() * 200);
    }
    return { total, failures };
  }
  const bodyFor = (path: string) => `${path}:${"x".repeat(1000)}`;

  it("a worker with keepAliveTimeout 300 ms: 0 failures with upstreamKeepaliveTimeoutMs 200, and 0 with 10 s (the one resend covers the race)", async () => {
    const worker = await httpUpstream(
      (req, res) => {
        const body = bodyFor(req.url ?? "");
        res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(body) });
        res.end(body);
      },
      "web.http",
      { keepAliveTimeout: 300, closeIdleAfterMs: 300 },
    );
    const fresh = vi.spyOn(ConnectionPool.prototype, "fresh");

    const below = await front({ upstreamKeepaliveTimeoutMs: 200 });
    below.proxy.setEndpoints("web", [worker.endpoint]);
    const first = await bursts(below.port, 25, 40, 1);
    const firstResends = fresh.mock.calls.length;
    const firstConnections = worker.connections();
    const firstSeen = worker.seen.length;
    console.log(
      `L5 idle timeout 200 ms < worker 300 ms: ${first.failures.length} failed / ${first.total}; ` +
        `resends on a fresh connection: ${firstResends}; worker saw ${firstSeen} requests on ${firstConnections} connections`,
    );
    expect(first.failures).toEqual([]);
    expect(first.total).toBe(1000);

    const above = await front({ upstreamKeepaliveTimeoutMs: 10_000 });
    above.proxy.setEndpoints("web", [worker.endpoint]);
    const second = await bursts(above.port, 25, 40, 2);
    const secondResends = fresh.mock.calls.length - firstResends;
    console.log(
      `L5 idle timeout 10 s > worker 300 ms: ${second.failures.length} failed / ${second.total}; ` +
        `resends on a fresh connection: ${secondResends}; worker saw ${worker.seen.length - firstSeen} requests on ${worker.connections() - firstConnections} connections`,
    );
    record({
      id: "L5",
      done: "1000 requests in bursts with idle gaps straddling the worker's 300 ms keep-alive timeout, proxy idle timeout 200 ms then 10 s",
      figure: `${failedFigure(first.failures.length + second.failures.length, first.total + second.total)} (resets reaching a client); ${firstResends + secondResends} resent on a fresh connection`,
      pass: first.failures.length === 0 && second.failures.length === 0 && worker.seen.length === 2000,
    });
    expect(second.failures).toEqual([]);
    expect(second.total).toBe(1000);
    expect(worker.seen).toHaveLength(2000);
  });
});

describe("L5: the keep-alive race, for idempotent requests with a body", () => {
  it("a PUT with a body, sent on a kept-alive connection the worker had just closed, is resent once on a fresh one", async () => {
    // Answers the first request on each connection; a second one on the same connection finds it closed.
    const worker = await rawUpstream((socket, request, { onConnection }) => {
      if (onConnection > 0) return void socket.destroy();
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${request.body.byteLength + 4}\r\n\r\ngot ${request.body.toString("latin1")}`);
    });
    const { proxy, port } = await front();
    proxy.setEndpoints("web", [worker.endpoint]);
    expect(await get(port, "/warm")).toMatchObject({ status: 200, body: "got ", complete: true });
    const answer = await request(port, { method: "PUT", path: "/item", body: "data" });
    expect(answer).toMatchObject({ status: 200, body: "got data", complete: true });
    expect(worker.requests).toEqual(["GET /warm", "PUT /item", "PUT /item"]);
    expect(worker.connections()).toBe(2);
  });
});

describe("L4: a request body that stalls gets 408 (bodyTimeoutMs)", () => {
  /** Opens a raw connection, writes `first`, then nothing: resolves with what came back and when the proxy closed. */
  function stallAfter(port: number, first: string): Promise<RawExchange> {
    return raw(port, first, 8000);
  }

  it("Content-Length 100000, a few bytes, then nothing: 408 with Connection: close, the connection closes, logged as 408", async () => {
    const worker = await httpUpstream(answerText("a"));
    const { proxy, port, log } = await front({ bodyTimeoutMs: 300 });
    proxy.setEndpoints("web", [worker.endpoint]);
    const exchange = await stallAfter(port, "POST /upload HTTP/1.1\r\nHost: web.test\r\nContent-Length: 100000\r\n\r\nabcdef");
    expect(exchange.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(rawHeaders(exchange.text)).toContainEqual(["connection", "close"]);
    expect(exchange.closed).toBe(true);
    expect(exchange.ms).toBeLessThan(3000);
    await sleep(20);
    expect(log).toEqual([expect.objectContaining({ method: "POST", url: "/upload", status: 408 })]);
    // The worker never got a whole request it could act on.
    expect(worker.seen).toHaveLength(0);
  });

  it("a body sent steadily but slowly (a chunk every 100 ms for 1.5 s) is not cut off: 200", async () => {
    const worker = await httpUpstream((req, res, body) => answerText(String(body.length))(req, res, body));
    const { proxy, port, log } = await front({ bodyTimeoutMs: 300 });
    proxy.setEndpoints("web", [worker.endpoint]);
    const pieces = 15;
    const answer = await new Promise<Answer>((resolve) => {
      const req = http.request(
        { host: "127.0.0.1", port, method: "POST", path: "/slow", agent: false, headers: { host: "web.test", "content-length": String(pieces * 10) } },
        (res) => {
          let body = "";
          res.setEncoding("latin1");
          res.on("data", (chunk: string) => (body += chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, complete: res.complete }));
        },
      );
      req.on("error", (error) => resolve({ status: 0, headers: {}, body: "", complete: false, broken: error.message }));
      let sent = 0;
      const drip = setInterval(() => {
        req.write("0123456789");
        if (++sent === pieces) {
          clearInterval(drip);
          req.end();
        }
      }, 100);
    });
    expect(answer).toMatchObject({ status: 200, body: "150", complete: true });
    expect(worker.seen.map((seen) => seen.body.length)).toEqual([150]);
    expect(log.at(-1)).toMatchObject({ status: 200 });
  });

  it("a chunked body that stalls: 408 with Connection: close, the connection closes, and the worker sees nothing", async () => {
    const worker = await httpUpstream(answerText("a"));
    const { proxy, port, log } = await front({ bodyTimeoutMs: 300 });
    proxy.setEndpoints("web", [worker.endpoint]);
    const exchange = await stallAfter(port, "POST /chunks HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    expect(exchange.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(rawHeaders(exchange.text)).toContainEqual(["connection", "close"]);
    expect(exchange.closed).toBe(true);
    expect(exchange.ms).toBeLessThan(3000);
    await sleep(20);
    expect(log).toEqual([expect.objectContaining({ method: "POST", url: "/chunks", status: 408 })]);
    expect(worker.connections()).toBe(0);
  });
});

describe("upstreamTimeoutMs after the head", () => {
  it.each([
    ["Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"],
    ["chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n"],
  ])("a worker that sends the head and part of a %s body, then stalls: the client's response breaks off after about upstreamTimeoutMs", async (_what, partial) => {
    const worker = await rawUpstream((socket) => socket.write(partial, "latin1"));
    const { proxy, port } = await front({ upstreamTimeoutMs: 500 });
    proxy.setEndpoints("web", [worker.endpoint]);
    const startedAt = Date.now();
    const answer = await get(port, "/", 8000);
    const took = Date.now() - startedAt;
    expect(answer.status).toBe(200);
    expect(answer.body).toBe("0123456789");
    expect(answer.complete).toBe(false);
    expect(answer.broken).not.toBe("no response in time");
    expect(took).toBeGreaterThanOrEqual(400);
    expect(took).toBeLessThan(4000);
    // The proxy closed its connection to the stalled worker too.
    await sleep(100);
    expect(worker.open()).toBe(0);
  });
});

describe("upstreamTimeoutMs counts the worker's silence, not the client's", () => {
  it("a client that reads a large response slowly (pausing longer than upstreamTimeoutMs) still gets all of it", async () => {
    const size = 64 * 1024 * 1024;
    const piece = Buffer.alloc(64 * 1024, 97);
    const worker = await httpUpstream((_req, res) => {
      res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": size });
      let sent = 0;
      const pump = () => {
        while (sent < size) {
          sent += piece.byteLength;
          if (!res.write(piece)) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    });
    const { proxy, port } = await front({ upstreamTimeoutMs: 500 });
    proxy.setEndpoints("web", [worker.endpoint]);
    const got = await new Promise<{ status: number; bytes: number; complete: boolean }>((resolve) => {
      const req = http.get({ host: "127.0.0.1", port, path: "/big", agent: false, headers: { host: "web.test" } }, (res) => {
        let bytes = 0;
        let paused = false;
        res.on("data", (chunk: Buffer) => {
          bytes += chunk.byteLength;
          if (!paused) {
            // A client busy elsewhere for 1.5 s: the proxy must stop reading from the worker meanwhile, not give up on it.
            paused = true;
            res.pause();
            setTimeout(() => res.resume(), 1500);
          }
        });
        const finish = () => resolve({ status: res.statusCode ?? 0, bytes, complete: res.complete });
        res.on("end", finish);
        res.on("close", finish);
      });
      req.on("error", () => resolve({ status: 0, bytes: 0, complete: false }));
    });
    expect(got).toEqual({ status: 200, bytes: size, complete: true });
  });

  it("a client that pauses its upload for longer than upstreamTimeoutMs (but within bodyTimeoutMs): 200, not a 504 blamed on the worker", async () => {
    const worker = await httpUpstream((req, res, body) => answerText(`got ${body}`)(req, res, body));
    const { proxy, port, log } = await front({ upstreamTimeoutMs: 500, bodyTimeoutMs: 5000 });
    proxy.setEndpoints("web", [worker.endpoint]);
    const exchange = await new Promise<string>((resolve) => {
      const socket = track(
        net.connect(port, "127.0.0.1", () => {
          socket.write("POST /upload HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\nContent-Length: 10\r\n\r\n01234");
          setTimeout(() => socket.writable && socket.write("56789"), 1200);
        }),
      );
      let text = "";
      socket.setEncoding("latin1");
      socket.on("data", (chunk: string) => (text += chunk));
      socket.on("error", () => undefined);
      socket.on("close", () => resolve(text));
    });
    expect(exchange).toMatch(/^HTTP\/1\.1 200 /);
    expect(exchange.endsWith("got 0123456789")).toBe(true);
    await sleep(20);
    expect(log.at(-1)).toMatchObject({ status: 200 });
  });
});

describe("the retry policy per app", () => {
  it("tries 1: a request whose worker refuses connections is not failed over, though another worker is healthy (502)", async () => {
    const healthy = await httpUpstream(answerText("healthy"), "web.healthy");
    const { proxy, port, log } = await front({ retry: { web: { tries: 1, nonIdempotent: false } } });
    proxy.setEndpoints("web", [tcp("web.dead", await closedPort()), healthy.endpoint]);
    // Round robin starts with the first endpoint: the dead one.
    const answer = await get(port);
    expect(answer.status).toBe(502);
    expect(healthy.seen).toHaveLength(0);
    expect(log.at(-1)).toMatchObject({ status: 502, endpoint: "web.dead" });
  });

  it("tries 2: the same request goes to the healthy worker", async () => {
    const healthy = await httpUpstream(answerText("healthy"), "web.healthy");
    const { proxy, port } = await front({ retry: { web: { tries: 2, nonIdempotent: false } } });
    proxy.setEndpoints("web", [tcp("web.dead", await closedPort()), healthy.endpoint]);
    expect(await get(port)).toMatchObject({ status: 200, body: "healthy", complete: true });
    expect(healthy.seen).toHaveLength(1);
  });

  /** A worker that reads a POST whole, counts it, then drops the connection without answering; and a healthy one. */
  async function droppingAndHealthy() {
    const dropping = await httpUpstream((req) => req.socket.destroy(), "web.dropping");
    const healthy = await httpUpstream((req, res, body) => answerText(`healthy got ${body}`)(req, res, body), "web.healthy");
    return { dropping, healthy };
  }

  it("a POST the worker drops after reading it: 502 by default, and it reached that worker once and no other", async () => {
    const { dropping, healthy } = await droppingAndHealthy();
    const { proxy, port } = await front();
    proxy.setEndpoints("web", [dropping.endpoint, healthy.endpoint]);
    const answer = await request(port, { method: "POST", path: "/order", body: "order-1", headers: { "content-type": "text/plain" } });
    expect(answer.status).toBe(502);
    expect(dropping.seen.map((seen) => seen.body)).toEqual(["order-1"]);
    expect(healthy.seen).toHaveLength(0);
  });

  it("with nonIdempotent: true, a POST (Content-Length body) the worker dropped goes to the other worker: each got it once", async () => {
    const { dropping, healthy } = await droppingAndHealthy();
    const { proxy, port } = await front({ retry: { web: { tries: 2, nonIdempotent: true } } });
    proxy.setEndpoints("web", [dropping.endpoint, healthy.endpoint]);
    const answer = await request(port, { method: "POST", path: "/order", body: "order-1", headers: { "content-type": "text/plain" } });
    expect(answer).toMatchObject({ status: 200, body: "healthy got order-1" });
    expect(dropping.seen.map((seen) => seen.body)).toEqual(["order-1"]);
    expect(healthy.seen.map((seen) => seen.body)).toEqual(["order-1"]);
  });

  it("with nonIdempotent: true, a chunked POST the worker dropped goes to the other worker: each got it once", async () => {
    const { dropping, healthy } = await droppingAndHealthy();
    const { proxy, port } = await front({ retry: { web: { tries: 2, nonIdempotent: true } } });
    proxy.setEndpoints("web", [dropping.endpoint, healthy.endpoint]);
    const exchange = await raw(port, "POST /order HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n7\r\norder-2\r\n0\r\n\r\n");
    expect(exchange.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(exchange.text.endsWith("healthy got order-2")).toBe(true);
    expect(dropping.seen.map((seen) => seen.body)).toEqual(["order-2"]);
    expect(healthy.seen.map((seen) => seen.body)).toEqual(["order-2"]);
  });
});

describe("100-continue", () => {
  it("a client sending Expect: 100-continue gets 100 Continue, then its response; the worker never sees an Expect header", async () => {
    const worker = await httpUpstream((req, res, body) => answerText(`got ${body}`)(req, res, body));
    const { proxy, port } = await front();
    proxy.setEndpoints("web", [worker.endpoint]);
    const exchange = await new Promise<{ text: string; gotContinue: boolean }>((resolve) => {
      const socket = track(net.connect(port, "127.0.0.1"));
      let text = "";
      let sent = false;
      const sendBody = () => {
        if (sent) return;
        sent = true;
        socket.write("hello");
      };
      // A client waits a while for 100 Continue, then sends the body anyway (as curl does after 1 s).
      const fallback = setTimeout(sendBody, 2000);
      socket.setEncoding("latin1");
      socket.on("connect", () =>
        socket.write("POST /expect HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"),
      );
      socket.on("data", (chunk: string) => {
        text += chunk;
        if (!sent && /^HTTP\/1\.1 100 Continue\r\n\r\n/.test(text)) sendBody();
      });
      socket.on("error", () => undefined);
      socket.on("close", () => {
        clearTimeout(fallback);
        resolve({ text, gotContinue: /^HTTP\/1\.1 100 Continue\r\n\r\n/.test(text) });
      });
    });
    expect(exchange.gotContinue).toBe(true);
    const final = exchange.text.slice(exchange.text.indexOf("\r\n\r\n") + 4);
    expect(final).toMatch(/^HTTP\/1\.1 200 /);
    expect(final.endsWith("got hello")).toBe(true);
    expect(worker.seen).toHaveLength(1);
    expect(worker.seen[0]!.headers).not.toHaveProperty("expect");
  });

  it.each([
    ["then the final response later", ["HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"]],
    ["and the final response in the same write", ["HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"]],
    ["then 103 Early Hints, then the final response", ["HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"]],
  ])("a worker that sends 100 Continue %s: the client gets the final response", async (_what, writes) => {
    const worker = await rawUpstream((socket) => {
      writes.forEach((bytes, i) => setTimeout(() => socket.writable && socket.write(bytes, "latin1"), i * 30));
    });
    const { proxy, port, log } = await front();
    proxy.setEndpoints("web", [worker.endpoint]);
    const answer = await request(port, { method: "POST", path: "/x", body: "hello" });
    expect(answer).toMatchObject({ status: 200, body: "final", complete: true });
    await sleep(20);
    expect(log.at(-1)).toMatchObject({ status: 200 });
    // The connection is still good for the next request.
    const again = await get(port, "/y");
    expect(again).toMatchObject({ status: 200, body: "final", complete: true });
  });
});

describe("HEAD", () => {
  it("a worker answering HEAD with Content-Length: 1000 and no body: the client gets the header, no body, and its connection serves the next request", async () => {
    const worker = await httpUpstream((req, res) => {
      if (req.method === "HEAD") {
        res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": "1000" });
        res.end();
        return;
      }
      answerText("after-head")(req, res, "");
    });
    const { proxy, port, log } = await front();
    proxy.setEndpoints("web", [worker.endpoint]);
    const result = await new Promise<{ head: string; afterHead: string; next: string }>((resolve) => {
      const socket = track(net.connect(port, "127.0.0.1", () => socket.write("HEAD /h HTTP/1.1\r\nHost: web.test\r\n\r\n")));
      let text = "";
      let head = "";
      let afterHead: string | undefined;
      socket.setEncoding("latin1");
      socket.on("data", (chunk: string) => {
        text += chunk;
        if (!head && text.includes("\r\n\r\n")) {
          head = text.slice(0, text.indexOf("\r\n\r\n") + 4);
          // Anything that arrives after the head would be a body where there must be none.
          setTimeout(() => {
            afterHead = text.slice(head.length);
            text = "";
            socket.write("GET /next HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n");
          }, 150);
        }
      });
      socket.on("error", () => undefined);
      socket.on("close", () => resolve({ head, afterHead: afterHead ?? "(never checked)", next: text }));
    });
    expect(result.head).toMatch(/^HTTP\/1\.1 200 /);
    expect(rawHeaders(result.head)).toContainEqual(["content-length", "1000"]);
    expect(result.afterHead).toBe("");
    expect(result.next).toMatch(/^HTTP\/1\.1 200 /);
    expect(result.next.endsWith("\r\n\r\nafter-head")).toBe(true);
    expect(worker.seen.map((seen) => `${seen.method} ${seen.url}`)).toEqual(["HEAD /h", "GET /next"]);
    await sleep(20);
    expect(log.map((entry) => entry.status)).toEqual([200, 200]);
    // HEAD's answer left the worker connection reusable.
    expect(worker.connections()).toBe(1);
  });
});
