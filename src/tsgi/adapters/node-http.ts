/**
 * @module tsgi/adapters/node-http
 *
 * Serves a TSGI app as a Node `(req, res)` request listener: the gateway
 * worker's HTTP path, and what a user mounts into an existing `node:http`
 * server. It translates types only; the response rules live in tsgi/handler.
 *
 * `Expect: 100-continue` is answered when the app first reads `tsgi.input`
 * (so an app that rejects the request never makes the client upload), which
 * needs the server's 'checkContinue' event routed here: `serveContinue`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Environ, ErrorStream, HeaderList, InputStream, TsgiApp } from "../types.ts";
import { type BaseEnviron, baseEnviron, EnvironError, requestEnviron } from "../environ.ts";
import { ClientAwareSink, drainOrClose, type ResponseSink, type RunOutcome, runApp } from "../handler.ts";
import { statusLine } from "../util.ts";

export interface NodeListenerOptions {
  /** Where app errors and the app's own `tsgi.errors` writes go (default: process.stderr). */
  errors?: ErrorStream;
  /** The mount point, moved from the path into SCRIPT_NAME; or a function choosing it per request. */
  scriptName?: string | ((req: IncomingMessage) => string | undefined);
  urlScheme?: "http" | "https";
  multiprocess?: boolean;
  /** SERVER_NAME / SERVER_PORT; by default the local address of each connection. */
  serverName?: string;
  serverPort?: string | number;
  /** Called after each response, for access logs and counters. */
  onResponse?: (environ: Environ | undefined, outcome: RunOutcome, req: IncomingMessage) => void;
}

/** The listener, plus the handler for the server's 'checkContinue' event. */
export interface TsgiNodeListener {
  (req: IncomingMessage, res: ServerResponse): void;
  serveContinue(req: IncomingMessage, res: ServerResponse): void;
}

/** How long an aborted response may take to flush what was already written before its socket is destroyed. */
const ABORT_FLUSH_MS = 2000;

const stderrStream: ErrorStream = { write: (message) => void process.stderr.write(message) };

/** A ResponseSink over a node ServerResponse. */
class NodeResponseSink extends ClientAwareSink implements ResponseSink {
  constructor(private readonly res: ServerResponse) {
    super();
    res.once("close", () => {
      if (!res.writableFinished) this.markClientGone();
    });
  }

  sendHead(code: number, status: string, headers: HeaderList): void {
    // writeHead takes names and values in one flat list, which keeps repeated headers (Set-Cookie).
    const flat: string[] = [];
    for (const [name, value] of headers) flat.push(name, value);
    this.res.writeHead(code, status.slice(4), flat);
  }

  write(bytes: Uint8Array): boolean {
    return this.res.write(bytes);
  }

  writeText(text: string): boolean {
    return this.res.write(text, "utf8");
  }

  drained(): Promise<void> {
    return drainOrClose(this.res);
  }

  end(): void {
    this.res.end();
  }

  abort(): void {
    // Close the connection without finishing the message: a client sees a body
    // shorter than its Content-Length, or chunks with no last-chunk, and so
    // knows it is broken. Whatever was written is flushed first.
    const socket = this.res.socket;
    if (!socket) {
      this.res.destroy();
      return;
    }
    socket.end();
    setTimeout(() => socket.destroy(), ABORT_FLUSH_MS).unref();
  }
}

/** `tsgi.input` over the request stream; sends 100 Continue on first read when the client waits for it. */
class RequestInput implements InputStream {
  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly expectsContinue: boolean,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.expectsContinue && !this.res.headersSent) this.res.writeContinue();
    return this.req[Symbol.asyncIterator]();
  }
}

function badRequest(res: ServerResponse, message: string): void {
  const body = `${message}\n`;
  res.writeHead(400, statusLine(400).slice(4), {
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
    Connection: "close",
  });
  res.end(body);
}

/** Serves `app` as a Node request listener. */
export function toNodeListener(app: TsgiApp, options: NodeListenerOptions = {}): TsgiNodeListener {
  const errors = options.errors ?? stderrStream;
  const fixedBase =
    options.serverName !== undefined && options.serverPort !== undefined
      ? baseEnviron({ ...options, serverName: options.serverName, serverPort: options.serverPort, errors })
      : undefined;
  const bases = new Map<string, BaseEnviron>();
  // Requests on one kept-alive connection share their local address: look it up once per connection.
  const basePerSocket = new WeakMap<object, BaseEnviron>();

  function baseFor(req: IncomingMessage): BaseEnviron {
    if (fixedBase) return fixedBase;
    let base = basePerSocket.get(req.socket);
    if (!base) {
      base = baseForAddress(req);
      basePerSocket.set(req.socket, base);
    }
    return base;
  }

  function baseForAddress(req: IncomingMessage): BaseEnviron {
    const name = req.socket.localAddress ?? "localhost";
    const port = req.socket.localPort ?? 0;
    const key = `${name}|${port}|${(req.socket as { encrypted?: boolean }).encrypted ? "s" : ""}`;
    let base = bases.get(key);
    if (!base) {
      const urlScheme = options.urlScheme ?? ((req.socket as { encrypted?: boolean }).encrypted ? "https" : "http");
      base = baseEnviron({ ...options, serverName: name, serverPort: port, urlScheme, errors });
      bases.set(key, base);
    }
    return base;
  }

  function handle(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    let environ: Environ;
    try {
      const scriptName = typeof options.scriptName === "function" ? options.scriptName(req) : options.scriptName;
      environ = requestEnviron(
        baseFor(req),
        {
          method: req.method ?? "GET",
          target: req.url ?? "/",
          protocol: `HTTP/${req.httpVersion}`,
          rawHeaders: req.rawHeaders,
          remoteAddr: req.socket.remoteAddress ?? "",
          remotePort: req.socket.remotePort,
          scriptName,
        },
        new RequestInput(req, res, expectsContinue),
      );
    } catch (error) {
      if (!(error instanceof EnvironError)) throw error;
      badRequest(res, error.message);
      options.onResponse?.(undefined, { code: 400, bytes: 0, clientGone: false }, req);
      return;
    }
    const run = runApp(app, environ, new NodeResponseSink(res));
    if (options.onResponse) void run.then((outcome) => options.onResponse!(environ, outcome, req));
  }

  const listener = ((req: IncomingMessage, res: ServerResponse) => handle(req, res, false)) as TsgiNodeListener;
  listener.serveContinue = (req, res) => handle(req, res, true);
  return listener;
}
