/**
 * @module proxy/server
 *
 * The front proxy (nginx's role), in its first form: listeners, host/path
 * routing, balancing over the ready workers of each app, keep-alive
 * connections to the workers, hop-by-hop headers stripped both ways and
 * X-Forwarded-* set by us (a client's own values are dropped). The proxy
 * learns which workers exist only through `setEndpoints` — never from the
 * supervisor or pm2 — and its routing table is swapped whole by `setRoutes`.
 *
 * Status codes, as nginx gives them: no route 404; no ready worker 503 with
 * Retry-After; a worker that could not be reached or broke before answering
 * 502; a worker that broke mid-response closes the client connection (never a
 * fake complete response). An idempotent request whose kept-alive connection
 * turned out closed by the worker is retried once on a fresh connection.
 */
import http from "node:http";
import type { Socket } from "node:net";
import { isHopByHop } from "../tsgi/util.ts";
import { Router, type RouteMatch, type RouteSpec } from "./router.ts";
import { createSelector, type Endpoint, type Selector } from "./balancing/selector.ts";

export interface FrontProxyOptions {
  routes: readonly RouteSpec[];
  /** The balancing policy per app, by config name (default round_robin). */
  balance?: Readonly<Record<string, string>>;
  /** How long a worker may take to answer (ms) before the client gets 504. */
  upstreamTimeoutMs?: number;
  /** Called after each proxied response, for the access log. */
  onResponse?: (entry: AccessEntry) => void;
}

export interface AccessEntry {
  method: string;
  url: string;
  status: number;
  app?: string;
  endpoint?: string;
  ms: number;
}

/** nginx's status for a client that closed the connection before the response was complete. */
const CLIENT_CLOSED_REQUEST = 499;
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);
/** Idle upstream connections per worker kept open for reuse. */
const MAX_FREE_SOCKETS = 64;

interface Pool {
  endpoints: readonly Endpoint[];
  selector: Selector;
}

function plainResponse(res: http.ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${message}\n`;
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "Content-Length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

/**
 * The header that tells a gateway worker its mount point (SCRIPT_NAME). Ours
 * alone: a client's copy is always dropped, and workers trust it only because
 * nothing but this proxy reaches their sockets.
 */
export const SCRIPT_NAME_HEADER = "x-tsgi-script-name";

/** Request headers for the worker: hop-by-hop (and those the client listed in Connection) removed, X-Forwarded-* ours. */
function upstreamHeaders(req: http.IncomingMessage, mount: string): http.OutgoingHttpHeaders {
  const listed = new Set(
    (req.headers.connection ?? "")
      .split(",")
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  );
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || isHopByHop(name) || listed.has(name) || name.startsWith("x-forwarded-") || name === SCRIPT_NAME_HEADER) continue;
    headers[name] = value;
  }
  const socket = req.socket as Socket & { encrypted?: boolean };
  headers["x-forwarded-for"] = socket.remoteAddress ?? "";
  headers["x-forwarded-proto"] = socket.encrypted ? "https" : "http";
  if (req.headers.host) headers["x-forwarded-host"] = req.headers.host;
  if (mount) headers[SCRIPT_NAME_HEADER] = mount;
  return headers;
}

function responseHeaders(upstream: http.IncomingMessage): string[] {
  const listed = new Set(
    (upstream.headers.connection ?? "")
      .split(",")
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  );
  const flat: string[] = [];
  const raw = upstream.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (isHopByHop(lower) || listed.has(lower)) continue;
    flat.push(raw[i]!, raw[i + 1]!);
  }
  return flat;
}

export class FrontProxy {
  private router: Router;
  private readonly pools = new Map<string, Pool>();
  private readonly agents = new Map<string, http.Agent>();
  private readonly inFlight = new Map<string, number>();
  private balance: Readonly<Record<string, string>>;

  constructor(private readonly options: FrontProxyOptions) {
    this.router = new Router(options.routes);
    this.balance = options.balance ?? {};
  }

  /** Swaps the routing table (and balancing policies) whole: requests already routed are not affected. */
  setRoutes(routes: readonly RouteSpec[], balance: Readonly<Record<string, string>> = this.balance): void {
    this.router = new Router(routes);
    this.balance = balance;
    for (const [app, pool] of this.pools) pool.selector = createSelector(balance[app] ?? "round_robin");
  }

  /** The ready workers of one app: the only way the proxy learns about workers. */
  setEndpoints(app: string, endpoints: readonly Endpoint[]): void {
    const pool = this.pools.get(app);
    if (pool) pool.endpoints = endpoints;
    else this.pools.set(app, { endpoints, selector: createSelector(this.balance[app] ?? "round_robin") });
    const live = new Set(endpoints.map((endpoint) => endpoint.id));
    for (const [id, agent] of this.agents) {
      if (id.startsWith(`${app}.`) && !live.has(id)) {
        agent.destroy();
        this.agents.delete(id);
      }
    }
  }

  endpoints(app: string): readonly Endpoint[] {
    return this.pools.get(app)?.endpoints ?? [];
  }

  private agentFor(endpoint: Endpoint): http.Agent {
    let agent = this.agents.get(endpoint.id);
    if (!agent) {
      agent = new http.Agent({ keepAlive: true, maxFreeSockets: MAX_FREE_SOCKETS, scheduling: "lifo" });
      this.agents.set(endpoint.id, agent);
    }
    return agent;
  }

  /** The request listener: install it on every front listener. */
  readonly handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const startedAt = Date.now();
    const url = req.url ?? "/";
    const path = url.split("?")[0]!;
    const route = this.router.match(req.headers.host, path);
    const log = (status: number, app?: string, endpoint?: string) =>
      this.options.onResponse?.({ method: req.method ?? "GET", url, status, app, endpoint, ms: Date.now() - startedAt });
    if (!route) {
      plainResponse(res, 404, `Not Found: no app is routed for ${req.headers.host ?? ""}${path}`);
      return log(404);
    }
    const pool = this.pools.get(route.app);
    const context = { inFlight: (endpoint: Endpoint) => this.inFlight.get(endpoint.id) ?? 0 };
    const endpoint = pool?.selector.select(pool.endpoints, req, context);
    if (!endpoint) {
      plainResponse(res, 503, `Service Unavailable: app "${route.app}" has no ready worker`, { "Retry-After": "1" });
      return log(503, route.app);
    }
    this.forward(req, res, route, endpoint, false, (status) => log(status, route.app, endpoint.id));
  };

  private forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    route: RouteMatch,
    endpoint: Endpoint,
    isRetry: boolean,
    done: (status: number) => void,
  ): void {
    const address = endpoint.address;
    const target =
      address.kind === "unix" ? { socketPath: address.path } : { host: address.host, port: address.port };
    this.inFlight.set(endpoint.id, (this.inFlight.get(endpoint.id) ?? 0) + 1);
    // Each attempt ends exactly once — answered, broken, or given up — and only then leaves the in-flight count.
    let finished = false;
    const finish = (status: number) => {
      if (finished) return;
      finished = true;
      this.inFlight.set(endpoint.id, (this.inFlight.get(endpoint.id) ?? 1) - 1);
      done(status);
    };
    // Set when the proxy itself ends the attempt (timeout, client gone): such an attempt is never retried.
    let abandoned = false;
    const upstream = http.request({
      ...target,
      method: req.method,
      path: req.url,
      headers: upstreamHeaders(req, route.mount),
      agent: this.agentFor(endpoint),
      timeout: this.options.upstreamTimeoutMs ?? 60_000,
    });
    upstream.on("response", (answer) => {
      const status = answer.statusCode ?? 502;
      res.writeHead(status, answer.statusMessage, responseHeaders(answer));
      answer.pipe(res);
      answer.on("end", () => finish(status));
      // The worker broke mid-response: the client must see a broken message, not a complete one.
      const broken = () => {
        res.destroy();
        finish(status);
      };
      answer.on("aborted", broken);
      answer.on("error", broken);
    });
    upstream.on("timeout", () => {
      abandoned = true;
      upstream.destroy(new Error("upstream timeout"));
    });
    upstream.on("error", (error: NodeJS.ErrnoException) => {
      if (res.headersSent) {
        res.destroy();
        return finish(502);
      }
      // A kept-alive connection the worker had just closed: safe to retry once, for a request without side effects.
      if (!abandoned && !isRetry && upstream.reusedSocket && IDEMPOTENT.has(req.method ?? "GET") && !req.readableDidRead) {
        finished = true;
        this.inFlight.set(endpoint.id, (this.inFlight.get(endpoint.id) ?? 1) - 1);
        return this.forward(req, res, route, endpoint, true, done);
      }
      const status = error.message === "upstream timeout" ? 504 : 502;
      plainResponse(res, status, status === 504 ? "Gateway Timeout" : `Bad Gateway: app "${route.app}" did not answer`);
      finish(status);
    });
    res.on("close", () => {
      // The client left: stop the upstream request too (499 in the log, as nginx says it).
      if (res.writableFinished) return;
      abandoned = true;
      upstream.destroy();
      finish(CLIENT_CLOSED_REQUEST);
    });
    req.pipe(upstream);
  }

  /** Closes the kept-alive connections to workers (call after the front listeners have closed). */
  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}
