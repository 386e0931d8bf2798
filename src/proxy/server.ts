/**
 * @module proxy/server
 *
 * The front proxy (nginx's role): host/path routing, balancing over the
 * ready workers of each app, keep-alive connections to the workers, limits,
 * failover and health, X-Forwarded-* and Forwarded set by us, an X-Request-Id
 * on every request, one access entry per request. The proxy learns which
 * workers exist only through `setEndpoints` — never from the supervisor or
 * pm2 — and its routing table is swapped whole by `setRoutes`.
 *
 * The client side is node:http (llhttp, strict) plus our own framing checks;
 * the worker side is our own lean HTTP/1.1 client (upstream/), because
 * node:http's client was most of the proxy's cost per request (bench/proxy.mjs
 * and its figures in the README).
 *
 * Status codes, as nginx gives them: no route 404; a declared body over
 * client_max_body_size 413; a body that stalls 408; no ready worker 503 with
 * Retry-After; a worker that could not be reached, broke before answering or
 * answered something unframeable 502, slower than the upstream timeout 504; a
 * worker that broke mid-response closes the client connection (never a fake
 * complete response).
 *
 * Failover (see `onFailure`): an attempt that could not connect goes to
 * another worker whatever its method; one the worker dropped after taking the
 * request goes elsewhere only if it is idempotent (or the app allows it); a
 * kept-alive connection the worker had just closed is retried once on a fresh
 * one. Workers that fail are left out for a while (health/passive.ts), and
 * those failing their app's health check until they pass (health/active.ts).
 */
import { randomUUID } from "node:crypto";
import type http from "node:http";
import type { Duplex } from "node:stream";
import type { Socket } from "node:net";
import { HOP_BY_HOP_HEADERS } from "../tsgi/util.ts";
import { Router, type RouteMatch, type RouteSpec } from "./router.ts";
import { createSelector, type Endpoint, type Selector } from "./balancing/selector.ts";
import { PassiveHealth, type PassiveHealthOptions } from "./health/passive.ts";
import { ActiveHealthChecker, type HealthCheckSpec, type HealthListener } from "./health/active.ts";
import { BodyTooLarge, declaredTooLarge, isChunked, readChunkedBody } from "./limits/body-size.ts";
import { watchBodyPace } from "./limits/body-timeout.ts";
import { serveStatic } from "./static.ts";
import { framingProblem, headSizeProblem } from "./request-checks.ts";
import { ConnectionPool, type PoolLimits } from "./upstream/pool.ts";
import type { UpstreamFailure } from "./upstream/connection.ts";
import type { ResponseHead } from "./upstream/response-head.ts";
import { requestHead, SCRIPT_NAME_HEADER } from "./upstream/request-head.ts";
import { rawResponse, relayedHead, tunnel } from "./upgrade.ts";
import { IDEMPOTENT_METHODS, nextStep } from "./retry.ts";
import { forwardingHeaders, TrustedProxies } from "./forwarded.ts";

export { SCRIPT_NAME_HEADER };

export interface FrontProxyOptions {
  routes: readonly RouteSpec[];
  /** The balancing policy per app, by config name (default round_robin). */
  balance?: Readonly<Record<string, string>>;
  /** Longest silence from a worker (ms): before its response head the client gets 504 (nginx's proxy_read_timeout, 60 s). */
  upstreamTimeoutMs?: number;
  /** How long connecting to a worker may take (ms) before it counts as failed (nginx's proxy_connect_timeout, 60 s). */
  connectTimeoutMs?: number;
  /** Idle kept-alive connections kept per worker (nginx's keepalive; default 64). */
  upstreamKeepalive?: number;
  /** How long an idle connection to a worker may be reused (ms; default 4 s, below the workers' 5 s). */
  upstreamKeepaliveTimeoutMs?: number;
  /** Longest pause between two reads of a request body (ms) before 408 (nginx's client_body_timeout, 60 s). */
  bodyTimeoutMs?: number;
  /** client_max_body_size in bytes: larger bodies get 413 (0: no limit). */
  clientMaxBodySize?: number;
  /** Which failed requests go to another worker, per app (default: 3 tries, idempotent methods only). */
  retry?: Readonly<Record<string, RetryPolicy>>;
  /** An upgraded connection (WebSocket) idle this long either way is closed (ms; default 60 s). */
  websocketIdleTimeoutMs?: number;
  /** Active health checks per app (the config's `health`). */
  healthChecks?: Readonly<Record<string, HealthCheckSpec>>;
  /** Told when an active check takes a worker out or puts it back. */
  onHealthChange?: HealthListener;
  /** max_fails / fail_timeout (default: nginx's 1 and 10 s). */
  passiveHealth?: PassiveHealthOptions;
  /** Peers whose X-Forwarded-* and Forwarded headers are kept (addresses or CIDR blocks); everyone else's are replaced. */
  trustedProxies?: readonly string[];
  /** Apps the proxy serves itself from a folder (the config's `static`): app name -> absolute folder. */
  staticRoots?: Readonly<Record<string, string>>;
  /** Called after each proxied response, for the access log. */
  onResponse?: (entry: AccessEntry) => void;
}

export interface RetryPolicy {
  /** Workers one request may be offered to; 1: no retry. */
  tries: number;
  /** Resend a non-idempotent request a worker dropped after taking it. */
  nonIdempotent: boolean;
}

const DEFAULT_RETRY: RetryPolicy = { tries: 3, nonIdempotent: false };

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

/** The access entry of a request, from the request and what became of it. */
function accessEntry(
  req: http.IncomingMessage,
  outcome: { url: string; startedAt: number; requestId: string; status: number; bytes: number; app?: string; endpoint?: string },
): AccessEntry {
  return {
    remoteAddr: req.socket.remoteAddress ?? "-",
    method: req.method ?? "GET",
    url: outcome.url,
    httpVersion: req.httpVersion,
    status: outcome.status,
    bytes: outcome.bytes,
    referer: req.headers.referer,
    userAgent: req.headers["user-agent"],
    app: outcome.app,
    endpoint: outcome.endpoint,
    ms: Date.now() - outcome.startedAt,
    requestId: outcome.requestId,
  };
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
const REQUEST_TIMEOUT = 408;

interface AppEndpoints {
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

/** The worker's response headers for the client: hop-by-hop (and those its Connection lists) removed, our X-Request-Id added. */
function responseHeaders(head: ResponseHead, requestId: string): string[] {
  const listed = head.connectionTokens;
  const raw = head.headers;
  const flat: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (HOP_BY_HOP_HEADERS.has(lower) || lower === "x-request-id" || (listed.length > 0 && listed.includes(lower))) continue;
    flat.push(raw[i]!, raw[i + 1]!);
  }
  flat.push("X-Request-Id", requestId);
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

/** The limits of the proxy's connections to workers (one object, shared by every pool, changed in place on reconfigure). */
function limitsOf(options: FrontProxyOptions): PoolLimits {
  return {
    connectMs: options.connectTimeoutMs ?? 60_000,
    readMs: options.upstreamTimeoutMs ?? 60_000,
    maxIdle: options.upstreamKeepalive ?? 64,
    idleTimeoutMs: options.upstreamKeepaliveTimeoutMs ?? 4_000,
  };
}

function sameAddress(a: Endpoint["address"], b: Endpoint["address"]): boolean {
  return a.kind === "unix" ? b.kind === "unix" && a.path === b.path : b.kind === "tcp" && a.host === b.host && a.port === b.port;
}

/** The most of a streamed body kept for a resend when client_max_body_size is 0 (no limit). */
const COPY_LIMIT = 1024 * 1024;

/**
 * Keeps the chunks of a streamed body as they go to the worker, up to
 * `limit` bytes (nginx buffers request bodies for the same reason). It
 * listens without starting the flow: the body is still read only once a
 * worker is connected.
 */
function keepCopy(req: http.IncomingMessage, limit: number): NonNullable<Attempts["copy"]> {
  const copy = { chunks: [] as Buffer[], size: 0, overflow: false };
  const onData = (chunk: Buffer) => {
    copy.size += chunk.byteLength;
    if (copy.size > limit) {
      copy.overflow = true;
      copy.chunks = [];
      req.off("data", onData);
    } else copy.chunks.push(chunk);
  };
  req.prependListener("data", onData);
  return copy;
}

/**
 * The text of a 502 for a failed attempt, for requests and upgrades alike:
 * what kind of failure, never what the worker sent. A protocol failure's
 * message quotes the worker's own status or header line: the client is told
 * only the kind.
 */
function badGatewayMessage(app: string, failure: UpstreamFailure): string {
  return `Bad Gateway: app "${app}" ${failure.kind === "protocol" ? "sent an invalid response" : "did not answer"}`;
}

/** One request's way through the workers of its app: where it has been, and what to send. */
interface Attempts {
  route: RouteMatch;
  requestId: string;
  /** The serialized head, built once and sent as is on every try. */
  head: string;
  /** A body read whole (chunked from the client), which any try can send again. */
  body?: Buffer;
  /** Instance keys already tried. */
  tried: Set<string>;
  /** Whether the once-per-request resend on a fresh connection (the keep-alive race) was used. */
  reusedRetried: boolean;
  /** A copy of a streamed body, kept (up to a bound) when a failed try may send it again. */
  copy?: { chunks: Buffer[]; size: number; overflow: boolean };
  /** The next try must open a new connection rather than reuse one. */
  fresh?: boolean;
  /** Stops the try under way (the client left, or its body stalled); it is logged with `status` (default 499). */
  cancel?: (status?: number) => void;
  done(status: number, endpoint: Endpoint): void;
}

export class FrontProxy {
  private router: Router;
  private readonly pools = new Map<string, AppEndpoints>();
  /** Kept-alive connections per worker process (by instance key). */
  private readonly connections = new Map<string, ConnectionPool>();
  private readonly inFlight = new Map<string, number>();
  private readonly health: PassiveHealth;
  private readonly checkers = new Map<string, ActiveHealthChecker>();
  private balance: Readonly<Record<string, string>>;
  private readonly poolLimits: PoolLimits;
  private trusted: TrustedProxies;
  private readonly sweeper: NodeJS.Timeout;
  /** Open WebSocket (upgraded) tunnels, closed by close(). */
  private readonly tunnels = new Set<{ close(): void }>();

  constructor(private options: FrontProxyOptions) {
    this.router = new Router(options.routes);
    this.balance = options.balance ?? {};
    this.health = new PassiveHealth(options.passiveHealth);
    this.trusted = new TrustedProxies(options.trustedProxies ?? []);
    this.poolLimits = limitsOf(options);
    // Idle connections past their time are closed by us, before the worker closes them.
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const pool of this.connections.values()) pool.sweep(now);
    }, Math.max(100, Math.min(1_000, this.poolLimits.idleTimeoutMs / 2)));
    this.sweeper.unref();
  }

  /** Swaps the routing table (and balancing policies) whole: requests already routed are not affected. */
  setRoutes(routes: readonly RouteSpec[], balance: Readonly<Record<string, string>> = this.balance): void {
    this.router = new Router(routes);
    this.balance = balance;
    for (const [app, pool] of this.pools) pool.selector = createSelector(balance[app] ?? "round_robin");
  }

  /**
   * A config hot reload: new routes, balancing, health checks, retries,
   * static folders, trusted proxies and limits, all at once. Requests
   * already routed finish as they started; kept-alive connections stay;
   * changed limits apply to new connections and requests.
   */
  reconfigure(options: FrontProxyOptions): void {
    const trusted = new TrustedProxies(options.trustedProxies ?? []);
    this.options = options;
    this.trusted = trusted;
    Object.assign(this.poolLimits, limitsOf(options));
    this.setRoutes(options.routes, options.balance ?? {});
    for (const checker of this.checkers.values()) checker.stop();
    this.checkers.clear();
    for (const app of this.pools.keys()) this.checkerFor(app)?.start();
  }

  /** The ready workers of one app: the only way the proxy learns about workers. */
  setEndpoints(app: string, endpoints: readonly Endpoint[]): void {
    this.checkerFor(app)?.start();
    const pool = this.pools.get(app);
    if (pool) pool.endpoints = endpoints;
    else this.pools.set(app, { endpoints, selector: createSelector(this.balance[app] ?? "round_robin") });
    const live = new Set(endpoints.map(instanceKey));
    for (const [key, connections] of this.connections) {
      if (key.startsWith(`${app}.`) && !live.has(key)) {
        connections.close();
        this.connections.delete(key);
        this.health.forget(key);
      }
    }
  }

  endpoints(app: string): readonly Endpoint[] {
    return this.pools.get(app)?.endpoints ?? [];
  }

  private connectionsTo(endpoint: Endpoint, key: string): ConnectionPool {
    let pool = this.connections.get(key);
    if (pool && !sameAddress(pool.address, endpoint.address)) {
      // The same worker identity at a new address (a test, or a `command` app that moved): old connections are no use.
      pool.close();
      pool = undefined;
    }
    if (!pool) {
      pool = new ConnectionPool(endpoint.address, this.poolLimits);
      this.connections.set(key, pool);
    }
    return pool;
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
    const untried =
      tried.size === 0 && !checker
        ? pool.endpoints
        : pool.endpoints.filter((endpoint) => !tried.has(instanceKey(endpoint)) && (!checker || checker.isHealthy(endpoint)));
    const candidates = this.health.available(untried, instanceKey);
    return pool.selector.select(candidates, req, this.selectionContext);
  }

  private readonly selectionContext = { inFlight: (endpoint: Endpoint) => this.inFlight.get(instanceKey(endpoint)) ?? 0 };

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
      this.options.onResponse?.(accessEntry(req, { url, startedAt, requestId, status, bytes: bytesSent(res), app, endpoint }));
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
    const chunked = isChunked(req);
    const staticRoot = this.options.staticRoots?.[route.app];
    if (staticRoot !== undefined) {
      res.setHeader("X-Request-Id", requestId);
      void serveStatic(req, res, staticRoot, route.mount).then(({ status, bytes }) => {
        (res as CountedResponse)[BYTES_KEY] = bytes;
        log(status, route.app);
      });
      return;
    }
    if (declaredTooLarge(req, this.options.clientMaxBodySize ?? 0)) {
      // Refused on its Content-Length alone: no worker sees a byte of it. The unread body means the connection cannot be reused.
      plainResponse(res, 413, `Content Too Large: the limit is ${this.options.clientMaxBodySize} bytes`, { Connection: "close" });
      return log(413, route.app);
    }
    const attempts: Attempts = {
      route,
      requestId,
      head: "",
      tried: new Set(),
      reusedRetried: false,
      done: (status, used) => {
        stopWatching();
        attempts.cancel = undefined;
        log(status, route.app, used.id);
      },
    };
    // The client left before its response was complete: stop the worker's side too (499 in the log, as nginx says it).
    res.once("close", () => {
      if (!res.writableFinished) attempts.cancel?.();
    });
    const hasBody = chunked || Number(req.headers["content-length"] ?? 0) > 0;
    const stopWatching = hasBody
      ? watchBodyPace(req, this.options.bodyTimeoutMs ?? 60_000, () => {
          socket[POISONED] = true;
          attempts.cancel?.(REQUEST_TIMEOUT);
          plainResponse(res, REQUEST_TIMEOUT, `Request Timeout: the request body stalled for ${this.options.bodyTimeoutMs ?? 60_000} ms`, { Connection: "close" });
          if (!attempts.tried.size) log(REQUEST_TIMEOUT, route.app);
        })
      : () => {};
    const dispatch = (body?: Buffer) => {
      const endpoint = this.choose(route.app, req, attempts.tried);
      if (!endpoint) {
        stopWatching();
        plainResponse(res, 503, `Service Unavailable: app "${route.app}" has no ready worker`, { "Retry-After": "1" });
        return log(503, route.app);
      }
      attempts.body = body;
      attempts.head = requestHead(req, {
        mount: route.mount,
        requestId,
        forwarding: this.forwarding(req),
        bufferedLength: body?.byteLength,
        defaultHost: () => `${req.socket.localAddress}:${req.socket.localPort}`,
      });
      this.forward(req, res, endpoint, attempts);
    };
    if (!chunked) return dispatch();
    // A chunked body is read whole first: no worker sees a body whose framing or size turns out wrong.
    readChunkedBody(req, this.options.clientMaxBodySize ?? 0).then(dispatch, (error: Error) => {
      stopWatching();
      if (res.writableEnded) return; // already answered (408)
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
   * The 'upgrade' listener (WebSocket and other HTTP Upgrades): routed,
   * balanced and failed over like a request; a 101 from the worker joins the
   * two connections into a tunnel that lives until either side closes or it
   * idles for websocketIdleTimeoutMs. It counts as in flight on its worker
   * while open, so least_conn spreads long-lived connections too.
   */
  readonly handleUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const startedAt = Date.now();
    const url = req.url ?? "/";
    const path = url.split("?")[0]!;
    const route = this.router.match(req.headers.host, path);
    const requestId = requestIdOf(req);
    let bytes = 0;
    const log = (status: number, endpoint?: string) =>
      this.options.onResponse?.(accessEntry(req, { url, startedAt, requestId, status, bytes, app: route?.app, endpoint }));
    const refuse = (status: number, message: string, headers?: Record<string, string>) => {
      bytes = rawResponse(socket, status, message, { "X-Request-Id": requestId, ...headers });
      log(status);
    };
    socket.on("error", () => socket.destroy());
    const problem = headSizeProblem(req) ?? (framingProblem(req) ? { status: 400 as const, reason: framingProblem(req)! } : undefined);
    if (problem) return refuse(problem.status, problem.reason);
    if (!route || this.options.staticRoots?.[route.app] !== undefined) {
      return refuse(404, `Not Found: no app is routed for ${req.headers.host ?? ""}${path}`);
    }
    const tried = new Set<string>();
    const policy = this.options.retry?.[route.app] ?? DEFAULT_RETRY;
    const upstreamHead = requestHead(req, {
      mount: route.mount,
      requestId,
      forwarding: this.forwarding(req),
      upgrade: req.headers.upgrade ?? "websocket",
      defaultHost: () => `${req.socket.localAddress}:${req.socket.localPort}`,
    });
    const attempt = (): void => {
      const endpoint = this.choose(route.app, req, tried);
      if (!endpoint) {
        if (tried.size === 0) return refuse(503, `Service Unavailable: app "${route.app}" has no ready worker`, { "Retry-After": "1" });
        return refuse(502, `Bad Gateway: app "${route.app}" did not answer`);
      }
      const key = instanceKey(endpoint);
      tried.add(key);
      this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
      let left = false;
      const leave = () => {
        if (left) return;
        left = true;
        this.inFlight.set(key, (this.inFlight.get(key) ?? 1) - 1);
      };
      const connection = this.connectionsTo(endpoint, key).fresh();
      let status = 502;
      const clientGone = () => {
        connection.abort();
        leave();
      };
      socket.once("close", clientGone);
      connection.send(
        { method: req.method ?? "GET", head: upstreamHead, upgrade: true },
        {
          onUpgrade: (answer, worker, rest) => {
            socket.off("close", clientGone);
            this.health.recordSuccess(key);
            socket.write(relayedHead(answer, requestId), "latin1");
            const joined = tunnel(socket, worker, head, rest, {
              idleTimeoutMs: this.options.websocketIdleTimeoutMs ?? 60_000,
              onClose: (sent) => {
                this.tunnels.delete(joined);
                leave();
                bytes = sent;
                log(101, endpoint.id);
              },
            });
            this.tunnels.add(joined);
          },
          onHead: (answer) => {
            // An ordinary answer (403, 426…): relayed as it is, and the connection closes after it.
            this.health.recordSuccess(key);
            socket.write(relayedHead(answer, requestId), "latin1");
            if (answer.framing.kind === "none") socket.end();
            status = answer.status;
          },
          onData: (data) => {
            bytes += data.byteLength;
            return socket.write(data);
          },
          onEnd: () => {
            socket.off("close", clientGone);
            socket.end();
            leave();
            log(status, endpoint.id);
          },
          onFail: (failure) => {
            socket.off("close", clientGone);
            leave();
            if (failure.kind === "broken") {
              socket.destroy();
              return log(status, endpoint.id);
            }
            if (failure.kind === "timeout") return refuse(504, `Gateway Timeout: app "${route.app}" did not answer within ${this.poolLimits.readMs} ms`);
            this.health.recordFailure(key);
            // An upgrade request has no body and changes nothing until the worker accepts it: any failure before an answer may go elsewhere.
            if (failure.kind !== "protocol" && tried.size < policy.tries) return attempt();
            refuse(502, badGatewayMessage(route.app, failure));
          },
        },
        () => {},
      );
    };
    attempt();
  };

  /** X-Forwarded-For/-Proto/-Host and Forwarded for the worker: the client's own kept only from a trusted proxy. */
  private forwarding(req: http.IncomingMessage): [string, string][] {
    const socket = req.socket as Socket & { encrypted?: boolean };
    const view = { peer: socket.remoteAddress ?? "", scheme: socket.encrypted ? ("https" as const) : ("http" as const), host: req.headers.host };
    return forwardingHeaders(view, req.headers, this.trusted);
  }

  /**
   * Sends one try of a request to `endpoint` over a kept-alive connection.
   * A streamed body is read only once the connection is made, so a try that
   * could not connect has consumed nothing and can go elsewhere whatever its
   * method.
   */
  private forward(req: http.IncomingMessage, res: http.ServerResponse, endpoint: Endpoint, attempts: Attempts): void {
    const key = instanceKey(endpoint);
    attempts.tried.add(key);
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
    // Each try ends exactly once — answered, broken, or given up — and only then leaves the in-flight count.
    let finished = false;
    const leave = () => {
      if (finished) return false;
      finished = true;
      this.inFlight.set(key, (this.inFlight.get(key) ?? 1) - 1);
      return true;
    };
    const pool = this.connectionsTo(endpoint, key);
    const connection = attempts.fresh ? pool.fresh() : pool.acquire();
    attempts.fresh = false;
    attempts.cancel = (cancelStatus = CLIENT_CLOSED_REQUEST) => {
      connection.abort();
      if (leave()) attempts.done(cancelStatus, endpoint);
    };
    let status = 502;
    const streamed = attempts.body === undefined && Number(req.headers["content-length"] ?? 0) > 0;
    if (streamed && !attempts.copy && this.mayResendBody(req, attempts.route.app)) attempts.copy = keepCopy(req, this.options.clientMaxBodySize || COPY_LIMIT);
    connection.send(
      { method: req.method ?? "GET", head: attempts.head, body: attempts.body ?? (streamed ? req : undefined) },
      {
        onHead: (head) => {
          status = head.status;
          try {
            res.writeHead(head.status, head.reason || undefined, responseHeaders(head, attempts.requestId));
          } catch {
            // A head node will not write (a value its checks refuse): a 502, as for any head we will not pass on.
            res.statusMessage = "";
            res.removeHeader("X-Request-Id");
            connection.abort();
            this.health.recordFailure(key);
            plainResponse(res, 502, `Bad Gateway: app "${attempts.route.app}" sent an invalid response`);
            if (leave()) attempts.done(502, endpoint);
            return;
          }
          this.health.recordSuccess(key);
        },
        onData: (data) => {
          (res as CountedResponse)[BYTES_KEY] = ((res as CountedResponse)[BYTES_KEY] ?? 0) + data.byteLength;
          if (res.write(data)) return true;
          res.once("drain", () => connection.resume());
          return false;
        },
        onEnd: () => {
          res.end();
          if (leave()) attempts.done(status, endpoint);
        },
        onFail: (failure) => {
          leave();
          this.onFailure(req, res, endpoint, attempts, failure);
        },
      },
      (reusable) => pool.release(connection, reusable),
    );
  }

  /** Whether a request with a body could be resent after a worker dropped it: idempotent, or the app allows it. */
  private mayResendBody(req: http.IncomingMessage, app: string): boolean {
    return IDEMPOTENT_METHODS.has(req.method ?? "GET") || (this.options.retry?.[app] ?? DEFAULT_RETRY).nonIdempotent;
  }

  /** What a failed try leads to (proxy/retry.ts decides): another try, or the client's 502/504, or a broken response once one had begun. */
  private onFailure(req: http.IncomingMessage, res: http.ServerResponse, endpoint: Endpoint, attempts: Attempts, failure: UpstreamFailure): void {
    const key = instanceKey(endpoint);
    const { app } = attempts.route;
    const policy = this.options.retry?.[app] ?? DEFAULT_RETRY;
    // A streamed body the proxy kept a copy of (see keepCopy) can be sent again once it has all arrived.
    if (!res.headersSent && attempts.body === undefined && attempts.copy && !attempts.copy.overflow && req.complete) {
      attempts.body = Buffer.concat(attempts.copy.chunks);
    }
    const next = nextStep({
      failure,
      responseBegun: res.headersSent,
      method: req.method ?? "GET",
      // A body read whole can be sent again; a streamed one only if none of it was read.
      replayable: attempts.body !== undefined || !req.readableDidRead,
      nonIdempotent: policy.nonIdempotent,
      tried: attempts.tried.size,
      tries: policy.tries,
      raceRetried: attempts.reusedRetried,
    });
    switch (next.step) {
      case "break":
        res.destroy();
        return attempts.done(res.statusCode, endpoint);
      case "same-worker-fresh":
        attempts.reusedRetried = true;
        attempts.fresh = true;
        attempts.tried.delete(key);
        return this.forward(req, res, endpoint, attempts);
      case "next-worker": {
        if (next.countAgainstWorker) this.health.recordFailure(key);
        const other = this.choose(app, req, attempts.tried);
        if (other) return this.forward(req, res, other, attempts);
        break;
      }
      case "respond":
        if (next.countAgainstWorker) this.health.recordFailure(key);
        if (next.status === 504) {
          plainResponse(res, 504, `Gateway Timeout: app "${app}" did not answer within ${this.poolLimits.readMs} ms`);
          return attempts.done(504, endpoint);
        }
        break;
    }
    plainResponse(res, 502, badGatewayMessage(app, failure));
    attempts.done(502, endpoint);
  }

  /** Closes the kept-alive connections to workers (call after the front listeners have closed). */
  close(): void {
    clearInterval(this.sweeper);
    for (const joined of this.tunnels) joined.close();
    for (const checker of this.checkers.values()) checker.stop();
    for (const pool of this.connections.values()) pool.close();
    this.connections.clear();
  }
}
