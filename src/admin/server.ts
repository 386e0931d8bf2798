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
 * Every request passes admin/auth.ts first, before its path is looked at (a
 * token off loopback; writes refused from other sites). `down` is left to the control socket: stopping
 * the whole stack is for someone on the machine.
 *
 * The stack binds the listener; the CLI hands it this handler
 * (`StackOptions.admin`), so that this room sits above the stack's and the
 * stack knows nothing of pages, metrics or tokens.
 */
import type http from "node:http";
import { answer, type ObservedStack } from "../stack/control.ts";
import { AdminAuth, isLoopbackHost } from "./auth.ts";
import { AdminTokenRequired } from "./errors.ts";
import { EventStream } from "./events.ts";
import { StackMetrics } from "./metrics.ts";
import { pageAsset } from "./page-assets.ts";

/** The page's own files only, no inline code, never framed: what a page of someone else's data should be held to. */
const PAGE_CSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const WRITES = new Set(["/reload", "/restart", "/scale"]);
const READS = new Set(["/status", "/status.json", "/metrics", "/events"]);

/** The request's target as a URL on this listener; undefined for one that is not a path (`//[`, say: URL throws on it). */
function requestUrl(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? "/", "http://admin");
  } catch {
    return undefined;
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-store", ...headers });
  res.end(text);
}

/**
 * The admin listener's request handler for `stack`. Throws AdminTokenRequired
 * (before anything is served) when the listener is off loopback with no token:
 * TSGI_ADMIN_TOKEN from the environment, else `proxy.admin_token`.
 */
export function adminHandler(stack: ObservedStack, env: NodeJS.ProcessEnv = process.env): http.RequestListener {
  const { host, port, token } = stack.adminSettings;
  const auth = new AdminAuth(env.TSGI_ADMIN_TOKEN || token);
  if (!auth.required && !isLoopbackHost(host)) throw new AdminTokenRequired(`${host.includes(":") ? `[${host}]` : host}:${port}`);
  const events = new EventStream(() => ({ status: stack.status(), series: { stepMs: 1000, points: stack.series() } }));
  stack.onSample((point) => events.publish(point, () => stack.status()));
  const metrics = new StackMetrics(stack);
  return (req, res) => {
    const method = req.method ?? "GET";
    const url = requestUrl(req.url);
    if (!url) return sendJson(res, 400, { error: "the request target is not a path" });
    const write = WRITES.has(url.pathname);
    // Who asks comes first: without the token, not even which paths exist is said.
    const verdict = auth.check(req, write);
    if (!verdict.ok) {
      const challenge: http.OutgoingHttpHeaders = verdict.status === 401 ? { "WWW-Authenticate": 'Basic realm="tsgi-stack admin", charset="UTF-8"' } : {};
      return sendJson(res, verdict.status, { error: verdict.reason }, challenge);
    }
    const asset = write ? undefined : pageAsset(url.pathname);
    if (!write && !asset && !READS.has(url.pathname)) {
      return sendJson(res, 404, { error: `no such admin path: ${url.pathname} (the admin listener answers /, /status, /metrics, /events, and POST /reload, /restart, /scale)` });
    }
    // The live feed never ends: a HEAD of it would hang, so it is GET only.
    const allowed = write ? "POST" : url.pathname === "/events" ? "GET" : "GET, HEAD";
    if (!allowed.split(", ").includes(method)) return sendJson(res, 405, { error: `${method} ${url.pathname}: use ${allowed}` }, { Allow: allowed });
    if (write) {
      void answer(stack, method, url).then(({ status, body }) => sendJson(res, status, body));
      return;
    }
    if (asset) {
      res.writeHead(200, {
        "Content-Type": asset.contentType,
        "Content-Length": asset.body.length,
        "Content-Security-Policy": PAGE_CSP,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
      });
      res.end(method === "HEAD" ? undefined : asset.body);
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
        return sendJson(res, 200, stack.status());
    }
  };
}
