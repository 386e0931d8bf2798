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
 * The client side is node:http (llhttp, strict) plus our own framing checks,
 * and node:http2 on the TLS listeners (proxy/http2/: the same handler runs on
 * each h2 stream);
 * the worker side is our own lean HTTP/1.1 client (upstream/), because
 * node:http's client was most of the proxy's cost per request (bench/proxy.mjs
 * and its figures in the README).
 *
 * A request goes through the passes of proxy/passes.ts (head rules, route,
 * method, client limits, static, body limit, body pace, chunked body,
 * select; an HTTPS redirect and the proxy's own redirects only when the
 * config has them), then to a worker; every answer the proxy makes up
 * itself comes from one map, proxy/refusal.ts, with nginx's statuses. A worker that broke mid-response
 * closes the client connection (never a fake complete response). On the
 * way back, a worker's response head gets the app's `headers`
 * (proxy/app-headers.ts) and goes through one response pass, compression
 * (proxy/compress/plan.ts), and its body through an encoder when that pass
 * chose one (proxy/compress/stream.ts).
 *
 * Failover (`onFailure`, decided by proxy/retry.ts): an attempt that could not connect goes to
 * another worker whatever its method; one the worker dropped after taking the
 * request goes elsewhere only if it is idempotent (or the app allows it); a
 * kept-alive connection the worker had just closed is retried once on a fresh
 * one. Workers that fail are left out for a while (health/passive.ts), and
 * those failing their app's health check until they pass (health/active.ts).
 *
 * Why ~480 lines: the request path and the upgrade path, each a try and its
 * failover, read together; the passes, the refusal map, the retry decision,
 * the upstreams and the response writing are modules of their own.
 */
import type http from "node:http";
import type { Duplex } from "node:stream";
import type { Socket } from "node:net";
import { Router, type RouteSpec } from "./router.ts";
import type { Endpoint } from "./balancing/selector.ts";
import { COPY_LIMIT, keepCopy, type BodyCopy } from "./limits/body-size.ts";
import { type EndpointView, instanceKey, Upstreams } from "./upstreams.ts";
import type { UpstreamFailure } from "./upstream/connection.ts";
import { requestHead } from "./upstream/request-head.ts";
import { rawAnswer, relayedHead, tunnel } from "./upgrade.ts";
import { IDEMPOTENT_METHODS, nextStep } from "./retry.ts";
import { clientAddress, forwardingHeaders, TrustedProxies } from "./forwarded.ts";
import { type AccessEntry, Exchange } from "./exchange.ts";
import { answerFor, type Refusal } from "./refusal.ts";
import { type AppAnswers, HANDLED, type PassResult, passesFor, type ProxyView, type RequestContext, type RequestPass, runPasses } from "./passes.ts";
import { type AppHeaders, compileAppHeaders, withAppHeaders } from "./app-headers.ts";
import { compileRedirect } from "./redirects.ts";
import { DEFAULT_RETRY, type FrontProxyOptions } from "./options.ts";
import { ClientLimits } from "./limits/client-limits.ts";
import { compileStaticSite, type StaticSite } from "./static-site.ts";
import { isHttp2Response } from "./http2/messages.ts";
import { breakOff, responseHeaders, writeAnswer } from "./respond.ts";
import { closeIfDraining, isClosing, sweepIfDraining } from "../http/front-door.ts";
import { planCompression } from "./compress/plan.ts";
import { type BodyEncoder, bodyEncoder } from "./compress/stream.ts";
import { ErrorPages } from "./error-pages/pages.ts";

export type { AccessEntry };
export type { FrontProxyOptions, RetryPolicy } from "./options.ts";

/** nginx's status for a client that closed the connection before the response was complete. */
const CLIENT_CLOSED_REQUEST = 499;

const noop = () => {};

/** A request on its way through the workers of its app, after the passes: where it has been, and what to send. */
interface WebRequest extends RequestContext {
  readonly res: http.ServerResponse;
  /** The serialized head, built once and sent as is on every try. */
  head: string;
  /** Instance keys already tried. */
  tried: Set<string>;
  /** Whether the once-per-request resend on a fresh connection (the keep-alive race) was used. */
  reusedRetried: boolean;
  /** A copy of a streamed body, kept (up to a bound) when a failed try may send it again. */
  copy?: BodyCopy;
  /** The next try must open a new connection rather than reuse one. */
  fresh?: boolean;
  /** Stops the try under way (the client left, or its body stalled); it is logged with `status` (default 499) and the proxy's code. */
  cancel?: (status?: number, code?: string) => void;
}

function compiledSites(options: FrontProxyOptions): ReadonlyMap<string, StaticSite> {
  return new Map(Object.entries(options.staticSites ?? {}).map(([app, spec]) => [app, compileStaticSite(spec)]));
}

export class FrontProxy {
  private router: Router;
  private trusted: TrustedProxies;
  private readonly upstreams: Upstreams;
  /** Open WebSocket (upgraded) tunnels, closed by close(). */
  private readonly tunnels = new Set<{ close(): void }>();
  /** What the request passes may ask of the proxy (proxy/passes.ts), read at the time each request arrives. */
  private readonly view: ProxyView;
  /** The apps' limits per client address, kept across reconfigure (their clients' state with them). */
  private readonly clientLimits: ClientLimits;
  /** The `error_pages` in force (their files read when the config was loaded), replaced whole by reconfigure. */
  private errorPages: ErrorPages;
  /** The static apps' compiled index, fallback and Cache-Control rules (their globs compiled here, once per configure). */
  private staticSites: ReadonlyMap<string, StaticSite>;
  /** The passes of this configuration (proxy/passes.ts passesFor): redirects only when the config has some. */
  private passes!: { web: readonly RequestPass[]; upgrade: readonly RequestPass[] };
  /** The apps' `headers`, compiled; an app without has no entry. */
  private appHeaders!: Map<string, AppHeaders>;
  /** What the proxy answers itself per app (`redirect`, `trailing_slash`); an app without has no entry. */
  private answers!: Map<string, AppAnswers>;

  constructor(private options: FrontProxyOptions) {
    this.errorPages = new ErrorPages(options.errorPages);
    this.staticSites = compiledSites(options);
    this.router = new Router(options.routes);
    this.trusted = new TrustedProxies(options.trustedProxies ?? []);
    this.upstreams = new Upstreams(options, (req) => clientAddress(req.socket.remoteAddress ?? "", req.headers, this.trusted));
    this.clientLimits = new ClientLimits(options.clientLimits);
    this.configureAnswers(options);
    const proxy = this;
    this.view = {
      route: (host, path) => this.router.match(host, path),
      staticRoot: (app) => this.options.staticRoots?.[app],
      staticSite: (app) => this.staticSites.get(app),
      allowsTrace: (app) => this.options.allowTrace?.[app] === true,
      compression: (app) => this.options.compress?.[app],
      errorPages: (app) => this.errorPages.lookupFor(app),
      // The body stalled (client_body_timeout): the try under way is stopped and the client gets 408.
      bodyStalled: (ctx, refusal) => {
        const request = ctx as WebRequest;
        const answer = answerFor(refusal);
        request.cancel?.(answer.status, answer.code);
        this.refuse(request, refusal);
      },
      get clientMaxBodySize() {
        return proxy.options.clientMaxBodySize ?? 0;
      },
      get bodyTimeoutMs() {
        return proxy.options.bodyTimeoutMs ?? 60_000;
      },
      choose: (app, req) => this.upstreams.choose(app, req),
      limiters: (app) => this.clientLimits.of(app),
      clientOf: (req) => clientAddress(req.socket.remoteAddress ?? "", req.headers, this.trusted),
      answersOf: (app) => this.answers.get(app),
      headersOf: (app) => this.appHeaders.get(app),
      get httpsRedirect() {
        return proxy.options.httpsRedirect;
      },
    };
  }

  /** Redirects, trailing slashes and response headers, compiled once per configuration, and the passes they need. */
  private configureAnswers(options: FrontProxyOptions): void {
    const answers = new Map<string, AppAnswers>();
    for (const [app, spec] of Object.entries(options.redirects ?? {})) answers.set(app, { redirect: compileRedirect(spec) });
    for (const [app, mode] of Object.entries(options.trailingSlash ?? {})) answers.set(app, { ...answers.get(app), trailingSlash: mode });
    this.answers = answers;
    this.appHeaders = compileAppHeaders(options.headers ?? {});
    this.passes = passesFor({ httpsRedirect: options.httpsRedirect !== undefined, proxyAnswers: answers.size > 0 });
  }

  /** Swaps the routing table (and balancing policies) whole: requests already routed are not affected. */
  setRoutes(routes: readonly RouteSpec[], balance?: Readonly<Record<string, string>>): void {
    this.router = new Router(routes);
    if (balance) this.upstreams.setBalance(balance);
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
    this.router = new Router(options.routes);
    this.staticSites = compiledSites(options);
    this.upstreams.reconfigure(options);
    this.clientLimits.configure(options.clientLimits ?? {});
    this.errorPages = new ErrorPages(options.errorPages);
    this.configureAnswers(options);
  }

  /** The ready workers of one app: the only way the proxy learns about workers. */
  setEndpoints(app: string, endpoints: readonly Endpoint[]): void {
    this.upstreams.setEndpoints(app, endpoints);
  }

  endpoints(app: string): readonly Endpoint[] {
    return this.upstreams.endpoints(app);
  }

  /** Every worker process balanced over, with its health and what it has in flight (for `status`). */
  upstreamView(): EndpointView[] {
    return this.upstreams.view();
  }

  /** Runs one round of every app's active checks now (tests, and a fresh start). */
  checkHealth(): Promise<void> {
    return this.upstreams.checkHealth();
  }

  /** The request listener: install it on every front listener. */
  readonly handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    // A pipelined request waits for the one before it to be answered (node hands its response the
    // socket then), as nginx does: the worker sees a connection's requests in the client's order.
    if (!res.socket) {
      res.once("socket", () => this.handle(req, res));
      return;
    }
    if (isClosing(req.socket)) {
      // An earlier request on this connection was refused for its framing: nothing after it is trusted.
      res.destroy();
      return;
    }
    const request: WebRequest = {
      req,
      res,
      exchange: new Exchange(req, this.options.onResponse),
      proxy: this.view,
      stopWatching: noop,
      head: "",
      tried: new Set(),
      reusedRetried: false,
    };
    // The client left before its response was complete: stop the worker's side too (499 in the log, as nginx says it).
    res.once("close", () => {
      if (!res.writableFinished) request.cancel?.();
    });
    // No closure on the usual, synchronous path: this runs once per request.
    const result = runPasses(this.passes.web, request);
    if (result instanceof Promise) void result.then((settled) => this.afterPasses(request, settled));
    else this.afterPasses(request, result);
  };

  /** The passes are through: the request goes to the worker the select pass chose, or is answered as a pass said. */
  private afterPasses(request: WebRequest, result: PassResult): void {
    if (result === HANDLED) return;
    if (result) return this.refuse(request, result);
    const { req, res, route, body, exchange } = request;
    if (res.writableEnded) return; // answered while its body was read (408)
    request.head = requestHead(req, {
      mount: route!.mount,
      requestId: exchange.requestId,
      forwarding: this.forwarding(req),
      bufferedLength: body?.byteLength,
      defaultHost: () => `${req.socket.localAddress}:${req.socket.localPort}`,
    });
    this.forward(request, request.endpoint!);
  }

  /** Answers a request with one of the proxy's own answers and ends its exchange. */
  private refuse(request: WebRequest, refusal: Refusal): void {
    request.stopWatching();
    const app = request.route?.app;
    const answer = writeAnswer(request.res, request.exchange, refusal, this.errorPages, app === undefined ? undefined : this.appHeaders.get(app)?.record);
    request.exchange.end(answer.status, undefined, answer.code);
    sweepIfDraining(request.res);
  }

  /** The end of a request that reached a worker: logged once, with the worker that answered (and the proxy's code when it answered instead). */
  private done(request: WebRequest, status: number, endpoint: Endpoint, error?: string): void {
    request.stopWatching();
    request.cancel = undefined;
    request.exchange.end(status, endpoint.id, error);
    sweepIfDraining(request.res);
  }

  /**
   * The 'upgrade' listener (WebSocket and other HTTP Upgrades): the same
   * first passes as a request, then balanced and failed over like one; a
   * 101 from the worker joins the two connections into a tunnel that lives
   * until either side closes or it idles for websocketIdleTimeoutMs. It
   * counts as in flight on its worker while open, so least_conn spreads
   * long-lived connections too.
   */
  readonly handleUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on("error", () => socket.destroy());
    const request: RequestContext = { req, exchange: new Exchange(req, this.options.onResponse), proxy: this.view, stopWatching: noop };
    whenSettled(runPasses(this.passes.upgrade, request), (result) => {
      if (result) return this.refuseUpgrade(socket, request.exchange, result as Refusal);
      const upstreamHead = requestHead(req, {
        mount: request.route!.mount,
        requestId: request.exchange.requestId,
        forwarding: this.forwarding(req),
        upgrade: req.headers.upgrade ?? "websocket",
        defaultHost: () => `${req.socket.localAddress}:${req.socket.localPort}`,
      });
      this.upgradeTry(request, socket, head, upstreamHead, request.endpoint!, new Set());
    });
  };

  private refuseUpgrade(socket: Duplex, exchange: Exchange, refusal: Refusal): void {
    const answer = answerFor(refusal);
    exchange.bytes = rawAnswer(socket, answer, exchange.requestId);
    exchange.end(answer.status, undefined, answer.code);
  }

  /** One try of an upgrade at `endpoint`, always on a fresh connection (it will become a tunnel, never go back to the pool). */
  private upgradeTry(request: RequestContext, socket: Duplex, clientHead: Buffer, upstreamHead: string, endpoint: Endpoint, tried: Set<string>): void {
    const { req, exchange } = request;
    const app = request.route!.app;
    const key = instanceKey(endpoint);
    tried.add(key);
    const leave = this.upstreams.enter(key);
    const connection = this.upstreams.connectionsTo(endpoint, key).fresh();
    let status = 502;
    let relayed = false;
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
          this.upstreams.passive.recordSuccess(key);
          socket.write(relayedHead(answer, exchange.requestId), "latin1");
          const joined = tunnel(socket, worker, clientHead, rest, {
            idleTimeoutMs: this.options.websocketIdleTimeoutMs ?? 60_000,
            onClose: (sent) => {
              this.tunnels.delete(joined);
              leave();
              exchange.bytes = sent;
              exchange.end(101, endpoint.id);
            },
          });
          this.tunnels.add(joined);
        },
        onHead: (answer) => {
          // An ordinary answer (403, 426…): relayed as it is, and the connection closes after it.
          this.upstreams.passive.recordSuccess(key);
          socket.write(relayedHead(answer, exchange.requestId), "latin1");
          if (answer.framing.kind === "none") socket.end();
          status = answer.status;
          relayed = true;
        },
        onData: (data) => {
          exchange.bytes += data.byteLength;
          return socket.write(data);
        },
        onEnd: () => {
          socket.off("close", clientGone);
          socket.end();
          leave();
          exchange.end(status, endpoint.id);
        },
        onFail: (failure) => {
          socket.off("close", clientGone);
          leave();
          // An upgrade request has no body and changes nothing until the worker accepts it: it is always replayable.
          const policy = this.options.retry?.[app] ?? DEFAULT_RETRY;
          const next = nextStep({
            failure,
            responseBegun: relayed,
            method: req.method ?? "GET",
            replayable: true,
            nonIdempotent: policy.nonIdempotent,
            tried: tried.size,
            tries: policy.tries,
            raceRetried: true,
          });
          if (next.step === "break") {
            socket.destroy();
            return exchange.end(status, endpoint.id);
          }
          if ("countAgainstWorker" in next && next.countAgainstWorker) this.upstreams.passive.recordFailure(key);
          const other = next.step === "next-worker" ? this.upstreams.choose(app, req, tried) : undefined;
          this.options.onUpstreamFailure?.(app, endpoint.id, failure.kind, other !== undefined);
          if (other) return this.upgradeTry(request, socket, clientHead, upstreamHead, other, tried);
          this.refuseUpgrade(socket, exchange, this.failureRefusal(app, failure));
        },
      },
      noop,
    );
  }

  /** The refusal for a try that failed and will not be tried again: 504 for a timeout, 502 for the rest. */
  private failureRefusal(app: string, failure: UpstreamFailure): Refusal {
    return failure.kind === "timeout"
      ? { kind: "upstream-timeout", app, ms: this.upstreams.limits.readMs }
      : { kind: "upstream-failed", app, failure: failure.kind };
  }

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
  private forward(request: WebRequest, endpoint: Endpoint): void {
    const { req, res, exchange } = request;
    const app = request.route!.app;
    const key = instanceKey(endpoint);
    request.tried.add(key);
    // Each try ends exactly once — answered, broken, or given up — and only then leaves the in-flight count.
    const leave = this.upstreams.enter(key);
    const pool = this.upstreams.connectionsTo(endpoint, key);
    const connection = request.fresh ? pool.fresh() : pool.acquire();
    request.fresh = false;
    /** The body's encoder, when the response goes out compressed (proxy/compress/). */
    let compressed: BodyEncoder | undefined;
    request.cancel = (cancelStatus = CLIENT_CLOSED_REQUEST, code?: string) => {
      connection.abort();
      compressed?.destroy();
      // A compressed body may still be on its way out after the worker's part ended (leave() was called then).
      if (leave() || compressed) this.done(request, cancelStatus, endpoint, code);
    };
    let status = 502;
    const streamed = request.body === undefined && Number(req.headers["content-length"] ?? 0) > 0;
    if (streamed && !request.copy && this.mayResendBody(req, app)) request.copy = keepCopy(req, this.options.clientMaxBodySize || COPY_LIMIT);
    connection.send(
      { method: req.method ?? "GET", head: request.head, body: request.body ?? (streamed ? req : undefined) },
      {
        onHead: (head) => {
          status = head.status;
          closeIfDraining(res);
          // The response pass: compression (proxy/compress/) decides the head the client gets, and whether the body is encoded.
          const policy = this.options.compress?.[app];
          const extra = this.appHeaders.get(app);
          const relayed = responseHeaders(head, exchange.requestId);
          const plan = planCompression(req, head.status, extra ? withAppHeaders(relayed, extra) : relayed, policy);
          try {
            res.writeHead(head.status, head.reason || undefined, plan.headers);
          } catch {
            if (!isHttp2Response(res)) res.statusMessage = "";
            res.removeHeader("X-Request-Id");
            connection.abort();
            this.upstreams.passive.recordFailure(key);
            let answered = 502;
            let code: string | undefined;
            try {
              const answer = writeAnswer(res, exchange, { kind: "invalid-response-head", app }, this.errorPages, this.appHeaders.get(app)?.record);
              [answered, code] = [answer.status, answer.code];
            } catch {
              // Even our own answer could not be written on this response: the client sees it broken off, never a crash.
              res.destroy();
            }
            if (leave()) this.done(request, answered, endpoint, code);
            return;
          }
          this.upstreams.passive.recordSuccess(key);
          if (plan.encoding && policy) {
            const length = head.framing.kind === "length" ? head.framing.length : undefined;
            compressed = bodyEncoder(res, plan.encoding, policy.levels[plan.encoding], length, {
              onBytes: (bytes) => (exchange.bytes += bytes),
              onDrain: () => connection.resume(),
              onFinish: () => this.done(request, status, endpoint),
            });
          }
        },
        onData: (data) => {
          if (compressed) return compressed.write(data);
          exchange.bytes += data.byteLength;
          if (res.write(data)) return true;
          res.once("drain", () => connection.resume());
          return false;
        },
        onEnd: () => {
          if (compressed) {
            // The worker is done (it leaves the in-flight count now); the exchange ends when the encoder's last bytes are out.
            leave();
            compressed.end();
            return;
          }
          res.end();
          if (leave()) this.done(request, status, endpoint);
        },
        onFail: (failure) => {
          leave();
          compressed?.destroy();
          this.onFailure(request, endpoint, failure);
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
  private onFailure(request: WebRequest, endpoint: Endpoint, failure: UpstreamFailure): void {
    const { req, res } = request;
    const key = instanceKey(endpoint);
    const app = request.route!.app;
    const policy = this.options.retry?.[app] ?? DEFAULT_RETRY;
    // A streamed body the proxy kept a copy of (see keepCopy) can be sent again once it has all arrived.
    if (!res.headersSent && request.body === undefined && request.copy && !request.copy.overflow && req.complete) {
      request.body = Buffer.concat(request.copy.chunks);
    }
    const next = nextStep({
      failure,
      responseBegun: res.headersSent,
      method: req.method ?? "GET",
      // A body read whole can be sent again; a streamed one only if none of it was read.
      replayable: request.body !== undefined || !req.readableDidRead,
      nonIdempotent: policy.nonIdempotent,
      tried: request.tried.size,
      tries: policy.tries,
      raceRetried: request.reusedRetried,
    });
    if (next.step === "break") {
      this.options.onUpstreamFailure?.(app, endpoint.id, failure.kind, false);
      breakOff(res);
      return this.done(request, res.statusCode, endpoint);
    }
    if (next.step === "same-worker-fresh") {
      request.reusedRetried = true;
      request.fresh = true;
      request.tried.delete(key);
      return this.forward(request, endpoint);
    }
    if (next.countAgainstWorker) this.upstreams.passive.recordFailure(key);
    const other = next.step === "next-worker" ? this.upstreams.choose(app, req, request.tried) : undefined;
    this.options.onUpstreamFailure?.(app, endpoint.id, failure.kind, other !== undefined);
    if (other) return this.forward(request, other);
    const answer = writeAnswer(res, request.exchange, this.failureRefusal(app, failure), this.errorPages, this.appHeaders.get(app)?.record);
    this.done(request, answer.status, endpoint, answer.code);
  }

  /** Closes the kept-alive connections to workers (call after the front listeners have closed). */
  close(): void {
    for (const joined of this.tunnels) joined.close();
    this.upstreams.close();
  }
}

/** Calls `then` with a pass result now, or when it settles if a pass went async. */
function whenSettled(result: PassResult | Promise<PassResult>, then: (result: PassResult) => void): void {
  if (result instanceof Promise) void result.then(then);
  else then(result);
}
