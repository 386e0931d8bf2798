/**
 * @module gateway/http/server
 *
 * The worker's HTTP/1.1 listener: node:http (llhttp in strict mode — never the
 * insecure parser, which admits request smuggling) in front of the TSGI
 * node adapter. What this file adds is the worker's side of the connection
 * lifecycle: every request is registered in the worker's InFlight set; while
 * the worker is leaving, responses go out with `Connection: close`, and once
 * its listener is closed each connection is closed as soon as it falls idle.
 *
 * HTTP upgrades (WebSocket) go to the app's upgrade handler when it has one
 * (gateway/load-app.ts): node:http's 'upgrade' event, with the request put
 * under the mount point as the node adapter does for requests. The handshake
 * counts as a request (--max-requests, and --timeout while the handler is
 * still at it); the connection it leaves behind is no request at all, and is
 * kept in UpgradedConnections for graceful stop. Without a handler node:http
 * hands an upgrade request to the app as a plain request, as Gunicorn does:
 * the app answers it, and the client sees that no upgrade happened.
 */
import http, { STATUS_CODES } from "node:http";
import { adoptTarget, closeIfDraining, guardFrontDoor, isClosing, markClosing } from "../../http/front-door.ts";
import { type HeadProblem, headProblem, normalizeTarget } from "../../http/request-rules.ts";
import type { Duplex } from "node:stream";
import type { TsgiApp, ErrorStream, Environ, InputStream } from "../../tsgi/types.ts";
import type { RunOutcome } from "../../tsgi/handler.ts";
import { toNodeListener } from "../../tsgi/adapters/node-http.ts";
import { forwardedPrefix, fullTarget, routedTarget } from "../../tsgi/adapters/conn-info.ts";
import { baseEnviron, EnvironError, requestEnviron } from "../../tsgi/environ.ts";
import type { InFlight, InFlightRequest } from "../in-flight.ts";
import type { UpgradeHandler } from "../load-app.ts";

export interface HttpServerOptions {
  errors: ErrorStream;
  inFlight: InFlight;
  /** True when this worker is one of several serving the same app. */
  multiprocess: boolean;
  /** The mount point the app is served under (SCRIPT_NAME). */
  scriptName?: string;
  /**
   * Take SCRIPT_NAME from this request header (our front proxy's
   * SCRIPT_NAME_HEADER, contract/script-name.ts). Only for a worker that nothing but the proxy can
   * reach (its unix socket in the state dir): any client could send it.
   */
  scriptNameHeader?: string;
  /** Let TRACE reach the app; refused with 405 otherwise (http/request-rules.ts). */
  allowTrace?: boolean;
  /** How long an idle keep-alive connection stays open (ms). Behind a proxy, keep it above the proxy's idle timeout. */
  keepAliveTimeout: number;
  onResponse?: (environ: Environ | undefined, outcome: RunOutcome) => void;
  /** The app's upgrade handler; without one an upgrade request is a plain request to the app. */
  upgrade?: UpgradeHandler;
  /** Where upgraded connections are kept for graceful stop (the worker's, shared by its listeners). */
  upgraded?: UpgradedConnections;
}

/**
 * The connections a worker handed to its app's upgrade handler, for as long
 * as they stay open. Once upgraded, a connection is no longer an HTTP request:
 * no --timeout applies to it (a WebSocket may rightly stay open for hours),
 * and no HTTP response can carry `Connection: close`. A graceful stop waits
 * for these like for requests, up to the graceful timeout, then destroys them.
 */
export class UpgradedConnections {
  private readonly sockets = new Set<Duplex>();
  private emptyWaiters: Array<() => void> = [];

  get size(): number {
    return this.sockets.size;
  }

  add(socket: Duplex): void {
    if (socket.destroyed || this.sockets.has(socket)) return;
    this.sockets.add(socket);
    socket.once("close", () => {
      this.sockets.delete(socket);
      if (this.sockets.size > 0) return;
      const waiters = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const resolve of waiters) resolve();
    });
  }

  /** Resolves once every upgraded connection has closed. */
  whenEmpty(): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  destroyAll(): void {
    for (const socket of [...this.sockets]) socket.destroy();
  }
}

/** SCRIPT_NAME from a trusted header when it holds a path, else the static mount point. */
function mountFromHeader(header: string, fallback: string | undefined): (req: http.IncomingMessage) => string | undefined {
  return (req) => {
    const value = req.headers[header];
    return typeof value === "string" && value.startsWith("/") ? value : fallback;
  };
}

const RECORD = Symbol("tsgi in-flight record");
type TrackedResponse = http.ServerResponse & { [RECORD]?: InFlightRequest };

/** One HTTP request in the worker's in-flight set. A class, so that no closures are made per request. */
class HttpRequestRecord implements InFlightRequest {
  readonly startedAt = Date.now();

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
  ) {}

  get method(): string {
    return this.req.method ?? "GET";
  }

  get target(): string {
    return this.req.url ?? "/";
  }

  abort(): void {
    this.res.destroy();
  }

  closeAfterResponse(): void {
    // Before the head is out this becomes "Connection: close"; after it, the idle sweep closes the socket.
    if (!this.res.headersSent) this.res.shouldKeepAlive = false;
  }
}

/** An upgrade handshake in the worker's in-flight set: from the request's arrival until the handler is done with it. */
class UpgradeRecord implements InFlightRequest {
  readonly startedAt = Date.now();
  readonly method: string;
  /** The target as it arrived (before mounting rewrites `req.url`), for the --timeout warning. */
  readonly target: string;

  constructor(
    req: http.IncomingMessage,
    private readonly socket: Duplex,
  ) {
    this.method = req.method ?? "GET";
    this.target = req.url ?? "/";
  }

  abort(): void {
    this.socket.destroy();
  }

  closeAfterResponse(): void {
    // An upgraded connection carries no more HTTP responses to mark; graceful stop waits for it instead.
  }
}

/** Base of the throwaway environ that splits an upgrade request's path at the mount point. */
const MOUNT_BASE = baseEnviron({ serverName: "", serverPort: 0, errors: { write: () => undefined } });
const NO_INPUT: InputStream = { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }) };

/**
 * Puts an upgrade request under the mount point the way the node adapter
 * (tsgi/adapters/node-listener.ts) presents a mounted request, so that one set
 * of routes serves both: `req.url` is the path below the mount plus the query,
 * `req.originalUrl` the full target, `req.baseUrl` and the
 * `X-Forwarded-Prefix` header the mount. The path is split by the same rules
 * as SCRIPT_NAME (tsgi/environ.ts). A request outside the mount, or with no
 * mount, is left as it came. Throws EnvironError for an undecodable path.
 */
function mountUpgrade(req: http.IncomingMessage, scriptName: string | undefined): void {
  if (!scriptName) return;
  const head = { method: req.method ?? "GET", target: req.url ?? "/", protocol: "HTTP/1.1", rawHeaders: [], remoteAddr: "", scriptName };
  const environ = requestEnviron(MOUNT_BASE, head, NO_INPUT);
  const prefix = forwardedPrefix(environ);
  if (prefix === undefined) return;
  req.url = routedTarget(environ);
  Object.assign(req, { originalUrl: fullTarget(environ), baseUrl: prefix });
  req.headers["x-forwarded-prefix"] = prefix;
  const raw: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() !== "x-forwarded-prefix") raw.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  }
  req.rawHeaders = [...raw, "X-Forwarded-Prefix", prefix];
}

/** A request the front door's rules refuse: its status and why, then the connection closes (but after a 405, whose head was fine). */
function refuseHead(res: http.ServerResponse, problem: HeadProblem): void {
  const body = `${STATUS_CODES[problem.status]}: ${problem.reason}\n`;
  const close = problem.status !== 405;
  if (close) markClosing(res.socket);
  res.writeHead(problem.status, {
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
    ...(problem.allow ? { Allow: problem.allow } : {}),
    ...(close ? { Connection: "close" } : {}),
  });
  res.end(body);
}

/** A plain HTTP answer on a connection node:http has let go of, then close. */
function refuse(socket: Duplex, status: string, extra = ""): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n${extra}Content-Length: 0\r\n\r\n`);
}

const ignore = () => undefined;
const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  value != null && typeof (value as { then?: unknown }).then === "function";

/** Logs an upgrade handler's failure; answers 500 if it had written nothing, else drops the connection. */
function upgradeFailed(error: unknown, record: UpgradeRecord, socket: Duplex, errors: ErrorStream): void {
  try {
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    errors.write(`tsgi: error in upgrade handler while handling ${record.method} ${record.target}: ${detail}\n`);
  } catch {
    // The error log itself failed: the connection still gets its answer.
  }
  const written = (socket as Duplex & { bytesWritten?: number }).bytesWritten ?? 0;
  if (written === 0) refuse(socket, "500 Internal Server Error");
  else socket.destroy();
}

export function createHttpServer(app: TsgiApp, options: HttpServerOptions): http.Server {
  const scriptName = options.scriptNameHeader ? mountFromHeader(options.scriptNameHeader.toLowerCase(), options.scriptName) : options.scriptName;
  const listener = toNodeListener(app, {
    errors: options.errors,
    multiprocess: options.multiprocess,
    scriptName,
    onResponse: options.onResponse && ((environ, outcome) => options.onResponse!(environ, outcome)),
  });
  // requireHostHeader off: our rules refuse a missing Host and close before any pipelined request (see proxy/listener.ts).
  const server = http.createServer({ keepAliveTimeout: options.keepAliveTimeout, insecureHTTPParser: false, requireHostHeader: false });
  const { inFlight } = options;

  const sweepIdle = () => server.closeIdleConnections();
  // One listener function for every response (no closure per request): the record rides on the response.
  function onResponseClose(this: http.ServerResponse): void {
    inFlight.end((this as TrackedResponse)[RECORD]!);
    // Once the listener is closed (graceful stop), a connection that falls idle is closed at once.
    // Not before: a retiring worker still serves new connections while its replacement boots.
    if (!server.listening) setImmediate(sweepIdle);
  }

  function track(req: http.IncomingMessage, res: http.ServerResponse): void {
    const record = new HttpRequestRecord(req, res);
    (res as TrackedResponse)[RECORD] = record;
    inFlight.begin(record);
    res.once("close", onResponseClose);
  }

  const rules = { allowTrace: options.allowTrace === true };
  /** The front door's rules (http/request-rules.ts), before the app sees the request: false when it was refused. */
  function admitted(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (isClosing(req.socket)) {
      // A request before it on this connection was refused: nothing after it is trusted.
      res.destroy();
      return false;
    }
    const problem = headProblem(req, rules);
    if (problem) {
      refuseHead(res, problem);
      return false;
    }
    adoptTarget(req, normalizeTarget(req.url ?? "/"));
    return true;
  }

  function serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    // A pipelined request waits until the one before it is answered (node hands its response the socket
    // then), as nginx and our proxy do: the app sees a connection's requests one at a time, and a graceful
    // stop that comes meanwhile can still make its response the connection's last.
    if (!res.socket) {
      res.once("socket", () => serve(req, res));
      return;
    }
    closeIfDraining(res);
    if (admitted(req, res)) listener(req, res);
  }

  server.on("request", (req, res) => {
    track(req, res);
    serve(req, res);
  });
  server.on("checkContinue", (req, res) => {
    closeIfDraining(res);
    track(req, res);
    if (admitted(req, res)) listener.serveContinue(req, res);
  });
  // Malformed HTTP, CONNECT, and Connection: close while draining, as the proxy's listener does them.
  guardFrontDoor(server);

  const { upgrade } = options;
  if (!upgrade) return server;
  const upgraded = options.upgraded ?? new UpgradedConnections();
  const mountOf = typeof scriptName === "function" ? scriptName : () => scriptName;
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // node:http has taken its own listeners off the socket: a client that resets is leaving, not an error (an
    // unhandled 'error' would end the worker).
    socket.on("error", ignore);
    const problem = headProblem(req, rules);
    if (problem) {
      refuse(socket, `${problem.status} ${STATUS_CODES[problem.status]}`);
      return;
    }
    adoptTarget(req, normalizeTarget(req.url ?? "/"));
    if (!server.listening) {
      // Only a kept-alive connection can ask this of a stopping worker: a new WebSocket would just be cut at the
      // graceful timeout, so the client is sent to try again (behind the proxy, on another worker).
      refuse(socket, "503 Service Unavailable", "Retry-After: 1\r\n");
      return;
    }
    const record = new UpgradeRecord(req, socket);
    // Counts toward --max-requests like any request (which may start the worker's stop: it still takes this one).
    inFlight.begin(record);
    upgraded.add(socket);
    const done = () => inFlight.end(record);
    // A connection that closes mid-handshake (the client left, or --timeout dropped it) ends the handshake too.
    socket.once("close", done);
    try {
      mountUpgrade(req, mountOf(req));
    } catch (error) {
      if (!(error instanceof EnvironError)) throw error;
      refuse(socket, "400 Bad Request");
      return done();
    }
    let result: unknown;
    try {
      result = upgrade(req, socket, head);
    } catch (error) {
      upgradeFailed(error, record, socket, options.errors);
      return done();
    }
    // A handler that returns a Promise (an async verifyClient, say) is mid-handshake until it settles.
    if (isThenable(result)) {
      result.then(done, (error: unknown) => {
        upgradeFailed(error, record, socket, options.errors);
        done();
      });
    } else done();
  });
  return server;
}
