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
 * Status codes, as nginx gives them: no route 404; a declared body over
 * client_max_body_size 413; no ready worker 503 with Retry-After; a worker
 * that could not be reached or broke before answering 502, slower than the
 * upstream timeout 504; a worker that broke mid-response closes the client
 * connection (never a fake complete response).
 *
 * Failover (see `forward`): an attempt that could not connect goes to another
 * worker whatever its method; one the worker dropped after taking the request
 * goes elsewhere only if it is idempotent; a kept-alive connection the worker
 * had just closed is retried once on a fresh one. Workers that fail are left
 * out for a while (health/passive.ts), and those failing their app's health
 * check until they pass (health/active.ts). Every request carries an
 * X-Request-Id to the worker and back, and ends in one access entry.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { Socket } from "node:net";
import { isHopByHop } from "../tsgi/util.ts";
import { Router, type RouteMatch, type RouteSpec } from "./router.ts";
import { createSelector, type Endpoint, type Selector } from "./balancing/selector.ts";
import { PassiveHealth, type PassiveHealthOptions } from "./health/passive.ts";
import { ActiveHealthChecker, type HealthCheckSpec, type HealthListener } from "./health/active.ts";
import { BodyTooLarge, declaredTooLarge, isChunked, readChunkedBody } from "./limits/body-size.ts";
import { framingProblem, headSizeProblem, isForwardableHeaderName } from "./request-checks.ts";

export interface FrontProxyOptions {
  routes: readonly RouteSpec[];
  /** The balancing policy per app, by config name (default round_robin). */
  balance?: Readonly<Record<string, string>>;
  /** How long a worker may take to answer (ms) before the client gets 504. */
  upstreamTimeoutMs?: number;
  /** client_max_body_size in bytes: larger bodies get 413 (0: no limit). */
  clientMaxBodySize?: number;
  /** Active health checks per app (the config's `health`). */
  healthChecks?: Readonly<Record<string, HealthCheckSpec>>;
  /** Told when an active check takes a worker out or puts it back. */
  onHealthChange?: HealthListener;
  /** max_fails / fail_timeout (default: nginx's 1 and 10 s). */
  passiveHealth?: PassiveHealthOptions;
  /** Called after each proxied response, for the access log. */
  onResponse?: (entry: AccessEntry) => void;
}

/** One line of the access log: plain data, rendered by proxy/access-log.ts. */
export interface AccessEntry {
  remoteAddr: string;
  method: string;
  url: string;
  httpVersion: string;
  status: number;
  /** Body bytes sent to the client. */
  bytes: number;
  referer?: string;
  userAgent?: string;
  app?: string;
  /** The worker that answered ("app.slot"). */
  endpoint?: string;
  /** Milliseconds from the request's arrival to the end of its response. */
  ms: number;
  requestId: string;
}

/** A client's X-Request-Id is kept when it looks like an id; anything else is replaced by ours. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function requestIdOf(req: http.IncomingMessage): string {
  const given = req.headers["x-request-id"];
  return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
}

const POISONED = Symbol("tsgi connection refused");
type PoisonableSocket = Socket & { [POISONED]?: boolean };

const REQUEST_ID_KEY = Symbol("tsgi request id");
type TaggedRequest = http.IncomingMessage & { [REQUEST_ID_KEY]?: string };

/** Body bytes written to the client so far (what went over the socket for this response, less its head). */
function bytesSent(res: http.ServerResponse): number {
  const counted = (res as CountedResponse)[BYTES_KEY];
  return counted ?? 0;
}
const BYTES_KEY = Symbol("tsgi body bytes");
type CountedResponse = http.ServerResponse & { [BYTES_KEY]?: number };

/** nginx's status for a client that closed the connection before the response was complete. */
const CLIENT_CLOSED_REQUEST = 499;
/** How many workers one request may be offered to (nginx's proxy_next_upstream_tries is unbounded; a bound keeps a dead pool cheap). */
const MAX_TRIES = 3;
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
  const requestId = (res.req as TaggedRequest | undefined)?.[REQUEST_ID_KEY];
  res.writeHead(status, {
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
    ...(requestId ? { "X-Request-Id": requestId } : {}),
    ...headers,
  });
  res.end(body);
  (res as CountedResponse)[BYTES_KEY] = Buffer.byteLength(body);
}

/**
 * The header that tells a gateway worker its mount point (SCRIPT_NAME). Ours
 * alone: a client's copy is always dropped, and workers trust it only because
 * nothing but this proxy reaches their sockets.
 */
export const SCRIPT_NAME_HEADER = "x-tsgi-script-name";

/** Request headers for the worker: hop-by-hop (and those the client listed in Connection) removed, X-Forwarded-* ours. */
function upstreamHeaders(req: http.IncomingMessage, mount: string, bufferedBody?: Buffer): http.OutgoingHttpHeaders {
  const listed = new Set(
    (req.headers.connection ?? "")
      .split(",")
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  );
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || isHopByHop(name) || listed.has(name) || name.startsWith("x-forwarded-") || name === SCRIPT_NAME_HEADER) continue;
    if (!isForwardableHeaderName(name)) continue;
    headers[name] = value;
  }
  const socket = req.socket as Socket & { encrypted?: boolean };
  headers["x-forwarded-for"] = socket.remoteAddress ?? "";
  headers["x-forwarded-proto"] = socket.encrypted ? "https" : "http";
  if (req.headers.host) headers["x-forwarded-host"] = req.headers.host;
  if (mount) headers[SCRIPT_NAME_HEADER] = mount;
  headers["x-request-id"] = (req as TaggedRequest)[REQUEST_ID_KEY];
  // A buffered chunked body goes on with its length (Transfer-Encoding, hop-by-hop, is already gone).
  if (bufferedBody) headers["content-length"] = String(bufferedBody.byteLength);
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
    if (isHopByHop(lower) || listed.has(lower) || lower === "x-request-id") continue;
    flat.push(raw[i]!, raw[i + 1]!);
  }
  return flat;
}

/**
 * One worker *process*: the endpoint's slot id plus its pid, so that a
 * replacement in the same slot starts with fresh connections and a clean
 * health record (ip_hash still hashes the slot id, so clients stay put).
 */
function instanceKey(endpoint: Endpoint): string {
  return endpoint.pid === undefined ? endpoint.id : `${endpoint.id}#${endpoint.pid}`;
}

/**
 * Errors that mean the connection to the worker was never made: nothing of
 * the request was sent, so any method may go to another worker (nginx's
 * proxy_next_upstream error, and RELIABILITY U1).
 */
const NOT_CONNECTED = new Set(["ECONNREFUSED", "ENOENT", "EADDRNOTAVAIL", "ECONNRESET", "EPIPE"]);

export class FrontProxy {
  private router: Router;
  private readonly pools = new Map<string, Pool>();
  private readonly agents = new Map<string, http.Agent>();
  private readonly inFlight = new Map<string, number>();
  private readonly health: PassiveHealth;
  private readonly checkers = new Map<string, ActiveHealthChecker>();
  private balance: Readonly<Record<string, string>>;

  constructor(private readonly options: FrontProxyOptions) {
    this.router = new Router(options.routes);
    this.balance = options.balance ?? {};
    this.health = new PassiveHealth(options.passiveHealth);
  }

  /** Swaps the routing table (and balancing policies) whole: requests already routed are not affected. */
  setRoutes(routes: readonly RouteSpec[], balance: Readonly<Record<string, string>> = this.balance): void {
    this.router = new Router(routes);
    this.balance = balance;
    for (const [app, pool] of this.pools) pool.selector = createSelector(balance[app] ?? "round_robin");
  }

  /** The ready workers of one app: the only way the proxy learns about workers. */
  setEndpoints(app: string, endpoints: readonly Endpoint[]): void {
    this.checkerFor(app)?.start();
    const pool = this.pools.get(app);
    if (pool) pool.endpoints = endpoints;
    else this.pools.set(app, { endpoints, selector: createSelector(this.balance[app] ?? "round_robin") });
    const live = new Set(endpoints.map(instanceKey));
    for (const [key, agent] of this.agents) {
      if (key.startsWith(`${app}.`) && !live.has(key)) {
        agent.destroy();
        this.agents.delete(key);
        this.health.forget(key);
      }
    }
  }

  endpoints(app: string): readonly Endpoint[] {
    return this.pools.get(app)?.endpoints ?? [];
  }

  private agentFor(endpoint: Endpoint): http.Agent {
    const key = instanceKey(endpoint);
    let agent = this.agents.get(key);
    if (!agent) {
      agent = new http.Agent({ keepAlive: true, maxFreeSockets: MAX_FREE_SOCKETS, scheduling: "lifo" });
      this.agents.set(key, agent);
    }
    return agent;
  }

  /** The app's active health checker, made on first use when the app has a health check. */
  private checkerFor(app: string): ActiveHealthChecker | undefined {
    const spec = this.options.healthChecks?.[app];
    if (!spec) return undefined;
    let checker = this.checkers.get(app);
    if (!checker) {
      checker = new ActiveHealthChecker(app, spec, () => this.endpoints(app), instanceKey, (...change) =>
        this.options.onHealthChange?.(...change),
      );
      this.checkers.set(app, checker);
    }
    return checker;
  }

  /** Runs one round of every app's active checks now (tests, and a fresh start). */
  async checkHealth(): Promise<void> {
    await Promise.all([...this.checkers.values()].map((checker) => checker.checkAll()));
  }

  /** Picks a worker of `app` among those neither tried for this request nor out for failing. */
  private choose(app: string, req: http.IncomingMessage, tried: ReadonlySet<string>): Endpoint | undefined {
    const pool = this.pools.get(app);
    if (!pool) return undefined;
    const checker = this.checkers.get(app);
    const untried = pool.endpoints.filter(
      (endpoint) => !tried.has(instanceKey(endpoint)) && (!checker || checker.isHealthy(endpoint)),
    );
    const candidates = this.health.available(untried, instanceKey);
    const context = { inFlight: (endpoint: Endpoint) => this.inFlight.get(instanceKey(endpoint)) ?? 0 };
    return pool.selector.select(candidates, req, context);
  }

  /** The request listener: install it on every front listener. */
  readonly handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    // A pipelined request waits for the one before it to be answered (node hands its response the
    // socket then), as nginx does: the worker sees a connection's requests in the client's order.
    if (!res.socket) {
      res.once("socket", () => this.handle(req, res));
      return;
    }
    const startedAt = Date.now();
    const url = req.url ?? "/";
    const path = url.split("?")[0]!;
    const route = this.router.match(req.headers.host, path);
    const requestId = requestIdOf(req);
    (req as TaggedRequest)[REQUEST_ID_KEY] = requestId;
    const log = (status: number, app?: string, endpoint?: string) =>
      this.options.onResponse?.({
        remoteAddr: req.socket.remoteAddress ?? "-",
        method: req.method ?? "GET",
        url,
        httpVersion: req.httpVersion,
        status,
        bytes: bytesSent(res),
        referer: req.headers.referer,
        userAgent: req.headers["user-agent"],
        app,
        endpoint,
        ms: Date.now() - startedAt,
        requestId,
      });
    const socket = req.socket as PoisonableSocket;
    if (socket[POISONED]) {
      // An earlier request on this connection was refused for its framing: nothing after it is trusted.
      res.destroy();
      return;
    }
    const tooLarge = headSizeProblem(req);
    if (tooLarge) {
      socket[POISONED] = true;
      plainResponse(res, tooLarge.status, `${tooLarge.status === 414 ? "URI Too Long" : "Request Header Fields Too Large"}: ${tooLarge.reason}`, {
        Connection: "close",
      });
      return log(tooLarge.status, route?.app);
    }
    const problem = framingProblem(req);
    if (problem) {
      socket[POISONED] = true;
      plainResponse(res, 400, `Bad Request: ${problem}`, { Connection: "close" });
      return log(400, route?.app);
    }
    if (!route) {
      plainResponse(res, 404, `Not Found: no app is routed for ${req.headers.host ?? ""}${path}`);
      return log(404);
    }
    if (declaredTooLarge(req, this.options.clientMaxBodySize ?? 0)) {
      // Refused on its Content-Length alone: no worker sees a byte of it. The unread body means the connection cannot be reused.
      plainResponse(res, 413, `Content Too Large: the limit is ${this.options.clientMaxBodySize} bytes`, { Connection: "close" });
      return log(413, route.app);
    }
    const dispatch = (body?: Buffer) => {
      const endpoint = this.choose(route.app, req, new Set());
      if (!endpoint) {
        plainResponse(res, 503, `Service Unavailable: app "${route.app}" has no ready worker`, { "Retry-After": "1" });
        return log(503, route.app);
      }
      this.forward(req, res, route, endpoint, { tried: new Set(), reusedRetried: false, body }, (status, used) => log(status, route.app, used.id));
    };
    if (!isChunked(req)) return dispatch();
    // A chunked body is read whole first: no worker sees a body whose framing or size turns out wrong.
    readChunkedBody(req, this.options.clientMaxBodySize ?? 0).then(dispatch, (error: Error) => {
      if (error instanceof BodyTooLarge) {
        socket[POISONED] = true;
        plainResponse(res, 413, `Content Too Large: ${error.message}`, { Connection: "close" });
        return log(413, route.app);
      }
      // A framing error: the front listener's clientError handler answers 400 and closes.
      socket[POISONED] = true;
      log(400, route.app);
    });
  };

  /**
   * Sends one attempt to `endpoint`. The request body is piped only once the
   * connection is made, so an attempt that could not connect has consumed
   * nothing and can go to another worker whatever its method; an idempotent
   * request whose kept-alive connection the worker had just closed is sent
   * again once on a fresh one. Anything else that fails before the response
   * is a 502 (504 for the upstream timeout).
   */
  private forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    route: RouteMatch,
    endpoint: Endpoint,
    attempts: { tried: Set<string>; reusedRetried: boolean; body?: Buffer },
    done: (status: number, endpoint: Endpoint) => void,
  ): void {
    const key = instanceKey(endpoint);
    attempts.tried.add(key);
    const address = endpoint.address;
    const target =
      address.kind === "unix" ? { socketPath: address.path } : { host: address.host, port: address.port };
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
    // Each attempt ends exactly once — answered, broken, or given up — and only then leaves the in-flight count.
    let finished = false;
    const leave = () => {
      if (finished) return false;
      finished = true;
      this.inFlight.set(key, (this.inFlight.get(key) ?? 1) - 1);
      return true;
    };
    const finish = (status: number) => {
      if (leave()) done(status, endpoint);
    };
    // Set when the proxy itself ends the attempt (timeout, client gone): such an attempt is never retried.
    let abandoned = false;
    let connected = false;
    const upstream = http.request({
      ...target,
      method: req.method,
      path: req.url,
      headers: upstreamHeaders(req, route.mount, attempts.body),
      agent: this.agentFor(endpoint),
      timeout: this.options.upstreamTimeoutMs ?? 60_000,
    });
    upstream.on("socket", (socket) => {
      const send = () => {
        connected = true;
        if (attempts.body) upstream.end(attempts.body);
        else req.pipe(upstream);
      };
      if (socket.connecting) socket.once("connect", send);
      else send();
    });
    upstream.on("response", (answer) => {
      const status = answer.statusCode ?? 502;
      this.health.recordSuccess(key);
      // Headers as one flat list (a repeated Set-Cookie stays two headers), with our request id.
      res.writeHead(status, answer.statusMessage, [...responseHeaders(answer), "X-Request-Id", (req as TaggedRequest)[REQUEST_ID_KEY]!]);
      answer.on("data", (chunk: Buffer) => {
        (res as CountedResponse)[BYTES_KEY] = ((res as CountedResponse)[BYTES_KEY] ?? 0) + chunk.byteLength;
      });
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
      if (abandoned) {
        const timedOut = error.message === "upstream timeout";
        if (timedOut) plainResponse(res, 504, "Gateway Timeout");
        return finish(timedOut ? 504 : CLIENT_CLOSED_REQUEST);
      }
      // A buffered body can be sent again; a streamed one only if none of it was read.
      const idempotent = IDEMPOTENT.has(req.method ?? "GET") && (attempts.body !== undefined || !req.readableDidRead);
      if (!connected && NOT_CONNECTED.has(error.code ?? "")) {
        // Nothing was sent: the worker is unreachable. Count it against the worker and try another.
        this.health.recordFailure(key);
        const next = this.choose(route.app, req, attempts.tried);
        if (next && attempts.tried.size < MAX_TRIES) {
          leave();
          return this.forward(req, res, route, next, attempts, done);
        }
      } else if (upstream.reusedSocket && idempotent && !attempts.reusedRetried) {
        // A kept-alive connection the worker had just closed: once more, on a fresh connection.
        attempts.reusedRetried = true;
        attempts.tried.delete(key);
        leave();
        return this.forward(req, res, route, endpoint, attempts, done);
      } else {
        // The worker took the request and dropped the connection without answering (nginx's
        // proxy_next_upstream error): only a request without side effects may be sent again.
        this.health.recordFailure(key);
        const next = idempotent ? this.choose(route.app, req, attempts.tried) : undefined;
        if (next && attempts.tried.size < MAX_TRIES) {
          leave();
          return this.forward(req, res, route, next, attempts, done);
        }
      }
      plainResponse(res, 502, `Bad Gateway: app "${route.app}" did not answer`);
      finish(502);
    });
    res.on("close", () => {
      // The client left: stop the upstream request too (499 in the log, as nginx says it).
      if (res.writableFinished) return;
      abandoned = true;
      upstream.destroy();
      finish(CLIENT_CLOSED_REQUEST);
    });
  }

  /** Closes the kept-alive connections to workers (call after the front listeners have closed). */
  close(): void {
    for (const checker of this.checkers.values()) checker.stop();
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}
