/**
 * @module admin/server
 *
 * The admin listener's requests (`proxy.admin`, loopback by default):
 *
 *   GET  /                        the status page (admin/page/, no build step, nothing from outside)
 *   GET  /status (/status.json)   the stack's status as JSON (stack/status.ts)
 *   GET  /metrics                 Prometheus' text format (admin/metrics.ts)
 *   GET  /events                  the page's live feed, server-sent events (admin/events.ts)
 *   POST /reload?app=NAME         \
 *   POST /restart?app=NAME         > the control API's own requests (stack/control.ts), same answers
 *   POST /scale?app=NAME&n=N|+K|-K/
 *
 * Every request passes admin/auth.ts first (a token off loopback; writes
 * refused from other sites). `down` is left to the control socket: stopping
 * the whole stack is for someone on the machine.
 */
import type http from "node:http";
import { answer, type ControlTarget } from "../stack/control.ts";
import type { AdminAuth } from "./auth.ts";
import type { EventStream } from "./events.ts";
import type { StackMetrics } from "./metrics.ts";

export interface AdminServices {
  target: ControlTarget;
  auth: AdminAuth;
  events: EventStream;
  metrics: StackMetrics;
}

const WRITES = new Set(["/reload", "/restart", "/scale"]);
const READS = new Set(["/status", "/status.json", "/metrics", "/events"]);

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-store", ...headers });
  res.end(text);
}

/** The admin listener's request handler. */
export function adminHandler({ target, auth, events, metrics }: AdminServices): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://admin");
    const method = req.method ?? "GET";
    const write = WRITES.has(url.pathname);
    if (!write && !READS.has(url.pathname)) {
      return sendJson(res, 404, { error: `no such admin path: ${url.pathname} (the admin listener answers /, /status, /metrics, /events, and POST /reload, /restart, /scale)` });
    }
    const allowed = write ? "POST" : "GET, HEAD";
    if (!allowed.split(", ").includes(method)) return sendJson(res, 405, { error: `${method} ${url.pathname}: use ${allowed}` }, { Allow: allowed });
    const verdict = auth.check(req, write);
    if (!verdict.ok) {
      const challenge: http.OutgoingHttpHeaders = verdict.status === 401 ? { "WWW-Authenticate": 'Basic realm="tsgi-stack admin", charset="UTF-8"' } : {};
      return sendJson(res, verdict.status, { error: verdict.reason }, challenge);
    }
    if (write) {
      void answer(target, method, url).then(({ status, body }) => sendJson(res, status, body));
      return;
    }
    switch (url.pathname) {
      case "/events":
        return events.connect(req, res);
      case "/metrics":
        void metrics.exposition().then(
          (text) => {
            res.writeHead(200, { "Content-Type": metrics.contentType, "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-store" });
            res.end(method === "HEAD" ? undefined : text);
          },
          (error: Error) => sendJson(res, 500, { error: `metrics: ${error.message}` }),
        );
        return;
      default:
        return sendJson(res, 200, target.status());
    }
  };
}
