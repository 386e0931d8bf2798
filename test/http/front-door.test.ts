/**
 * Both front doors — the proxy's listener and a worker's own HTTP listener
 * (`serve`) — answer malformed and unusual requests the same way, on real
 * sockets at 127.0.0.1 port 0, from raw bytes (RFC 9110/9112 and what nginx
 * does). One suite, run against each (http/front-door.ts and
 * http/request-rules.ts are their shared home).
 */
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createHttpServer } from "../../src/gateway/http/server.ts";
import { InFlight } from "../../src/gateway/in-flight.ts";
import { closeFrontDoor, LINGER_MS } from "../../src/http/front-door.ts";
import { frontServer } from "../../src/proxy/listener.ts";
import { FrontProxy } from "../../src/proxy/server.ts";
import type { Environ, StartResponse } from "../../src/tsgi/types.ts";
import { everyFeature } from "../helpers/every-feature.ts";

/** What the app behind the front door saw of one request. */
interface Seen {
  method: string;
  path: string;
  host: string | undefined;
}

interface FrontDoor {
  port: number;
  seen: Seen[];
  /** Closes the listener as a graceful stop does: connections with a response under way stay until it ends. */
  stopListening(): void;
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function track(server: net.Server): void {
  const sockets = new Set<net.Socket>();
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
}

async function listen(server: net.Server): Promise<number> {
  track(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as net.AddressInfo).port;
}

/**
 * The app: /stream answers a chunked body in three slow pieces; anything
 * else answers "ok" and is recorded.
 */
function respond(seen: Seen[], path: string, method: string, host: string | undefined): { chunks: string[]; delayMs: number } {
  if (path === "/stream") return { chunks: ["one ", "two ", "three"], delayMs: 60 };
  seen.push({ method, path, host });
  return { chunks: ["ok"], delayMs: 0 };
}

async function serveDoor(): Promise<FrontDoor> {
  const seen: Seen[] = [];
  const app = async function* (environ: Environ, start: StartResponse) {
    const { chunks, delayMs } = respond(seen, environ.PATH_INFO as string, environ.REQUEST_METHOD as string, environ.HTTP_HOST as string | undefined);
    start("200 OK", [["Content-Type", "text/plain"]]);
    for (const chunk of chunks) {
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
      yield chunk;
    }
  };
  const server = createHttpServer(app, { errors: { write: () => undefined }, inFlight: new InFlight(), multiprocess: false, keepAliveTimeout: 5000 });
  const port = await listen(server);
  return { port, seen, stopListening: () => void closeFrontDoor(server) };
}

/** The proxy with routing alone, or (`features`) with the front door's features on (test/helpers/every-feature.ts): the answers must not change. */
async function proxyDoor(features = false): Promise<FrontDoor> {
  const seen: Seen[] = [];
  const worker = http.createServer((req, res) => {
    const { chunks, delayMs } = respond(seen, (req.url ?? "/").split("?")[0]!, req.method ?? "GET", req.headers.host);
    res.writeHead(200, { "Content-Type": "text/plain" });
    let index = 0;
    const next = () => (index < chunks.length ? void res.write(chunks[index++], () => setTimeout(next, delayMs)) : void res.end());
    next();
  });
  const workerPort = await listen(worker);
  const configured = features ? everyFeature() : undefined;
  if (configured) cleanups.push(configured.cleanup);
  const proxy = new FrontProxy(configured ? configured.options : { routes: [{ app: "web" }] });
  proxy.setEndpoints("web", [{ id: "web.0", address: { kind: "tcp", host: "127.0.0.1", port: workerPort } }]);
  cleanups.push(() => proxy.close());
  const server = frontServer(proxy, { headerTimeoutMs: 10_000 });
  const port = await listen(server);
  return { port, seen, stopListening: () => void closeFrontDoor(server) };
}

interface Exchange {
  text: string;
  /** The server closed the connection (we saw its FIN or reset) within the wait. */
  closed: boolean;
}

/** Sends raw bytes, collects what comes back until the server closes or `waitMs` passes. */
function raw(port: number, bytes: string, waitMs = 3000): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(bytes, "latin1"));
    let text = "";
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("end", () => finish(true));
    socket.on("error", () => finish(true));
  });
}

/** The status codes of every response in a raw exchange, in order. */
function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]));
}

const GET = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: app.test\r\n${extra}\r\n`;

for (const [name, open] of [
  ["serve", serveDoor],
  ["proxy", () => proxyDoor()],
  ["proxy with every feature on", () => proxyDoor(true)],
] as const) {
  describe(`${name}: bytes after a request never cost it its response (RFC 9112 §9.6)`, () => {
    it("a request with Connection: close, then another: the first is answered, the second ignored", async () => {
      const door = await open();
      const got = await raw(door.port, GET("/first", "Connection: close\r\n") + GET("/second"));
      expect(statuses(got.text)).toEqual([200]);
      expect(got.closed).toBe(true);
      expect(door.seen.map((request) => request.path)).toEqual(["/first"]);
    });

    it("an HTTP/1.0 request, then another: the first is answered", async () => {
      const door = await open();
      const got = await raw(door.port, "GET /first HTTP/1.0\r\nHost: app.test\r\n\r\n" + GET("/second"));
      expect(statuses(got.text)).toEqual([200]);
      expect(door.seen.map((request) => request.path)).toEqual(["/first"]);
    });

    it("garbage behind a streamed response: the response is finished in full, then one 400, then close", async () => {
      const door = await open();
      const got = await raw(door.port, GET("/stream") + "NOT HTTP AT ALL\r\n\r\nMORE GARBAGE\r\n\r\n");
      expect(statuses(got.text)).toEqual([200, 400]);
      const [first, second] = got.text.split(/(?=HTTP\/1\.1 400 )/);
      expect(first).toContain("one ");
      expect(first).toContain("three");
      expect(first!.endsWith("0\r\n\r\n")).toBe(true);
      expect(second).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(got.closed).toBe(true);
    });

    it("a good request, then garbage in the same packet: 200, then one 400", async () => {
      const door = await open();
      const got = await raw(door.port, GET("/one") + "\x01\x02\x03 garbage\r\n\r\n");
      expect(statuses(got.text)).toEqual([200, 400]);
      expect(door.seen.map((request) => request.path)).toEqual(["/one"]);
    });
  });

  describe(`${name}: heads refused with 400, 405, 431 or 505`, () => {
    it.each([
      ["two Host lines", "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", 400],
      ...[".", "..x", "a/\\:1", "1.2.3.4:9000:80", ":98777", "[::1", "[1::2::3]"].map((host) => [`Host ${host}`, `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 400] as const),
      ["two Authorization lines", GET("/", "Authorization: Basic a\r\nAuthorization: Basic b\r\n"), 400],
      ["two If-Modified-Since lines", GET("/", "If-Modified-Since: x\r\nIf-Modified-Since: y\r\n"), 400],
      ["* with GET", "GET * HTTP/1.1\r\nHost: app.test\r\n\r\n", 400],
      ["a malformed absolute-form target", "GET http://app.test:99999/ HTTP/1.1\r\nHost: app.test\r\n\r\n", 400],
      ["a bad percent-escape in the path", "GET /a%zz HTTP/1.1\r\nHost: app.test\r\n\r\n", 400],
      ["Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400],
      ["HTTP/2.0 in the request line", "GET / HTTP/2.0\r\nHost: app.test\r\n\r\n", 505],
      ["HTTP/1.2", "GET / HTTP/1.2\r\nHost: app.test\r\n\r\n", 505],
      ["HTTP/0.9", "GET / HTTP/0.9\r\nHost: app.test\r\n\r\n", 400],
      ["a 9 KiB header line", GET("/", `X-Big: ${"b".repeat(9 * 1024)}\r\n`), 431],
      ["TRACE", "TRACE / HTTP/1.1\r\nHost: app.test\r\n\r\n", 405],
      ["CONNECT", "CONNECT app.test:443 HTTP/1.1\r\nHost: app.test:443\r\n\r\n", 405],
    ] as [string, string, number][])("%s: %i, and the app never sees it", async (_what, request, status) => {
      const door = await open();
      const got = await raw(door.port, request);
      expect(statuses(got.text)).toEqual([status]);
      expect(door.seen).toEqual([]);
    });

    it("OPTIONS * is a request like any other, not a 400", async () => {
      const door = await open();
      const got = await raw(door.port, "OPTIONS * HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n");
      expect(statuses(got.text)[0]).not.toBe(400);
    });

    it("a refused request closes the connection: a request pipelined behind it is not served", async () => {
      const door = await open();
      const got = await raw(door.port, "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n" + GET("/after"));
      expect(statuses(got.text)).toEqual([400]);
      expect(got.closed).toBe(true);
      expect(door.seen).toEqual([]);
    });
  });

  describe(`${name}: the target the app is given`, () => {
    it("an absolute-form target: routed by its own host and path, given to the app in origin-form with that Host", async () => {
      const door = await open();
      const got = await raw(door.port, "GET http://other.test:8080/a/../b?x=1 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n");
      expect(statuses(got.text)).toEqual([200]);
      expect(door.seen).toEqual([{ method: "GET", path: "/b", host: "other.test:8080" }]);
    });

    it("dot segments are removed from the path, plain or percent-encoded", async () => {
      const door = await open();
      await raw(door.port, GET("/x/./y/../z/%2e%2e/w", "Connection: close\r\n"));
      expect(door.seen.map((request) => request.path)).toEqual(["/x/w"]);
    });
  });

  describe(`${name}: connections end in bounded time`, () => {
    it("a client that ignores the 400 and keeps writing is cut off within the linger time", async () => {
      const door = await open();
      const started = Date.now();
      const closed = await new Promise<number>((resolve) => {
        const socket = net.connect(door.port, "127.0.0.1", () => socket.write("BROKEN\r\n\r\n"));
        // Never reads what we send back; keeps sending.
        socket.pause();
        const writer = setInterval(() => socket.write("x".repeat(1024)), 50);
        const done = () => {
          clearInterval(writer);
          socket.destroy();
          resolve(Date.now() - started);
        };
        socket.on("close", done);
        socket.on("error", done);
        setTimeout(done, LINGER_MS + 5000);
      });
      expect(closed).toBeLessThan(LINGER_MS + 3000);
    });

    it("a graceful stop: a request pipelined behind the one being answered gets Connection: close, and the connection then ends", async () => {
      const door = await open();
      const socket = net.connect(door.port, "127.0.0.1");
      await new Promise((resolve) => socket.once("connect", resolve));
      socket.setEncoding("latin1");
      let text = "";
      socket.on("data", (chunk: string) => (text += chunk));
      const ended = new Promise((resolve) => socket.once("end", resolve));
      socket.write(GET("/stream") + GET("/during"));
      // The first response is under way (its head is out) when the stop begins.
      await waitFor(() => text.includes("one "));
      door.stopListening();
      await ended;
      expect(statuses(text)).toEqual([200, 200]);
      const [first, second] = text.split(/(?=HTTP\/1\.1 200 )/).filter(Boolean);
      expect(first!.toLowerCase()).not.toContain("connection: close");
      expect(second!.toLowerCase()).toContain("connection: close");
      expect(door.seen.map((request) => request.path)).toEqual(["/during"]);
      socket.destroy();
    });
  });
}

function waitFor(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = () => (check() ? resolve() : Date.now() > deadline ? reject(new Error("timed out")) : setTimeout(poll, 10));
    poll();
  });
}
