/**
 * WebSockets through the FrontProxy, on real sockets because the sockets are
 * what is under test: `frontServer(proxy, …)` on 127.0.0.1 port 0 (it installs
 * `proxy.handle` for requests and `proxy.handleUpgrade` for 'upgrade'), in
 * front of node:http upstreams on port 0 that accept upgrades with `ws`'
 * `WebSocketServer({ noServer: true })` and record what they were sent.
 *
 * The contract: an upgrade is routed, balanced and failed over like a request
 * and reaches its worker with the mount (x-tsgi-script-name), our
 * X-Forwarded-For and X-Request-Id, `Upgrade: websocket` + `Connection:
 * upgrade` and the Sec-WebSocket-* headers, and none of the client's other
 * hop-by-hop headers; the proxy's own refusals (404, 503) and a worker's
 * ordinary answer (403) reach the client as plain HTTP with no tunnel; a 101
 * makes a tunnel that carries messages both ways until either side closes it
 * or nothing moves for websocketIdleTimeoutMs; and the tunnel is one access
 * entry, status 101, when it ends.
 */
import http from "node:http";
import net from "node:net";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { FrontProxy, type AccessEntry, type FrontProxyOptions } from "../../src/proxy/server.ts";
import { frontServer } from "../../src/proxy/listener.ts";
import type { Endpoint } from "../../src/proxy/balancing/selector.ts";
import { LoopbackServers } from "../helpers/loopback.ts";

// ---- plumbing: every server, socket, client and proxy is closed after each test ----

const loopback = new LoopbackServers();
const proxies: FrontProxy[] = [];
const clients = new Set<WebSocket>();
const socketServers: WebSocketServer[] = [];

afterEach(async () => {
  for (const client of clients) {
    // terminate() on a client still connecting emits 'error': the test is over, nothing to report.
    client.on("error", () => undefined);
    client.terminate();
  }
  clients.clear();
  for (const proxy of proxies.splice(0)) proxy.close();
  for (const wss of socketServers.splice(0)) wss.close();
  await loopback.closeAll();
});

const listen = (server: net.Server) => loopback.listen(server);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` holds (or fails the test after `timeoutMs`). */
async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** What an upstream saw of one upgrade request, and what became of its connection. */
interface SeenUpgrade {
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  /** The accepted WebSocket (echo unless the test says otherwise), once the handshake is done. */
  socket?: WebSocket;
  /** The upstream end's close code, once its WebSocket closed. */
  closeCode?: number;
  /** True once the upstream's TCP connection is closed. */
  tcpClosed: boolean;
}

type UpgradeBehaviour = (req: http.IncomingMessage, socket: import("node:stream").Duplex, head: Buffer, accept: () => void) => void;

interface WsUpstream {
  name: string;
  endpoint: Endpoint;
  upgrades: SeenUpgrade[];
}

/**
 * A worker stand-in: a node:http server on 127.0.0.1 port 0 whose upgrades
 * `ws` accepts (echoing every message back as it came, text or binary) unless
 * `behaviour` answers otherwise. Plain requests get the upstream's name.
 */
async function wsUpstream(name: string, app = "chat", behaviour?: UpgradeBehaviour): Promise<WsUpstream> {
  const wss = new WebSocketServer({ noServer: true });
  socketServers.push(wss);
  const upgrades: SeenUpgrade[] = [];
  const server = http.createServer((_req, res) => res.end(name));
  server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const seen: SeenUpgrade = { url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders, tcpClosed: false };
    upgrades.push(seen);
    socket.once("close", () => (seen.tcpClosed = true));
    const accept = () =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        seen.socket = ws;
        ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
        ws.once("close", (code) => (seen.closeCode = code));
      });
    if (behaviour) behaviour(req, socket, head, accept);
    else accept();
  });
  const port = await listen(server);
  return { name, endpoint: { id: `${app}.${name}`, address: { kind: "tcp", host: "127.0.0.1", port } }, upgrades };
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

interface Front {
  proxy: FrontProxy;
  port: number;
  log: AccessEntry[];
}

/** A FrontProxy with the app "chat" mounted at /chat, on a front listener at 127.0.0.1 port 0. */
async function front(options: Partial<FrontProxyOptions> = {}): Promise<Front> {
  const log: AccessEntry[] = [];
  const proxy = new FrontProxy({
    routes: [{ app: "chat", path: "/chat" }],
    websocketIdleTimeoutMs: 500,
    onResponse: (entry) => log.push(entry),
    ...options,
  });
  proxies.push(proxy);
  const port = await listen(frontServer(proxy, { headerTimeoutMs: 60_000 }));
  return { proxy, port, log };
}

/** A `ws` client through the proxy, open; every client is terminated after each test. */
async function connect(port: number, path = "/chat/ws", options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const client = new WebSocket(`ws://127.0.0.1:${port}${path}`, options);
  clients.add(client);
  await once(client, "open");
  return client;
}

async function next(client: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  const [data, isBinary] = (await once(client, "message")) as [Buffer, boolean];
  return { data, isBinary };
}

function closedOf(client: WebSocket): Promise<{ code: number; reason: string; at: number }> {
  return new Promise((resolve) => client.once("close", (code, reason) => resolve({ code, reason: String(reason), at: Date.now() })));
}

const WS_KEY = "dGhlIHNhbXBsZSBub25jZQ==";
/** The Sec-WebSocket-Accept for WS_KEY (RFC 6455 §4.2.2). */
const WS_ACCEPT = createHash("sha1").update(`${WS_KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");

/** A hand-written upgrade request, for headers a `ws` client would not send. */
function upgradeRequest(path: string, extra: string[] = [], connection = "Upgrade"): string {
  return [
    `GET ${path} HTTP/1.1`,
    "Host: front.test",
    "Upgrade: websocket",
    `Connection: ${connection}`,
    `Sec-WebSocket-Key: ${WS_KEY}`,
    "Sec-WebSocket-Version: 13",
    ...extra,
    "",
    "",
  ].join("\r\n");
}

/**
 * Sends raw bytes and collects the answer: until the proxy closes the
 * connection, or (with `untilHead`) until a whole response head has arrived.
 */
function rawExchange(port: number, request: string, untilHead = false): Promise<{ text: string; closed: boolean; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(request));
    loopback.track(socket);
    let text = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      text += chunk;
      if (untilHead && text.includes("\r\n\r\n")) resolve({ text, closed: false, socket });
    });
    socket.on("close", () => resolve({ text, closed: true, socket }));
    socket.on("error", reject);
  });
}

/** A response's status line and lower-cased headers, and its body. */
function parse(response: string): { status: number; headers: Map<string, string>; body: string } {
  const end = response.indexOf("\r\n\r\n");
  const [statusLine, ...lines] = response.slice(0, end).split("\r\n");
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(statusLine!.split(" ")[1]), headers, body: response.slice(end + 4) };
}

// ---- the tests ----

describe("FrontProxy WebSockets: the tunnel", () => {
  it("routes an upgrade by path to the app's worker; text, a 1 MiB binary and many small messages flow both ways in order", async () => {
    const chat = await wsUpstream("a");
    const { proxy, port } = await front();
    proxy.setEndpoints("chat", [chat.endpoint]);
    const client = await connect(port, "/chat/ws?room=1");
    expect(chat.upgrades).toHaveLength(1);
    // The worker gets the whole path: it takes SCRIPT_NAME off it itself, from x-tsgi-script-name.
    expect(chat.upgrades[0]!.url).toBe("/chat/ws?room=1");

    client.send("hello through the proxy");
    const text = await next(client);
    expect(text).toMatchObject({ isBinary: false });
    expect(String(text.data)).toBe("hello through the proxy");

    const blob = randomBytes(1024 * 1024);
    client.send(blob);
    const binary = await next(client);
    expect(binary.isBinary).toBe(true);
    expect(binary.data.equals(blob)).toBe(true);

    const received: string[] = [];
    const all = new Promise<void>((resolve) =>
      client.on("message", (data) => {
        received.push(String(data));
        if (received.length === 500) resolve();
      }),
    );
    for (let i = 0; i < 500; i++) client.send(`m${i}`);
    await all;
    expect(received).toEqual(Array.from({ length: 500 }, (_, i) => `m${i}`));

    // The worker speaks first, too: the tunnel carries its messages without being asked.
    chat.upgrades[0]!.socket!.send("pushed by the worker");
    expect(String((await next(client)).data)).toBe("pushed by the worker");
  });

  it("routes an upgrade by host like any request, with no mount", async () => {
    const lobby = await wsUpstream("l", "lobby");
    const { proxy, port } = await front({ routes: [{ app: "chat", path: "/chat" }, { app: "lobby", host: "lobby.test" }] });
    proxy.setEndpoints("lobby", [lobby.endpoint]);
    const client = await connect(port, "/ws", { headers: { host: "lobby.test" } });
    client.send("ping");
    expect(String((await next(client)).data)).toBe("ping");
    expect(lobby.upgrades).toHaveLength(1);
    expect(lobby.upgrades[0]!.headers["x-tsgi-script-name"]).toBeUndefined();
  });

  it("sends the worker the mount, X-Forwarded-For, a request id, the upgrade headers, and no other hop-by-hop header", async () => {
    const chat = await wsUpstream("a");
    const { proxy, port } = await front();
    proxy.setEndpoints("chat", [chat.endpoint]);
    const request = upgradeRequest(
      "/chat/ws",
      [
        "Sec-WebSocket-Protocol: chat.v2, chat.v1",
        "X-Hop-Token: secret", // named in Connection: hop-by-hop for this request
        "Keep-Alive: timeout=300",
        "TE: trailers",
        "X-Forwarded-For: 203.0.113.9",
        "X-Tsgi-Script-Name: /spoofed",
        "X-Custom: kept",
      ],
      "Upgrade, X-Hop-Token, Keep-Alive",
    );
    const { text } = await rawExchange(port, request, true);
    const answer = parse(text);
    expect(answer.status).toBe(101);
    expect(answer.headers.get("upgrade")?.toLowerCase()).toBe("websocket");
    expect(answer.headers.get("connection")?.toLowerCase()).toBe("upgrade");
    expect(answer.headers.get("sec-websocket-accept")).toBe(WS_ACCEPT);
    expect(answer.headers.get("sec-websocket-protocol")).toBe("chat.v2");

    expect(chat.upgrades).toHaveLength(1);
    const seen = chat.upgrades[0]!.headers;
    expect(seen["x-tsgi-script-name"]).toBe("/chat");
    expect(seen["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen["x-request-id"]).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
    expect(answer.headers.get("x-request-id")).toBe(seen["x-request-id"]);
    expect(seen.upgrade?.toLowerCase()).toBe("websocket");
    expect(seen.connection?.toLowerCase()).toBe("upgrade");
    expect(seen["sec-websocket-key"]).toBe(WS_KEY);
    expect(seen["sec-websocket-version"]).toBe("13");
    expect(seen["sec-websocket-protocol"]).toBe("chat.v2, chat.v1");
    expect(seen["x-custom"]).toBe("kept");
    expect(seen["keep-alive"]).toBeUndefined();
    expect(seen["x-hop-token"]).toBeUndefined();
    expect(seen.te).toBeUndefined();
    // One Connection and one Upgrade header, the proxy's own: nothing of the client's Connection header is passed on.
    const names = chat.upgrades[0]!.rawHeaders.filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase());
    expect(names.filter((name) => name === "connection")).toHaveLength(1);
    expect(names.filter((name) => name === "upgrade")).toHaveLength(1);
    expect(names.filter((name) => name === "x-tsgi-script-name")).toHaveLength(1);
  });

  it("balances upgrades with the app's policy: round_robin over two workers splits four connections 2/2", async () => {
    const [a, b] = [await wsUpstream("a"), await wsUpstream("b")];
    const { proxy, port } = await front({ balance: { chat: "round_robin" } });
    proxy.setEndpoints("chat", [a.endpoint, b.endpoint]);
    // Held open together, so that a policy counting open connections would split them the same way.
    const opened = await Promise.all([1, 2, 3, 4].map(() => connect(port)));
    expect(opened).toHaveLength(4);
    expect([a.upgrades.length, b.upgrades.length]).toEqual([2, 2]);
  });
});

describe("FrontProxy WebSockets: answers without a tunnel", () => {
  it("no route: an HTTP 404, and the connection closes", async () => {
    const { port, log } = await front();
    const { text, closed } = await rawExchange(port, upgradeRequest("/elsewhere/ws"));
    const answer = parse(text);
    expect(answer.status).toBe(404);
    expect(answer.body).toMatch(/^Not Found: no app is routed for front\.test\/elsewhere\/ws/);
    expect(closed).toBe(true);
    expect(log).toEqual([expect.objectContaining({ status: 404, url: "/elsewhere/ws" })]);
  });

  it("no ready worker: an HTTP 503, and the connection closes", async () => {
    const { proxy, port } = await front();
    const never = await rawExchange(port, upgradeRequest("/chat/ws"));
    expect(parse(never.text).status).toBe(503);
    expect(never.closed).toBe(true);
    proxy.setEndpoints("chat", []);
    const emptied = await rawExchange(port, upgradeRequest("/chat/ws"));
    expect(parse(emptied.text).status).toBe(503);
    expect(emptied.closed).toBe(true);
  });

  it("a worker that refuses the connection: the next worker is tried, and every upgrade succeeds", async () => {
    const good = await wsUpstream("good");
    const { proxy, port } = await front({ balance: { chat: "round_robin" } });
    const dead: Endpoint = { id: "chat.dead", address: { kind: "tcp", host: "127.0.0.1", port: await closedPort() } };
    proxy.setEndpoints("chat", [dead, good.endpoint]);
    for (let i = 0; i < 3; i++) {
      const client = await connect(port);
      client.send(`try ${i}`);
      expect(String((await next(client)).data)).toBe(`try ${i}`);
    }
    expect(good.upgrades).toHaveLength(3);
  });

  it("a worker that answers with an ordinary response: the client gets its status and body, no tunnel", async () => {
    const body = "no sockets for you\n";
    const refusing = await wsUpstream("refusing", "chat", (_req, socket) => {
      socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    });
    const { proxy, port, log } = await front();
    proxy.setEndpoints("chat", [refusing.endpoint]);
    const { text, closed } = await rawExchange(port, upgradeRequest("/chat/ws"));
    const answer = parse(text);
    expect(answer.status).toBe(403);
    expect(answer.body).toBe(body);
    expect(answer.headers.get("upgrade")).toBeUndefined();
    expect(closed).toBe(true);
    await until(() => log.length === 1, "the access entry");
    expect(log[0]).toMatchObject({ status: 403, app: "chat", endpoint: "chat.refusing" });

    // What a WebSocket client sees of it: an unexpected response, never 'open'.
    const client = new WebSocket(`ws://127.0.0.1:${port}/chat/ws`);
    clients.add(client);
    const [, res] = (await once(client, "unexpected-response")) as [http.ClientRequest, http.IncomingMessage];
    expect(res.statusCode).toBe(403);
  });
});

describe("FrontProxy WebSockets: a worker's bytes never reach the client in an error", () => {
  it("a worker answering an upgrade with a malformed head: 502 naming the app, nothing of what the worker sent", async () => {
    const secret = "internal-token-7f3a";
    const garbled = await wsUpstream("garbled", "chat", (_req, socket) => {
      socket.end(`HTTP/1.1 2x0 ${secret}\r\nX-Leak: ${secret}\r\n\r\n`);
    });
    const { proxy, port } = await front();
    proxy.setEndpoints("chat", [garbled.endpoint]);
    const { text, closed } = await rawExchange(port, upgradeRequest("/chat/ws"));
    const answer = parse(text);
    expect(answer.status).toBe(502);
    expect(answer.body).toContain('app "chat" sent an invalid response');
    expect(text).not.toContain(secret);
    expect(closed).toBe(true);
  });
});

describe("FrontProxy WebSockets: closing", () => {
  it("closes both sides after websocketIdleTimeoutMs with no traffic either way", async () => {
    const chat = await wsUpstream("a");
    const { proxy, port } = await front();
    proxy.setEndpoints("chat", [chat.endpoint]);
    const client = await connect(port);
    const openedAt = Date.now();
    const { at } = await closedOf(client);
    expect(at - openedAt).toBeGreaterThanOrEqual(450);
    expect(at - openedAt).toBeLessThan(2000);
    await until(() => chat.upgrades[0]!.tcpClosed, "the upstream connection to close");
  });

  it("traffic from the client resets the idle timeout", async () => {
    const chat = await wsUpstream("a");
    const { proxy, port } = await front();
    proxy.setEndpoints("chat", [chat.endpoint]);
    const client = await connect(port);
    let closed = false;
    client.once("close", () => (closed = true));
    // Three times the idle timeout, never silent for more than 200 ms.
    for (let i = 0; i < 8; i++) {
      await sleep(200);
      client.send(`keep ${i}`);
    }
    expect(closed).toBe(false);
    const quietFrom = Date.now();
    const { at } = await closedOf(client);
    expect(at - quietFrom).toBeLessThan(2000);
  });

  it("traffic from the worker alone resets it too", async () => {
    const chat = await wsUpstream("a");
    const { proxy, port } = await front();
    proxy.setEndpoints("chat", [chat.endpoint]);
    const client = await connect(port);
    let closed = false;
    client.once("close", () => (closed = true));
    await until(() => chat.upgrades[0]?.socket !== undefined, "the upstream socket");
    for (let i = 0; i < 8; i++) {
      await sleep(200);
      chat.upgrades[0]!.socket!.send(`tick ${i}`);
    }
    expect(closed).toBe(false);
    expect(chat.upgrades[0]!.tcpClosed).toBe(false);
  });

  it("the client closing (close frame) closes the worker's side with the same code", async () => {
    const chat = await wsUpstream("a");
    const { proxy, port } = await front({ websocketIdleTimeoutMs: 60_000 });
    proxy.setEndpoints("chat", [chat.endpoint]);
    const client = await connect(port);
    client.close(1000, "bye");
    await until(() => chat.upgrades[0]!.tcpClosed, "the upstream connection to close");
    expect(chat.upgrades[0]!.closeCode).toBe(1000);
  });

  it("the client vanishing (TCP reset) closes the worker's connection", async () => {
    const chat = await wsUpstream("a");
    const { proxy, port } = await front({ websocketIdleTimeoutMs: 60_000 });
    proxy.setEndpoints("chat", [chat.endpoint]);
    const client = await connect(port);
    await until(() => chat.upgrades[0]?.socket !== undefined, "the upstream socket");
    client.terminate();
    await until(() => chat.upgrades[0]!.tcpClosed, "the upstream connection to close");
    expect(chat.upgrades[0]!.closeCode).toBe(1006);
  });

  it("the worker closing (close frame) reaches the client with its code and reason", async () => {
    const chat = await wsUpstream("a");
    const { proxy, port } = await front({ websocketIdleTimeoutMs: 60_000 });
    proxy.setEndpoints("chat", [chat.endpoint]);
    const client = await connect(port);
    await until(() => chat.upgrades[0]?.socket !== undefined, "the upstream socket");
    const closed = closedOf(client);
    chat.upgrades[0]!.socket!.close(4001, "server says bye");
    expect(await closed).toMatchObject({ code: 4001, reason: "server says bye" });
  });

  it("the worker vanishing closes the client's connection", async () => {
    const chat = await wsUpstream("a");
    const { proxy, port } = await front({ websocketIdleTimeoutMs: 60_000 });
    proxy.setEndpoints("chat", [chat.endpoint]);
    const client = await connect(port);
    await until(() => chat.upgrades[0]?.socket !== undefined, "the upstream socket");
    const closed = closedOf(client);
    chat.upgrades[0]!.socket!.terminate();
    expect((await closed).code).toBe(1006);
  });

  it("logs one access entry, status 101 with the app and worker, when the tunnel ends", async () => {
    const chat = await wsUpstream("a");
    const { proxy, port, log } = await front({ websocketIdleTimeoutMs: 60_000 });
    proxy.setEndpoints("chat", [chat.endpoint]);
    const client = await connect(port, "/chat/ws?room=1");
    client.send("x");
    await next(client);
    await sleep(50);
    expect(log).toEqual([]); // not while it is open
    const closed = closedOf(client);
    client.close(1000);
    await closed;
    await until(() => log.length > 0, "the access entry");
    await sleep(50);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ status: 101, app: "chat", endpoint: "chat.a", method: "GET", url: "/chat/ws?room=1", remoteAddr: "127.0.0.1" });
    expect(log[0]!.requestId).toBe(chat.upgrades[0]!.headers["x-request-id"]);
  });
});
