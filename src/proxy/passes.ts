/**
 * @module proxy/passes
 *
 * What the proxy does to a request before a worker sees it, as an ordered
 * list of small named passes (node-http-proxy's web-incoming passes are the
 * model). Each pass looks at the request's context and either lets it go on
 * (`undefined`), refuses it with a typed `Refusal` (proxy/refusal.ts turns
 * that into the answer), or says it has answered the request itself
 * (`HANDLED`: a static file). A pass may be async; the runner stays
 * synchronous until one is.
 *
 *   WEB_PASSES      head rules -> route -> method -> client limits ->
 *                   static -> body limit -> body pace -> chunked body ->
 *                   select
 *   UPGRADE_PASSES  head rules -> route (a static app has no WebSocket:
 *                   404) -> client limits -> select
 *
 * Two passes join these only when the config asks for them (passesFor,
 * decided at configure time, so that a stack without them pays nothing):
 * `https redirect` after the head rules (the plain listeners answer with a
 * redirect to HTTPS), and `proxy answers` after the route (a `redirect`
 * app, `trailing_slash`) — before the limits and the body, as nginx's
 * `return` and `rewrite` run before limit_req.
 *
 * The upgrade path shares the first passes, so a request cannot get past a
 * check by asking to upgrade. An HTTP/2 stream runs the same passes
 * (proxy/http2/ makes it look like an HTTP/1.1 request); the head-rules
 * pass alone tells them apart. Each pass reads only its context, so the
 * passes are unit-tested with plain fakes (test/proxy/passes.test.ts).
 */
import type http from "node:http";
import type { Endpoint } from "./balancing/selector.ts";
import type { Exchange } from "./exchange.ts";
import { BodyTooLarge, declaredTooLarge, isChunked, readChunkedBody } from "./limits/body-size.ts";
import { watchBodyPace } from "./limits/body-timeout.ts";
import type { AppLimiters } from "./limits/client-limits.ts";
import type { Refusal } from "./refusal.ts";
import { adoptTarget } from "../http/front-door.ts";
import { ALLOWED_METHODS, headProblem, normalizeTarget } from "../http/request-rules.ts";
import type { RouteMatch } from "./router.ts";
import { serveStatic } from "./static.ts";
import type { StaticSite } from "./static-site.ts";
import { isHttp2Request } from "./http2/messages.ts";
import type { CompressPolicy } from "./compress/negotiate.ts";
import type { AppHeaders } from "./app-headers.ts";
import type { HttpsRedirect } from "./options.ts";
import { type CompiledRedirect, httpsLocation, queryOf, redirectLocation, sameHostLocation, type TrailingSlash, trailingSlashPath } from "./redirects.ts";

/** The pass answered the request itself; no later pass runs. */
export const HANDLED = Symbol("handled");
export type PassResult = undefined | Refusal | typeof HANDLED;

/** A request's context as the passes see it: the request, its record, and what the proxy offers them. */
export interface RequestContext {
  readonly req: http.IncomingMessage;
  /** Absent on the upgrade path (there is no ServerResponse once a socket is upgraded). */
  readonly res?: http.ServerResponse;
  readonly exchange: Exchange;
  /** The routing table, static folders and limits in force when the request arrived. */
  readonly proxy: ProxyView;
  /** The target's path, normalized (set by the head-rules pass; the route pass matches on it). */
  path?: string;
  /** Set by the route pass. */
  route?: RouteMatch;
  /** A chunked body read whole by the chunked-body pass (any try can send it again). */
  body?: Buffer;
  /** Set by the select pass: the worker for the first try. */
  endpoint?: Endpoint;
  /** Stops the body-pace watch (set by that pass; a no-op until then). */
  stopWatching: () => void;
}

/** What the passes may ask of the proxy: plain lookups, so that a test can fake them. */
export interface ProxyView {
  route(host: string | undefined, path: string): RouteMatch | undefined;
  staticRoot(app: string): string | undefined;
  /** A static app's index files, fallback and Cache-Control, compiled (absent: the plain rules). */
  staticSite?(app: string): StaticSite | undefined;
  /** client_max_body_size in bytes (0: no limit). */
  readonly clientMaxBodySize: number;
  /** client_body_timeout in ms. */
  readonly bodyTimeoutMs: number;
  /** The app's compression policy (its `compress`), if any: a static app serves precompressed files by it, and compresses the others on the fly. */
  compression?(app: string): CompressPolicy | undefined;
  /** The `error_pages` lookup by status for an app (its own over the stack's), or undefined when none apply: a static folder answers its own errors with it. */
  errorPages?(app: string): ((status: number) => Buffer | undefined) | undefined;
  /** Whether an app takes TRACE requests (it opted in). */
  allowsTrace(app: string): boolean;
  /** The request's body stalled (client_body_timeout): the proxy cancels the try under way and answers 408. */
  bodyStalled(ctx: RequestContext, refusal: Refusal): void;
  /** A worker of `app` for a first try, or undefined when none is ready. */
  choose(app: string, req: http.IncomingMessage): Endpoint | undefined;
  /** The app's limits per client address (`rate_limit`, `conn_limit`), or undefined when it has none. */
  limiters(app: string): AppLimiters | undefined;
  /** The client's address past the trusted proxies (proxy/forwarded.ts clientAddress). */
  clientOf(req: http.IncomingMessage): string;
  /** What the proxy answers itself for an app (its `redirect`, its `trailing_slash`), if anything. */
  answersOf?(app: string): AppAnswers | undefined;
  /** The app's `headers`, if any (a static app's files get them too). */
  headersOf?(app: string): AppHeaders | undefined;
  /** `proxy.https_redirect`, when on. */
  readonly httpsRedirect?: HttpsRedirect;
}

/** What the proxy answers for an app before any worker or folder: a redirect app's redirect, or a trailing-slash redirect. */
export interface AppAnswers {
  readonly redirect?: CompiledRedirect;
  readonly trailingSlash?: TrailingSlash;
}

/** The status of a trailing-slash redirect: 308 keeps the method and body (nginx's directory redirect is a 301, which turns a POST into a GET). */
const TRAILING_SLASH_STATUS = 308;

export interface RequestPass {
  readonly name: string;
  run(ctx: RequestContext): PassResult | Promise<PassResult>;
}

const HTTP1_RULES = { allowTrace: true };
/** An HTTP/2 stream: its version is 2.0; what HTTP/2 itself forbids was judged when its head was adapted (proxy/http2/head.ts). */
const HTTP2_RULES = { allowTrace: true, http2: true };

/**
 * The front door's rules (http/request-rules.ts: version, sizes, framing,
 * Host, singletons, target), then the target the rest of the proxy acts on:
 * origin-form, dot segments removed, the Host an absolute-form target named.
 * TRACE is judged later, per app (the method pass).
 */
const headRules: RequestPass = {
  name: "head rules",
  run(ctx) {
    const { req } = ctx;
    const http2 = isHttp2Request(req);
    if (http2) {
      if (req.malformed !== undefined) return { kind: "bad-head", status: 400, reason: req.malformed };
      // HTTP/1.1's listener answers CONNECT itself (http/front-door.ts); on an h2 stream it comes here.
      if (req.method === "CONNECT") return { kind: "bad-head", status: 405, reason: "CONNECT is not supported", allow: ALLOWED_METHODS };
    }
    const problem = headProblem(req, http2 ? HTTP2_RULES : HTTP1_RULES);
    if (problem) return { kind: "bad-head", ...problem };
    const target = normalizeTarget(req.url ?? "/");
    adoptTarget(req, target);
    ctx.path = target.path;
    return undefined;
  },
};

const route: RequestPass = {
  name: "route",
  run(ctx) {
    const { req, exchange, proxy } = ctx;
    const path = ctx.path!;
    const match = proxy.route(req.headers.host, path);
    if (!match) return { kind: "no-route", host: req.headers.host ?? "", path };
    ctx.route = exchange.route = match;
    return undefined;
  },
};

/** Whether `path` is under one of `prefixes` (whole segments, as routes match). */
function underAny(path: string, prefixes: readonly string[]): boolean {
  return prefixes.some((prefix) => path.startsWith(prefix) && (path.length === prefix.length || path[prefix.length] === "/"));
}

/**
 * `proxy.https_redirect`: a request on a plain listener is sent to the same
 * host, path and query over HTTPS — except under the `except` prefixes
 * (ACME's HTTP-01 challenges). The Host passed the head rules' syntax check
 * (RFC 9110: a name or address and a port), so the Location's authority is
 * the client's own and nothing more; a request without one (HTTP/1.0) gets
 * 400 rather than a Location made up from our own address.
 */
const httpsRedirect: RequestPass = {
  name: "https redirect",
  run(ctx) {
    const { req, proxy } = ctx;
    const settings = proxy.httpsRedirect;
    // `OPTIONS *` (RFC 9112 §3.2.4) asks about the server, at no path: there is nothing to redirect.
    if (!settings || (req.socket as { encrypted?: boolean }).encrypted || ctx.path === "*" || underAny(ctx.path!, settings.except)) return undefined;
    const host = req.headers.host;
    if (!host) return { kind: "bad-head", status: 400, reason: "a request without Host cannot be redirected to HTTPS" };
    return { kind: "redirect", status: settings.status, location: httpsLocation(host, settings.port, req.url ?? "/") };
  },
};

/** A `redirect` app's redirect, or the other form of a path under `trailing_slash`: answered before any limit, body or worker. */
const proxyAnswers: RequestPass = {
  name: "proxy answers",
  run(ctx) {
    const { req, route } = ctx;
    const answers = ctx.proxy.answersOf?.(route!.app);
    if (!answers) return undefined;
    // `OPTIONS *` has no path to redirect or to give a slash: nginx refuses it (400); a redirect app, whose only
    // answer is a Location, does the same, and trailing_slash leaves it to the worker.
    if (ctx.path === "*") return answers.redirect ? { kind: "bad-head", status: 400, reason: "OPTIONS * has no path to redirect" } : undefined;
    const query = queryOf(req.url ?? "/");
    if (answers.redirect) {
      return { kind: "redirect", status: answers.redirect.status, location: redirectLocation(answers.redirect, route!.mount, ctx.path!, query) };
    }
    const other = answers.trailingSlash && trailingSlashPath(answers.trailingSlash, ctx.path!);
    return other === undefined ? undefined : { kind: "redirect", status: TRAILING_SLASH_STATUS, location: sameHostLocation(other, query) };
  },
};

/** TRACE echoes the request back, cookies and credentials included: only for an app that asked for it (405 otherwise). */
const method: RequestPass = {
  name: "method",
  run({ req, proxy, route }) {
    if (req.method !== "TRACE" || proxy.allowsTrace(route!.app)) return undefined;
    return { kind: "bad-head", ...headProblem(req)! };
  },
};

/** An app served from a folder answers no upgrade: as far as WebSockets go, nothing is routed there. */
const noUpgradeToFolder: RequestPass = {
  name: "no upgrade to a folder",
  run(ctx) {
    if (ctx.proxy.staticRoot(ctx.route!.app) === undefined) return undefined;
    return { kind: "no-route", host: ctx.req.headers.host ?? "", path: ctx.path! };
  },
};

const routeToWorkers: RequestPass = {
  name: "route to workers",
  run(ctx) {
    return (route.run(ctx) as PassResult) ?? noUpgradeToFolder.run(ctx);
  },
};

/** nginx's status for a client that closed the connection before it was answered. */
const CLIENT_CLOSED_REQUEST = 499;

/**
 * The app's limits per client address (issue #13), in nginx's order:
 * limit_req first (refused, or delayed to the rate), then limit_conn, counted
 * from the end of any delay until the response ends (a WebSocket: until its
 * tunnel closes). Before the static pass, so a static app is limited too.
 */
const clientLimits: RequestPass = {
  name: "client limits",
  run(ctx) {
    const limiters = ctx.proxy.limiters(ctx.route!.app);
    if (limiters === undefined) return undefined;
    const client = ctx.proxy.clientOf(ctx.req);
    const rate = limiters.rate;
    if (rate) {
      const verdict = rate.take(client);
      if (!verdict.ok) return { kind: "rate-limited", app: ctx.route!.app, status: rate.status, retryAfterS: Math.max(1, Math.ceil(verdict.retryAfterMs / 1000)) };
      if (verdict.delayMs > 0) return afterDelay(ctx, verdict.delayMs, () => inFlightLimit(ctx, limiters, client));
    }
    return inFlightLimit(ctx, limiters, client);
  },
};

function inFlightLimit(ctx: RequestContext, limiters: AppLimiters, client: string): PassResult {
  const conn = limiters.conn;
  if (!conn) return undefined;
  const leave = conn.enter(client);
  if (!leave) return { kind: "conn-limited", app: ctx.route!.app, status: conn.status };
  // A response's 'close' comes when it has ended or its connection closed; an upgrade has only its socket.
  (ctx.res ?? ctx.req.socket).once("close", leave);
  return undefined;
}

/** A request over the rate but within the burst waits its turn; a client that leaves meanwhile is logged 499. */
function afterDelay(ctx: RequestContext, ms: number, then: () => PassResult): Promise<PassResult> {
  return new Promise((resolve) => {
    setTimeout(() => {
      if (!ctx.req.socket.destroyed) return resolve(then());
      ctx.exchange.end(CLIENT_CLOSED_REQUEST);
      resolve(HANDLED);
    }, ms);
  });
}

const staticFolder: RequestPass = {
  name: "static",
  run({ req, res, exchange, proxy, route }) {
    const root = proxy.staticRoot(route!.app);
    if (root === undefined || !res) return undefined;
    res.setHeader("X-Request-Id", exchange.requestId);
    const app = route!.app;
    // The app's `headers`, set before the file server writes its own (validate keeps the names it sets per file out of them).
    const extra = proxy.headersOf?.(app);
    if (extra) for (const [name, value] of Object.entries(extra.record)) res.setHeader(name, value);
    void serveStatic(req, res, root, route!.mount, proxy.compression?.(app), proxy.errorPages?.(app), proxy.staticSite?.(app)).then(({ status, bytes }) => {
      exchange.bytes = bytes;
      exchange.end(status);
    });
    return HANDLED;
  },
};

const bodyLimit: RequestPass = {
  name: "body limit",
  run({ req, proxy }) {
    // Refused on its Content-Length alone: no worker sees a byte of it.
    if (!declaredTooLarge(req, proxy.clientMaxBodySize)) return undefined;
    return { kind: "body-too-large", limit: proxy.clientMaxBodySize, declared: true };
  },
};

const bodyPace: RequestPass = {
  name: "body pace",
  run(ctx) {
    const { req, proxy } = ctx;
    if (!isChunked(req) && !(Number(req.headers["content-length"] ?? 0) > 0)) return undefined;
    const ms = proxy.bodyTimeoutMs;
    ctx.stopWatching = watchBodyPace(req, ms, () => proxy.bodyStalled(ctx, { kind: "body-stalled", ms }));
    return undefined;
  },
};

/** A chunked body is read whole first: no worker sees a body whose framing or size turns out wrong. */
const chunkedBody: RequestPass = {
  name: "chunked body",
  run(ctx) {
    if (!isChunked(ctx.req)) return undefined;
    return readChunkedBody(ctx.req, ctx.proxy.clientMaxBodySize).then(
      (body): PassResult => {
        ctx.body = body;
        return undefined;
      },
      (error: Error): Refusal =>
        error instanceof BodyTooLarge ? { kind: "body-too-large", limit: error.limit, declared: false } : { kind: "bad-body-framing" },
    );
  },
};

const select: RequestPass = {
  name: "select",
  run(ctx) {
    const app = ctx.route!.app;
    ctx.endpoint = ctx.proxy.choose(app, ctx.req);
    return ctx.endpoint ? undefined : { kind: "no-ready-worker", app };
  },
};

export const WEB_PASSES: readonly RequestPass[] = [headRules, route, method, clientLimits, staticFolder, bodyLimit, bodyPace, chunkedBody, select];
export const UPGRADE_PASSES: readonly RequestPass[] = [headRules, routeToWorkers, clientLimits, select];

/** The passes a configuration adds: each only when some part of the config asks for it. */
export interface PassFeatures {
  /** `proxy.https_redirect` is on. */
  httpsRedirect: boolean;
  /** Some app is a `redirect` app or has a `trailing_slash`. */
  proxyAnswers: boolean;
}

/**
 * The request and upgrade passes for a configuration: the base lists when
 * it asks for neither redirect, else with `https redirect` after the head
 * rules and `proxy answers` right after the route (an upgrade asking a
 * redirect app is answered its redirect, not a 404).
 */
export function passesFor(features: PassFeatures): { web: readonly RequestPass[]; upgrade: readonly RequestPass[] } {
  if (!features.httpsRedirect && !features.proxyAnswers) return { web: WEB_PASSES, upgrade: UPGRADE_PASSES };
  const https = features.httpsRedirect ? [httpsRedirect] : [];
  const answers = features.proxyAnswers ? [proxyAnswers] : [];
  return {
    web: [headRules, ...https, route, method, ...answers, clientLimits, staticFolder, bodyLimit, bodyPace, chunkedBody, select],
    upgrade: [headRules, ...https, route, ...answers, noUpgradeToFolder, clientLimits, select],
  };
}

/** Runs `passes` in order from `from` until one refuses or handles the request; synchronous until a pass returns a promise. */
export function runPasses(passes: readonly RequestPass[], ctx: RequestContext, from = 0): PassResult | Promise<PassResult> {
  for (let i = from; i < passes.length; i++) {
    const result = passes[i]!.run(ctx);
    if (result instanceof Promise) return result.then((settled) => (settled === undefined ? runPasses(passes, ctx, i + 1) : settled));
    if (result !== undefined) return result;
  }
  return undefined;
}
