/**
 * The middleware that ships with TSGI, driven in memory through the real
 * response handler: the URL Dispatcher and the body post-processor
 * (rewriteBody, and the seeds' Goodbye on top of it).
 */
import { describe, expect, it } from "vitest";
import { baseEnviron, requestEnviron } from "../../src/tsgi/environ.ts";
import { runApp } from "../../src/tsgi/handler.ts";
import { dispatcher } from "../../src/tsgi/middleware/dispatcher.ts";
import { goodbye, rewriteBody } from "../../src/tsgi/middleware/rewrite-body.ts";
import type { Environ, TsgiApp } from "../../src/tsgi/types.ts";
import { getHeader } from "../../src/tsgi/util.ts";
import { CollectingSink, collectingErrors } from "./adapters/harness.ts";

const errors = collectingErrors();
const base = baseEnviron({ serverName: "test", serverPort: 80, errors });

function environFor(method: string, target: string): Environ {
  return requestEnviron(base, { method, target, protocol: "HTTP/1.1", rawHeaders: ["Host", "test"], remoteAddr: "127.0.0.1" }, {
    async *[Symbol.asyncIterator]() {},
  });
}

async function call(app: TsgiApp, target: string, method = "GET") {
  const sink = new CollectingSink();
  const environ = environFor(method, target);
  await runApp(app, environ, sink);
  const body = Buffer.concat(sink.chunks.map((chunk) => chunk.bytes)).toString();
  return { code: sink.head?.code, headers: sink.head?.headers ?? [], body, environ };
}

/** An app that reports where it believes it is mounted. */
const whereAmI =
  (name: string): TsgiApp =>
  (environ, startResponse) => {
    startResponse("200 OK", [["Content-Type", "text/plain"]]);
    return [`${name} SCRIPT_NAME=${environ.SCRIPT_NAME} PATH_INFO=${environ.PATH_INFO}`];
  };

describe("dispatcher", () => {
  const app = dispatcher({ "/api": whereAmI("api"), "/api/v2/": whereAmI("v2"), "/": whereAmI("site") });

  it.each([
    ["/api/users", "api SCRIPT_NAME=/api PATH_INFO=/users"],
    ["/api", "api SCRIPT_NAME=/api PATH_INFO="],
    ["/api/v2/users", "v2 SCRIPT_NAME=/api/v2 PATH_INFO=/users"],
    ["/apix", "site SCRIPT_NAME= PATH_INFO=/apix"],
    ["/", "site SCRIPT_NAME= PATH_INFO=/"],
  ])("routes %s by the longest prefix at a segment boundary", async (target, expected) => {
    expect((await call(app, target)).body).toBe(expected);
  });

  it("answers 404, naming the path, when no prefix matches", async () => {
    const response = await call(dispatcher({ "/api": whereAmI("api") }), "/elsewhere");
    expect(response.code).toBe(404);
    expect(response.body).toBe("Not Found: no app is mounted at /elsewhere\n");
  });

  it("hands the mounted app a copy: the caller's environ is unchanged", async () => {
    const response = await call(app, "/api/users");
    expect(response.environ.SCRIPT_NAME).toBe("");
    expect(response.environ.PATH_INFO).toBe("/api/users");
  });

  it("nests: a dispatcher inside a dispatcher accumulates SCRIPT_NAME", async () => {
    const nested = dispatcher({ "/outer": dispatcher({ "/inner": whereAmI("deep") }) });
    expect((await call(nested, "/outer/inner/x")).body).toBe("deep SCRIPT_NAME=/outer/inner PATH_INFO=/x");
  });

  it("refuses a prefix that does not start with /", () => {
    expect(() => dispatcher({ api: whereAmI("api") })).toThrow(/mount prefix "api" must start with "\/"/);
  });
});

describe("rewriteBody and goodbye", () => {
  const hello: TsgiApp = (_environ, startResponse) => {
    startResponse("200 OK", [["Content-Type", "text/plain"], ["Content-Length", "13"]]);
    return ["Hello, world!"];
  };

  it("rewrites the body and fixes Content-Length", async () => {
    const response = await call(goodbye(hello), "/");
    expect(response.body).toBe("Goodbye, world!");
    expect(getHeader(response.headers, "content-length")).toBe("15");
  });

  it("collects chunks from write(), a generator and a lazy startResponse alike", async () => {
    let closes = 0;
    const lazy: TsgiApp = (_environ, startResponse) =>
      Object.assign(
        (async function* () {
          const write = startResponse("200 OK", [["Content-Type", "text/html"]]);
          void write;
          yield "<p>Hello";
          yield " there</p>";
        })(),
        { close: () => void closes++ },
      );
    const response = await call(goodbye(lazy), "/");
    expect(response.code).toBe(200);
    expect(response.body).toBe("<p>Goodbye there</p>");
    expect(closes).toBe(1);

    const imperative: TsgiApp = (_environ, startResponse) => {
      const write = startResponse("200 OK", [["Content-Type", "text/plain"]]);
      void write("Hello ");
      return ["again"];
    };
    expect((await call(goodbye(imperative), "/")).body).toBe("Goodbye again");
  });

  it("passes non-text responses through untouched, streaming", async () => {
    const binary: TsgiApp = (_environ, startResponse) => {
      startResponse("200 OK", [["Content-Type", "application/octet-stream"]]);
      return (async function* () {
        yield new Uint8Array([72, 101, 108, 108, 111]); // "Hello" as bytes: not ours to rewrite
      })();
    };
    const response = await call(goodbye(binary), "/");
    expect(response.body).toBe("Hello");
    expect(getHeader(response.headers, "content-length")).toBeUndefined();
  });

  it("leaves HEAD alone: the length stays the app's", async () => {
    const response = await call(goodbye(hello), "/", "HEAD");
    expect(getHeader(response.headers, "content-length")).toBe("13");
    expect(response.body).toBe("");
  });

  it("takes any transform", async () => {
    const shout = rewriteBody(hello, (text) => text.toUpperCase());
    expect((await call(shout, "/")).body).toBe("HELLO, WORLD!");
  });
});
