/**
 * @module tsgi/adapters/conn-info
 *
 * What the adapters into TSGI need to know about a request besides its body,
 * in one shape for all of them: who is on the other end (`ConnInfo`, Hono's
 * shape), the request headers as a list rebuilt from the environ's `HTTP_*`
 * keys (plus `X-Forwarded-Prefix` when the app is mounted), and the request
 * target split at the mount point. The Node adapter turns these into a fake
 * socket, `req.url` and `req.rawHeaders`, the Fetch adapter into a Request URL
 * and a `Headers` object; going the other way, `toFetchHandler` turns a
 * `ConnInfo` back into REMOTE_ADDR/REMOTE_PORT.
 *
 * The mount rule: a framework runs unchanged under any SCRIPT_NAME, so the
 * path it routes on is PATH_INFO alone, as a WSGI app sees it, as Express
 * presents `req.url` to an app mounted with `app.use("/mnt", sub)`, and as
 * nginx's `proxy_pass http://backend/;` strips a location prefix. The mount
 * itself travels beside the path: in `X-Forwarded-Prefix` (the de-facto
 * header for a prefix a proxy stripped, as Traefik sets it and Werkzeug's
 * ProxyFix and Spring read it, for links back to the app) and in `fullTarget`.
 *
 * Not for trust decisions: REMOTE_ADDR is the peer of the gateway (often the
 * front proxy), and forwarded headers are the proxy layer's business.
 */
import type { Environ, HeaderList } from "../types.ts";

/** The connection a request came in on, as far as the adapter can tell. */
export interface ConnInfo {
  /** The peer's address: an IPv4 or IPv6 literal, or "" when the transport does not say. */
  remoteAddr: string;
  /** The peer's port, when known. */
  remotePort?: number;
  urlScheme: "http" | "https";
}

/** The connection described by an environ (REMOTE_ADDR, REMOTE_PORT, tsgi.url_scheme). */
export function connInfoOf(environ: Environ): ConnInfo {
  const info: ConnInfo = { remoteAddr: environ.REMOTE_ADDR ?? "", urlScheme: environ["tsgi.url_scheme"] };
  const port = Number(environ.REMOTE_PORT);
  if (environ.REMOTE_PORT !== undefined && Number.isInteger(port)) info.remotePort = port;
  return info;
}

/** "IPv6" for an address with a colon, else "IPv4": node's `socket.remoteFamily` values. */
export function addressFamily(address: string): "IPv4" | "IPv6" {
  return address.includes(":") ? "IPv6" : "IPv4";
}

/**
 * A percent-decoded path (SCRIPT_NAME, PATH_INFO) quoted again for a URL.
 * encodeURI leaves "?" and "#" alone, but inside a path they must stay
 * escaped or the URL splits there.
 */
export function quotePath(path: string): string {
  return encodeURI(path).replace(/[?#]/g, encodeURIComponent);
}

function withQuery(path: string, environ: Environ): string {
  return environ.QUERY_STRING ? `${path}?${environ.QUERY_STRING}` : path;
}

/**
 * The target the framework routes on: PATH_INFO quoted ("/" when it is empty:
 * the mount point itself is the app's root) plus the query. SCRIPT_NAME is not
 * part of it.
 */
export function routedTarget(environ: Environ): string {
  return withQuery(quotePath(environ.PATH_INFO) || "/", environ);
}

/** The target the client asked for: SCRIPT_NAME and PATH_INFO quoted, plus the query (Express's `req.originalUrl`). */
export function fullTarget(environ: Environ): string {
  return withQuery(quotePath(environ.SCRIPT_NAME + environ.PATH_INFO) || "/", environ);
}

/**
 * The value of `X-Forwarded-Prefix` for a mounted app: SCRIPT_NAME quoted as a
 * URL path (a header holds bytes, not decoded text), so that prefix + the
 * routed target is the full target. Undefined at the root.
 */
export function forwardedPrefix(environ: Environ): string | undefined {
  return environ.SCRIPT_NAME ? quotePath(environ.SCRIPT_NAME) : undefined;
}

/**
 * The request headers an environ carries, lower-cased (`HTTP_X_FOO` ->
 * `x-foo`, CONTENT_TYPE -> `content-type`), in the environ's key order. A
 * header that arrived several times comes back once, with the values joined as
 * the environ joined them (", ", or "; " for Cookie): the environ keeps no
 * trace of where one value ended and the next began.
 */
export function environHeaders(environ: Environ): HeaderList {
  const headers: HeaderList = [];
  for (const key of Object.keys(environ)) {
    const value = environ[key];
    if (typeof value !== "string") continue;
    if (key.startsWith("HTTP_")) headers.push([key.slice(5).toLowerCase().replaceAll("_", "-"), value]);
    else if (key === "CONTENT_TYPE") headers.push(["content-type", value]);
    else if (key === "CONTENT_LENGTH") headers.push(["content-length", value]);
  }
  return headers;
}

/**
 * The headers a framework sees: `environHeaders`, with `x-forwarded-prefix`
 * set to the mount point when there is one. It replaces any value the request
 * carried, since SCRIPT_NAME is what the app is mounted at; at the root, a
 * value that came in (a proxy that stripped a prefix of its own) passes
 * through like any other header.
 */
export function frameworkHeaders(environ: Environ): HeaderList {
  const headers = environHeaders(environ);
  const prefix = forwardedPrefix(environ);
  if (prefix === undefined) return headers;
  return [...headers.filter(([name]) => name !== "x-forwarded-prefix"), ["x-forwarded-prefix", prefix]];
}

/**
 * True when the environ announces a request body: a Content-Length or a
 * Transfer-Encoding. HTTP/1.1 has no other way to carry one (RFC 9112 §6.3),
 * and body parsers in every framework decide the same way (type-is `hasBody`).
 */
export function environHasBody(environ: Environ): boolean {
  return environ.CONTENT_LENGTH !== undefined || environ.HTTP_TRANSFER_ENCODING !== undefined;
}
