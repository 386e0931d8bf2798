/**
 * The proxy's request passes (proxy/passes.ts) and its one map from refusal
 * to answer (proxy/refusal.ts), with plain fakes: a request is an object
 * with a method, a target and raw headers, the proxy a table of routes.
 * What the passes do on real sockets is in front-proxy.test.ts,
 * static.test.ts and websocket.test.ts.
 */
import { EventEmitter } from "node:events";
import http from "node:http";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import type { Endpoint } from "../../src/proxy/balancing/selector.ts";
import { Exchange } from "../../src/proxy/exchange.ts";
import { HANDLED, type ProxyView, type RequestContext, runPasses, UPGRADE_PASSES, WEB_PASSES } from "../../src/proxy/passes.ts";
import { answerFor, type Refusal } from "../../src/proxy/refusal.ts";
import { ClientLimits } from "../../src/proxy/limits/client-limits.ts";

/** A request as node's parser hands it over, with only what the passes read. */
function fakeRequest(head: { method?: string; url?: string; version?: string; headers?: [string, string][] }): http.IncomingMessage {
  const raw = head.headers ?? [["Host", "app.test"]];
  const req = new PassThrough() as PassThrough & Record<string, unknown>;
  Object.assign(req, {
    method: head.method ?? "GET",
    url: head.url ?? "/",
    httpVersion: head.version ?? "1.1",
    httpVersionMajor: 1,
    httpVersionMinor: Number((head.version ?? "1.1").split(".")[1]),
    rawHeaders: raw.flat(),
    headers: Object.fromEntries(raw.map(([name, value]) => [name.toLowerCase(), value])),
    socket: Object.assign(new EventEmitter(), { remoteAddress: "127.0.0.1" }),
  });
  return req as unknown as http.IncomingMessage;
}

const worker: Endpoint = { id: "web.0", address: { kind: "tcp", host: "127.0.0.1", port: 1 } };

function fakeProxy(overrides: Partial<ProxyView> = {}): ProxyView {
  return {
    route: (host, path) => (host === "app.test" || path.startsWith("/web") ? { app: "web", mount: "" } : undefined),
    staticRoot: () => undefined,
    clientMaxBodySize: 1000,
    bodyTimeoutMs: 60_000,
    allowsTrace: () => false,
    bodyStalled: () => undefined,
    choose: () => worker,
    limiters: () => undefined,
    clientOf: (req) => req.socket.remoteAddress ?? "",
    ...overrides,
  };
}

function contextFor(req: http.IncomingMessage, proxy = fakeProxy()): RequestContext {
  return { req, exchange: new Exchange(req, undefined), proxy, stopWatching: () => {} };
}

async function run(passes = WEB_PASSES, req = fakeRequest({}), proxy = fakeProxy()) {
  const ctx = contextFor(req, proxy);
  const result = await runPasses(passes, ctx);
  ctx.stopWatching();
  return { result, ctx };
}

describe("request passes", () => {
  it("are named and ordered as the proxy's header says", () => {
    expect(WEB_PASSES.map((pass) => pass.name)).toEqual([
      "head rules",
      "route",
      "method",
      "client limits",
      "static",
      "body limit",
      "body pace",
      "chunked body",
      "select",
    ]);
    expect(UPGRADE_PASSES.map((pass) => pass.name)).toEqual(["head rules", "route to workers", "client limits", "select"]);
  });

  it("let a plain GET through, routed and with its worker chosen", async () => {
    const { result, ctx } = await run();
    expect(result).toBeUndefined();
    expect(ctx.route).toEqual({ app: "web", mount: "" });
    expect(ctx.exchange.route?.app).toBe("web");
    expect(ctx.endpoint).toBe(worker);
  });

  it("refuse a request target over 8 KiB before anything else is looked at", async () => {
    const { result } = await run(WEB_PASSES, fakeRequest({ url: `/${"a".repeat(9000)}`, headers: [["Host", "nowhere.test"]] }));
    expect(result).toMatchObject({ kind: "bad-head", status: 414 });
  });

  it("refuse more than 1000 header fields", async () => {
    const headers: [string, string][] = [["Host", "app.test"], ...Array.from({ length: 1001 }, (_, i): [string, string] => [`X-${i}`, "1"])];
    const { result } = await run(WEB_PASSES, fakeRequest({ headers }));
    expect(result).toMatchObject({ kind: "bad-head", status: 431 });
  });

  it.each([
    ["a Content-Length with a leading zero", [["Content-Length", "010"]]],
    ["a Transfer-Encoding other than chunked", [["Transfer-Encoding", ",chunked"]]],
    ["Transfer-Encoding sent twice", [["Transfer-Encoding", "chunked"], ["Transfer-Encoding", "chunked"]]],
  ] as [string, [string, string][]][])("refuse %s as bad framing, before routing", async (_what, extra) => {
    const { result, ctx } = await run(WEB_PASSES, fakeRequest({ method: "POST", headers: [["Host", "app.test"], ...extra] }));
    expect(result).toMatchObject({ kind: "bad-head", status: 400 });
    expect(ctx.route).toBeUndefined();
  });

  it("refuse a request no route matches, naming its host and path", async () => {
    const { result } = await run(WEB_PASSES, fakeRequest({ url: "/x?q=1", headers: [["Host", "other.test"]] }));
    expect(result).toEqual({ kind: "no-route", host: "other.test", path: "/x" });
  });

  it("refuse a declared body over client_max_body_size without choosing a worker", async () => {
    let asked = 0;
    const proxy = fakeProxy({ choose: () => (asked++, worker) });
    const { result } = await run(WEB_PASSES, fakeRequest({ method: "POST", headers: [["Host", "app.test"], ["Content-Length", "1001"]] }), proxy);
    expect(result).toEqual({ kind: "body-too-large", limit: 1000, declared: true });
    expect(asked).toBe(0);
  });

  it("route an absolute-form target by its own host and normalized path; the worker gets origin-form and that Host", async () => {
    const seen: [string | undefined, string][] = [];
    const proxy = fakeProxy({ route: (host, path) => (seen.push([host, path]), { app: "web", mount: "" }) });
    const req = fakeRequest({ url: "http://other.test/a/../b?q=1", headers: [["Host", "app.test"]] });
    const { result } = await run(WEB_PASSES, req, proxy);
    expect(result).toBeUndefined();
    expect(seen).toEqual([["other.test", "/b"]]);
    expect(req.url).toBe("/b?q=1");
    expect(req.rawHeaders).toEqual(["Host", "other.test"]);
  });

  it("refuse TRACE with 405 unless the app takes it", async () => {
    const refused = await run(WEB_PASSES, fakeRequest({ method: "TRACE" }));
    expect(refused.result).toMatchObject({ kind: "bad-head", status: 405 });
    const allowed = await run(WEB_PASSES, fakeRequest({ method: "TRACE" }), fakeProxy({ allowsTrace: (app) => app === "web" }));
    expect(allowed.result).toBeUndefined();
  });

  it("say 503 when the app has no ready worker", async () => {
    const { result } = await run(WEB_PASSES, fakeRequest({}), fakeProxy({ choose: () => undefined }));
    expect(result).toEqual({ kind: "no-ready-worker", app: "web" });
  });

  it("read a chunked body whole before choosing a worker", async () => {
    const req = fakeRequest({ method: "POST", headers: [["Host", "app.test"], ["Transfer-Encoding", "chunked"]] });
    const ctx = contextFor(req);
    const pending = runPasses(WEB_PASSES, ctx);
    expect(pending).toBeInstanceOf(Promise);
    expect(ctx.endpoint).toBeUndefined();
    (req as unknown as PassThrough).end("hello world");
    expect(await pending).toBeUndefined();
    ctx.stopWatching();
    expect(ctx.body?.toString()).toBe("hello world");
    expect(ctx.endpoint).toBe(worker);
  });

  it("refuse a chunked body that grows past the limit with 413, never reaching select", async () => {
    const req = fakeRequest({ method: "POST", headers: [["Host", "app.test"], ["Transfer-Encoding", "chunked"]] });
    const ctx = contextFor(req);
    const pending = runPasses(WEB_PASSES, ctx);
    (req as unknown as PassThrough).write(Buffer.alloc(1001));
    expect(await pending).toEqual({ kind: "body-too-large", limit: 1000, declared: false });
    ctx.stopWatching();
    expect(ctx.endpoint).toBeUndefined();
  });

  it("hand a static app's request to the static pass, which answers it itself", async () => {
    const req = fakeRequest({ url: "/missing.txt" });
    const res = new http.ServerResponse(req);
    const ctx: RequestContext = { ...contextFor(req, fakeProxy({ staticRoot: () => "/nonexistent-folder" })), res };
    expect(runPasses(WEB_PASSES, ctx)).toBe(HANDLED);
    // No worker was asked for; the folder's answer (static.test.ts has what it says) carries the request id.
    expect(ctx.endpoint).toBeUndefined();
    expect(res.getHeader("X-Request-Id")).toBe(ctx.exchange.requestId);
    res.destroy();
  });

  it("on the upgrade path, share the same first checks and treat a static app as not routed", async () => {
    const tooLong = await run(UPGRADE_PASSES, fakeRequest({ url: `/${"a".repeat(9000)}` }));
    expect(tooLong.result).toMatchObject({ kind: "bad-head", status: 414 });
    const smuggled = await run(UPGRADE_PASSES, fakeRequest({ headers: [["Host", "app.test"], ["Content-Length", "00"]] }));
    expect(smuggled.result).toMatchObject({ kind: "bad-head", status: 400 });
    const toFolder = await run(UPGRADE_PASSES, fakeRequest({ url: "/ws" }), fakeProxy({ staticRoot: () => "/srv" }));
    expect(toFolder.result).toEqual({ kind: "no-route", host: "app.test", path: "/ws" });
    const ok = await run(UPGRADE_PASSES, fakeRequest({ url: "/ws" }));
    expect(ok.result).toBeUndefined();
    expect(ok.ctx.endpoint).toBe(worker);
  });
});

describe("the client limits pass", () => {
  const rateOnly = (burst: number) =>
    new ClientLimits({ web: { rate: { perSecond: 1, burst, delay: 0, nodelay: true, status: 429, maxClients: 10 }, conn: { max: 1, status: 503, maxClients: 10 } } }, () => 0);

  it("refuses over the rate with the status and Retry-After, by the address the proxy gives", async () => {
    const limits = rateOnly(0);
    const proxy = fakeProxy({ limiters: (app) => limits.of(app), clientOf: (req) => String(req.headers["x-client"]) });
    const from = (client: string) => fakeRequest({ headers: [["Host", "app.test"], ["X-Client", client]] });
    expect((await run(WEB_PASSES, from("a"), proxy)).result).toBeUndefined();
    expect((await run(WEB_PASSES, from("a"), proxy)).result).toEqual({ kind: "rate-limited", app: "web", status: 429, retryAfterS: 1 });
    expect((await run(WEB_PASSES, from("b"), proxy)).result).toBeUndefined();
  });

  it("refuses a request over conn_limit, and counts one in flight until its response closes", async () => {
    const limits = rateOnly(5);
    const proxy = fakeProxy({ limiters: (app) => limits.of(app) });
    const res = new PassThrough() as unknown as http.ServerResponse;
    const first = contextFor(fakeRequest({}), proxy);
    (first as { res?: http.ServerResponse }).res = res;
    expect(await runPasses(WEB_PASSES, first)).toBeUndefined();
    expect((await run(WEB_PASSES, fakeRequest({}), proxy)).result).toEqual({ kind: "conn-limited", app: "web", status: 503 });
    (res as unknown as PassThrough).emit("close");
    expect((await run(WEB_PASSES, fakeRequest({}), proxy)).result).toBeUndefined();
  });

  it("runs before the static pass, so a static app is limited too", async () => {
    const limits = rateOnly(0);
    const proxy = fakeProxy({ limiters: (app) => limits.of(app), staticRoot: () => "/srv/www" });
    await run(WEB_PASSES, fakeRequest({}), fakeProxy({ limiters: (app) => limits.of(app) }));
    expect((await run(WEB_PASSES, fakeRequest({}), proxy)).result).toMatchObject({ kind: "rate-limited" });
  });
});

describe("the refusal map", () => {
  const rows: [Refusal, number, boolean, Record<string, string>][] = [
    [{ kind: "bad-head", status: 414, reason: "r" }, 414, true, {}],
    [{ kind: "bad-head", status: 431, reason: "r" }, 431, true, {}],
    [{ kind: "bad-head", status: 400, reason: "r" }, 400, true, {}],
    [{ kind: "bad-head", status: 505, reason: "r" }, 505, true, {}],
    [{ kind: "bad-head", status: 405, reason: "r", allow: "GET" }, 405, false, { Allow: "GET" }],
    [{ kind: "bad-body-framing" }, 400, true, {}],
    [{ kind: "no-route", host: "h", path: "/p" }, 404, false, {}],
    [{ kind: "body-too-large", limit: 10, declared: true }, 413, true, {}],
    [{ kind: "body-stalled", ms: 5 }, 408, true, {}],
    [{ kind: "no-ready-worker", app: "web" }, 503, false, { "Retry-After": "1" }],
    [{ kind: "upstream-failed", app: "web", failure: "connect" }, 502, false, {}],
    [{ kind: "invalid-response-head", app: "web" }, 502, false, {}],
    [{ kind: "upstream-timeout", app: "web", ms: 150 }, 504, false, {}],
    [{ kind: "rate-limited", app: "web", status: 429, retryAfterS: 1 }, 429, false, { "Retry-After": "1" }],
    [{ kind: "rate-limited", app: "web", status: 503, retryAfterS: 63 }, 503, false, { "Retry-After": "63" }],
    [{ kind: "conn-limited", app: "web", status: 429 }, 429, false, { "Retry-After": "1" }],
  ];
  it.each(rows)("%j -> %i", (refusal, status, close, headers) => {
    const answer = answerFor(refusal);
    expect(answer.status).toBe(status);
    expect(answer.close).toBe(close);
    expect(answer.headers).toEqual(headers);
    expect(answer.text.startsWith(`${{ 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 505: "HTTP Version Not Supported", 408: "Request Timeout", 413: "Content Too Large", 414: "URI Too Long", 429: "Too Many Requests", 431: "Request Header Fields Too Large", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout" }[status]}: `)).toBe(true);
  });

  it("names a limit's configured status by its reason phrase, whichever it is", () => {
    expect(answerFor({ kind: "conn-limited", app: "web", status: 420 }).text).toMatch(/^Refused: too many requests in flight/);
    expect(answerFor({ kind: "rate-limited", app: "web", status: 451, retryAfterS: 2 }).text).toMatch(/^Unavailable For Legal Reasons: too many requests from this address for app "web"/);
    expect(answerFor({ kind: "rate-limited", app: "web", status: 429, retryAfterS: 2 }).code).toBe("TSGI_ERR_PROXY_RATE_LIMITED");
  });

  it("tells the kind of an upstream failure, and nothing more", () => {
    expect(answerFor({ kind: "upstream-failed", app: "web", failure: "protocol" }).text).toBe('Bad Gateway: app "web" sent an invalid response');
    for (const failure of ["connect", "dropped", "broken"] as const) {
      expect(answerFor({ kind: "upstream-failed", app: "web", failure }).text).toBe('Bad Gateway: app "web" did not answer');
    }
  });
});
