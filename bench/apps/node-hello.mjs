/**
 * The baseline for bench/gateway.mjs: a bare `node:http` server that does the
 * same work as examples/hello/app.ts served by `tsgi-stack serve` — it splits
 * and decodes the path the same way and answers with the same body and the same
 * headers (Content-Type, Content-Length; node adds Date, Connection, Keep-Alive
 * exactly as it does for the TSGI worker, whose keep-alive timeout is also 5 s).
 *
 *   node bench/apps/node-hello.mjs 127.0.0.1:0
 *
 * Prints `node-hello PID: ready: http://HOST:PORT` once listening; stops on
 * SIGTERM/SIGINT.
 */
import http from "node:http";

const [host = "127.0.0.1", port = "0"] = (process.argv[2] ?? "127.0.0.1:0").split(":");

const server = http.createServer({ keepAliveTimeout: 5000 }, (req, res) => {
  const target = req.url ?? "/";
  const question = target.indexOf("?");
  let path = question === -1 ? target : target.slice(0, question);
  if (path.includes("%")) path = decodeURIComponent(path);
  if (path === "/healthz") {
    res.writeHead(200, "OK", ["Content-Type", "text/plain", "Content-Length", "3"]);
    res.end("ok\n");
    return;
  }
  const body = `Hello from TSGI: ${req.method} ${path}\n`;
  res.writeHead(200, "OK", ["Content-Type", "text/plain; charset=utf-8", "Content-Length", String(Buffer.byteLength(body))]);
  res.end(body);
});

server.listen(Number(port), host, () => {
  const address = server.address();
  process.stdout.write(`node-hello ${process.pid}: ready: http://${host}:${address.port}\n`);
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
