/**
 * The limits per client address on real sockets, as a user checks them: a
 * FrontProxy on 127.0.0.1 port 0 in front of a node:http upstream on port 0,
 * its limits from a YAML config through the loader and
 * stack/proxy-settings.ts (what a proxy process runs from). Clients are told
 * apart by their loopback source address (127.0.0.1, 127.0.0.2, …) or, behind
 * a trusted proxy, by X-Forwarded-For. The arithmetic itself is
 * client-limits.test.ts's, with a fake clock; here rates are per minute so
 * that a slow machine cannot drain a bucket mid-test.
 */
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.ts";
import { FrontProxy, type AccessEntry } from "../../src/proxy/server.ts";
import { frontProxyOptions } from "../../src/stack/proxy-settings.ts";
import { LoopbackServers } from "../helpers/loopback.ts";

// ---- plumbing: every server, connection and proxy is closed after each test ----

const loopback = new LoopbackServers();
const proxies: FrontProxy[] = [];

afterEach(async () => {
  for (const proxy of proxies.splice(0)) proxy.close();
  await loopback.closeAll();
});

const listen = (server: http.Server) => loopback.listen(server);

/** The config's proxy options, as a proxy process gets them (the app `web` routed at /). */
function optionsFrom(appYaml: string, proxyYaml = "") {
  const text = `${proxyYaml}apps:\n  web:\n    command: "node server.js"\n    routes: [{ path: / }]\n${appYaml}`;
  const result = parseConfig(text, { file: "tsgi.yaml", dir: "/srv", env: {}, probe: (p) => (p === "/srv" ? "dir" : undefined) });
  if (!result.ok) expect.fail(result.errors.map((error) => error.format()).join("\n"));
  return frontProxyOptions(result.config);
}

interface Stack {
  proxy: FrontProxy;
  port: number;
  log: AccessEntry[];
  /** Requests the upstream is holding (a `/slow` request waits until released). */
  held: http.ServerResponse[];
}

/** An upstream that answers "ok" (or holds `/slow` until released), and a proxy in front of it. */
async function stack(appYaml: string, proxyYaml = ""): Promise<Stack> {
  const held: http.ServerResponse[] = [];
  const upstreamPort = await listen(
    http.createServer((req, res) => {
      req.resume();
      if (req.url === "/slow") held.push(res);
      else res.end("ok");
    }),
  );
  const log: AccessEntry[] = [];
  const proxy = new FrontProxy({ ...optionsFrom(appYaml, proxyYaml), onResponse: (entry) => log.push(entry) });
  proxies.push(proxy);
  proxy.setEndpoints("web", [{ id: "web.0", address: { kind: "tcp", host: "127.0.0.1", port: upstreamPort } }]);
  const front = http.createServer(proxy.handle);
  front.on("upgrade", proxy.handleUpgrade);
  const port = await listen(front);
  return { proxy, port, log, held };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection from `from` (a loopback address). */
function get(port: number, options: { from?: string; path?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: "127.0.0.1", port, path: options.path ?? "/", agent: false, localAddress: options.from ?? "127.0.0.1", headers: options.headers ?? {} },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
  });
}

const statuses = (replies: Reply[]) => replies.map((reply) => reply.status).sort();

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("rate_limit on a real proxy", () => {
  it("a burst from one client gets exactly 1 + burst answers, the rest 429 with Retry-After; another client is unaffected", async () => {
    const { port, log } = await stack("    rate_limit: { rate: 1r/m, burst: 5, nodelay: true }\n");
    const replies = await Promise.all(Array.from({ length: 10 }, () => get(port)));
    expect(statuses(replies)).toEqual([200, 200, 200, 200, 200, 200, 429, 429, 429, 429]);
    const refused = replies.filter((reply) => reply.status === 429);
    for (const reply of refused) {
      // One request a minute is nginx's 16 thousandths a second: the next slot is 62.5 s away (less the few ms the burst took).
      expect(Number(reply.headers["retry-after"])).toBeGreaterThanOrEqual(55);
      expect(Number(reply.headers["retry-after"])).toBeLessThanOrEqual(63);
      expect(reply.body).toMatch(/^Too Many Requests: too many requests from this address for app "web"/);
      expect(reply.headers["x-request-id"]).toBeTruthy();
    }
    expect(replies.filter((reply) => reply.status === 200).every((reply) => reply.body === "ok")).toBe(true);
    expect((await get(port, { from: "127.0.0.2" })).status).toBe(200);
    await until("every access entry", () => log.length === 11);
    expect(log.filter((entry) => entry.error === "TSGI_ERR_PROXY_RATE_LIMITED").map((entry) => [entry.status, entry.app])).toEqual(Array(4).fill([429, "web"]));
  });

  it("spaces the burst at the rate without nodelay (nginx's default)", async () => {
    const { port } = await stack("    rate_limit: { rate: 10r/s, burst: 2 }\n");
    const started = performance.now();
    const done: number[] = [];
    const replies = await Promise.all(
      Array.from({ length: 3 }, () =>
        get(port).then((reply) => {
          done.push(performance.now() - started);
          return reply;
        }),
      ),
    );
    expect(statuses(replies)).toEqual([200, 200, 200]);
    done.sort((a, b) => a - b);
    // 0, 100 and 200 ms: the last no sooner than its turn.
    expect(done[2]).toBeGreaterThanOrEqual(190);
  });

  it("logs 499 for a client that leaves while its request waits its turn, and never passes it on", async () => {
    const { port, log } = await stack("    rate_limit: { rate: 2r/s, burst: 1 }\n");
    expect((await get(port)).status).toBe(200);
    const waiting = http.get({ host: "127.0.0.1", port, path: "/left", agent: false });
    waiting.on("error", () => {});
    await new Promise((resolve) => setTimeout(resolve, 100));
    waiting.destroy(); // 400 ms before its turn
    await until("the 499 entry", () => log.some((entry) => entry.url === "/left"), 3000);
    expect(log.find((entry) => entry.url === "/left")).toMatchObject({ status: 499, app: "web" });
    expect(log.find((entry) => entry.url === "/left")!.endpoint).toBeUndefined();
  });

  it("answers the configured status", async () => {
    const { port } = await stack("    rate_limit: { rate: 1r/m, status: 503 }\n");
    const replies = await Promise.all([get(port), get(port)]);
    expect(statuses(replies)).toEqual([200, 503]);
    expect(replies.find((reply) => reply.status === 503)!.headers["retry-after"]).toBeDefined();
  });

  it("limits the client after a trusted proxy's X-Forwarded-For, and the peer itself when it is not trusted", async () => {
    const { port } = await stack("    rate_limit: { rate: 1r/m }\n", 'proxy:\n  trusted_proxies: ["127.0.0.1"]\n');
    const from = (client: string, peer = "127.0.0.1") => get(port, { from: peer, headers: { "X-Forwarded-For": client } });
    // Behind the trusted 127.0.0.1: each address in X-Forwarded-For is a client of its own.
    expect((await from("203.0.113.7")).status).toBe(200);
    expect((await from("203.0.113.7")).status).toBe(429);
    expect((await from("203.0.113.8")).status).toBe(200);
    // A chain: the rightmost untrusted hop is the client, whatever it says before that.
    expect((await from("198.51.100.1, 203.0.113.8")).status).toBe(429);
    // 127.0.0.2 is not trusted: its X-Forwarded-For is ignored, and it is limited as itself.
    expect((await from("203.0.113.9", "127.0.0.2")).status).toBe(200);
    expect((await from("203.0.113.10", "127.0.0.2")).status).toBe(429);
  });

  it("a config hot reload changes the limit, and keeps what clients have used", async () => {
    const { proxy, port } = await stack("    rate_limit: { rate: 1r/m }\n");
    expect(statuses(await Promise.all([get(port), get(port)]))).toEqual([200, 429]);
    proxy.reconfigure(optionsFrom("    rate_limit: { rate: 1r/m, burst: 2, nodelay: true }\n"));
    // The bucket holds the one request already made: two more fit in a burst of 2.
    expect(statuses(await Promise.all([get(port), get(port), get(port)]))).toEqual([200, 200, 429]);
    proxy.reconfigure(optionsFrom(""));
    expect(statuses(await Promise.all(Array.from({ length: 5 }, () => get(port))))).toEqual([200, 200, 200, 200, 200]);
  });
});

/** Requests until one gets `status` (a slot frees when the proxy has seen the response end, a moment after the client has). */
async function eventually(port: number, status: number): Promise<number> {
  let got = 0;
  for (let i = 0; i < 50 && got !== status; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    got = (await get(port)).status;
  }
  return got;
}

describe("limits on the upgrade path", () => {
  it("refuse a WebSocket upgrade over the rate like a request", async () => {
    const { port } = await stack("    rate_limit: { rate: 1r/m }\n");
    expect((await get(port)).status).toBe(200);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () =>
        socket.write("GET /ws HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
      );
      let text = "";
      socket.setEncoding("latin1");
      socket.on("data", (chunk) => (text += chunk));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 429 Too Many Requests\r\n/);
    expect(answer).toMatch(/\r\nRetry-After: \d+\r\n/);
  });
});

describe("conn_limit on a real proxy", () => {
  it("refuses a client's request over `max` while its slow requests are held open, then takes it once one ends", async () => {
    const { port, held, log } = await stack("    conn_limit: { max: 2 }\n");
    const slow = [get(port, { path: "/slow" }), get(port, { path: "/slow" })];
    await until("two requests held by the upstream", () => held.length === 2);
    const refused = await get(port);
    expect(refused.status).toBe(429);
    expect(refused.headers["retry-after"]).toBe("1");
    expect(refused.body).toMatch(/too many requests in flight from this address/);
    // Another client has its own count.
    expect((await get(port, { from: "127.0.0.2" })).status).toBe(200);
    held.shift()!.end("done");
    expect((await Promise.race(slow)).status).toBe(200);
    expect(await eventually(port, 200)).toBe(200);
    held.shift()!.end("done");
    expect(statuses(await Promise.all(slow))).toEqual([200, 200]);
    expect(log.filter((entry) => entry.error === "TSGI_ERR_PROXY_CONN_LIMITED")).toHaveLength(1);
  });

  it("frees a client's slot when it gives up on a held request", async () => {
    const { port, held } = await stack("    conn_limit: { max: 1, status: 503 }\n");
    const request = http.get({ host: "127.0.0.1", port, path: "/slow", agent: false });
    request.on("error", () => {});
    await until("the request held by the upstream", () => held.length === 1);
    expect((await get(port)).status).toBe(503);
    request.destroy();
    expect(await eventually(port, 200)).toBe(200);
  });
});
