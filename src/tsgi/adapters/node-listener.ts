/**
 * @module tsgi/adapters/node-listener
 *
 * Runs a Node request listener — an Express app, `koaApp.callback()`, a
 * Fastify instance's `routing`, a plain `node:http` handler — unchanged, as a
 * TSGI app: `fromNodeListener(listener)`. The reverse of adapters/node-http.
 *
 * Per request it builds, from the environ, a real `http.IncomingMessage` (url,
 * method, headers, httpVersion; the body pulled from `tsgi.input` as the
 * framework reads it) and a real `http.ServerResponse` whose output methods
 * are replaced so that the head becomes `startResponse` and the body becomes
 * an async iterable with back-pressure (`res.write()` returns false and
 * 'drain' follows when the gateway is behind). Both sit on a socket-shaped
 * stand-in carrying the peer's address and the scheme. The response rules
 * (Content-Length, HEAD, close()) stay in tsgi/handler.
 *
 * Mounting: the framework runs unchanged under any SCRIPT_NAME. `req.url` is
 * PATH_INFO plus the query — what the app's routes are written against, as
 * Express presents `req.url` to an app mounted with `app.use("/mnt", sub)` —
 * and the mount travels beside it the way Connect/Express carry it:
 * `req.originalUrl` is the full target, `req.baseUrl` is SCRIPT_NAME (Express
 * routers start from a preset baseUrl, so nested `use()` prefixes compose
 * onto it), and the `X-Forwarded-Prefix` request header is SCRIPT_NAME.
 * Koa sets `ctx.originalUrl` from `req.url` itself, so there it is relative;
 * Fastify's `request.originalUrl` reads the preset one.
 *
 * Why own properties instead of a subclass: Express 5 `app.handle` does
 * `Object.setPrototypeOf(res, app.response)`, which throws away any subclass
 * prototype; methods set on the instance survive that, and every framework
 * still sees `instanceof http.ServerResponse`.
 *
 * Not for: HTTP upgrades (WebSocket), trailers, or anything that needs the
 * real socket — there is none. `flushHeaders()` marks the head as final, but
 * TSGI sends headers with the first body byte, so an empty flush shows the
 * client nothing yet.
 *
 * Why one file of ~650 lines: the request stand-in, the response methods
 * and the exchange that joins them are three halves of one trick (a real
 * IncomingMessage/ServerResponse pair with no socket); each half only makes
 * sense next to the other two, and nothing outside uses any of them.
 */
import { IncomingMessage, ServerResponse, type OutgoingHttpHeader, type OutgoingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import { Duplex } from "node:stream";
import type { Environ, HeaderList, InputStream, ResponseBody, StartResponse, TsgiApp } from "../types.ts";
import { isHopByHop, statusHasNoBody } from "../util.ts";
import { addressFamily, connInfoOf, forwardedPrefix, frameworkHeaders, fullTarget, routedTarget } from "./conn-info.ts";

/** A Node request listener; a returned Promise (Koa, async handlers) is watched for rejection. */
export type NodeRequestListener = (req: IncomingMessage, res: ServerResponse) => unknown;

export interface FromNodeListenerOptions {
  /**
   * Bytes the response may hold before `res.write()` returns false and the
   * framework waits for 'drain' (default: Node's own, 16 KiB).
   */
  highWaterMark?: number;
}

const environs = new WeakMap<IncomingMessage, Environ>();

/** The environ a request built by `fromNodeListener` came from, for apps that want SCRIPT_NAME or `tsgi.*`. */
export function environOf(req: IncomingMessage): Environ | undefined {
  return environs.get(req);
}

/** Serves a Node request listener as a TSGI app. */
export function fromNodeListener(listener: NodeRequestListener, options: FromNodeListenerOptions = {}): TsgiApp {
  return (environ, startResponse) => new NodeExchange(environ, startResponse, options).run(listener);
}

// ---------------------------------------------------------------------------
// The socket stand-in

/**
 * What frameworks read off `req.socket`: the peer (`remoteAddress`,
 * `remotePort` — Express `req.ip`, Fastify `request.ip`), `encrypted`
 * (present only for https: Express, Koa and Fastify test its truthiness for
 * `req.protocol`), `writable` (Koa's `ctx.writable`), and a 'close' event when
 * the exchange ends early. Nothing is ever read from or written to it.
 */
class EnvironSocket extends Duplex {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remoteFamily: string | undefined;
  readonly localAddress: string;
  readonly localPort: number;
  declare readonly encrypted?: true;

  constructor(environ: Environ) {
    super();
    const conn = connInfoOf(environ);
    this.remoteAddress = conn.remoteAddr || undefined;
    this.remotePort = conn.remotePort;
    this.remoteFamily = conn.remoteAddr ? addressFamily(conn.remoteAddr) : undefined;
    this.localAddress = environ.SERVER_NAME;
    this.localPort = Number(environ.SERVER_PORT) || 0;
    if (conn.urlScheme === "https") Object.defineProperty(this, "encrypted", { value: true, enumerable: true });
  }

  override _read(): void {
    // The request body comes from tsgi.input, through the IncomingMessage.
  }

  override _write(_chunk: unknown, _encoding: string, callback: (error?: Error | null) => void): void {
    callback(); // Nothing should write here; whatever does is dropped, as on a closed connection.
  }

  // Timeouts and TCP options belong to the gateway that owns the real socket.
  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: addressFamily(this.localAddress), port: this.localPort };
  }
}

// ---------------------------------------------------------------------------
// The request

function httpVersion(protocol: string): [major: number, minor: number] {
  const match = /^HTTP\/(\d)(?:\.(\d))?$/.exec(protocol);
  return match ? [Number(match[1]), Number(match[2] ?? 0)] : [1, 1];
}

/** Node's own header parser entry point: fills rawHeaders, headers and headersDistinct the way a real request has them. */
type HeaderLineParser = { _addHeaderLines?(headers: string[], count: number): void };

function setHeaders(req: IncomingMessage, headers: HeaderList): void {
  const raw = headers.flat();
  const parser = req as unknown as HeaderLineParser;
  if (typeof parser._addHeaderLines === "function") {
    parser._addHeaderLines(raw, raw.length);
    return;
  }
  // Some future Node without the internal: the public fields, which is what frameworks read.
  req.rawHeaders = raw;
  req.headers = Object.fromEntries(headers);
}

/**
 * What Node's own `IncomingMessage._read` does on the first read. The
 * constructor sets `readingMore` so that Readable leaves reading to the HTTP
 * parser; without clearing it, a flowing request ('data' listeners, as in
 * body-parser and Fastify) would never ask for the chunk after the first.
 */
function startConsuming(req: IncomingMessage): void {
  const internals = req as unknown as { _readableState: { readingMore: boolean }; _consuming: boolean };
  internals._readableState.readingMore = false;
  internals._consuming = true;
}

/**
 * Pulls `tsgi.input` one chunk per `_read`: Readable calls `_read` again only
 * after a push and while below its high-water mark, so a framework that stops
 * reading stops the upload (back-pressure) instead of buffering it.
 */
function pullFrom(input: InputStream, req: IncomingMessage, onFirstRead: () => void): () => void {
  let iterator: AsyncIterator<Uint8Array> | undefined;
  return () => {
    if (!iterator) {
      onFirstRead();
      startConsuming(req);
      iterator = input[Symbol.asyncIterator]();
    }
    iterator.next().then(
      (step) => {
        if (req.destroyed) return;
        if (step.done) {
          req.complete = true;
          req.push(null);
        } else {
          req.push(step.value);
        }
      },
      (error: unknown) => req.destroy(error instanceof Error ? error : new Error(String(error))),
    );
  };
}

function createRequest(environ: Environ, socket: EnvironSocket, onFirstRead: () => void): IncomingMessage {
  const req = new IncomingMessage(socket as unknown as Socket);
  const [major, minor] = httpVersion(environ.SERVER_PROTOCOL);
  req.httpVersionMajor = major;
  req.httpVersionMinor = minor;
  req.httpVersion = `${major}.${minor}`;
  req.method = environ.REQUEST_METHOD;
  // Relative to the mount: the framework routes on PATH_INFO, as a WSGI app does.
  req.url = routedTarget(environ);
  // Where Connect and Express keep the rest; own properties, so they survive Express swapping the prototype.
  Object.assign(req, { originalUrl: fullTarget(environ), baseUrl: forwardedPrefix(environ) ?? "" });
  setHeaders(req, frameworkHeaders(environ));
  // An own property, like the headers: survives Express swapping the prototype.
  req._read = pullFrom(environ["tsgi.input"], req, onFirstRead);
  environs.set(req, environ);
  return req;
}

/** The error Node gives a request whose connection went away (`abortIncoming`). */
function connectionReset(): Error {
  return Object.assign(new Error("aborted"), { code: "ECONNRESET" });
}

// ---------------------------------------------------------------------------
// The response body: a byte queue between the framework's writes and the gateway's reads

interface QueuedChunk {
  bytes: Uint8Array;
  callback: ((error?: Error | null) => void) | undefined;
}

/**
 * The response body as the gateway sees it: chunks the framework wrote, read
 * one by one by tsgi/handler. `push` reports whether the framework may keep
 * writing; 'drain' is signalled once the gateway took enough. A write's
 * callback runs when the gateway takes that chunk, as Node runs it when the
 * socket takes it.
 */
class BodyQueue {
  private readonly chunks: QueuedChunk[] = [];
  private buffered = 0;
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  needDrain = false;

  constructor(
    private readonly highWaterMark: number,
    private readonly onDrain: () => void,
    private readonly onEnd: () => void,
  ) {}

  get length(): number {
    return this.buffered;
  }

  push(chunk: QueuedChunk): boolean {
    this.chunks.push(chunk);
    this.buffered += chunk.bytes.byteLength;
    this.signal();
    if (this.buffered < this.highWaterMark) return true;
    this.needDrain = true;
    return false;
  }

  end(): void {
    this.ended = true;
    this.signal();
  }

  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const chunk of this.chunks.splice(0)) chunk.callback?.(error);
    this.buffered = 0;
    this.signal();
  }

  async next(): Promise<IteratorResult<Uint8Array, undefined>> {
    for (;;) {
      if (this.failure) throw this.failure;
      const chunk = this.chunks.shift();
      if (chunk) return this.take(chunk);
      if (this.ended) {
        this.onEnd();
        return { done: true, value: undefined };
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private take(chunk: QueuedChunk): IteratorResult<Uint8Array, undefined> {
    this.buffered -= chunk.bytes.byteLength;
    chunk.callback?.(null);
    if (this.needDrain && this.buffered < this.highWaterMark) {
      this.needDrain = false;
      this.onDrain();
    }
    return { done: false, value: chunk.bytes };
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

// ---------------------------------------------------------------------------
// The response

type WriteCallback = (error?: Error | null) => void;
type HeaderArgument = OutgoingHttpHeaders | OutgoingHttpHeader[] | readonly (readonly [string, OutgoingHttpHeader])[];

/** Node's writeHead with the headers already stored: only the status and the reason are passed. */
const nodeWriteHead = ServerResponse.prototype.writeHead as (this: ServerResponse, code: number, reason?: string) => ServerResponse;

function nodeError(code: string, message: string, Type: new (message: string) => Error = Error): Error {
  return Object.assign(new Type(message), { code });
}

function chunkBytes(chunk: unknown, encoding: BufferEncoding | undefined): Uint8Array {
  if (typeof chunk === "string") return Buffer.from(chunk, encoding ?? "utf8");
  if (chunk instanceof Uint8Array) return chunk;
  if (chunk === null) throw nodeError("ERR_STREAM_NULL_VALUES", "May not write null values to stream", TypeError);
  throw nodeError(
    "ERR_INVALID_ARG_TYPE",
    `The "chunk" argument must be of type string or an instance of Buffer or Uint8Array. Received ${typeof chunk}`,
    TypeError,
  );
}

/** `writeHead`'s header argument, stored as if set one by one: a repeated name (Set-Cookie) keeps every value. */
function applyHeaders(res: ServerResponse, headers: HeaderArgument | undefined): void {
  if (!headers) return;
  if (!Array.isArray(headers)) {
    for (const [name, value] of Object.entries(headers as OutgoingHttpHeaders)) {
      if (name && value !== undefined) res.setHeader(name, value);
    }
    return;
  }
  const pairs: Array<[string, OutgoingHttpHeader]> = [];
  if (headers.length > 0 && Array.isArray(headers[0])) {
    for (const [name, value] of headers as Array<[string, OutgoingHttpHeader]>) pairs.push([name, value]);
  } else {
    if (headers.length % 2 !== 0) throw nodeError("ERR_INVALID_ARG_VALUE", "The argument 'headers' is invalid", TypeError);
    for (let i = 0; i < headers.length; i += 2) pairs.push([String(headers[i]), headers[i + 1] as OutgoingHttpHeader]);
  }
  for (const [name] of pairs) res.removeHeader(name);
  for (const [name, value] of pairs) if (name) res.appendHeader(name, value as string | readonly string[]);
}

/** The head as TSGI wants it: hop-by-hop headers dropped (TSGI apps may not set them), arrays split into repeats. */
function responseHeaders(res: ServerResponse): HeaderList {
  const headers: HeaderList = [];
  // getRawHeaderNames (Node >= 15.13) keeps the case the framework used; @types/node 20 omits it.
  for (const name of (res as ServerResponse & { getRawHeaderNames(): string[] }).getRawHeaderNames()) {
    if (isHopByHop(name)) continue;
    const value = res.getHeader(name);
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) headers.push([name, String(item)]);
    else headers.push([name, String(value)]);
  }
  return headers;
}

/**
 * Like Node, a response ended in one go (`res.end(data)` before any write)
 * gets a Content-Length, so the gateway need not fall back to chunked
 * encoding. A HEAD response gets the length its GET would have.
 */
function declareLength(res: ServerResponse, length: number): void {
  if (res.headersSent || res.hasHeader("content-length") || res.hasHeader("transfer-encoding")) return;
  if (statusHasNoBody(res.statusCode)) return;
  res.setHeader("Content-Length", length);
}

/** Replaces the output side of `res` with methods feeding `exchange`; everything else stays Node's. */
function installResponseMethods(res: ServerResponse, exchange: NodeExchange): void {
  const writeHead = (statusCode: number, reason?: string | HeaderArgument, headers?: HeaderArgument): ServerResponse => {
    const [message, extra] = typeof reason === "string" ? [reason, headers] : [undefined, reason];
    if (res.headersSent) throw nodeError("ERR_HTTP_HEADERS_SENT", "Cannot write headers after they are sent to the client");
    applyHeaders(res, extra);
    // Node's own writeHead validates the status and the reason, and marks the headers as sent.
    nodeWriteHead.call(res, statusCode, message);
    exchange.announceHead();
    return res;
  };

  // Through res.writeHead, as Node's _implicitHeader does, so wrappers like on-headers still see it.
  const ensureHead = (): void => {
    if (!res.headersSent) res.writeHead(res.statusCode);
  };

  const writeBytes = (chunk: unknown, encoding: BufferEncoding | undefined, callback: WriteCallback | undefined): boolean => {
    const bytes = chunkBytes(chunk, encoding);
    if (res.destroyed) {
      // As Node: the callback hears of it, the stream does not (a write racing an abort is normal).
      const error = nodeError("ERR_STREAM_DESTROYED", "Cannot call write after a stream was destroyed");
      if (callback) process.nextTick(callback, error);
      return false;
    }
    if (res.writableEnded) {
      // Node also emits 'error', and crashes the process when nobody listens; here only a listener hears it.
      const error = nodeError("ERR_STREAM_WRITE_AFTER_END", "write after end");
      process.nextTick(() => {
        callback?.(error);
        if (res.listenerCount("error") > 0) res.emit("error", error);
      });
      return false;
    }
    ensureHead();
    return exchange.pushBody(bytes, callback);
  };

  const write = (chunk: unknown, encoding?: BufferEncoding | WriteCallback, callback?: WriteCallback): boolean =>
    typeof encoding === "function" ? writeBytes(chunk, undefined, encoding) : writeBytes(chunk, encoding, callback);

  const end = (chunk?: unknown, encoding?: BufferEncoding | WriteCallback, callback?: WriteCallback): ServerResponse => {
    if (typeof chunk === "function") [chunk, encoding, callback] = [undefined, undefined, chunk as WriteCallback];
    else if (typeof encoding === "function") [encoding, callback] = [undefined, encoding];
    if (res.writableEnded) {
      if (chunk != null) writeBytes(chunk, encoding, callback);
      else if (callback) {
        if (res.writableFinished) callback(nodeError("ERR_STREAM_ALREADY_FINISHED", "Cannot call end after a stream was finished"));
        else res.once("finish", callback);
      }
      return res;
    }
    // Straight to writeBytes, never res.write: a wrapper (compression) that replaced res.write calls end itself.
    if (chunk != null) {
      const bytes = chunkBytes(chunk, encoding);
      declareLength(res, bytes.byteLength);
      writeBytes(bytes, undefined, undefined);
    } else {
      ensureHead();
    }
    if (callback) res.once("finish", callback);
    res.finished = true;
    exchange.endBody();
    return res;
  };

  const destroy = (error?: Error): ServerResponse => {
    if (res.destroyed) return res;
    res.destroyed = true;
    exchange.destroyedByApp(error);
    return res;
  };

  Object.assign(res, { writeHead, write, end, destroy, flushHeaders: ensureHead });
  Object.defineProperties(res, {
    writableFinished: { get: () => exchange.state === "finished", configurable: true },
    writableLength: { get: () => exchange.bufferedBytes, configurable: true },
    writableNeedDrain: { get: () => !res.destroyed && !res.writableEnded && exchange.needDrain, configurable: true },
  });
}

function createResponse(req: IncomingMessage, socket: EnvironSocket, exchange: NodeExchange): ServerResponse {
  const res = new ServerResponse(req);
  // The gateway in front adds Date; a second one from here would be a duplicate.
  res.sendDate = false;
  // Not assignSocket(): that would make Node write the head and body into the stand-in.
  (res as { socket: Socket | null }).socket = socket as unknown as Socket;
  installResponseMethods(res, exchange);
  return res;
}

// ---------------------------------------------------------------------------
// One request/response exchange

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
  settled: boolean;
}

function deferred<T>(): Deferred<T> {
  const result = { settled: false } as Deferred<T>;
  result.promise = new Promise<T>((resolve, reject) => {
    result.resolve = (value) => {
      result.settled = true;
      resolve(value);
    };
    result.reject = (error) => {
      result.settled = true;
      reject(error);
    };
  });
  return result;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value != null && typeof (value as PromiseLike<unknown>).then === "function";
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * One request through the listener: owns the fake req/res/socket, turns the
 * head into `startResponse`, and ends in exactly one of two ways — "finished"
 * (the gateway read the whole body: 'finish', then 'close') or "aborted" (the
 * stand-in socket closed first, whoever closed it: the client through close(),
 * the framework through res.destroy(), or a failure — req 'aborted'/'close',
 * res 'close').
 */
class NodeExchange {
  state: "open" | "finished" | "aborted" = "open";
  private readonly socket: EnvironSocket;
  private readonly req: IncomingMessage;
  private readonly res: ServerResponse;
  private readonly queue: BodyQueue;
  private readonly head = deferred<ResponseBody>();
  private abortReason: Error | undefined;
  private requestRead = false;

  constructor(
    private readonly environ: Environ,
    private readonly startResponse: StartResponse,
    options: FromNodeListenerOptions,
  ) {
    this.socket = new EnvironSocket(environ);
    // Frameworks may destroy the socket with an error; the reason is kept, never thrown.
    this.socket.on("error", (error: Error) => (this.abortReason ??= error));
    this.socket.once("close", () => this.onSocketClose());
    this.req = createRequest(environ, this.socket, () => (this.requestRead = true));
    this.res = createResponse(this.req, this.socket, this);
    this.queue = new BodyQueue(
      options.highWaterMark ?? this.res.writableHighWaterMark,
      () => this.res.emit("drain"),
      () => this.onBodyEnd(),
    );
  }

  get bufferedBytes(): number {
    return this.queue.length;
  }

  get needDrain(): boolean {
    return this.queue.needDrain;
  }

  run(listener: NodeRequestListener): Promise<ResponseBody> {
    try {
      const result = listener(this.req, this.res);
      if (isThenable(result)) result.then(undefined, (error: unknown) => this.fail(error));
    } catch (error) {
      this.fail(error);
    }
    return this.head.promise;
  }

  /** The framework sent its head: hand it to TSGI. */
  announceHead(): void {
    if (this.state !== "open" || this.head.settled) return;
    try {
      this.startResponse(`${this.res.statusCode} ${this.res.statusMessage}`, responseHeaders(this.res));
      this.head.resolve(this.body());
    } catch (error) {
      this.fail(error);
    }
  }

  pushBody(bytes: Uint8Array, callback: WriteCallback | undefined): boolean {
    if (bytes.byteLength === 0) {
      if (callback) process.nextTick(callback);
      return !this.queue.needDrain;
    }
    return this.queue.push({ bytes, callback });
  }

  endBody(): void {
    this.queue.end();
  }

  destroyedByApp(error: Error | undefined): void {
    if (this.state !== "open") return;
    this.abortReason ??= error ?? new Error("the app destroyed the response before it ended");
    this.socket.destroy();
  }

  /** The listener threw or rejected: a 500 while the head is unsent (runApp's rule), an aborted response after. */
  private fail(error: unknown): void {
    if (this.state === "finished") {
      this.log(`tsgi: the Node listener failed after its response ended: ${asError(error).stack}\n`);
      return;
    }
    // After an abort, a failure is most likely the abort seen from inside: a client leaving is not an error.
    if (this.state === "aborted") return;
    this.abortReason ??= asError(error);
    if (!this.head.settled) this.head.reject(error);
    this.socket.destroy();
  }

  /** The body as TSGI reads it; close() (or return()) before the end is the client going away. */
  private body(): ResponseBody {
    const iterator: AsyncIterator<Uint8Array, undefined> = {
      next: () => this.queue.next(),
      return: async () => {
        this.clientGone();
        return { done: true, value: undefined };
      },
    };
    return { [Symbol.asyncIterator]: () => iterator, close: () => this.clientGone() };
  }

  private clientGone(): void {
    if (this.state !== "open") return;
    this.abortReason ??= new Error("the client went away before the response ended");
    this.socket.destroy();
  }

  /** The gateway read the last byte: the response is complete, as after Node's socket write. */
  private onBodyEnd(): void {
    if (this.state !== "open") return;
    this.state = "finished";
    const { req, res } = this;
    res.emit("finish");
    process.nextTick(() => emitClose(res));
    // An unread body is never pulled off tsgi.input here (the gateway owns it);
    // the request is ended so that its 'end'/'close' fire as after Node's dump.
    if (!this.requestRead && !req.readableEnded && !req.destroyed) {
      req.complete = true;
      req.push(null);
      req.resume();
    }
  }

  private onSocketClose(): void {
    if (this.state !== "open") return;
    this.state = "aborted";
    const reason = this.abortReason ?? new Error("the connection closed before the response ended");
    if (!this.head.settled) this.head.reject(reason);
    this.queue.fail(reason);
    const { req, res } = this;
    res.destroyed = true;
    // As Node's abortIncoming: a request still being received is aborted ('aborted', then 'close').
    if (!req.destroyed) req.destroy(req.complete ? undefined : connectionReset());
    process.nextTick(() => emitClose(res));
  }

  private log(message: string): void {
    try {
      this.environ["tsgi.errors"].write(message);
    } catch {
      // The error log failed too: nothing left to tell.
    }
  }
}

/** Node's emitCloseNT: 'close' once, with `destroyed` set. */
function emitClose(res: ServerResponse): void {
  const state = res as ServerResponse & { _closed?: boolean };
  if (state._closed) return;
  state._closed = true;
  res.destroyed = true;
  res.emit("close");
}
