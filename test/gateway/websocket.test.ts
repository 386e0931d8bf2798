/**
 * WebSockets through the gateway worker, end to end: `tsgi-stack serve` as a
 * real process on 127.0.0.1 port 0, a `ws` client (Node 20 has no WebSocket
 * client of its own). The app's upgrade handler (the `upgrade` export, or an
 * `upgrade` method on the app export) takes the connection; an app without one
 * answers the upgrade request as a plain request. The worker's lifecycle
 * around upgraded connections: graceful stop waits for them up to the graceful
 * timeout, --timeout never cuts them, --max-requests counts the handshake.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { fixture, httpGet, runCli, serve, type Served, sleep, stopAll } from "../helpers/serve.ts";

const LOOPBACK = "127.0.0.1:0";
const ECHO = fixture("websocket-echo.ts");

const clients = new Set<WebSocket>();
afterEach(() => {
  for (const client of clients) {
    // terminate() on a client still connecting emits 'error': the test is over, nothing to report.
    client.on("error", () => undefined);
    client.terminate();
  }
  clients.clear();
});
afterAll(stopAll);

const wsUrl = (served: Served, path: string) => `${served.url.replace(/^http/, "ws")}${path}`;

/** A client, open; every client is terminated after each test. */
async function connect(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const client = new WebSocket(url, options);
  clients.add(client);
  await once(client, "open");
  return client;
}

/** The next message, as text or as bytes. */
async function next(client: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  const [data, isBinary] = (await once(client, "message")) as [Buffer, boolean];
  return { data, isBinary };
}

/** Resolves when the client's connection is closed, with the close code and when it happened. */
function closedOf(client: WebSocket): Promise<{ code: number; at: number }> {
  return new Promise((resolve) => client.once("close", (code) => resolve({ code, at: Date.now() })));
}

/** An upgrade request that the server answers without upgrading: its plain HTTP answer. */
function refusedUpgrade(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const client = new WebSocket(url);
    clients.add(client);
    client.once("open", () => reject(new Error("the upgrade was accepted")));
    client.once("unexpected-response", (_req, res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => {
        resolve({ status: res.statusCode ?? 0, body });
        client.terminate();
      });
    });
    client.once("error", (error) => reject(error));
  });
}

describe("serve: WebSocket through the app's upgrade handler", () => {
  let worker: Served;
  beforeAll(async () => {
    // Under the arbiter, as `tsgi-stack serve` runs by default: the workers share the listening socket.
    worker = await serve([ECHO, "--http", LOOPBACK]);
  });

  it("says at boot where it found the upgrade handler", () => {
    expect(worker.stdout()).toMatch(/loaded .*websocket-echo\.ts \(tsgi interface, export "app", upgrade handler "upgrade"\)/);
  });

  it("echoes text and a 1 MiB binary message, then closes cleanly", async () => {
    const client = await connect(wsUrl(worker, "/ws"));
    client.send("hello, gateway");
    const text = await next(client);
    expect(text.isBinary).toBe(false);
    expect(text.data.toString("utf8")).toBe("hello, gateway");

    const blob = randomBytes(1024 * 1024);
    client.send(blob);
    const binary = await next(client);
    expect(binary.isBinary).toBe(true);
    expect(binary.data.equals(blob)).toBe(true);

    const closed = closedOf(client);
    client.close(1000, "done");
    expect((await closed).code).toBe(1000);
  });

  it("keeps many small messages in order", async () => {
    const client = await connect(wsUrl(worker, "/ws"));
    const received: string[] = [];
    const all = new Promise<void>((resolve) =>
      client.on("message", (data) => {
        received.push(String(data));
        if (received.length === 200) resolve();
      }),
    );
    for (let i = 0; i < 200; i++) client.send(`m${i}`);
    await all;
    expect(received).toEqual(Array.from({ length: 200 }, (_, i) => `m${i}`));
  });

  it("still serves plain requests on the same port", async () => {
    const response = await httpGet(`${worker.url}/page`);
    expect(response.status).toBe(200);
    expect(response.body).toBe("plain /page upgrade=-");
  });

  it("completes a handshake the handler finishes after an await", async () => {
    const client = await connect(wsUrl(worker, "/async"));
    client.send("late");
    expect(String((await next(client)).data)).toBe("late");
  });

  it("passes on the handler's own refusal: status and body, no tunnel", async () => {
    expect(await refusedUpgrade(wsUrl(worker, "/refuse"))).toEqual({ status: 403, body: "no sockets for you\n" });
  });

  it("answers 500 when the handler throws, logs it, and keeps serving", async () => {
    expect(await refusedUpgrade(wsUrl(worker, "/throw"))).toEqual({ status: 500, body: "" });
    await sleep(50);
    expect(worker.stderr()).toContain("error in upgrade handler while handling GET /throw: Error: upgrade handler failed on purpose");
    const client = await connect(wsUrl(worker, "/ws"));
    client.send("after");
    expect(String((await next(client)).data)).toBe("after");
  });

  it("shrugs off a client that resets the connection mid-handshake", async () => {
    const { hostname, port } = new URL(worker.url);
    const socket = net.connect(Number(port), hostname);
    await once(socket, "connect");
    socket.write("GET /async HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    socket.resetAndDestroy();
    await sleep(200);
    const client = await connect(wsUrl(worker, "/ws"));
    client.send("still here");
    expect(String((await next(client)).data)).toBe("still here");
  });
});

describe("serve: upgrade handlers and the mount point", () => {
  afterEach(stopAll);

  /** Connects to /ws-info and reads the message the handler sends at once (it can arrive with the 101, before 'open' is seen). */
  async function info(url: string, options: WebSocket.ClientOptions = {}): Promise<unknown> {
    const client = new WebSocket(url, options);
    clients.add(client);
    const [data] = (await once(client, "message")) as [Buffer];
    return JSON.parse(String(data));
  }

  it("puts the handler's request under --script-name the way the node adapter does", async () => {
    const worker = await serve([ECHO, "--http", LOOPBACK, "--no-arbiter", "--script-name", "/chat"]);
    expect(await info(wsUrl(worker, "/chat/ws-info?room=1"))).toEqual({ url: "/ws-info?room=1", originalUrl: "/chat/ws-info?room=1", baseUrl: "/chat", prefix: "/chat" });
    // A path that cannot be decoded cannot be split at the mount: 400, as for a plain request.
    expect(await refusedUpgrade(wsUrl(worker, "/chat/%E0%A4%A"))).toEqual({ status: 400, body: "" });
  });

  it("takes the mount from --script-name-header, as behind the front proxy", async () => {
    const worker = await serve([ECHO, "--http", LOOPBACK, "--no-arbiter", "--script-name-header", "x-tsgi-script-name"]);
    expect(await info(wsUrl(worker, "/chat/ws-info"), { headers: { "x-tsgi-script-name": "/chat" } })).toEqual({ url: "/ws-info", originalUrl: "/chat/ws-info", baseUrl: "/chat", prefix: "/chat" });
    // Without the header the app is at the root, and the request is left as it came.
    expect(await info(wsUrl(worker, "/ws-info"))).toEqual({ url: "/ws-info", prefix: null });
  });

  it("finds an `upgrade` method on the app export, and calls it as a method", async () => {
    const worker = await serve([fixture("websocket-fetch.ts"), "--http", LOOPBACK, "--no-arbiter"]);
    expect(worker.stdout()).toMatch(/\(fetch interface, export "default", upgrade handler "default\.upgrade"\)/);
    const client = await connect(wsUrl(worker, "/any"));
    client.send("hi");
    expect(String((await next(client)).data)).toBe("fetch-app: hi");
    expect((await httpGet(`${worker.url}/x`)).body).toBe("fetch /x");
  });

  it("refuses to load a module whose `upgrade` export is not a function", async () => {
    const result = await runCli(["serve", fixture("bad-upgrade.ts"), "--http", LOOPBACK, "--no-arbiter"]);
    expect(result.code).toBe(4);
    expect(result.stderr.split("\n")[0]).toMatch(/export "upgrade" of .*bad-upgrade\.ts is string, not an upgrade handler \(req, socket, head\)/);
  });
});

describe("serve: an app without an upgrade handler", () => {
  afterEach(stopAll);

  it("answers the upgrade request as a plain request, as Gunicorn does: no 101, the app's own response", async () => {
    const worker = await serve(["examples/hello/app.ts", "--http", LOOPBACK, "--no-arbiter"]);
    expect(await refusedUpgrade(wsUrl(worker, "/ws"))).toEqual({ status: 200, body: "Hello from TSGI: GET /ws\n" });
  });

  it("answers with the app's own status (404 here) and keeps the connection usable for the next request", async () => {
    const worker = await serve([fixture("lifecycle.ts"), "--http", LOOPBACK, "--no-arbiter"]);
    const { hostname, port } = new URL(worker.url);
    const socket = net.connect(Number(port), hostname);
    await once(socket, "connect");
    let data = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk) => (data += chunk));
    socket.write("GET /nothing-here HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    while (!data.includes("not found: /nothing-here")) await once(socket, "data");
    expect(data).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    expect(data).not.toMatch(/101 Switching Protocols/);
    socket.write("GET /pid HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    await once(socket, "close");
    expect(data).toMatch(/HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n\d+$/);
  });
});

describe("serve: upgraded connections and the worker lifecycle", () => {
  afterEach(stopAll);

  it("on SIGTERM waits for an open WebSocket up to the graceful timeout, then closes it and exits 0", async () => {
    const worker = await serve([ECHO, "--http", LOOPBACK, "--no-arbiter", "--graceful-timeout", "1500ms"]);
    const client = await connect(wsUrl(worker, "/ws"));
    const closed = closedOf(client);
    const signalledAt = Date.now();
    process.kill(worker.pid, "SIGTERM");
    // Still serving the open socket while it drains...
    await sleep(300);
    client.send("during drain");
    expect(String((await next(client)).data)).toBe("during drain");
    // ...and no new connection is taken.
    await expect(connect(wsUrl(worker, "/ws"))).rejects.toThrow();
    const exited = await worker.exited;
    const exitedAt = Date.now();
    expect(exited).toEqual({ code: 0, signal: null });
    const { code, at } = await closed;
    expect(code).toBe(1006); // dropped by the worker: no close frame
    expect(at - signalledAt).toBeGreaterThanOrEqual(1400);
    expect(exitedAt - signalledAt).toBeGreaterThanOrEqual(1400);
    expect(exitedAt - signalledAt).toBeLessThan(4000);
    expect(worker.stdout()).toContain("SIGTERM: graceful stop (0 in flight, 1 upgraded)");
    expect(worker.stderr()).toContain("graceful timeout (1500 ms) passed with 0 in flight and 1 upgraded connection(s): dropping them");
  });

  it("on SIGTERM exits as soon as the last WebSocket closes, before the graceful timeout", async () => {
    const worker = await serve([ECHO, "--http", LOOPBACK, "--no-arbiter", "--graceful-timeout", "10s"]);
    const client = await connect(wsUrl(worker, "/ws"));
    const signalledAt = Date.now();
    process.kill(worker.pid, "SIGTERM");
    await sleep(300);
    const closed = closedOf(client);
    client.close(1000, "bye");
    expect((await closed).code).toBe(1000);
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(3000);
  });

  it("does not cut a WebSocket held open past --timeout and --keep-alive", async () => {
    const worker = await serve([ECHO, "--http", LOOPBACK, "--no-arbiter", "--timeout", "1s", "--keep-alive", "1s"]);
    const client = await connect(wsUrl(worker, "/ws"));
    let closedEarly = false;
    client.once("close", () => (closedEarly = true));
    client.send("first");
    expect(String((await next(client)).data)).toBe("first");
    // Idle well past both limits (the --timeout check runs every 100 ms here).
    await sleep(2500);
    expect(closedEarly).toBe(false);
    client.send("still open");
    expect(String((await next(client)).data)).toBe("still open");
    expect(worker.child.exitCode).toBeNull();
    expect(worker.stderr()).not.toContain("ran past");
  });

  it("drops a handshake still unfinished past --timeout, and leaves with exit code TIMEOUT (5)", async () => {
    const worker = await serve([ECHO, "--http", LOOPBACK, "--no-arbiter", "--timeout", "1s"]);
    const { hostname, port } = new URL(worker.url);
    const socket = net.connect(Number(port), hostname);
    await once(socket, "connect");
    socket.write("GET /stall HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    socket.on("error", () => undefined);
    const startedAt = Date.now();
    await once(socket, "close");
    expect(Date.now() - startedAt).toBeLessThan(3000);
    expect((await worker.exited).code).toBe(5);
    expect(worker.stderr()).toContain("request GET /stall ran past the 1000 ms timeout");
  });

  it("counts the handshake toward --max-requests, and still serves the socket that triggered the recycle", async () => {
    const worker = await serve([ECHO, "--http", LOOPBACK, "--no-arbiter", "--max-requests", "1", "--graceful-timeout", "10s"]);
    const client = await connect(wsUrl(worker, "/ws"));
    client.send("the last one");
    expect(String((await next(client)).data)).toBe("the last one");
    expect(worker.stdout()).toContain("served 1 requests (max-requests 1): recycling");
    const startedClosing = Date.now();
    client.close(1000);
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - startedClosing).toBeLessThan(3000);
  });
});

describe("examples/websocket/app.ts", () => {
  afterEach(stopAll);

  it("serves its page and echoes at /ws, mounted or not", async () => {
    const worker = await serve(["examples/websocket/app.ts", "--http", LOOPBACK, "--no-arbiter", "--script-name", "/echo"]);
    const page = await httpGet(`${worker.url}/echo/`);
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.body).toContain('new URL("/echo/ws", location.href)');
    const client = await connect(wsUrl(worker, "/echo/ws"));
    client.send("from the example");
    expect(String((await next(client)).data)).toBe("from the example");
    expect(await refusedUpgrade(wsUrl(worker, "/echo/elsewhere"))).toEqual({ status: 404, body: "" });
  });

  it("says goodbye (1001) to its sockets on SIGTERM, so the worker exits long before the graceful timeout", async () => {
    const worker = await serve(["examples/websocket/app.ts", "--http", LOOPBACK, "--no-arbiter", "--graceful-timeout", "30s"]);
    const client = await connect(wsUrl(worker, "/ws"));
    const closed = closedOf(client);
    const signalledAt = Date.now();
    process.kill(worker.pid, "SIGTERM");
    expect((await closed).code).toBe(1001);
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(5000);
  });
});
