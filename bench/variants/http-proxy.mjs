#!/usr/bin/env node
/**
 * A front-proxy variant of bench/proxy.mjs: http-proxy 1.18.1 (`http-proxy`)
 * in a node:http server, round robin over the gateway workers' unix sockets,
 * one keep-alive http.Agent per socket (as src/proxy/server.ts: keepAlive,
 * maxFreeSockets 64, lifo). The forwarded headers are those our proxy sets:
 * a client's X-Forwarded-* dropped, X-Forwarded-For/Proto/Host ours, Host
 * kept, an X-Request-Id to the worker and back.
 *
 *   node bench/variants/http-proxy.mjs 127.0.0.1:0 /path/a.sock /path/b.sock
 *   -> "ready: http://127.0.0.1:PORT/"
 *
 * One fix on top of the library: http-proxy 1.18.1 stops the upstream request
 * only on the client request's 'aborted' event, which Node (>= 16) does not
 * emit once the request body was complete. A client that leaves in the middle
 * of a response (wrk at the end of every run) then leaves the worker's
 * response unread on a connection nobody reads again: the worker's request
 * never ends, and the worker's --timeout (30 s) kills it. bench/proxy.mjs
 * showed exactly that (both workers exited with code 5). The fix — destroy
 * the upstream request when the response closes unfinished — is what
 * http-proxy-3 does itself; it costs one listener per request.
 *
 * Not a product: no routing, no limits, no health checks, no retries.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import { createRequire } from "node:module";
import httpProxy from "http-proxy";

const VERSION = createRequire(import.meta.url)("http-proxy/package.json").version;

const [listen = "127.0.0.1:0", ...sockets] = process.argv.slice(2);
if (sockets.length === 0) {
  process.stderr.write("usage: http-proxy.mjs HOST:PORT SOCKET...\n");
  process.exit(2);
}
const targets = sockets.map((socketPath) => ({
  target: { socketPath },
  agent: new http.Agent({ keepAlive: true, maxFreeSockets: 64, scheduling: "lifo" }),
}));
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
let next = 0;
let errors = 0;

const proxy = httpProxy.createProxyServer({});
proxy.on("proxyReq", (proxyReq, _req, res) => {
  res.on("close", () => {
    if (!res.writableFinished) proxyReq.destroy();
  });
});
proxy.on("error", (error, _req, res) => {
  if (++errors <= 5) process.stderr.write(`http-proxy variant: ${error.code ?? error.message}\n`);
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
  process.stdout.write(`http-proxy ${VERSION} variant (pid ${process.pid}) ready: http://${address}:${port}/\n`);
});
process.on("SIGTERM", () => process.exit(0));
