/**
 * A TSGI app served out through an adapter and brought back in through the
 * other direction: fromFetchHandler(toFetchHandler(app)) and
 * fromNodeListener(toNodeListener(app)) must behave like the app itself. The
 * conformance suite runs against the bare app and both round trips, in memory
 * and on a real socket; then the environ the inner app sees is compared with
 * the one the outer server built, and toFetchHandler's Response is checked on
 * its own (streaming, headers, abort).
 *
 * The mount in a round trip: the outer adapter hands the Node/Fetch world a
 * path relative to SCRIPT_NAME and the mount point in X-Forwarded-Prefix, so
 * the inner server, which builds its environ from that path, puts its app at
 * the root (SCRIPT_NAME ""). `prefixFromHeader` — Werkzeug ProxyFix's x_prefix,
 * for a server that trusts whoever is in front of it — moves the header back
 * into SCRIPT_NAME, which makes the round trip give the inner app the outer
 * environ. (toNodeListener's and toFetchHandler's `scriptName` option cannot do
 * this: it moves a prefix the path still has, and this path no longer has it.)
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fromFetchHandler, toFetchHandler } from "../../../src/tsgi/adapters/fetch.ts";
import { toNodeListener } from "../../../src/tsgi/adapters/node-http.ts";
import { fromNodeListener } from "../../../src/tsgi/adapters/node-listener.ts";
import type { Environ, TsgiApp } from "../../../src/tsgi/types.ts";
import { readAll } from "../../../src/tsgi/util.ts";
import { type ConformanceHooks, runAdapterConformance } from "./conformance.ts";
import { memoryTransport, sleep, socketTransport, waitFor } from "./harness.ts";

const transports = [memoryTransport, socketTransport];
const quiet = { write() {} };

function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = {};
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) cookies[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return cookies;
}

function jsonBody(startResponse: Parameters<TsgiApp>[1], value: unknown): string[] {
  startResponse("200 OK", [["Content-Type", "application/json"]]);
  return [JSON.stringify(value)];
}

async function* chunks(): AsyncGenerator<string> {
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(20);
    yield `chunk ${i}\n`;
  }
}

async function* forever(hooks: ConformanceHooks): AsyncGenerator<string> {
  try {
    for (;;) {
      yield "tick\n";
      await sleep(10);
    }
  } finally {
    // The loop never ends by itself: only the server stopping the generator (an abort) gets here.
    hooks.streamAborted();
  }
}

async function digest(input: AsyncIterable<Uint8Array>): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of input) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { bytes, sha256: hash.digest("hex") };
}

/**
 * A middleware that trusts `X-Forwarded-Prefix`: the mount point a server in
 * front stripped from the path is put back in front of SCRIPT_NAME (decoded,
 * as SCRIPT_NAME is). A value that is not a path prefix is ignored.
 */
function prefixFromHeader(app: TsgiApp): TsgiApp {
  return (environ, startResponse) => {
    const header = environ.HTTP_X_FORWARDED_PREFIX;
    let prefix = "";
    try {
      prefix = typeof header === "string" ? decodeURIComponent(header).replace(/\/+$/, "") : "";
    } catch {
      // Malformed percent-encoding: not a prefix this app can use.
    }
    if (!prefix.startsWith("/")) return app(environ, startResponse);
    return app({ ...environ, SCRIPT_NAME: prefix + environ.SCRIPT_NAME }, startResponse);
  };
}

/** The conformance routes as a bare TSGI app: it routes on PATH_INFO, so any mount works unchanged. */
function nativeApp(hooks: ConformanceHooks): TsgiApp {
  return async (environ, startResponse) => {
    const path = environ.PATH_INFO;
    const get = environ.REQUEST_METHOD === "GET" || environ.REQUEST_METHOD === "HEAD";
    const post = environ.REQUEST_METHOD === "POST";
    const item = /^\/items\/([^/]+)$/.exec(path);
    const query = new URLSearchParams(environ.QUERY_STRING);
    if (get && path === "/hello") {
      startResponse("200 OK", [["Content-Type", "text/plain"]]);
      return ["hello"];
    }
    if (get && item) return jsonBody(startResponse, { id: item[1] });
    if (get && path === "/query") return jsonBody(startResponse, { name: query.get("name"), n: query.get("n") });
    if (get && path === "/whereami") {
      const url = environ.SCRIPT_NAME + path + (environ.QUERY_STRING ? `?${environ.QUERY_STRING}` : "");
      return jsonBody(startResponse, { url, path });
    }
    if (post && path === "/echo") {
      const received: unknown = JSON.parse(Buffer.from(await readAll(environ["tsgi.input"])).toString("utf8"));
      return jsonBody(startResponse, { received });
    }
    if (post && path === "/upload") return jsonBody(startResponse, await digest(environ["tsgi.input"]));
    if (get && path === "/cookies") {
      const cookies = parseCookies(environ.HTTP_COOKIE);
      startResponse("200 OK", [
        ["Content-Type", "application/json"],
        ["Set-Cookie", "x=1; Path=/"],
        ["Set-Cookie", "y=2; Path=/"],
      ]);
      return [JSON.stringify({ a: cookies.a, b: cookies.b })];
    }
    if (get && path === "/stream") {
      startResponse("200 OK", [["Content-Type", "text/plain"]]);
      return chunks();
    }
    if (get && path === "/error") throw new Error("boom from a TSGI app");
    if (get && path === "/forever") {
      startResponse("200 OK", [["Content-Type", "text/plain"]]);
      return forever(hooks);
    }
    startResponse("404 Not Found", [["Content-Type", "text/plain"]]);
    return ["not found\n"];
  };
}

runAdapterConformance("bare TSGI app", (hooks) => nativeApp(hooks), transports);

runAdapterConformance(
  "fromFetchHandler(toFetchHandler(app))",
  (hooks) => fromFetchHandler(toFetchHandler(prefixFromHeader(nativeApp(hooks)), { errors: quiet })),
  transports,
);

runAdapterConformance(
  "fromNodeListener(toNodeListener(app))",
  (hooks) => fromNodeListener(toNodeListener(prefixFromHeader(nativeApp(hooks)), { errors: quiet })),
  transports,
);

// ---------------------------------------------------------------------------
// The environ survives the round trip

/** The CGI keys and request headers of an environ, for comparison. */
function cgiView(environ: Environ): Record<string, unknown> {
  const keys = [
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "tsgi.url_scheme",
  ];
  const view: Record<string, unknown> = {};
  for (const key of keys) view[key] = environ[key];
  for (const key of Object.keys(environ)) if (key.startsWith("HTTP_")) view[key] = environ[key];
  return view;
}

describe("the environ through a round trip", () => {
  const request = {
    method: "PUT",
    target: "/mnt/a%20b/c?q=1&r=%2F",
    headers: [
      ["Content-Type", "text/plain; charset=utf-8"],
      ["Cookie", "a=1"],
      ["X-Custom", "one"],
    ] as Array<[string, string]>,
    body: "payload bytes",
  };

  /** An app recording its environ and echoing the body. */
  function recorder(seen: Environ[]): TsgiApp {
    return async (environ, startResponse) => {
      seen.push(environ);
      const body = await readAll(environ["tsgi.input"]);
      startResponse("200 OK", [["Content-Type", "application/octet-stream"]]);
      return [body];
    };
  }

  /** Serves `request` at /mnt through `roundTrip(inner)` and returns the outer server's environ and the inner app's. */
  async function throughRoundTrip(
    roundTrip: (inner: TsgiApp, outer: Environ) => TsgiApp,
    wrapInner: (app: TsgiApp) => TsgiApp,
  ): Promise<{ outer: Environ; inner: Environ }> {
    const seen: Environ[] = [];
    const app: TsgiApp = (environ, startResponse) => {
      seen.push(environ);
      return roundTrip(wrapInner(recorder(seen)), environ)(environ, startResponse);
    };
    const client = await memoryTransport.connect(app, "/mnt");
    const response = await client.request(request);
    expect(response.body.toString()).toBe("payload bytes");
    expect(seen).toHaveLength(2);
    const [outer, inner] = seen as [Environ, Environ];
    return { outer, inner };
  }

  const viaNode = (inner: TsgiApp) => fromNodeListener(toNodeListener(inner, { errors: quiet }));
  const viaFetch = (inner: TsgiApp, outer: Environ) => {
    const handler = toFetchHandler(inner, {
      errors: quiet,
      // What a Fetch runtime hands over besides the Request: here, the outer environ's peer.
      connInfo: () => ({ remoteAddr: outer.REMOTE_ADDR, remotePort: Number(outer.REMOTE_PORT) }),
    });
    return fromFetchHandler((req) => handler(req));
  };

  it("fromNodeListener(toNodeListener(app)) gives the inner app the path below the mount, and the mount in X-Forwarded-Prefix", { timeout: 5000 }, async () => {
    const { outer, inner } = await throughRoundTrip(viaNode, (app) => app);
    expect([outer.SCRIPT_NAME, outer.PATH_INFO]).toEqual(["/mnt", "/a b/c"]);
    // The Node world got "/a%20b/c?…": the inner server knows no mount, so its app sits at the root.
    expect(cgiView(inner)).toEqual({ ...cgiView(outer), SCRIPT_NAME: "", HTTP_X_FORWARDED_PREFIX: "/mnt" });
    expect(inner.REQUEST_URI).toBe("/a%20b/c?q=1&r=%2F");
  });

  it("fromNodeListener(toNodeListener(prefixFromHeader(app))) gives the inner app the outer environ", { timeout: 5000 }, async () => {
    const { outer, inner } = await throughRoundTrip(viaNode, prefixFromHeader);
    // The one difference is the header that carried the mount across.
    expect(cgiView(inner)).toEqual({ ...cgiView(outer), HTTP_X_FORWARDED_PREFIX: "/mnt" });
    expect([inner.SCRIPT_NAME, inner.PATH_INFO]).toEqual(["/mnt", "/a b/c"]);
  });

  it("fromFetchHandler(toFetchHandler(app)) gives the inner app the path below the mount, and the mount in X-Forwarded-Prefix", { timeout: 5000 }, async () => {
    const { outer, inner } = await throughRoundTrip(viaFetch, (app) => app);
    // A Request says nothing of the protocol version; the rest comes through.
    const { SERVER_PROTOCOL: _outerProtocol, ...outerView } = cgiView(outer);
    const { SERVER_PROTOCOL: innerProtocol, ...innerView } = cgiView(inner);
    expect(innerProtocol).toBe("HTTP/1.1");
    expect(innerView).toEqual({ ...outerView, SCRIPT_NAME: "", HTTP_X_FORWARDED_PREFIX: "/mnt" });
  });

  it("fromFetchHandler(toFetchHandler(prefixFromHeader(app))) gives the inner app the outer environ", { timeout: 5000 }, async () => {
    const { outer, inner } = await throughRoundTrip(viaFetch, prefixFromHeader);
    const { SERVER_PROTOCOL: _outerProtocol, ...outerView } = cgiView(outer);
    const { SERVER_PROTOCOL: _innerProtocol, ...innerView } = cgiView(inner);
    expect(innerView).toEqual({ ...outerView, HTTP_X_FORWARDED_PREFIX: "/mnt" });
    expect([inner.SCRIPT_NAME, inner.PATH_INFO]).toEqual(["/mnt", "/a b/c"]);
  });

  it("a mount point outside ASCII crosses quoted and comes back decoded", { timeout: 5000 }, async () => {
    const seen: Environ[] = [];
    const app = fromNodeListener(toNodeListener(prefixFromHeader(recorder(seen)), { errors: quiet }));
    const client = await memoryTransport.connect(app, "/café");
    await client.request({ target: "/caf%C3%A9/x%3Fy?z=1" });
    expect(seen[0]).toMatchObject({ SCRIPT_NAME: "/café", PATH_INFO: "/x?y", QUERY_STRING: "z=1", HTTP_X_FORWARDED_PREFIX: "/caf%C3%A9" });
  });
});

// ---------------------------------------------------------------------------
// toFetchHandler on its own: what a Fetch runtime gets back

describe("toFetchHandler", () => {
  it("resolves the Response at the head and streams the body after it", { timeout: 5000 }, async () => {
    const handler = toFetchHandler(nativeApp({ streamAborted() {} }), { errors: quiet });
    const started = performance.now();
    const response = await handler(new Request("http://example.test/stream"));
    const headAt = performance.now() - started;
    expect(response.status).toBe(200);
    expect(response.statusText).toBe("OK");
    expect(response.headers.get("content-type")).toBe("text/plain");
    expect(await response.text()).toBe("chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    // Four 20 ms gaps come after the head: a Response held back until the end would leave none.
    expect(performance.now() - started - headAt).toBeGreaterThanOrEqual(50);
  });

  it("keeps every Set-Cookie and answers a missing route with 404", { timeout: 5000 }, async () => {
    const handler = toFetchHandler(nativeApp({ streamAborted() {} }), { errors: quiet });
    const cookies = await handler(new Request("http://example.test/cookies", { headers: { Cookie: "a=1; b=two" } }));
    expect(cookies.headers.getSetCookie()).toEqual(["x=1; Path=/", "y=2; Path=/"]);
    expect(await cookies.json()).toEqual({ a: "1", b: "two" });
    const missing = await handler(new Request("http://example.test/nowhere"));
    expect(missing.status).toBe(404);
    expect(missing.statusText).toBe("Not Found");
  });

  it("cancelling the body is the client leaving: close() runs once", { timeout: 5000 }, async () => {
    let aborted = 0;
    let closes = 0;
    const app: TsgiApp = (environ, startResponse) => {
      const body = nativeApp({ streamAborted: () => void (aborted += 1) })(environ, startResponse);
      return Promise.resolve(body).then((inner) => Object.assign(inner, { close: () => void (closes += 1) }));
    };
    const response = await toFetchHandler(app, { errors: quiet })(new Request("http://example.test/forever"));
    const reader = response.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("tick\n");
    await reader.cancel();
    await waitFor(() => closes === 1 && aborted === 1, 2000, "close() and the generator's finally");
    await sleep(30);
    expect(closes).toBe(1);
  });

  it("an app failing before the head becomes a 500; after it, a broken stream", { timeout: 5000 }, async () => {
    const errors: string[] = [];
    const early = await toFetchHandler(nativeApp({ streamAborted() {} }), { errors: { write: (m) => void errors.push(m) } })(
      new Request("http://example.test/error"),
    );
    expect(early.status).toBe(500);
    expect(errors.join("")).toContain("boom from a TSGI app");

    const late: TsgiApp = (_environ, startResponse) => {
      startResponse("200 OK", [["Content-Type", "text/plain"]]);
      return (async function* () {
        yield "partial";
        throw new Error("failed halfway");
      })();
    };
    const response = await toFetchHandler(late, { errors: quiet })(new Request("http://example.test/"));
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow();
  });

  it("serves a body of unknown length and reports a malformed path as 400", { timeout: 5000 }, async () => {
    const handler = toFetchHandler(nativeApp({ streamAborted() {} }), { errors: quiet });
    const upload = await handler(
      new Request("http://example.test/upload", {
        method: "POST",
        body: new Blob([new Uint8Array(100_000).fill(7)]).stream(),
        duplex: "half",
      } as RequestInit),
    );
    const expected = createHash("sha256").update(new Uint8Array(100_000).fill(7)).digest("hex");
    expect(await upload.json()).toEqual({ bytes: 100_000, sha256: expected });

    const bad = await handler(new Request("http://example.test/%E0%A4%A"));
    expect(bad.status).toBe(400);
  });
});
