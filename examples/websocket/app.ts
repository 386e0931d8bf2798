/**
 * WebSockets next to a TSGI app: an HTML page at / and an echo WebSocket at
 * /ws, served by one gateway worker.
 *
 *   npx tsgi-stack serve examples/websocket/app.ts
 *   open http://127.0.0.1:8000/
 *
 * TSGI itself is request/response; a connection that asks to be upgraded goes
 * to the module's `upgrade` export instead — node:http's 'upgrade' listener
 * `(req, socket, head)`, which is what `ws`' `handleUpgrade` takes (see
 * docs/gateway.md, WebSockets). Under a mount point (a path route, or
 * `--script-name`) `req.url` is the path below it, like PATH_INFO, so the same
 * routes work anywhere. (`ws` is a devDependency of tsgi-stack; in your
 * project, `npm i ws`.)
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import type { TsgiApp } from "tsgi-stack";

/** `noServer`: the gateway owns the HTTP server and hands each upgrade over through `upgrade` below. */
const wss = new WebSocketServer({ noServer: true });

wss.on("connection", (socket) => {
  socket.on("message", (data, isBinary) => socket.send(data, { binary: isBinary }));
});

// A stopping worker waits for open sockets up to its graceful timeout; saying goodbye lets it go at
// once, and tells browsers to reconnect (SIGINT: what pm2 sends under the supervisor).
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    for (const client of wss.clients) client.close(1001, "server going away");
  });
}

const page = (wsPath: string) => `<!doctype html>
<meta charset="utf-8">
<title>tsgi-stack echo</title>
<form id="form"><input id="text" autocomplete="off" placeholder="say something"> <button>send</button></form>
<pre id="log"></pre>
<script>
  const log = (line) => (document.getElementById("log").textContent += line + "\\n");
  const url = new URL(${JSON.stringify(wsPath)}, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  socket.onopen = () => log("connected to " + url);
  socket.onmessage = (event) => log("echo: " + event.data);
  socket.onclose = (event) => log("closed (" + event.code + ")");
  document.getElementById("form").onsubmit = (event) => {
    event.preventDefault();
    const input = document.getElementById("text");
    socket.send(input.value);
    input.value = "";
  };
</script>
`;

export const app: TsgiApp = (environ, startResponse) => {
  if (environ.PATH_INFO === "/" || environ.PATH_INFO === "") {
    startResponse("200 OK", [["Content-Type", "text/html; charset=utf-8"]]);
    // SCRIPT_NAME: the page finds the socket under whatever mount the app is served at.
    return [page(`${environ.SCRIPT_NAME}/ws`)];
  }
  startResponse("404 Not Found", [["Content-Type", "text/plain"]]);
  return ["not found\n"];
};

export function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
  if ((req.url ?? "/").split("?")[0] !== "/ws") {
    // Not ours: a plain HTTP answer, and the connection closes.
    socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return;
  }
  wss.handleUpgrade(req, socket, head, (client) => wss.emit("connection", client, req));
}
