/**
 * A TSGI app served out through an adapter and brought back in through the
 * other direction: fromFetchHandler(toFetchHandler(app)) and
 * fromNodeListener(toNodeListener(app)) must behave like the app itself. The
 * conformance suite runs against the bare app and both round trips, in memory
 * and on a real socket; then the environ the inner app sees is compared with
 * the one the outer server built, and toFetchHandler's Response is checked on
 * its own (streaming, headers, abort).
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
      return jsonBody(startResponse, { url });
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

runAdapterConformance("bare TSGI app", (_mount, hooks) => nativeApp(hooks), transports);

runAdapterConformance(
  "fromFetchHandler(toFetchHandler(app))",
  (mount, hooks) => fromFetchHandler(toFetchHandler(nativeApp(hooks), { scriptName: mount, errors: quiet })),
  transports,
);

runAdapterConformance(
  "fromNodeListener(toNodeListener(app))",
  (mount, hooks) => fromNodeListener(toNodeListener(nativeApp(hooks), { scriptName: mount, errors: quiet })),
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
  const seen: Environ[] = [];
  const echo: TsgiApp = async (environ, startResponse) => {
    seen.push(environ);
    const body = await readAll(environ["tsgi.input"]);
    startResponse("200 OK", [["Content-Type", "application/octet-stream"]]);
    return [body];
  };
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

  it("fromNodeListener(toNodeListener(app)) gives the inner app the outer environ", { timeout: 5000 }, async () => {
    seen.length = 0;
    const outer: TsgiApp = (environ, startResponse) => {
      seen.push(environ);
      return fromNodeListener(toNodeListener(echo, { scriptName: "/mnt", errors: quiet }))(environ, startResponse);
    };
    const client = await memoryTransport.connect(outer, "/mnt");
    const response = await client.request(request);
    expect(response.body.toString()).toBe("payload bytes");
    expect(seen).toHaveLength(2);
    const [outerEnviron, innerEnviron] = seen as [Environ, Environ];
    expect(cgiView(innerEnviron)).toEqual(cgiView(outerEnviron));
    expect(innerEnviron.PATH_INFO).toBe("/a b/c");
  });

  it("fromFetchHandler(toFetchHandler(app)) gives the inner app the outer environ", { timeout: 5000 }, async () => {
    seen.length = 0;
    const outer: TsgiApp = (environ, startResponse) => {
      seen.push(environ);
      const handler = toFetchHandler(echo, {
        scriptName: "/mnt",
        errors: quiet,
        // What a Fetch runtime hands over besides the Request: here, the outer environ's peer.
        connInfo: () => ({ remoteAddr: environ.REMOTE_ADDR, remotePort: Number(environ.REMOTE_PORT) }),
      });
      return fromFetchHandler((request) => handler(request))(environ, startResponse);
    };
    const client = await memoryTransport.connect(outer, "/mnt");
    const response = await client.request(request);
    expect(response.body.toString()).toBe("payload bytes");
    const [outerEnviron, innerEnviron] = seen as [Environ, Environ];
    // A Request says nothing of the protocol version and sorts its headers; the rest comes through.
    const { SERVER_PROTOCOL: _outerProtocol, ...outerView } = cgiView(outerEnviron);
    const { SERVER_PROTOCOL: innerProtocol, ...innerView } = cgiView(innerEnviron);
    expect(innerProtocol).toBe("HTTP/1.1");
    expect(innerView).toEqual(outerView);
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
