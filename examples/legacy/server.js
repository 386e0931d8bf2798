/**
 * A plain node:http server that knows nothing of TSGI: what a `command:` app
 * in the config is (see config.example.yaml, app `legacy`). The stack starts
 * one per instance with PORT set, supervises it and routes to it like any
 * other app. Alone: `PORT=3000 node examples/legacy/server.js`.
 */
import http from "node:http";

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? "127.0.0.1";

const server = http.createServer((req, res) => {
  if (req.url === "/healthz" || req.url?.endsWith("/healthz")) {
    res.writeHead(200, { "Content-Type": "text/plain" }).end("ok\n");
    return;
  }
  res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
  res.end(`Hello from a plain node:http server (pid ${process.pid}): ${req.method} ${req.url}\n`);
});

server.listen(port, host, () => {
  const { port: bound } = /** @type {import("node:net").AddressInfo} */ (server.address());
  process.stdout.write(`legacy server listening on http://${host}:${bound}\n`);
});

// A supervisor stops its processes with SIGTERM (SIGINT from a terminal): finish in-flight requests, then exit.
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.once(signal, () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
  });
}
