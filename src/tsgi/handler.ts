/**
 * @module tsgi/handler
 *
 * Runs one TSGI request: calls the app, enforces the startResponse rules, and
 * drives the body into a transport-neutral `ResponseSink` (wsgiref's
 * BaseHandler). Every server of ours — HTTP, uwsgi, the Fetch adapter — shares
 * this code, so the contract in docs/tsgi.md is enforced in one place:
 *
 * - headers go out with the first non-empty chunk, not at startResponse;
 * - a declared Content-Length is never exceeded, and a short body is never
 *   passed off as complete (the connection is aborted instead);
 * - a body of known size (an array) gets a Content-Length; others stream;
 * - `close()` is called exactly once, on success, error and client abort;
 * - an app error before the headers are out becomes a plain 500, after it an
 *   aborted response; the stack goes to the error log, never to the client.
 *
 * No I/O happens here: the sink is the transport.
 *
 * Why one file of ~440 lines: it is the one place the response rules are
 * enforced, for every server; splitting the rules apart would let them drift.
 */
import type { AppResult, Chunk, Environ, ErrorStream, HeaderList, ResponseBody, StartResponse, TsgiApp, WriteFn } from "./types.ts";
import { FIELD_NAME, FIELD_VALUE } from "../contract/http-grammar.ts";
import { byteLength, concatBytes, isChunk, isHopByHop, statusCode, statusHasNoBody, statusLine, toBytes } from "./util.ts";

/** A transport for one response (an http.ServerResponse, a uwsgi socket, a ReadableStream). */
export interface ResponseSink {
  /** Sends the status line and headers. */
  sendHead(code: number, status: string, headers: HeaderList): void;
  /** Writes body bytes; returns false when the transport's buffer is full (wait for `drained`). */
  write(bytes: Uint8Array): boolean;
  /**
   * Optional: writes a string chunk as UTF-8 without encoding it first. A
   * transport that can (node:http sends the head and a string body in one
   * write, a byte body needs two) saves a copy per response.
   */
  writeText?(text: string): boolean;
  /** Resolves when the transport takes more bytes again, or the client went away. */
  drained(): Promise<void>;
  /** Ends the response normally. */
  end(): void;
  /** Ends the response abnormally, so that the client sees an incomplete message. */
  abort(): void;
  /** True once the client went away. */
  readonly clientGone: boolean;
  /** Registers a callback for the client going away before the response ended. */
  onClientGone(listener: () => void): void;
}

/**
 * The half of a ResponseSink that every transport writes the same way: the
 * "client went away" flag and the listeners called once when it flips.
 * Transports extend it and call `markClientGone()` from their close/cancel event.
 */
export abstract class ClientAwareSink {
  private gone = false;
  private goneListeners: Array<() => void> = [];

  get clientGone(): boolean {
    return this.gone;
  }

  onClientGone(listener: () => void): void {
    if (this.gone) listener();
    else this.goneListeners.push(listener);
  }

  /** The client went away before the response ended; idempotent. */
  protected markClientGone(): void {
    if (this.gone) return;
    this.gone = true;
    for (const listener of this.goneListeners.splice(0)) listener();
  }
}

/**
 * A stream transport's `drained()`: resolves on its next 'drain', or on
 * 'close' (a client that left will never drain), whichever comes first.
 */
export function drainOrClose(stream: { on(event: string, listener: () => void): unknown; off(event: string, listener: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

/** What happened, for the access log and the worker's counters. */
export interface RunOutcome {
  /** The status code sent (500 when the app failed early), or 0 when nothing was sent. */
  code: number;
  /** Body bytes handed to the transport. */
  bytes: number;
  /** The client went away before the response ended. */
  clientGone: boolean;
  /** The app broke the contract or threw; already logged. */
  error?: unknown;
}

/** A violation of the TSGI contract by the app, named after its rule in docs/tsgi.md. */
export class TsgiContractError extends Error {
  constructor(rule: string, message: string) {
    super(`${message} (docs/tsgi.md, ${rule})`);
    this.name = "TsgiContractError";
  }
}

const CLIENT_GONE = Symbol("client gone");
const INTERNAL_ERROR_BODY = new TextEncoder().encode("Internal Server Error\n");

/** Checks a startResponse header list; throws a TsgiContractError naming the bad header. */
function checkHeaders(headers: unknown): asserts headers is HeaderList {
  if (!Array.isArray(headers)) {
    throw new TsgiContractError("startResponse", `headers must be an array of [name, value] pairs, got ${typeof headers}`);
  }
  for (const pair of headers) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" || typeof pair[1] !== "string") {
      throw new TsgiContractError("startResponse", `each header must be a [name, value] pair of strings, got ${JSON.stringify(pair)}`);
    }
    const [name, value] = pair;
    if (isHopByHop(name)) {
      throw new TsgiContractError("hop-by-hop headers", `the app may not set the hop-by-hop header ${JSON.stringify(name)}`);
    }
    if (!FIELD_NAME.test(name)) {
      throw new TsgiContractError("response headers", `header name ${JSON.stringify(name)} is not an HTTP token`);
    }
    if (!FIELD_VALUE.test(value)) {
      throw new TsgiContractError("response headers", `header ${name} has a control character in its value ${JSON.stringify(value)}`);
    }
  }
}

function findContentLength(headers: HeaderList): number | undefined {
  let found: number | undefined;
  for (const [name, value] of headers) {
    if (name.length !== 14 || name.toLowerCase() !== "content-length") continue;
    if (!/^\d+$/.test(value)) {
      throw new TsgiContractError("Content-Length", `Content-Length must be decimal digits, got ${JSON.stringify(value)}`);
    }
    if (found !== undefined) throw new TsgiContractError("Content-Length", "Content-Length is set twice");
    found = Number(value);
  }
  return found;
}

function isIterable(value: unknown): value is Iterable<unknown> | AsyncIterable<unknown> {
  return (
    value != null &&
    (typeof (value as Iterable<unknown>)[Symbol.iterator] === "function" ||
      typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function") &&
    typeof value !== "string"
  );
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return `a string (${JSON.stringify(value.slice(0, 40))})`;
  if (typeof value === "object") return `an object (${(value as object).constructor?.name ?? "Object"})`;
  return typeof value;
}

/** The state of one response; one instance per request. */
class Response {
  private status: string | undefined;
  private code = 0;
  private headers: HeaderList = [];
  private declaredLength: number | undefined;
  private headSent = false;
  private ended = false;
  private sentBytes = 0;
  private readonly discardBody: boolean;
  failure: unknown;

  /** The callables handed to the app, bound to this response. */
  readonly startResponse: StartResponse;
  readonly write: WriteFn;

  constructor(
    private readonly sink: ResponseSink,
    private readonly environ: Environ,
  ) {
    this.discardBody = environ.REQUEST_METHOD === "HEAD";
    // Assigned here rather than as arrow-function class fields: the TypeScript
    // loader's keepNames would rename each one on every request (measured: 9%
    // of a hello-world worker's CPU).
    this.startResponse = (status, headers, excInfo) => this.start(status, headers, excInfo);
    this.write = (chunk) => this.writeLegacy(chunk);
  }

  private start(status: string, headers: HeaderList, excInfo?: unknown): WriteFn {
    if (this.status !== undefined && excInfo === undefined) {
      throw new TsgiContractError("startResponse", "startResponse was called a second time without excInfo");
    }
    if (excInfo !== undefined && this.headSent) throw excInfo;
    const code = typeof status === "string" ? statusCode(status) : Number.NaN;
    // 1xx responses belong to the server (100 Continue, upgrades), not to the app.
    if (!(code >= 200 && code <= 599) || !FIELD_VALUE.test(status)) {
      throw new TsgiContractError("status", `status must look like "200 OK" with a code from 200 to 599, got ${JSON.stringify(status)}`);
    }
    checkHeaders(headers);
    this.declaredLength = findContentLength(headers);
    if (code === 204 && this.declaredLength !== undefined) {
      throw new TsgiContractError("HEAD and bodiless statuses", "a 204 response may not carry a Content-Length");
    }
    this.status = status;
    this.code = code;
    this.headers = headers;
    return this.write;
  }

  /** Set once the app's return value settled: write() is over from then on. */
  appReturned = false;

  /**
   * The legacy write callable. Violations throw synchronously (a rejected
   * Promise nobody awaits would crash the worker); the Promise only waits for
   * the transport, and resolves when the client has gone.
   */
  private writeLegacy(chunk: Chunk): Promise<void> {
    if (this.status === undefined) throw new TsgiContractError("write", "write() was called before startResponse");
    if (this.appReturned || this.ended) {
      throw new TsgiContractError("write", "write() was called after the app returned its body");
    }
    return this.writeChunk(chunk) ? Promise.resolve() : this.sink.drained();
  }

  get outcome(): RunOutcome {
    return { code: this.headSent ? this.code : 0, bytes: this.sentBytes, clientGone: this.sink.clientGone, error: this.failure };
  }

  /** Writes one chunk; returns false when the caller should wait for the sink to drain. */
  writeChunk(chunk: unknown): boolean {
    if (!isChunk(chunk)) {
      throw new TsgiContractError("the body", `body chunks must be strings or Uint8Arrays, got ${describe(chunk)}`);
    }
    if (this.status === undefined) {
      throw new TsgiContractError("startResponse", "the body produced a chunk before startResponse was called");
    }
    const length = byteLength(chunk);
    if (length === 0 || this.sink.clientGone) return true;
    const declared = this.declaredLength;
    if (declared !== undefined && !this.discardBody && this.sentBytes + length > declared) {
      throw new TsgiContractError(
        "Content-Length",
        `the app sent ${this.sentBytes + length} or more bytes after declaring Content-Length: ${declared}`,
      );
    }
    this.sendHeadOnce();
    if (this.discardBody || statusHasNoBody(this.code)) return true;
    this.sentBytes += length;
    if (typeof chunk === "string") return this.sink.writeText ? this.sink.writeText(chunk) : this.sink.write(toBytes(chunk));
    return this.sink.write(chunk);
  }

  /** Sends a whole body of known size at once: the fast path for arrays. */
  writeWhole(chunks: readonly unknown[]): void {
    let total = 0;
    let allText = true;
    for (const chunk of chunks) {
      if (!isChunk(chunk)) {
        throw new TsgiContractError("the body", `body chunks must be strings or Uint8Arrays, got ${describe(chunk)}`);
      }
      total += byteLength(chunk);
      allText &&= typeof chunk === "string";
    }
    const parts = chunks as readonly Chunk[];
    if (this.status === undefined) {
      throw new TsgiContractError("startResponse", "the app returned a body without calling startResponse");
    }
    // For HEAD, a length is computed only from a body the app did produce (the GET body);
    // an empty one says nothing about it (docs/tsgi.md, HEAD and bodiless statuses).
    if (this.headSent || this.declaredLength !== undefined || statusHasNoBody(this.code) || (this.discardBody && total === 0)) {
      for (const part of parts) this.writeChunk(part);
      return;
    }
    this.declaredLength = total;
    this.headers = [...this.headers, ["Content-Length", String(total)]];
    if (total === 0) return;
    // One chunk for the whole body: one write to the transport.
    if (parts.length === 1) this.writeChunk(parts[0]);
    else this.writeChunk(allText ? (parts as string[]).join("") : concatBytes(parts.map(toBytes)));
  }

  private sendHeadOnce(): void {
    if (this.headSent) return;
    this.headSent = true;
    this.sink.sendHead(this.code, this.status!, this.headers);
  }

  /** Ends the response after the body was fully iterated. */
  finish(): void {
    if (this.ended || this.sink.clientGone) return;
    if (this.status === undefined) {
      throw new TsgiContractError("startResponse", "the app returned without calling startResponse");
    }
    const declared = this.declaredLength;
    if (!this.headSent && declared === undefined && !statusHasNoBody(this.code) && !this.discardBody) {
      // Nothing was written and nothing declared: the body was empty, say so.
      // (Not for HEAD: an empty HEAD body says nothing about the GET body's length.)
      this.headers = [...this.headers, ["Content-Length", "0"]];
      this.declaredLength = 0;
    } else if (declared !== undefined && !this.discardBody && !statusHasNoBody(this.code) && this.sentBytes < declared) {
      throw new TsgiContractError(
        "Content-Length",
        `the body ended after ${this.sentBytes} bytes but Content-Length declared ${declared}`,
      );
    }
    this.sendHeadOnce();
    this.ended = true;
    this.sink.end();
  }

  /** Handles an app failure: a plain 500 while nothing was sent, else an aborted response. */
  fail(error: unknown): void {
    this.failure = error;
    if (this.ended || this.sink.clientGone) return;
    this.ended = true;
    if (this.headSent) {
      this.sink.abort();
      return;
    }
    this.code = 500;
    this.headSent = true;
    if (!this.discardBody) this.sentBytes = INTERNAL_ERROR_BODY.byteLength;
    this.sink.sendHead(500, statusLine(500), [
      ["Content-Type", "text/plain; charset=utf-8"],
      ["Content-Length", String(INTERNAL_ERROR_BODY.byteLength)],
    ]);
    if (!this.discardBody) this.sink.write(INTERNAL_ERROR_BODY);
    this.sink.end();
  }
}

function logFailure(errors: ErrorStream, environ: Environ, error: unknown): void {
  try {
    const where = `${environ.REQUEST_METHOD} ${environ.REQUEST_URI ?? environ.SCRIPT_NAME + environ.PATH_INFO}`;
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    errors.write(`tsgi: error in app while handling ${where}: ${detail}\n`);
  } catch {
    // The error log itself failed: nothing better to do than keep serving.
  }
}

async function callClose(body: ResponseBody | undefined, errors: ErrorStream, environ: Environ): Promise<void> {
  if (!body || typeof body.close !== "function") return;
  try {
    await body.close();
  } catch (error) {
    logFailure(errors, environ, error);
  }
}

/** Iterates a body into the response, honouring back-pressure and client aborts. */
async function pump(body: ResponseBody, response: Response, sink: ResponseSink): Promise<void> {
  const asyncIterable = typeof (body as AsyncIterable<Chunk>)[Symbol.asyncIterator] === "function";
  const iterator = asyncIterable
    ? (body as AsyncIterable<Chunk>)[Symbol.asyncIterator]()
    : (body as Iterable<Chunk>)[Symbol.iterator]();
  // A streaming app may wait long between chunks (server-sent events): notice a
  // client that leaves meanwhile instead of waiting for the next chunk. One
  // short-lived promise per step: racing every step against one long-lived
  // promise would keep each step's chunk reachable until the response ends.
  let wakeOnGone: ((gone: typeof CLIENT_GONE) => void) | undefined;
  sink.onClientGone(() => wakeOnGone?.(CLIENT_GONE));
  let finished = false;
  let suspended = true;
  try {
    while (!sink.clientGone) {
      let step: IteratorResult<Chunk> | typeof CLIENT_GONE;
      if (asyncIterable) {
        suspended = false;
        step = await new Promise<IteratorResult<Chunk> | typeof CLIENT_GONE>((resolve, reject) => {
          wakeOnGone = resolve;
          (iterator.next() as Promise<IteratorResult<Chunk>>).then(resolve, reject);
        });
        wakeOnGone = undefined;
        if (step === CLIENT_GONE) return;
        suspended = true;
      } else {
        step = iterator.next() as IteratorResult<Chunk>;
      }
      if (step.done) {
        finished = true;
        return;
      }
      if (!response.writeChunk(step.value)) await sink.drained();
    }
  } finally {
    // Stopped early (abort or error): let a generator run its finally blocks.
    // One still running its body cannot be stopped now; its return is queued.
    if (!finished && typeof iterator.return === "function") {
      const unwinding = Promise.resolve()
        .then(() => iterator.return!())
        .catch(() => undefined); // a generator failing while it unwinds changes nothing now
      if (suspended) await unwinding;
    }
  }
}

/**
 * Runs `app` for one request and drives its response into `sink`. Never
 * throws: app failures are logged to `environ["tsgi.errors"]` and reported in
 * the outcome.
 */
export async function runApp(app: TsgiApp, environ: Environ, sink: ResponseSink): Promise<RunOutcome> {
  const errors = environ["tsgi.errors"];
  const response = new Response(sink, environ);
  let body: ResponseBody | undefined;
  try {
    let result: AppResult = app(environ, response.startResponse);
    if (result instanceof Promise) result = await result;
    response.appReturned = true;
    // Whatever came back is closed if it can be, even a value refused below (docs/tsgi.md, close).
    if (result != null && typeof (result as ResponseBody).close === "function") body = result as ResponseBody;
    if (!isIterable(result)) {
      throw new TsgiContractError("the body", `the app must return an Iterable or AsyncIterable of chunks, got ${describe(result)}`);
    }
    body = result as ResponseBody;
    // An array is sent in one go, without a trip through the microtask queue.
    if (Array.isArray(body)) response.writeWhole(body);
    else await pump(body, response, sink);
    response.finish();
  } catch (error) {
    logFailure(errors, environ, error);
    try {
      response.fail(error);
    } catch (secondary) {
      // The transport broke while reporting the first failure: make sure the client is not left hanging.
      logFailure(errors, environ, secondary);
      sink.abort();
    }
  }
  if (body && typeof body.close === "function") await callClose(body, errors, environ);
  return response.outcome;
}
