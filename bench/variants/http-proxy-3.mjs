#!/usr/bin/env node
/**
 * A front-proxy variant of bench/proxy.mjs: http-proxy-3 (`http-proxy-3`, the modern rewrite of http-proxy)
 * in a node:http server, round robin over the gateway workers' unix sockets,
 * one keep-alive http.Agent per socket (as src/proxy/server.ts: keepAlive,
 * maxFreeSockets 64, lifo). The forwarded headers are those our proxy sets:
 * a client's X-Forwarded-* dropped, X-Forwarded-For/Proto/Host ours, Host
 * kept, an X-Request-Id to the worker and back.
 *
 *   node bench/variants/http-proxy-3.mjs 127.0.0.1:0 /path/a.sock /path/b.sock
 *   -> "ready: http://127.0.0.1:PORT/"
 *
 * Not a product: no routing, no limits, no health checks, no retries.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import { createRequire } from "node:module";
import { createProxyServer } from "http-proxy-3";

const VERSION = createRequire(import.meta.url)("http-proxy-3/package.json").version;

const [listen = "127.0.0.1:0", ...sockets] = process.argv.slice(2);
if (sockets.length === 0) {
  process.stderr.write("usage: http-proxy-3.mjs HOST:PORT SOCKET...\n");
  process.exit(2);
}
const targets = sockets.map((socketPath) => ({
  target: { socketPath },
  agent: new http.Agent({ keepAlive: true, maxFreeSockets: 64, scheduling: "lifo" }),
}));
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
let next = 0;
let errors = 0;

const proxy = createProxyServer({});
proxy.on("error", (error, _req, res) => {
  if (++errors <= 5) process.stderr.write(`http-proxy-3 variant: ${error.code ?? error.message}\n`);
  if (!res || typeof res.writeHead !== "function") return;
  if (res.headersSent) res.destroy();
  else {
    res.writeHead(502, { "Content-Type": "text/plain" });
    res.end("Bad Gateway\n");
  }
});

const server = http.createServer((req, res) => {
  const headers = req.headers;
  for (const name of Object.keys(headers)) if (name.startsWith("x-forwarded-")) delete headers[name];
  headers["x-forwarded-for"] = req.socket.remoteAddress ?? "";
  headers["x-forwarded-proto"] = "http";
  if (headers.host) headers["x-forwarded-host"] = headers.host;
  const given = headers["x-request-id"];
  const id = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
  headers["x-request-id"] = id;
  res.setHeader("X-Request-Id", id);
  proxy.web(req, res, targets[next++ % targets.length]);
});

const colon = listen.lastIndexOf(":");
server.listen(Number(listen.slice(colon + 1)), listen.slice(0, colon), () => {
  const { address, port } = server.address();
  process.stdout.write(`http-proxy-3 ${VERSION} variant (pid ${process.pid}) ready: http://${address}:${port}/\n`);
});
process.on("SIGTERM", () => process.exit(0));
