/**
 * fromNodeListener in detail, in memory: the request a framework sees, the
 * response methods and events it relies on, back-pressure both ways, and what
 * failures and aborts turn into. The conformance suite covers the happy paths
 * per framework; this file pins down the translation itself.
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { IncomingMessage, ServerResponse } from "node:http";
import express from "express";
import Fastify from "fastify";
import Koa from "koa";
import { describe, expect, it } from "vitest";
import { environOf, fromNodeListener, type NodeRequestListener } from "../../../src/tsgi/adapters/node-listener.ts";
import type { Environ, InputStream } from "../../../src/tsgi/types.ts";
import { type CollectingSink, collectingErrors, environFor, type EnvironOptions, runInMemory, sleep, type TestRequest, waitFor } from "./harness.ts";

const T = { timeout: 5000 };

/** Runs `listener` for one request and returns the sink and the environ it got. */
async function serve(
  listener: NodeRequestListener,
  request: TestRequest = { target: "/" },
  options: EnvironOptions & { leaveAfterChunks?: number; slowMs?: number } = {},
): Promise<{ sink: CollectingSink; environ: Environ; errors: string[] }> {
  const errors = collectingErrors();
  const environ = environFor(request, { errors, ...options });
  const sink = await runInMemory(fromNodeListener(listener), environ, options);
  return { sink, environ, errors: errors.lines };
}

function text(sink: CollectingSink): string {
  return Buffer.concat(sink.chunks.map((chunk) => chunk.bytes)).toString("utf8");
}

function headerNames(sink: CollectingSink): string[] {
  return (sink.head?.headers ?? []).map(([name]) => name.toLowerCase());
}

/** An instrumented request body: `count` chunks of `size` bytes; `pulled()` says how many were taken. */
function countedInput(count: number, size: number): { input: InputStream; pulled: () => number; digest: string } {
  let pulled = 0;
  const chunk = (i: number) => new Uint8Array(size).fill(i & 0xff);
  const hash = createHash("sha256");
  for (let i = 0; i < count; i++) hash.update(chunk(i));
  return {
    input: {
      async *[Symbol.asyncIterator]() {
        for (let i = 0; i < count; i++) {
          pulled += 1;
          yield chunk(i);
        }
      },
    },
    pulled: () => pulled,
    digest: hash.digest("hex"),
  };
}

describe("fromNodeListener: the request the framework sees", () => {
  it("has the url (below the mount), method, version, headers and peer of the environ", T, async () => {
    let seen: { req: IncomingMessage; res: ServerResponse } | undefined;
    const { environ } = await serve(
      (req, res) => {
        seen = { req, res };
        res.end();
      },
      {
        method: "PUT",
        target: "/mnt/caf%C3%A9/a%20b?x=1&y=%2F",
        headers: [
          ["Content-Type", "text/plain"],
          ["Cookie", "a=1"],
          ["Cookie", "b=2"],
          ["X-Request-Id", "abc"],
        ],
        body: "body",
      },
      { scriptName: "/mnt", protocol: "HTTP/1.0", remoteAddr: "10.1.2.3", remotePort: 40000 },
    );
    const { req, res } = seen!;
    expect(req).toBeInstanceOf(IncomingMessage);
    expect(res).toBeInstanceOf(ServerResponse);
    expect(req.method).toBe("PUT");
    expect(req.url).toBe("/caf%C3%A9/a%20b?x=1&y=%2F");
    const { originalUrl, baseUrl } = req as IncomingMessage & { originalUrl: string; baseUrl: string };
    expect({ originalUrl, baseUrl }).toEqual({ originalUrl: "/mnt/caf%C3%A9/a%20b?x=1&y=%2F", baseUrl: "/mnt" });
    expect([req.httpVersion, req.httpVersionMajor, req.httpVersionMinor]).toEqual(["1.0", 1, 0]);
    expect(req.headers).toMatchObject({
      host: "127.0.0.1:8080",
      "content-type": "text/plain",
      "content-length": "4",
      cookie: "a=1; b=2",
      "x-request-id": "abc",
      "x-forwarded-prefix": "/mnt",
    });
    expect(req.rawHeaders).toContain("x-request-id");
    expect(req.socket.remoteAddress).toBe("10.1.2.3");
    expect(req.socket.remotePort).toBe(40000);
    expect(req.socket.remoteFamily).toBe("IPv4");
    expect("encrypted" in req.socket).toBe(false);
    expect(environOf(req)).toBe(environ);
  });

  it("an https environ looks encrypted to Express, Koa and Fastify", T, async () => {
    const https = { urlScheme: "https" as const, remoteAddr: "203.0.113.9" };
    const viaExpress = express().get("/", (req, res) => void res.json({ protocol: req.protocol, secure: req.secure, ip: req.ip }));
    const fromExpress = await serve(viaExpress, { target: "/" }, https);
    expect(JSON.parse(text(fromExpress.sink))).toEqual({ protocol: "https", secure: true, ip: "203.0.113.9" });

    const koa = new Koa().use((ctx) => void (ctx.body = { protocol: ctx.protocol, ip: ctx.ip }));
    const fromKoa = await serve(koa.callback(), { target: "/" }, https);
    expect(JSON.parse(text(fromKoa.sink))).toEqual({ protocol: "https", ip: "203.0.113.9" });

    const fastify = Fastify().get("/", async (request) => ({ protocol: request.protocol, ip: request.ip }));
    await fastify.ready();
    const fromFastify = await serve((req, res) => fastify.routing(req, res), { target: "/" }, https);
    expect(JSON.parse(text(fromFastify.sink))).toEqual({ protocol: "https", ip: "203.0.113.9" });
  });

  it("at the root: url and originalUrl alike, baseUrl empty, no X-Forwarded-Prefix", T, async () => {
    let req!: IncomingMessage & { originalUrl?: string; baseUrl?: string };
    await serve((request, res) => void ((req = request), res.end()), { target: "/a%20b?x=1" });
    expect([req.url, req.originalUrl, req.baseUrl]).toEqual(["/a%20b?x=1", "/a%20b?x=1", ""]);
    expect(req.headers).not.toHaveProperty("x-forwarded-prefix");
    // The mount point itself is the app's root: PATH_INFO "" is "/".
    await serve((request, res) => void ((req = request), res.end()), { target: "/mnt?x=1" }, { scriptName: "/mnt" });
    expect([req.url, req.originalUrl, req.baseUrl]).toEqual(["/?x=1", "/mnt?x=1", "/mnt"]);
  });

  it("quotes a mount point outside ASCII in baseUrl, originalUrl and X-Forwarded-Prefix", T, async () => {
    let req!: IncomingMessage & { originalUrl?: string; baseUrl?: string };
    const { environ } = await serve((request, res) => void ((req = request), res.end()), { target: "/caf%C3%A9/a%3Fb" }, { scriptName: "/café" });
    expect([environ.SCRIPT_NAME, environ.PATH_INFO]).toEqual(["/café", "/a?b"]);
    expect([req.url, req.originalUrl, req.baseUrl]).toEqual(["/a%3Fb", "/caf%C3%A9/a%3Fb", "/caf%C3%A9"]);
    expect(req.headers["x-forwarded-prefix"]).toBe("/caf%C3%A9");
  });

  it("a mounted app's X-Forwarded-Prefix is its mount, whatever the request said; at the root the header passes", T, async () => {
    const seen: Array<string | undefined> = [];
    const record: NodeRequestListener = (req, res) => void (seen.push(req.headers["x-forwarded-prefix"] as string | undefined), res.end());
    const forged: TestRequest = { target: "/mnt/x", headers: [["X-Forwarded-Prefix", "/elsewhere"]] };
    await serve(record, forged, { scriptName: "/mnt" });
    await serve(record, forged);
    expect(seen).toEqual(["/mnt", "/elsewhere"]);
  });

  it("Express runs unchanged under SCRIPT_NAME: routes below the mount, baseUrl and originalUrl carry it", T, async () => {
    const sub = express.Router().get("/x", (req, res) => {
      res.json({ url: req.url, baseUrl: req.baseUrl, path: req.path, originalUrl: req.originalUrl });
    });
    const app = express()
      .get("/", (_req, res) => void res.send("root"))
      .get("/go", (req, res) => res.redirect(`${req.baseUrl}/sub/x`))
      .get("/whoami", (req, res) => void res.json({ baseUrl: req.baseUrl, path: req.path, originalUrl: req.originalUrl }))
      .use("/sub", sub);
    const at = (target: string) => serve(app, { target }, { scriptName: "/express" });

    // The case that used to answer "Cannot GET /express": app.get("/") at the mount point.
    for (const target of ["/express", "/express/"]) {
      const { sink } = await at(target);
      expect([sink.head?.code, text(sink)]).toEqual([200, "root"]);
    }
    // Express's routers start from the preset baseUrl: its own use() composes onto the mount.
    const nested = await at("/express/sub/x?y=1");
    expect(JSON.parse(text(nested.sink))).toEqual({ url: "/x?y=1", baseUrl: "/express/sub", path: "/x", originalUrl: "/express/sub/x?y=1" });
    const top = await at("/express/whoami");
    expect(JSON.parse(text(top.sink))).toEqual({ baseUrl: "/express", path: "/whoami", originalUrl: "/express/whoami" });
    // res.redirect does not add the mount itself (it never does, under app.use either); baseUrl does.
    const redirect = await at("/express/go");
    expect(redirect.sink.head?.code).toBe(302);
    expect(redirect.sink.head?.headers).toContainEqual(["Location", "/express/sub/x"]);
    // finalhandler names the path the client asked for (it reads originalUrl).
    const missing = await at("/express/nope");
    expect(missing.sink.head?.code).toBe(404);
    expect(text(missing.sink)).toContain("Cannot GET /express/nope");
  });

  it("Koa routes on the path below the mount; its originalUrl is that path too, as Koa takes it from req.url", T, async () => {
    const koa = new Koa().use((ctx) => {
      ctx.body = {
        url: ctx.url,
        path: ctx.path,
        originalUrl: ctx.originalUrl,
        href: ctx.href,
        nodeOriginalUrl: (ctx.req as IncomingMessage & { originalUrl?: string }).originalUrl,
        prefix: ctx.get("X-Forwarded-Prefix"),
      };
    });
    const { sink } = await serve(koa.callback(), { target: "/koa/a?b=1" }, { scriptName: "/koa" });
    expect(JSON.parse(text(sink))).toEqual({
      url: "/a?b=1",
      path: "/a",
      originalUrl: "/a?b=1",
      href: "http://127.0.0.1:8080/a?b=1",
      nodeOriginalUrl: "/koa/a?b=1",
      prefix: "/koa",
    });
  });

  it("Fastify routes on the path below the mount; request.originalUrl is the full path", T, async () => {
    const fastify = Fastify()
      .get("/", async () => ({ root: true }))
      .get("/a", async (request) => ({ url: request.url, originalUrl: request.originalUrl, prefix: request.headers["x-forwarded-prefix"] }));
    await fastify.ready();
    const listener: NodeRequestListener = (req, res) => fastify.routing(req, res);
    const root = await serve(listener, { target: "/fastify" }, { scriptName: "/fastify" });
    expect(JSON.parse(text(root.sink))).toEqual({ root: true });
    const { sink } = await serve(listener, { target: "/fastify/a?b=1" }, { scriptName: "/fastify" });
    expect(JSON.parse(text(sink))).toEqual({ url: "/a?b=1", originalUrl: "/fastify/a?b=1", prefix: "/fastify" });
  });

  it("pulls the request body only as fast as the framework reads it", T, async () => {
    const body = countedInput(40, 64 * 1024);
    let pulledWhilePaused = -1;
    const { sink } = await serve(
      async (req, res) => {
        const hash = createHash("sha256");
        req.on("data", (chunk: Buffer) => hash.update(chunk));
        req.once("data", () => req.pause());
        await sleep(50);
        pulledWhilePaused = body.pulled();
        req.resume();
        await once(req, "end");
        res.end(hash.digest("hex"));
      },
      { method: "POST", target: "/", headers: [["Content-Length", String(40 * 64 * 1024)]] },
      { input: body.input },
    );
    // One chunk delivered and at most one or two buffered behind it: not the whole 2.5 MiB.
    expect(pulledWhilePaused).toBeGreaterThanOrEqual(1);
    expect(pulledWhilePaused).toBeLessThanOrEqual(3);
    expect(body.pulled()).toBe(40);
    expect(text(sink)).toBe(body.digest);
  });

  it("never touches tsgi.input when the framework does not read the body, yet ends the request", T, async () => {
    const body = countedInput(4, 1024);
    let requestClosed = false;
    const { sink } = await serve(
      (req, res) => {
        req.on("close", () => (requestClosed = true));
        res.end("ignored your body");
      },
      { method: "POST", target: "/", headers: [["Content-Length", "4096"]] },
      { input: body.input },
    );
    expect(text(sink)).toBe("ignored your body");
    await waitFor(() => requestClosed, 1000, "req 'close'");
    expect(body.pulled()).toBe(0);
  });
});

describe("fromNodeListener: the response", () => {
  it("write() returns false and 'drain' follows while the gateway is behind", T, async () => {
    const chunk = new Uint8Array(64 * 1024).fill(1);
    const stats = { falses: 0, drains: 0, maxBuffered: 0, highWaterMark: 0 };
    const { sink } = await serve(
      async (_req, res) => {
        stats.highWaterMark = res.writableHighWaterMark;
        res.on("drain", () => (stats.drains += 1));
        res.writeHead(200, { "Content-Type": "application/octet-stream" });
        for (let i = 0; i < 16; i++) {
          const ok = res.write(chunk);
          stats.maxBuffered = Math.max(stats.maxBuffered, res.writableLength);
          if (!ok) {
            stats.falses += 1;
            expect(res.writableNeedDrain).toBe(true);
            await once(res, "drain");
          }
        }
        res.end();
      },
      { target: "/" },
      { slowMs: 2 },
    );
    expect(stats.falses).toBeGreaterThan(0);
    expect(stats.drains).toBe(stats.falses);
    expect(stats.maxBuffered).toBeLessThanOrEqual(stats.highWaterMark + chunk.byteLength);
    expect(sink.chunks.reduce((total, each) => total + each.bytes.byteLength, 0)).toBe(16 * chunk.byteLength);
    expect(sink.ended).toBe(true);
  });

  it("drops the hop-by-hop headers a framework sets, keeps the rest", T, async () => {
    const { sink } = await serve((_req, res) => {
      res.setHeader("Connection", "keep-alive");
      res.setHeader("Keep-Alive", "timeout=5");
      res.setHeader("Transfer-Encoding", "chunked");
      res.setHeader("X-Kept", "yes");
      res.write("still ");
      res.end("works");
    });
    expect(headerNames(sink)).toEqual(["x-kept"]);
    expect(text(sink)).toBe("still works");
  });

  it("passes the status code and the reason phrase", T, async () => {
    const custom = await serve((_req, res) => {
      res.statusCode = 418;
      res.statusMessage = "Short and stout";
      res.end();
    });
    expect(custom.sink.head?.status).toBe("418 Short and stout");
    const standard = await serve((_req, res) => void res.writeHead(201).end("made"));
    expect(standard.sink.head?.status).toBe("201 Created");
  });

  it("keeps repeated headers from writeHead's list and merges writeHead's object with setHeader", T, async () => {
    const list = await serve((_req, res) => {
      res.writeHead(200, ["Set-Cookie", "a=1", "Set-Cookie", "b=2", "Content-Type", "text/plain"]).end();
    });
    expect(list.sink.head?.headers).toEqual([
      ["Set-Cookie", "a=1"],
      ["Set-Cookie", "b=2"],
      ["Content-Type", "text/plain"],
      ["Content-Length", "0"],
    ]);
    const merged = await serve((_req, res) => {
      res.setHeader("X-Early", "1");
      res.setHeader("Content-Type", "text/html");
      res.writeHead(200, { "Content-Type": "text/plain" }).end("x");
    });
    expect(merged.sink.head?.headers.slice(0, 2)).toEqual([
      ["X-Early", "1"],
      ["Content-Type", "text/plain"],
    ]);
  });

  it("declares the length of a response ended in one go, as Node does; a streamed one has none", T, async () => {
    const whole = await serve((_req, res) => void res.end("hello"));
    expect(whole.sink.head?.headers).toContainEqual(["Content-Length", "5"]);
    const streamed = await serve((_req, res) => {
      res.write("hel");
      res.end("lo");
    });
    expect(headerNames(streamed.sink)).not.toContain("content-length");
    expect(text(streamed.sink)).toBe("hello");
  });

  it("behaves like a ServerResponse: headersSent, late setHeader, write callbacks, write after end", T, async () => {
    const observed: Record<string, unknown> = {};
    await serve(async (_req, res) => {
      observed.before = res.headersSent;
      const written = new Promise((resolve) => res.write("a", resolve));
      observed.after = res.headersSent;
      try {
        res.setHeader("X-Late", "1");
      } catch (error) {
        observed.lateCode = (error as { code?: string }).code;
      }
      observed.callbackError = await written;
      res.end();
      observed.ended = res.writableEnded;
      observed.afterEnd = await new Promise((resolve) => res.write("b", (error) => resolve((error as { code?: string })?.code)));
    });
    // The listener outlives the response: wait for its last step.
    await waitFor(() => "afterEnd" in observed, 1000, "the write after end");
    expect(observed).toEqual({
      before: false,
      after: true,
      lateCode: "ERR_HTTP_HEADERS_SENT",
      callbackError: null,
      ended: true,
      afterEnd: "ERR_STREAM_WRITE_AFTER_END",
    });
  });

  it("fires 'finish' then 'close' once the gateway has the whole body", T, async () => {
    const events: string[] = [];
    let res!: ServerResponse;
    await serve((req, response) => {
      res = response;
      res.on("finish", () => events.push(`finish:${res.writableFinished}`));
      res.on("close", () => events.push(`close:${res.writableFinished}`));
      req.on("close", () => events.push("req close"));
      res.end("done");
    });
    await waitFor(() => events.includes("close:true") && events.includes("req close"), 1000, "'close'");
    expect(events.filter((event) => event !== "req close")).toEqual(["finish:true", "close:true"]);
  });

  it("sends a 204 without a body or a length", T, async () => {
    const { sink } = await serve((_req, res) => void res.writeHead(204).end("ignored"));
    expect(sink.head?.code).toBe(204);
    expect(headerNames(sink)).not.toContain("content-length");
    expect(sink.chunks).toHaveLength(0);
  });
});

describe("fromNodeListener: failures and aborts", () => {
  it("turns a synchronous throw into a logged 500", T, async () => {
    const { sink, errors } = await serve(() => {
      throw new Error("listener exploded");
    });
    expect(sink.head?.code).toBe(500);
    expect(errors.join("")).toContain("listener exploded");
  });

  it("aborts the response when the listener fails after the head", T, async () => {
    const { sink, errors } = await serve(async (_req, res) => {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.write("partial");
      await sleep(5);
      throw new Error("failed halfway");
    });
    expect(sink.head?.code).toBe(200);
    expect(text(sink)).toBe("partial");
    expect(sink.aborted).toBe(true);
    expect(sink.ended).toBe(false);
    expect(errors.join("")).toContain("failed halfway");
  });

  it("res.destroy() is a 500 before the head and an aborted response after it", T, async () => {
    const early = await serve((_req, res) => void res.destroy());
    expect(early.sink.head?.code).toBe(500);
    const late = await serve((_req, res) => {
      res.write("some");
      setTimeout(() => res.destroy(new Error("gave up")), 5);
    });
    expect(text(late.sink)).toBe("some");
    expect(late.sink.aborted).toBe(true);
  });

  it("a client leaving shows as req 'aborted' and 'close', res 'close' without 'finish'", T, async () => {
    const events: string[] = [];
    let res!: ServerResponse;
    let lateWrite: boolean | undefined;
    const { sink } = await serve(
      (req, response) => {
        res = response;
        req.on("aborted", () => events.push("req aborted"));
        req.on("close", () => events.push("req close"));
        res.on("finish", () => events.push("res finish"));
        res.on("close", () => {
          events.push("res close");
          lateWrite = res.write("after the client left");
        });
        const timer = setInterval(() => res.write("tick\n"), 5);
        res.on("close", () => clearInterval(timer));
      },
      { method: "POST", target: "/", headers: [["Content-Length", "10"]] },
      { leaveAfterChunks: 2, input: { async *[Symbol.asyncIterator]() {} } },
    );
    expect(text(sink)).toMatch(/^(tick\n){2,}$/);
    await waitFor(() => events.includes("res close"), 1000, "res 'close'");
    expect(events).toContain("req aborted");
    expect(events).toContain("req close");
    expect(events).not.toContain("res finish");
    expect(res.writableFinished).toBe(false);
    expect(res.destroyed).toBe(true);
    expect(lateWrite).toBe(false);
  });
});
