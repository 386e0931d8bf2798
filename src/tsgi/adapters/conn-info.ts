/**
 * @module tsgi/adapters/conn-info
 *
 * What every adapter needs to know about a request besides its path and body,
 * in one shape for all of them (Hono's `ConnInfo`): who is on the other end
 * (`ConnInfo`), and the request headers as a list rebuilt from the environ's
 * `HTTP_*` keys. The Node adapter turns these into a fake socket and
 * `req.rawHeaders`, the Fetch adapter into a `Headers` object; going the other
 * way, `toFetchHandler` turns a `ConnInfo` back into REMOTE_ADDR/REMOTE_PORT.
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
 * True when the environ announces a request body: a Content-Length or a
 * Transfer-Encoding. HTTP/1.1 has no other way to carry one (RFC 9112 §6.3),
 * and body parsers in every framework decide the same way (type-is `hasBody`).
 */
export function environHasBody(environ: Environ): boolean {
  return environ.CONTENT_LENGTH !== undefined || environ.HTTP_TRANSFER_ENCODING !== undefined;
}
