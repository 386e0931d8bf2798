/**
 * The Fetch adapters in detail, in memory: the Request fromFetchHandler builds
 * from an environ and how it maps the Response back; the environ
 * toFetchHandler builds from a Request and how the Response it returns
 * streams, pushes back and notices the client leaving.
 */
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { fromFetchHandler, toFetchHandler } from "../../../src/tsgi/adapters/fetch.ts";
import type { Environ, InputStream, TsgiApp } from "../../../src/tsgi/types.ts";
import { readAll } from "../../../src/tsgi/util.ts";
import { type CollectingSink, collectingErrors, environFor, type EnvironOptions, runInMemory, sleep, type TestRequest, waitFor } from "./harness.ts";

const T = { timeout: 5000 };
const quiet = { write() {} };

async function serve(
  handler: (request: Request, environ: Environ) => Response | Promise<Response>,
  request: TestRequest = { target: "/" },
  options: EnvironOptions & { leaveAfterChunks?: number } = {},
): Promise<{ sink: CollectingSink; errors: string[] }> {
  const errors = collectingErrors();
  const sink = await runInMemory(fromFetchHandler(handler), environFor(request, { errors, ...options }), options);
  return { sink, errors: errors.lines };
}

function text(sink: CollectingSink): string {
  return Buffer.concat(sink.chunks.map((chunk) => chunk.bytes)).toString("utf8");
}

function trackedInput(): { input: InputStream; touched: () => boolean } {
  let touched = false;
  return {
    input: {
      [Symbol.asyncIterator]() {
        touched = true;
        return (async function* () {
          yield new TextEncoder().encode("body");
        })();
      },
    },
    touched: () => touched,
  };
}

describe("fromFetchHandler: the Request", () => {
  it("carries the URL (below the mount), method, headers and body of the environ; the environ comes second", T, async () => {
    let seen: { url: string; method: string; custom: string | null; prefix: string | null; body: string; scriptName: unknown } | undefined;
    const { sink } = await serve(
      async (request, environ) => {
        seen = {
          url: request.url,
          method: request.method,
          custom: request.headers.get("x-custom"),
          prefix: request.headers.get("x-forwarded-prefix"),
          body: await request.text(),
          scriptName: environ.SCRIPT_NAME,
        };
        return new Response("ok");
      },
      {
        method: "PATCH",
        target: "/mnt/p%20q?x=1&y=%2F",
        headers: [["X-Custom", "yes"]],
        body: "patch body",
      },
      { scriptName: "/mnt", urlScheme: "https" },
    );
    expect(text(sink)).toBe("ok");
    expect(seen).toEqual({
      url: "https://127.0.0.1:8080/p%20q?x=1&y=%2F",
      method: "PATCH",
      custom: "yes",
      prefix: "/mnt",
      body: "patch body",
      scriptName: "/mnt",
    });
  });

  it("runs a Hono app unchanged under SCRIPT_NAME: routes below the mount, the mount in X-Forwarded-Prefix and c.env", T, async () => {
    const app = new Hono<{ Bindings: Environ }>()
      .get("/", (c) => c.text("root"))
      .get("/where", (c) =>
        c.json({ url: c.req.url, path: c.req.path, prefix: c.req.header("X-Forwarded-Prefix"), scriptName: c.env.SCRIPT_NAME }),
      );
    const handler = (request: Request, environ: Environ) => app.fetch(request, environ);
    // The mount point itself is the app's root: PATH_INFO "" is "/".
    const root = await serve(handler, { target: "/hono" }, { scriptName: "/hono" });
    expect([root.sink.head?.code, text(root.sink)]).toEqual([200, "root"]);
    const { sink } = await serve(handler, { target: "/hono/where?x=1" }, { scriptName: "/hono" });
    expect(JSON.parse(text(sink))).toEqual({ url: "http://127.0.0.1:8080/where?x=1", path: "/where", prefix: "/hono", scriptName: "/hono" });
    const outside = await serve(handler, { target: "/hono/hono/where" }, { scriptName: "/hono" });
    expect(outside.sink.head?.code).toBe(404);
  });

  it("quotes the path and the prefix; at the root there is no prefix, and a mounted app's replaces the request's", T, async () => {
    const seen: Array<{ url: string; prefix: string | null }> = [];
    const record = (request: Request) => {
      seen.push({ url: request.url, prefix: request.headers.get("x-forwarded-prefix") });
      return new Response(null, { status: 204 });
    };
    await serve(record, { target: "/caf%C3%A9/a%3Fb%23c?q" }, { scriptName: "/café" });
    await serve(record, { target: "/caf%C3%A9/a%3Fb%23c?q" });
    const forged: TestRequest = { target: "/mnt/x", headers: [["X-Forwarded-Prefix", "/elsewhere"]] };
    await serve(record, forged, { scriptName: "/mnt" });
    await serve(record, forged);
    expect(seen).toEqual([
      { url: "http://127.0.0.1:8080/a%3Fb%23c?q", prefix: "/caf%C3%A9" },
      { url: "http://127.0.0.1:8080/caf%C3%A9/a%3Fb%23c?q", prefix: null },
      { url: "http://127.0.0.1:8080/x", prefix: "/mnt" },
      { url: "http://127.0.0.1:8080/mnt/x", prefix: "/elsewhere" },
    ]);
  });

  it("without a Host header, builds the host from SERVER_NAME and SERVER_PORT, an IPv6 name in brackets", T, async () => {
    const urls: string[] = [];
    const record = (request: Request) => {
      urls.push(request.url);
      return new Response("ok");
    };
    for (const [name, port] of [["::1", "8080"], ["example.test", "80"]] as const) {
      const environ = environFor({ target: "/x" }, { protocol: "HTTP/1.0" });
      delete environ.HTTP_HOST;
      Object.assign(environ, { SERVER_NAME: name, SERVER_PORT: port });
      await runInMemory(fromFetchHandler(record), environ);
    }
    expect(urls).toEqual(["http://[::1]:8080/x", "http://example.test/x"]);
  });

  it("has a body only when the environ announces one, and reads it only when the handler does", T, async () => {
    const bodies: Array<boolean> = [];
    const record = (request: Request) => {
      bodies.push(request.body !== null);
      return new Response(null, { status: 204 });
    };
    const unread = trackedInput();
    await serve(record, { method: "GET", target: "/" });
    await serve(record, { method: "DELETE", target: "/" });
    await serve(record, { method: "POST", target: "/", headers: [["Content-Length", "4"]] }, { input: unread.input });
    await serve(record, { method: "POST", target: "/", headers: [["Transfer-Encoding", "chunked"]] });
    expect(bodies).toEqual([false, false, true, true]);
    expect(unread.touched()).toBe(false);
  });

  it("answers a Host that no URL can hold with 400, without calling the handler", T, async () => {
    let called = false;
    const { sink } = await serve(
      () => {
        called = true;
        return new Response("no");
      },
      { target: "/", headers: [["Host", "bad host name"]] },
    );
    expect(sink.head?.code).toBe(400);
    expect(called).toBe(false);
  });
});

describe("fromFetchHandler: the Response", () => {
  it("passes status, statusText, headers and every Set-Cookie; drops hop-by-hop headers", T, async () => {
    const { sink } = await serve(
      () =>
        new Response("made", {
          status: 201,
          statusText: "Made It",
          headers: [
            ["Set-Cookie", "a=1"],
            ["Set-Cookie", "b=2"],
            ["X-One", "1"],
            ["Connection", "close"],
            ["Keep-Alive", "timeout=5"],
          ],
        }),
    );
    expect(sink.head?.status).toBe("201 Made It");
    expect(sink.head?.headers).toEqual([
      ["content-type", "text/plain;charset=UTF-8"],
      ["x-one", "1"],
      ["set-cookie", "a=1"],
      ["set-cookie", "b=2"],
    ]);
    expect(text(sink)).toBe("made");
  });

  it("uses the standard reason phrase when the Response has no statusText", T, async () => {
    const { sink } = await serve(() => new Response("gone", { status: 410 }));
    expect(sink.head?.status).toBe("410 Gone");
  });

  it("streams the body chunk by chunk, head first", T, async () => {
    const { sink } = await serve(() => {
      const encoder = new TextEncoder();
      let i = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (i > 0) await sleep(20);
          if (i === 3) return controller.close();
          controller.enqueue(encoder.encode(`part ${i++}\n`));
        },
      });
      return new Response(body);
    });
    expect(text(sink)).toBe("part 0\npart 1\npart 2\n");
    expect(sink.chunks).toHaveLength(3);
    expect(sink.chunks[2]!.at - sink.head!.at).toBeGreaterThanOrEqual(30);
  });

  it("close() before the end cancels the body and aborts request.signal", T, async () => {
    let cancelled = false;
    let signalled = false;
    const { sink } = await serve(
      (request) => {
        request.signal.addEventListener("abort", () => (signalled = true));
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            await sleep(5);
            controller.enqueue(new TextEncoder().encode("tick\n"));
          },
          cancel() {
            cancelled = true;
          },
        });
        return new Response(body);
      },
      { target: "/" },
      { leaveAfterChunks: 2 },
    );
    expect(text(sink)).toMatch(/^(tick\n){2,}$/);
    await waitFor(() => cancelled && signalled, 1000, "cancel and abort");
  });

  it("a throw or a non-Response is a logged 500; a body failing midway aborts", T, async () => {
    const thrown = await serve(() => {
      throw new Error("handler exploded");
    });
    expect(thrown.sink.head?.code).toBe(500);
    expect(thrown.errors.join("")).toContain("handler exploded");

    const wrong = await serve(() => ({ status: "nope" }) as unknown as Response);
    expect(wrong.sink.head?.code).toBe(500);
    expect(wrong.errors.join("")).toContain("must return a Response");

    const broken = await serve(
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode("half"));
              setTimeout(() => controller.error(new Error("source broke")), 5);
            },
          }),
        ),
    );
    expect(text(broken.sink)).toBe("half");
    expect(broken.sink.aborted).toBe(true);
  });
});

describe("toFetchHandler: the environ", () => {
  it("is built from the Request, the mount and the runtime's connection info", T, async () => {
    const seen: Environ[] = [];
    const app: TsgiApp = async (environ, startResponse) => {
      seen.push({ ...environ, body: Buffer.from(await readAll(environ["tsgi.input"])).toString() });
      startResponse("200 OK", []);
      return [];
    };
    const handler = toFetchHandler<[{ ip: string; port: number }]>(app, {
      errors: quiet,
      scriptName: (request) => (new URL(request.url).pathname.startsWith("/api/") ? "/api" : undefined),
      connInfo: (_request, info) => ({ remoteAddr: info.ip, remotePort: info.port }),
    });
    const peer = { ip: "2001:db8::7", port: 50007 };
    await handler(new Request("https://example.test/api/users/a%20b?page=2", { headers: { "X-Trace": "t1" } }), peer);
    await handler(new Request("http://example.test:8000/upload", { method: "POST", body: "twelve bytes" }), peer);
    await handler(
      new Request("http://example.test:8000/sized", { method: "PUT", body: "abc", headers: { "Content-Length": "3" } }),
      peer,
    );
    expect(seen[0]).toMatchObject({
      REQUEST_METHOD: "GET",
      SCRIPT_NAME: "/api",
      PATH_INFO: "/users/a b",
      QUERY_STRING: "page=2",
      SERVER_NAME: "example.test",
      SERVER_PORT: "443",
      SERVER_PROTOCOL: "HTTP/1.1",
      REMOTE_ADDR: "2001:db8::7",
      REMOTE_PORT: "50007",
      HTTP_HOST: "example.test",
      HTTP_X_TRACE: "t1",
      "tsgi.url_scheme": "https",
      body: "",
    });
    expect(seen[0]).not.toHaveProperty("CONTENT_LENGTH");
    // A Request never states its own length: the body is announced the way HTTP/1.1 announces one of unknown length.
    expect(seen[1]).toMatchObject({
      SCRIPT_NAME: "",
      PATH_INFO: "/upload",
      SERVER_PORT: "8000",
      HTTP_HOST: "example.test:8000",
      HTTP_TRANSFER_ENCODING: "chunked",
      CONTENT_TYPE: "text/plain;charset=UTF-8",
      body: "twelve bytes",
    });
    expect(seen[2]).toMatchObject({ CONTENT_LENGTH: "3", body: "abc" });
    expect(seen[2]).not.toHaveProperty("HTTP_TRANSFER_ENCODING");
  });
});

describe("toFetchHandler: the Response", () => {
  it("holds the app back while the reader is behind", T, async () => {
    const chunk = new Uint8Array(64 * 1024).fill(3);
    let written = 0;
    let maxAhead = 0;
    let read = 0;
    const app: TsgiApp = (_environ, startResponse) => {
      startResponse("200 OK", [["Content-Type", "application/octet-stream"]]);
      return (async function* () {
        for (let i = 0; i < 32; i++) {
          yield chunk; // resumed only when the reader has room
          written += chunk.byteLength;
          maxAhead = Math.max(maxAhead, written - read);
        }
      })();
    };
    const response = await toFetchHandler(app, { errors: quiet })(new Request("http://example.test/"));
    const reader = response.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      read += value.byteLength;
      await sleep(1);
    }
    expect(read).toBe(32 * chunk.byteLength);
    // 16 KiB of queue plus the chunk in hand, not the whole 2 MiB.
    expect(maxAhead).toBeLessThanOrEqual(3 * chunk.byteLength);
  });

  it("stops the app when request.signal aborts", T, async () => {
    let closes = 0;
    let stoppedEarly = false;
    const app: TsgiApp = (_environ, startResponse) => {
      startResponse("200 OK", [["Content-Type", "text/plain"]]);
      const body = (async function* () {
        try {
          for (;;) {
            yield "tick\n";
            await sleep(5);
          }
        } finally {
          stoppedEarly = true;
        }
      })();
      return Object.assign(body, { close: () => void (closes += 1) });
    };
    const abort = new AbortController();
    const response = await toFetchHandler(app, { errors: quiet })(new Request("http://example.test/", { signal: abort.signal }));
    const reader = response.body!.getReader();
    await reader.read();
    abort.abort();
    await waitFor(() => closes === 1 && stoppedEarly, 1000, "close() after the abort");
  });

  it("gives HEAD and 204 a Response without a body", T, async () => {
    const app: TsgiApp = (environ, startResponse) => {
      startResponse(environ.PATH_INFO === "/none" ? "204 No Content" : "200 OK", [["Content-Type", "text/plain"]]);
      return ["hello"];
    };
    const handler = toFetchHandler(app, { errors: quiet });
    const head = await handler(new Request("http://example.test/", { method: "HEAD" }));
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("5");
    expect(head.body).toBeNull();
    const none = await handler(new Request("http://example.test/none"));
    expect(none.status).toBe(204);
    expect(none.body).toBeNull();
  });

  it("rejects when the client leaves before the app answers", T, async () => {
    const app: TsgiApp = async (_environ, startResponse) => {
      await sleep(30);
      startResponse("200 OK", []);
      return ["too late"];
    };
    const abort = new AbortController();
    const pending = toFetchHandler(app, { errors: quiet })(new Request("http://example.test/", { signal: abort.signal }));
    abort.abort();
    await expect(pending).rejects.toThrow(/client went away/);
  });
});
