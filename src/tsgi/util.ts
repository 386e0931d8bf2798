/**
 * @module tsgi/util
 *
 * Small pure helpers shared by servers, middleware and adapters: chunk
 * encoding, status lines, hop-by-hop headers, path shifting (wsgiref.util).
 */
import type { Chunk, Environ, HeaderList } from "./types.ts";

const encoder = new TextEncoder();

/** A chunk as bytes: strings are UTF-8 encoded, byte arrays pass through. */
export function toBytes(chunk: Chunk): Uint8Array {
  if (typeof chunk === "string") return encoder.encode(chunk);
  return chunk;
}

/** A chunk's size in bytes once sent (strings as UTF-8), without encoding it. */
export function byteLength(chunk: Chunk): number {
  return typeof chunk === "string" ? Buffer.byteLength(chunk, "utf8") : chunk.byteLength;
}

/** True when `value` may be a body chunk (a string or a Uint8Array, Buffer included). */
export function isChunk(value: unknown): value is Chunk {
  return typeof value === "string" || value instanceof Uint8Array;
}

/**
 * The hop-by-hop headers of RFC 9110 §7.6.1 (plus Proxy-Connection, which
 * clients still send): they describe one connection, so an app may not set them
 * and a proxy never forwards them.
 */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

export function isHopByHop(headerName: string): boolean {
  return HOP_BY_HOP_HEADERS.has(headerName.toLowerCase());
}

/** The `"200 OK"` status form: three digits, one space, a reason phrase (which may be empty). */
const STATUS_LINE = /^([1-9]\d\d) (.*)$/;

/** The numeric code of a `"200 OK"` status, or NaN when the status is malformed. */
export function statusCode(status: string): number {
  const match = STATUS_LINE.exec(status);
  return match ? Number(match[1]) : Number.NaN;
}

/** The reason phrase of a well-formed status ("OK" of "200 OK"). */
export function reasonPhrase(status: string): string {
  return status.slice(4);
}

/** Reason phrases for the statuses servers generate themselves (RFC 9110). */
const REASONS: Readonly<Record<number, string>> = {
  100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 202: "Accepted",
  204: "No Content", 206: "Partial Content", 301: "Moved Permanently", 302: "Found",
  303: "See Other", 304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
  400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
  405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 410: "Gone",
  411: "Length Required", 413: "Content Too Large", 414: "URI Too Long",
  415: "Unsupported Media Type", 416: "Range Not Satisfiable", 417: "Expectation Failed",
  422: "Unprocessable Content", 426: "Upgrade Required", 429: "Too Many Requests",
  431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
  502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
};

/** `"404 Not Found"` for 404; an unknown code gets an empty reason phrase. */
export function statusLine(code: number): string {
  return `${code} ${REASONS[code] ?? ""}`;
}

/** True for responses that never carry a body (RFC 9110 §6.4.1). */
export function statusHasNoBody(code: number): boolean {
  return code < 200 || code === 204 || code === 304;
}

/** The value of the first header named `name` (case-insensitive), or undefined. */
export function getHeader(headers: HeaderList, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of headers) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

/** A copy of `headers` without any header named `name`. */
export function withoutHeader(headers: HeaderList, name: string): HeaderList {
  const unwanted = name.toLowerCase();
  return headers.filter(([key]) => key.toLowerCase() !== unwanted);
}

/** The mount point plus the path the app sees, re-quoted: the URL path the client asked for. */
export function requestPath(environ: Environ): string {
  // encodeURI leaves "?" and "#" alone, but inside a path they must stay escaped or the URL splits there.
  return encodeURI(environ.SCRIPT_NAME + environ.PATH_INFO).replace(/[?#]/g, encodeURIComponent);
}

/** The full request URL rebuilt from the environ (PEP 3333 "URL Reconstruction"). */
export function requestUrl(environ: Environ): string {
  const scheme = environ["tsgi.url_scheme"];
  const defaultPort = scheme === "https" ? "443" : "80";
  const host =
    environ.HTTP_HOST ??
    (environ.SERVER_PORT === defaultPort ? environ.SERVER_NAME : `${environ.SERVER_NAME}:${environ.SERVER_PORT}`);
  const query = environ.QUERY_STRING ? `?${environ.QUERY_STRING}` : "";
  return `${scheme}://${host}${requestPath(environ)}${query}`;
}

/**
 * Moves the first segment of PATH_INFO to the end of SCRIPT_NAME and returns
 * it (wsgiref.util.shift_path_info); undefined when PATH_INFO is empty. The
 * environ is modified in place: pass a copy to keep the original.
 */
export function shiftPathInfo(environ: Environ): string | undefined {
  const path = environ.PATH_INFO;
  if (!path) return undefined;
  const segments = path.split("/");
  // segments[0] is "" because PATH_INFO starts with "/".
  const name = segments[1] ?? "";
  environ.SCRIPT_NAME = environ.SCRIPT_NAME.replace(/\/$/, "") + (name ? `/${name}` : "");
  environ.PATH_INFO = segments.length > 2 ? `/${segments.slice(2).join("/")}` : "";
  return name;
}

/** Everything a body chunk can be, concatenated into one byte array. */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let length = 0;
  for (const chunk of chunks) length += chunk.byteLength;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** Reads a whole request body into one byte array (for small bodies and tests). */
export async function readAll(input: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of input) chunks.push(chunk);
  return concatBytes(chunks);
}
