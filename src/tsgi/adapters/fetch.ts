/**
 * @module tsgi/adapters/fetch
 *
 * The Fetch-API adapters, both directions:
 *
 * - `fromFetchHandler(handler)` runs a `(Request) => Response` handler (Hono's
 *   `app.fetch`, itty-router, any WinterTC-style handler) unchanged as a TSGI
 *   app: a Request rebuilt from the environ (the body streamed from
 *   `tsgi.input` on demand), the Response's status, headers (every Set-Cookie)
 *   and streamed body handed back, and the client going away (close() before
 *   the end) passed on as a cancelled body and an aborted `request.signal`.
 *   The Request URL is relative to the mount (scheme, host, PATH_INFO, query),
 *   so the handler's routes work under any SCRIPT_NAME; the mount point is in
 *   the `X-Forwarded-Prefix` header and in the environ, the handler's second
 *   argument (Hono: `c.env.SCRIPT_NAME`).
 * - `toFetchHandler(app)` serves a TSGI app wherever a Fetch handler goes
 *   (Deno.serve, Bun.serve, Workers, @hono/node-server): the environ built by
 *   the two-stage builder, the body driven through tsgi/handler into a
 *   ReadableStream whose pulls are the back-pressure and whose cancel is the
 *   client leaving. The Response resolves as soon as the head is sent.
 *
 * Types in, types out: the response rules live in tsgi/handler. Not for HTTP
 * upgrades (a Response cannot carry a 101) or trailers.
 */
import type { Environ, ErrorStream, HeaderList, InputStream, ResponseBody, TsgiApp } from "../types.ts";
import { baseEnviron, EnvironError, requestEnviron } from "../environ.ts";
import { ClientAwareSink, type ResponseSink, runApp } from "../handler.ts";
import { isHopByHop, reasonPhrase, statusHasNoBody, statusLine } from "../util.ts";
import { type ConnInfo, environHasBody, frameworkHeaders, routedTarget } from "./conn-info.ts";

/** A Fetch handler as `fromFetchHandler` calls it: the environ comes second (Hono apps see it as `c.env`). */
export type FetchHandler = (request: Request, environ: Environ) => Response | Promise<Response>;

export interface ToFetchHandlerOptions<Context extends unknown[] = unknown[]> {
  /** Where app errors and the app's own `tsgi.errors` writes go (default: process.stderr). */
  errors?: ErrorStream;
  /** The mount point, moved from the path into SCRIPT_NAME; or a function choosing it per request. */
  scriptName?: string | ((request: Request) => string | undefined);
  multiprocess?: boolean;
  /**
   * The peer, for REMOTE_ADDR/REMOTE_PORT: a Request does not carry it, the
   * runtime does (Deno's `info.remoteAddr`, Bun's `server.requestIP(req)`),
   * and passes it after the Request. Default: REMOTE_ADDR "".
   */
  connInfo?: (request: Request, ...context: Context) => Partial<ConnInfo> | undefined;
  /** Response bytes queued ahead of the reader before the app is paused (default 16 KiB, Node's stream default). */
  highWaterMark?: number;
}

const DEFAULT_HIGH_WATER_MARK = 16 * 1024;
const stderrStream: ErrorStream = { write: (message) => void process.stderr.write(message) };
const EMPTY_INPUT: InputStream = { async *[Symbol.asyncIterator]() {} };

// ---------------------------------------------------------------------------
// Shared: reading a web ReadableStream as TSGI reads bodies

/** An iterator over a ReadableStream; stopping early cancels the stream. */
function readerIterator<T>(stream: ReadableStream<T>, onCancel: () => void = () => {}): AsyncIterator<T, undefined> {
  const reader = stream.getReader();
  let done = false;
  return {
    async next() {
      if (done) return { done: true, value: undefined };
      try {
        const step = await reader.read();
        if (!step.done) return { done: false, value: step.value };
      } catch (error) {
        done = true;
        throw error;
      }
      done = true;
      return { done: true, value: undefined };
    },
    async return() {
      if (!done) {
        done = true;
        onCancel();
        await reader.cancel().catch(() => undefined); // a stream failing as it is cancelled changes nothing
      }
      return { done: true, value: undefined };
    },
  };
}

// ---------------------------------------------------------------------------
// fromFetchHandler: environ -> Request, Response -> TSGI

/**
 * `tsgi.input` as a request body stream. highWaterMark 0: nothing is read
 * until the handler reads, so `Expect: 100-continue` is still answered only
 * when the app wants the body.
 */
function inputStream(input: InputStream): ReadableStream<Uint8Array> {
  let iterator: AsyncIterator<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        iterator ??= input[Symbol.asyncIterator]();
        const step = await iterator.next();
        if (step.done) controller.close();
        else controller.enqueue(step.value);
      },
      async cancel() {
        await iterator?.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}

function environRequest(environ: Environ, url: string, signal: AbortSignal): Request {
  const method = environ.REQUEST_METHOD;
  const init: RequestInit & { duplex?: "half" } = { method, headers: frameworkHeaders(environ), signal };
  // GET and HEAD may not have a body in a Request; others get one only when the environ announces it.
  if (method !== "GET" && method !== "HEAD" && environHasBody(environ)) {
    init.body = inputStream(environ["tsgi.input"]);
    init.duplex = "half"; // required by undici for a streamed body
  }
  return new Request(url, init);
}

function isResponse(value: unknown): value is Response {
  return (
    value != null &&
    typeof (value as Response).status === "number" &&
    typeof (value as Response).headers?.getSetCookie === "function"
  );
}

/** The Response's headers as TSGI wants them: one entry per Set-Cookie, hop-by-hop ones dropped. */
function fetchResponseHeaders(headers: Headers): HeaderList {
  const list: HeaderList = [];
  headers.forEach((value, name) => {
    if (name !== "set-cookie" && !isHopByHop(name)) list.push([name, value]);
  });
  for (const cookie of headers.getSetCookie()) list.push(["set-cookie", cookie]);
  return list;
}

/** The Response body as a TSGI body; close() before the end cancels the stream and aborts `request.signal`. */
function fetchResponseBody(response: Response, abort: AbortController): ResponseBody {
  if (!response.body) return [];
  const iterator = readerIterator(response.body, () => abort.abort());
  return { [Symbol.asyncIterator]: () => iterator, close: () => iterator.return!().then(() => undefined) };
}

/**
 * The Request URL: the scheme and host of URL reconstruction, and the target
 * relative to the mount (PATH_INFO and the query), which is what the handler
 * routes on.
 */
function handlerUrl(environ: Environ): string {
  const scheme = environ["tsgi.url_scheme"];
  const defaultPort = scheme === "https" ? "443" : "80";
  const name = environ.SERVER_NAME.includes(":") ? `[${environ.SERVER_NAME}]` : environ.SERVER_NAME; // IPv6
  const host = environ.HTTP_HOST ?? (environ.SERVER_PORT === defaultPort ? name : `${name}:${environ.SERVER_PORT}`);
  return `${scheme}://${host}${routedTarget(environ)}`;
}

/** Serves a Fetch handler as a TSGI app. */
export function fromFetchHandler(handler: FetchHandler): TsgiApp {
  return async (environ, startResponse) => {
    const url = handlerUrl(environ);
    // The Host header is the client's: a URL that does not parse is its mistake, not the app's.
    if (!URL.canParse(url)) {
      startResponse(statusLine(400), [["Content-Type", "text/plain; charset=utf-8"]]);
      return [`cannot build a request URL from ${JSON.stringify(url)}\n`];
    }
    const abort = new AbortController();
    const response: unknown = await handler(environRequest(environ, url, abort.signal), environ);
    if (!isResponse(response)) {
      throw new TypeError(`the Fetch handler must return a Response, got ${response === null ? "null" : typeof response}`);
    }
    const status = response.statusText ? `${response.status} ${response.statusText}` : statusLine(response.status);
    startResponse(status, fetchResponseHeaders(response.headers));
    return fetchResponseBody(response, abort);
  };
}

// ---------------------------------------------------------------------------
// toFetchHandler: Request -> environ, TSGI -> Response

/**
 * The request headers as `rawHeaders`, plus the two a Request leaves out: Host
 * (the URL carries the authority) and, for a body of unknown length,
 * `Transfer-Encoding: chunked` — how HTTP/1.1 announces such a body, and what
 * apps and body parsers look for (a Request never states its own length).
 */
function fetchRawHeaders(request: Request, url: URL): string[] {
  const raw: string[] = [];
  if (!request.headers.has("host")) raw.push("host", url.host);
  request.headers.forEach((value, name) => raw.push(name, value));
  const headers = request.headers;
  if (request.body !== null && !headers.has("content-length") && !headers.has("transfer-encoding")) {
    raw.push("transfer-encoding", "chunked");
  }
  return raw;
}

function fetchInput(body: ReadableStream<Uint8Array> | null): InputStream {
  if (!body) return EMPTY_INPUT;
  return { [Symbol.asyncIterator]: () => readerIterator(body) };
}

function fetchEnviron<Context extends unknown[]>(
  request: Request,
  context: Context,
  options: ToFetchHandlerOptions<Context>,
  errors: ErrorStream,
): Environ {
  const url = new URL(request.url);
  const conn = options.connInfo?.(request, ...context) ?? {};
  const urlScheme = conn.urlScheme ?? (url.protocol === "https:" ? "https" : "http");
  const base = baseEnviron({
    serverName: url.hostname,
    serverPort: url.port || (urlScheme === "https" ? 443 : 80),
    urlScheme,
    multiprocess: options.multiprocess,
    errors,
  });
  const scriptName = typeof options.scriptName === "function" ? options.scriptName(request) : options.scriptName;
  return requestEnviron(
    base,
    {
      method: request.method,
      target: url.pathname + url.search,
      // A Request does not say; HTTP/1.1 is what every Fetch runtime's apps assume.
      protocol: "HTTP/1.1",
      rawHeaders: fetchRawHeaders(request, url),
      remoteAddr: conn.remoteAddr ?? "",
      remotePort: conn.remotePort,
      scriptName,
    },
    fetchInput(request.body),
  );
}

/**
 * A ResponseSink feeding a ReadableStream. `write` reports a full queue
 * (desiredSize <= 0); the stream's next `pull` — the reader taking bytes — is
 * the drain. The Response resolves at `sendHead`.
 */
class FetchResponseSink extends ClientAwareSink implements ResponseSink {
  readonly response: Promise<Response>;
  private resolveResponse!: (response: Response) => void;
  private rejectResponse!: (error: unknown) => void;
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  private responded = false;
  private failure: unknown;
  private drainWaiters: Array<() => void> = [];

  constructor(
    private readonly request: Request,
    private readonly highWaterMark: number,
  ) {
    super();
    this.response = new Promise<Response>((resolve, reject) => {
      this.resolveResponse = resolve;
      this.rejectResponse = reject;
    });
    // Runtimes abort request.signal when the client disconnects (Deno, @hono/node-server).
    if (request.signal.aborted) this.markGone();
    else request.signal.addEventListener("abort", () => this.markGone(), { once: true });
  }

  sendHead(code: number, status: string, headers: HeaderList): void {
    // A Response may not carry a body for HEAD, 204 or 304 (the constructor throws).
    const body = this.request.method === "HEAD" || statusHasNoBody(code) ? null : this.bodyStream();
    try {
      const response = new Response(body, { status: code, statusText: reasonPhrase(status), headers });
      this.responded = true;
      this.resolveResponse(response);
    } catch (error) {
      // e.g. a 1xx or a code above 599, which a Response cannot represent.
      this.failure = error;
      throw error;
    }
  }

  write(bytes: Uint8Array): boolean {
    const controller = this.controller;
    if (!controller || this.clientGone) return true;
    controller.enqueue(bytes);
    return (controller.desiredSize ?? 0) > 0;
  }

  drained(): Promise<void> {
    if (this.clientGone || (this.controller?.desiredSize ?? 1) > 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  end(): void {
    if (!this.clientGone) this.controller?.close();
  }

  abort(): void {
    const error = this.failure ?? new Error("the TSGI app failed after the response started");
    if (!this.responded) this.rejectResponse(error);
    else if (!this.clientGone) this.controller?.error(error);
  }

  /** After runApp: a response that never started (the client left first) still settles the promise. */
  settle(): void {
    if (!this.responded) this.rejectResponse(this.failure ?? new Error("the client went away before the response started"));
  }

  private bodyStream(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        pull: () => this.wakeDrainWaiters(),
        cancel: () => this.markGone(),
      },
      new ByteLengthQueuingStrategy({ highWaterMark: this.highWaterMark }),
    );
  }

  private wakeDrainWaiters(): void {
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  private markGone(): void {
    if (this.clientGone) return;
    this.wakeDrainWaiters();
    this.markClientGone();
  }
}

function badRequestResponse(message: string): Response {
  return new Response(`${message}\n`, {
    status: 400,
    statusText: reasonPhrase(statusLine(400)),
    headers: { "Content-Type": "text/plain; charset=utf-8" },
  });
}

/** Serves a TSGI app as a Fetch handler. */
export function toFetchHandler<Context extends unknown[] = unknown[]>(
  app: TsgiApp,
  options: ToFetchHandlerOptions<Context> = {},
): (request: Request, ...context: Context) => Promise<Response> {
  const errors = options.errors ?? stderrStream;
  const highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  return (request, ...context) => {
    let environ: Environ;
    try {
      environ = fetchEnviron(request, context, options, errors);
    } catch (error) {
      if (!(error instanceof EnvironError)) return Promise.reject(error);
      return Promise.resolve(badRequestResponse(error.message));
    }
    const sink = new FetchResponseSink(request, highWaterMark);
    // runApp never throws; it logs app failures to tsgi.errors.
    void runApp(app, environ, sink).then(() => sink.settle());
    return sink.response;
  };
}
