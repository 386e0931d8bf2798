#!/usr/bin/env node
/**
 * A front-proxy variant of bench/proxy.mjs: a minimal proxy on undici v7 —
 * one undici Pool per gateway worker socket (keep-alive, 4 s idle as our
 * proxy's upstream_keepalive_timeout), a node:http server in front, round
 * robin. The response goes through `pool.stream()`, which writes the worker's
 * body straight into the client's ServerResponse (no intermediate Readable).
 * The forwarded headers are those our proxy sets: hop-by-hop headers removed
 * both ways, a client's X-Forwarded-* dropped, X-Forwarded-For/Proto/Host
 * ours, Host kept, an X-Request-Id to the worker and back.
 *
 *   node bench/variants/undici.mjs 127.0.0.1:0 /path/a.sock /path/b.sock
 *   -> "ready: http://127.0.0.1:PORT/"
 *
 * Not a product: no routing, no limits, no health checks, no retries.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import { createRequire } from "node:module";
import { Pool } from "undici";

const VERSION = createRequire(import.meta.url)("undici/package.json").version;
const [listen = "127.0.0.1:0", ...sockets] = process.argv.slice(2);
if (sockets.length === 0) {
  process.stderr.write("usage: undici.mjs HOST:PORT SOCKET...\n");
  process.exit(2);
}
const pools = sockets.map((socketPath) => new Pool("http://localhost", { socketPath, pipelining: 1, keepAliveTimeout: 4000 }));
// Hop-by-hop (RFC 9110 7.6.1), and what undici refuses in a request's headers (expect: node's server answers 100-continue itself).
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "http2-settings", "expect"]);
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
let next = 0;
let errors = 0;

function listed(connection) {
  return typeof connection === "string" ? connection.split(",").map((name) => name.trim().toLowerCase()) : [];
}

const server = http.createServer((req, res) => {
  const drop = new Set(listed(req.headers.connection));
  const headers = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || drop.has(name) || name.startsWith("x-forwarded-")) continue;
    headers[name] = value;
  }
  headers["x-forwarded-for"] = req.socket.remoteAddress ?? "";
  headers["x-forwarded-proto"] = "http";
  if (req.headers.host) headers["x-forwarded-host"] = req.headers.host;
  const given = req.headers["x-request-id"];
  const id = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
  headers["x-request-id"] = id;
  const hasBody = req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined;
  pools[next++ % pools.length].stream(
    { path: req.url, method: req.method, headers, body: hasBody ? req : null },
    ({ statusCode, headers: answer }) => {
      const dropAnswer = new Set(listed(answer.connection));
      const out = [];
      for (const [name, value] of Object.entries(answer)) {
        if (HOP_BY_HOP.has(name) || dropAnswer.has(name) || name === "x-request-id") continue;
        if (Array.isArray(value)) for (const v of value) out.push(name, v);
        else out.push(name, value);
      }
      out.push("X-Request-Id", id);
      res.writeHead(statusCode, out);
      return res;
    },
    (error) => {
      // No error, or the client left (wrk closes its connections mid-request when its time is up): nothing to answer.
      if (!error || res.destroyed) return;
      if (++errors <= 5) process.stderr.write(`undici variant: ${error.code ?? error.message}\n`);
      if (res.headersSent) res.destroy();
      else {
        res.writeHead(502, { "Content-Type": "text/plain" });
        res.end("Bad Gateway\n");
      }
    },
  );
});

const colon = listen.lastIndexOf(":");
server.listen(Number(listen.slice(colon + 1)), listen.slice(0, colon), () => {
  const { address, port } = server.address();
  process.stdout.write(`undici ${VERSION} variant (pid ${process.pid}) ready: http://${address}:${port}/\n`);
});
process.on("SIGTERM", () => process.exit(0));
