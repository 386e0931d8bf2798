/**
 * @module stack/admin
 *
 * The admin listener's handler (`proxy.admin`, loopback by default): the
 * stack's status as JSON at /status (and /status.json). The status itself is
 * plain data from Stack.status(); this module only serves it, so that the
 * page, metrics and write actions planned for the admin listener have a home
 * of their own.
 */
import type http from "node:http";

/** A request listener answering GET /status with what `status()` returns, and 404 for anything else. */
export function adminHandler(status: () => unknown): http.RequestListener {
  return (req, res) => {
    if (req.url === "/status" || req.url === "/status.json") {
      const body = JSON.stringify(status(), null, 2);
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    res.writeHead(404, { "Content-Type": "text/plain" });
    res.end("Not Found: the admin server answers /status\n");
  };
}
