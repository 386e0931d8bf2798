/**
 * @module gateway/http/server
 *
 * The worker's HTTP/1.1 listener: node:http (llhttp in strict mode — never the
 * insecure parser, which admits request smuggling) in front of the TSGI
 * node adapter. What this file adds is the worker's side of the connection
 * lifecycle: every request is registered in the worker's InFlight set; while
 * the worker is leaving, responses go out with `Connection: close`, and once
 * its listener is closed each connection is closed as soon as it falls idle.
 */
import http from "node:http";
import type { TsgiApp, ErrorStream, Environ } from "../../tsgi/types.ts";
import type { RunOutcome } from "../../tsgi/handler.ts";
import { toNodeListener } from "../../tsgi/adapters/node-http.ts";
import type { InFlight, InFlightRequest } from "../in-flight.ts";

export interface HttpServerOptions {
  errors: ErrorStream;
  inFlight: InFlight;
  /** True when this worker is one of several serving the same app. */
  multiprocess: boolean;
  /** The mount point the app is served under (SCRIPT_NAME). */
  scriptName?: string;
  /**
   * Take SCRIPT_NAME from this request header (our front proxy's
   * `x-tsgi-script-name`). Only for a worker that nothing but the proxy can
   * reach (its unix socket in the state dir): any client could send it.
   */
  scriptNameHeader?: string;
  /** How long an idle keep-alive connection stays open (ms). Behind a proxy, keep it above the proxy's idle timeout. */
  keepAliveTimeout: number;
  onResponse?: (environ: Environ | undefined, outcome: RunOutcome) => void;
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

export function createHttpServer(app: TsgiApp, options: HttpServerOptions): http.Server {
  const listener = toNodeListener(app, {
    errors: options.errors,
    multiprocess: options.multiprocess,
    scriptName: options.scriptNameHeader ? mountFromHeader(options.scriptNameHeader.toLowerCase(), options.scriptName) : options.scriptName,
    onResponse: options.onResponse && ((environ, outcome) => options.onResponse!(environ, outcome)),
  });
  const server = http.createServer({ keepAliveTimeout: options.keepAliveTimeout, insecureHTTPParser: false });
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

  server.on("request", (req, res) => {
    track(req, res);
    listener(req, res);
  });
  server.on("checkContinue", (req, res) => {
    track(req, res);
    listener.serveContinue(req, res);
  });
  server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    // Malformed HTTP (llhttp strict): answer 400 and close, as nginx does. A reset is a client leaving, not an error.
    if (error.code === "ECONNRESET" || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = error.code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large" : "400 Bad Request";
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
  return server;
}
