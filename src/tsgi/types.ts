/**
 * @module tsgi/types
 *
 * The TSGI interface, as types: the contract between a gateway server and a
 * TypeScript web application, in the manner of PEP 3333 (WSGI). docs/tsgi.md is
 * the normative text; this file is its machine-checked shape.
 *
 * A TSGI application is a callable `(environ, startResponse) => body`. The
 * server builds `environ` from the request, the app calls `startResponse` with a
 * status and headers, and returns the response body as an (async) iterable of
 * byte chunks. Nothing here does I/O.
 */

/** One piece of a response body. Strings are sent UTF-8 encoded. */
export type Chunk = Uint8Array | string;

/** Response headers, in order, as `[name, value]` pairs; a name may repeat (Set-Cookie). */
export type HeaderList = Array<[name: string, value: string]>;

/**
 * What an application returns: any Iterable or AsyncIterable of chunks (an
 * array, a generator, a Node Readable, a web ReadableStream in Node >= 20). If
 * the object has a `close()` method the server calls it exactly once, after the
 * last chunk, on error, and on client abort alike.
 */
export type ResponseBody = (Iterable<Chunk> | AsyncIterable<Chunk>) & { close?(): void | Promise<void> };

/** An app may return its body directly or as a Promise of one. */
export type AppResult = ResponseBody | Promise<ResponseBody>;

/**
 * The legacy `write(chunk)` callable returned by `startResponse`, for apps that
 * push output imperatively. The first non-empty write sends the headers. The
 * returned Promise settles once the chunk was handed to the transport (it waits
 * while the client is slow: back-pressure).
 */
export type WriteFn = (chunk: Chunk) => Promise<void>;

/**
 * `startResponse(status, headers, excInfo?)`.
 * - `status` is `"200 OK"`-style: three digits, a space, a reason phrase.
 * - `headers` must not contain hop-by-hop headers (Connection, Keep-Alive, …).
 * - A second call is allowed only with `excInfo` (the error being handled) and
 *   only while no header has been sent; once headers are out, a call with
 *   `excInfo` rethrows it.
 */
export type StartResponse = (status: string, headers: HeaderList, excInfo?: unknown) => WriteFn;

/** The request body: a single-use async iterable of byte chunks, ending at the end of the body. */
export type InputStream = AsyncIterable<Uint8Array>;

/** `tsgi.errors`: where an app writes diagnostics; the server routes them to its error log. */
export interface ErrorStream {
  write(message: string): void;
  flush?(): void;
}

/** The value of `tsgi.version`. */
export type TsgiVersion = readonly [major: 1, minor: 0];

/** The CGI keys every environ carries (PEP 3333 "environ Variables"). */
export interface CgiKeys {
  REQUEST_METHOD: string;
  /** The mount point of the app, "" or starting with "/" and not ending with it. */
  SCRIPT_NAME: string;
  /** The rest of the path after SCRIPT_NAME, percent-decoded; "" or starting with "/" (or "*" for `OPTIONS *`). */
  PATH_INFO: string;
  /** The part of the target after "?", not decoded; "" when absent. */
  QUERY_STRING: string;
  /** Present only when the request has a Content-Type header. */
  CONTENT_TYPE?: string;
  /** Present only when the request has a Content-Length header: decimal digits. */
  CONTENT_LENGTH?: string;
  SERVER_NAME: string;
  SERVER_PORT: string;
  /** "HTTP/1.1", "HTTP/1.0". */
  SERVER_PROTOCOL: string;
  REMOTE_ADDR: string;
  REMOTE_PORT?: string;
  /** The request target exactly as received (path and query, not decoded). */
  REQUEST_URI?: string;
}

/** The `tsgi.*` keys every environ carries. */
export interface TsgiKeys {
  "tsgi.version": TsgiVersion;
  "tsgi.url_scheme": "http" | "https";
  "tsgi.input": InputStream;
  "tsgi.errors": ErrorStream;
  "tsgi.multithread": boolean;
  "tsgi.multiprocess": boolean;
  "tsgi.run_once": boolean;
}

/**
 * The request, as a plain object: CGI keys, one `HTTP_*` key per request header
 * (name upper-cased, `-` as `_`; repeated headers joined with ", "), the
 * `tsgi.*` keys, and whatever servers and middleware add under their own prefix.
 */
export interface Environ extends CgiKeys, TsgiKeys {
  [key: `HTTP_${string}`]: string | undefined;
  [key: string]: unknown;
}

/** A TSGI application. Middleware is an application that wraps an application. */
export type TsgiApp = (environ: Environ, startResponse: StartResponse) => AppResult;

/** A middleware factory: takes the wrapped app, returns the wrapping one. */
export type Middleware = (app: TsgiApp) => TsgiApp;
