/**
 * The real frameworks, unchanged, behind the adapters: Express, Koa, Fastify
 * and a plain node:http listener through fromNodeListener, Hono through
 * fromFetchHandler(app.fetch). Each serves the conformance routes (see
 * conformance.ts) written the way that framework's users write them, at its
 * own root and with no idea of a mount: the suite serves the same app at the
 * root and at /mnt, and the adapter presents paths relative to the mount. Each
 * /whereami shows that framework's way to the full path: Express's and
 * Fastify's originalUrl, the X-Forwarded-Prefix header elsewhere. The shared
 * suite runs against each, in memory and through toNodeListener on a real
 * socket.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { stream } from "hono/streaming";
import Koa from "koa";
import { fromFetchHandler } from "../../../src/tsgi/adapters/fetch.ts";
import { fromNodeListener } from "../../../src/tsgi/adapters/node-listener.ts";
import { type ConformanceHooks, runAdapterConformance } from "./conformance.ts";
import { memoryTransport, sleep, socketTransport } from "./harness.ts";

const transports = [memoryTransport, socketTransport];

function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = {};
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) cookies[part.slice(0, eq).trim()] = decodeURIComponent(part.slice(eq + 1).trim());
  }
  return cookies;
}

async function* chunks(): AsyncGenerator<string> {
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(20);
    yield `chunk ${i}\n`;
  }
}

async function digest(body: AsyncIterable<Uint8Array>): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of body) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { bytes, sha256: hash.digest("hex") };
}

/** A stream that ticks until it is destroyed — which is how Koa and Fastify stop a body when the client leaves. */
function ticker(hooks: ConformanceHooks): Readable {
  let timer: NodeJS.Timeout | undefined;
  return new Readable({
    read() {
      timer ??= setInterval(() => this.push("tick\n"), 10);
    },
    destroy(error, callback) {
      clearInterval(timer);
      hooks.streamAborted();
      callback(error);
    },
  });
}

// ---------------------------------------------------------------------------
// Express 5: req.originalUrl is the full path (Express keeps the one the adapter presets).

function expressApp(hooks: ConformanceHooks): express.Express {
  const app = express();
  app.get("/hello", (_req, res) => void res.type("text/plain").send("hello"));
  app.get("/items/:id", (req, res) => void res.json({ id: req.params.id }));
  app.get("/query", (req, res) => void res.json({ name: req.query.name, n: req.query.n }));
  app.get("/whereami", (req, res) => void res.json({ url: req.originalUrl, path: req.path }));
  app.post("/echo", express.json(), (req, res) => void res.json({ received: req.body }));
  app.post("/upload", async (req, res) => void res.json(await digest(req)));
  app.get("/cookies", (req, res) => {
    const cookies = parseCookies(req.headers.cookie);
    res.cookie("x", "1").cookie("y", "2").json({ a: cookies.a, b: cookies.b });
  });
  app.get("/stream", async (_req, res) => {
    res.type("text/plain");
    for await (const chunk of chunks()) res.write(chunk);
    res.end();
  });
  app.get("/error", () => {
    throw new Error("boom from express");
  });
  app.get("/forever", (_req, res) => {
    res.type("text/plain");
    const timer = setInterval(() => res.write("tick\n"), 10);
    res.on("close", () => {
      clearInterval(timer);
      if (!res.writableFinished) hooks.streamAborted();
    });
  });
  return app;
}

runAdapterConformance("Express", (hooks) => fromNodeListener(expressApp(hooks)), transports);

// ---------------------------------------------------------------------------
// Koa 3: hand-written routing. Koa sets ctx.originalUrl from req.url, so it is relative to the mount
// too; the mount point is in X-Forwarded-Prefix.

async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const chunk of req) parts.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(parts).toString("utf8"));
}

function koaRoutes(hooks: ConformanceHooks): Koa.Middleware {
  return async (ctx) => {
    const get = ctx.method === "GET" || ctx.method === "HEAD";
    const item = /^\/items\/([^/]+)$/.exec(ctx.path);
    if (get && ctx.path === "/hello") {
      ctx.type = "text/plain";
      ctx.body = "hello";
    } else if (get && item) {
      ctx.body = { id: item[1] };
    } else if (get && ctx.path === "/query") {
      ctx.body = { name: ctx.query.name, n: ctx.query.n };
    } else if (get && ctx.path === "/whereami") {
      ctx.body = { url: ctx.get("X-Forwarded-Prefix") + ctx.originalUrl, path: ctx.path };
    } else if (ctx.method === "POST" && ctx.path === "/echo") {
      ctx.body = { received: await readJson(ctx.req) };
    } else if (ctx.method === "POST" && ctx.path === "/upload") {
      ctx.body = await digest(ctx.req);
    } else if (get && ctx.path === "/cookies") {
      ctx.cookies.set("x", "1", { httpOnly: false });
      ctx.cookies.set("y", "2", { httpOnly: false });
      ctx.body = { a: ctx.cookies.get("a"), b: ctx.cookies.get("b") };
    } else if (get && ctx.path === "/stream") {
      ctx.type = "text/plain";
      ctx.body = Readable.from(chunks());
    } else if (get && ctx.path === "/error") {
      throw new Error("boom from koa");
    } else if (get && ctx.path === "/forever") {
      ctx.type = "text/plain";
      ctx.body = ticker(hooks);
    }
  };
}

function koaApp(hooks: ConformanceHooks): Koa {
  const app = new Koa();
  app.silent = true; // the 500 is the test's point; keep its stack out of the test output
  app.use(koaRoutes(hooks));
  return app;
}

runAdapterConformance("Koa", (hooks) => fromNodeListener(koaApp(hooks).callback()), transports);

// ---------------------------------------------------------------------------
// Fastify 5: routes in a plugin, served through fastify.routing; request.originalUrl is the full path
// (Fastify reads the one the adapter presets on the Node request).

async function fastifyApp(hooks: ConformanceHooks) {
  const app = Fastify({ logger: false });
  // Hand octet-stream bodies to the route as the raw stream (no buffering, no bodyLimit).
  app.addContentTypeParser("application/octet-stream", (_req, payload, done) => done(null, payload));
  await app.register(async (routes) => {
    routes.get("/hello", async (_request, reply) => reply.type("text/plain").send("hello"));
    routes.get<{ Params: { id: string } }>("/items/:id", async (request) => ({ id: request.params.id }));
    routes.get<{ Querystring: { name: string; n: string } }>("/query", async (request) => ({
      name: request.query.name,
      n: request.query.n,
    }));
    routes.get("/whereami", async (request) => ({ url: request.originalUrl, path: request.url.split("?")[0] }));
    routes.post("/echo", async (request) => ({ received: request.body }));
    routes.post("/upload", async (request) => digest(request.body as AsyncIterable<Uint8Array>));
    routes.get("/cookies", async (request, reply) => {
      const cookies = parseCookies(request.headers.cookie);
      reply.header("set-cookie", ["x=1; Path=/", "y=2; Path=/"]);
      return { a: cookies.a, b: cookies.b };
    });
    routes.get("/stream", async (_request, reply) => reply.type("text/plain").send(Readable.from(chunks())));
    routes.get("/error", async () => {
      throw new Error("boom from fastify");
    });
    routes.get("/forever", async (_request, reply) => reply.type("text/plain").send(ticker(hooks)));
  });
  await app.ready();
  return app;
}

runAdapterConformance(
  "Fastify",
  async (hooks) => {
    const app = await fastifyApp(hooks);
    // fastify.routing is Fastify's documented entry point for requests from a server it does not own.
    return fromNodeListener((req, res) => app.routing(req, res));
  },
  transports,
);

// ---------------------------------------------------------------------------
// Hono 4 through fromFetchHandler(app.fetch): c.req.url is relative to the mount, which is in
// X-Forwarded-Prefix (and in c.env.SCRIPT_NAME: the environ is the handler's second argument).

function honoApp(hooks: ConformanceHooks): Hono {
  const app = new Hono();
  app.get("/hello", (c) => c.text("hello"));
  app.get("/items/:id", (c) => c.json({ id: c.req.param("id") }));
  app.get("/query", (c) => c.json({ name: c.req.query("name"), n: c.req.query("n") }));
  app.get("/whereami", (c) => {
    const url = new URL(c.req.url);
    return c.json({ url: (c.req.header("X-Forwarded-Prefix") ?? "") + url.pathname + url.search, path: c.req.path });
  });
  app.post("/echo", async (c) => c.json({ received: await c.req.json() }));
  app.post("/upload", async (c) => c.json(await digest(c.req.raw.body as unknown as AsyncIterable<Uint8Array>)));
  app.get("/cookies", (c) => {
    setCookie(c, "x", "1");
    setCookie(c, "y", "2");
    return c.json({ a: getCookie(c, "a"), b: getCookie(c, "b") });
  });
  app.get("/stream", (c) => {
    c.header("Content-Type", "text/plain");
    return stream(c, async (out) => {
      for await (const chunk of chunks()) await out.write(chunk);
    });
  });
  app.get("/error", () => {
    throw new Error("boom from hono");
  });
  app.get("/forever", (c) => {
    c.header("Content-Type", "text/plain");
    return stream(c, async (out) => {
      out.onAbort(() => hooks.streamAborted());
      while (!out.aborted) {
        await out.write("tick\n");
        await out.sleep(10);
      }
    });
  });
  // Hono's default handler logs the stack; the 500 is the test's point.
  app.onError((_error, c) => c.text("Internal Server Error", 500));
  return app;
}

runAdapterConformance("Hono", (hooks) => fromFetchHandler(honoApp(hooks).fetch), transports);

// ---------------------------------------------------------------------------
// A plain node:http listener: its own routing, and a throw that no framework catches.

function plainListener(hooks: ConformanceHooks) {
  const json = (res: ServerResponse, value: unknown) => {
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify(value));
  };
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://unused");
    const path = url.pathname;
    const get = req.method === "GET" || req.method === "HEAD";
    const item = /^\/items\/([^/]+)$/.exec(path);
    if (get && path === "/hello") {
      res.writeHead(200, { "Content-Type": "text/plain" }).end("hello");
    } else if (get && item) {
      json(res, { id: item[1] });
    } else if (get && path === "/query") {
      json(res, { name: url.searchParams.get("name"), n: url.searchParams.get("n") });
    } else if (get && path === "/whereami") {
      json(res, { url: (req.headers["x-forwarded-prefix"] ?? "") + req.url!, path });
    } else if (req.method === "POST" && path === "/echo") {
      json(res, { received: await readJson(req) });
    } else if (req.method === "POST" && path === "/upload") {
      json(res, await digest(req));
    } else if (get && path === "/cookies") {
      const cookies = parseCookies(req.headers.cookie);
      res.setHeader("Set-Cookie", ["x=1; Path=/", "y=2; Path=/"]);
      json(res, { a: cookies.a, b: cookies.b });
    } else if (get && path === "/stream") {
      res.writeHead(200, { "Content-Type": "text/plain" });
      for await (const chunk of chunks()) res.write(chunk);
      res.end();
    } else if (get && path === "/error") {
      throw new Error("boom from a plain listener");
    } else if (get && path === "/forever") {
      res.writeHead(200, { "Content-Type": "text/plain" });
      const timer = setInterval(() => res.write("tick\n"), 10);
      res.on("close", () => {
        clearInterval(timer);
        if (!res.writableFinished) hooks.streamAborted();
      });
    } else {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found");
    }
  };
}

runAdapterConformance("node:http listener", (hooks) => fromNodeListener(plainListener(hooks)), transports);
