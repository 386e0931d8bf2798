/**
 * @module gateway/uwsgi/environ
 *
 * The environ of one uwsgi request, built from the vars of its packet: stage
 * two of the two-stage environ (the per-server base comes from
 * tsgi/environ.ts and is copied, never mutated). nginx's `include
 * uwsgi_params` sends the CGI vars; this module turns them into the keys
 * docs/tsgi.md promises:
 *
 * - `PATH_INFO` as nginx sent it ($document_uri: percent-decoded, its bytes
 *   UTF-8); without it, the decoded path of `REQUEST_URI`;
 * - `SCRIPT_NAME` from a `uwsgi_param SCRIPT_NAME /app` var, stripped from
 *   the path (uWSGI's manage-script-name), else the server's mount point;
 * - `tsgi.url_scheme` from `REQUEST_SCHEME`, else from `HTTPS`;
 * - repeated `HTTP_*` vars joined as nginx >= 1.23 joins them itself;
 * - `HTTP_CONTENT_LENGTH`, `HTTP_CONTENT_TYPE` and `HTTP_TRANSFER_ENCODING`
 *   dropped: the CGI keys stand for them.
 *
 * Vars the environ cannot represent throw InvalidUwsgiVar (the server answers
 * 400). This module does no I/O: `tsgi.input` is handed in (uwsgi/input.ts).
 */
import type { Environ, InputStream } from "../../tsgi/types.ts";
import type { BaseEnviron } from "../../tsgi/environ.ts";
import { TOKEN } from "../../contract/http-grammar.ts";
import { InvalidUwsgiVar } from "./errors.ts";
import type { UwsgiVar } from "./parser.ts";

/**
 * HTTP_* vars left out of the environ. nginx passes every request header as
 * HTTP_*, including the ones its CGI vars already stand for: CONTENT_TYPE and
 * CONTENT_LENGTH are authoritative (for a chunked request nginx sets
 * CONTENT_LENGTH itself), and the client's Transfer-Encoding describes a
 * framing nginx has already removed — the app gets CONTENT_LENGTH bytes.
 */
const DROPPED_VARS: ReadonlySet<string> = new Set(["HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE", "HTTP_TRANSFER_ENCODING"]);

/** An HTTP method is a token (RFC 9110 §9.1). */
const METHOD_TOKEN = TOKEN;

/** CONTENT_LENGTH is a decimal byte count; 15 digits stay below Number.MAX_SAFE_INTEGER. */
const CONTENT_LENGTH_FORMAT = /^\d{1,15}$/;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Who is on the other end of a connection, as the environ and the log name it. */
export interface UwsgiPeer {
  address: string;
  port?: number;
}

/* ------------------------------------------------------------------------- */
/* The vars of one packet                                                    */
/* ------------------------------------------------------------------------- */

/**
 * The vars of one packet by name, as byte strings (latin-1: one char per
 * byte). Repeated HTTP_* vars are joined as nginx >= 1.23 joins them itself
 * (", ", or "; " for Cookie) — older nginx sends one var per header line.
 * CONTENT_LENGTH twice with different values is refused (a framing conflict,
 * as with duplicate Content-Length headers) — an empty one is no value (an
 * `include uwsgi_params` plus `uwsgi_param CONTENT_LENGTH … if_not_empty`
 * sends "" and then a length); other repeats: the last wins.
 */
export function collectVars(vars: readonly UwsgiVar[]): Map<string, string> {
  const fields = new Map<string, string>();
  for (const [name, bytes] of vars) {
    const value = bytes.toString("latin1");
    const previous = fields.get(name);
    if (previous === undefined) fields.set(name, value);
    else if (name.startsWith("HTTP_")) fields.set(name, `${previous}${name === "HTTP_COOKIE" ? "; " : ", "}${value}`);
    else if (name === "CONTENT_LENGTH") fields.set(name, mergeContentLength(previous, value));
    else fields.set(name, value);
  }
  return fields;
}

function mergeContentLength(previous: string, value: string): string {
  if (!previous) return value;
  if (!value || value === previous) return previous;
  throw new InvalidUwsgiVar("CONTENT_LENGTH", `${previous}, ${value}`, "sent twice with different values");
}

/** The body length CONTENT_LENGTH declares: 0 when absent or empty (nginx sends "" for a request without a body). */
export function bodyLength(fields: ReadonlyMap<string, string>): number {
  const value = fields.get("CONTENT_LENGTH");
  if (!value) return 0;
  if (!CONTENT_LENGTH_FORMAT.test(value)) throw new InvalidUwsgiVar("CONTENT_LENGTH", value, "is not a decimal byte count");
  return Number(value);
}

/* ------------------------------------------------------------------------- */
/* The request target: SCRIPT_NAME, PATH_INFO, QUERY_STRING, REQUEST_URI     */
/* ------------------------------------------------------------------------- */

/** Decodes a path var that nginx sends percent-decoded ($document_uri): its bytes are UTF-8, as in the HTTP path. */
function decodePathVar(name: string, byteString: string): string {
  if (!/[^\x00-\x7f]/.test(byteString)) return byteString;
  try {
    return utf8.decode(Buffer.from(byteString, "latin1"));
  } catch {
    throw new InvalidUwsgiVar(name, byteString, "is not valid UTF-8");
  }
}

/** Splits REQUEST_URI (origin-form, or absolute-form as the client sent it) into its raw path and query. */
function splitRequestUri(uri: string): { path: string; query: string | undefined } {
  const rest = uri.startsWith("/") ? uri : uri.replace(/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/, "") || "/";
  const question = rest.indexOf("?");
  return question === -1 ? { path: rest, query: undefined } : { path: rest.slice(0, question), query: rest.slice(question + 1) };
}

/** PATH_INFO as nginx sent it; without it, the decoded path of REQUEST_URI (a uwsgi client other than nginx). */
function requestPath(fields: ReadonlyMap<string, string>, uriPath: string | undefined): string {
  const pathInfo = fields.get("PATH_INFO");
  if (pathInfo !== undefined) return decodePathVar("PATH_INFO", pathInfo);
  if (uriPath === undefined || !uriPath.includes("%")) return uriPath ?? "";
  try {
    return decodeURIComponent(uriPath);
  } catch {
    throw new InvalidUwsgiVar("REQUEST_URI", uriPath, "has malformed percent-encoding");
  }
}

function underPrefix(path: string, prefix: string): boolean {
  return path.startsWith(prefix) && (path.length === prefix.length || path[prefix.length] === "/");
}

/**
 * SCRIPT_NAME and PATH_INFO. A SCRIPT_NAME var (`uwsgi_param SCRIPT_NAME
 * /app`) is kept as sent and stripped from the path when the path starts with
 * it (uWSGI's manage-script-name); the server's own mount point applies only
 * to paths under it, as in tsgi/environ.ts.
 */
function mountPath(path: string, scriptNameVar: string | undefined, mountPoint: string | undefined): { scriptName: string; pathInfo: string } {
  if (scriptNameVar) {
    const prefix = scriptNameVar.replace(/\/+$/, "");
    return { scriptName: prefix, pathInfo: prefix && underPrefix(path, prefix) ? path.slice(prefix.length) : path };
  }
  const prefix = (mountPoint ?? "").replace(/\/+$/, "");
  if (prefix && underPrefix(path, prefix)) return { scriptName: prefix, pathInfo: path.slice(prefix.length) };
  return { scriptName: "", pathInfo: path };
}

interface RequestTarget {
  scriptName: string;
  pathInfo: string;
  query: string;
  requestUri: string;
}

/** Where the request goes, from whichever of PATH_INFO, SCRIPT_NAME, QUERY_STRING and REQUEST_URI were sent. */
function requestTarget(fields: ReadonlyMap<string, string>, mountPoint: string | undefined): RequestTarget {
  const sentUri = fields.get("REQUEST_URI") || undefined;
  const uri = sentUri === undefined ? undefined : splitRequestUri(sentUri);
  const path = requestPath(fields, uri?.path);
  const scriptNameVar = fields.get("SCRIPT_NAME");
  const { scriptName, pathInfo } = mountPath(path, scriptNameVar ? decodePathVar("SCRIPT_NAME", scriptNameVar) : undefined, mountPoint);
  const query = fields.get("QUERY_STRING") ?? uri?.query ?? "";
  const requestUri = sentUri ?? `${encodeURI(scriptName + pathInfo)}${query ? `?${query}` : ""}`;
  return { scriptName, pathInfo, query, requestUri };
}

/* ------------------------------------------------------------------------- */
/* The environ                                                               */
/* ------------------------------------------------------------------------- */

/** REQUEST_METHOD: missing means the nginx location lacks `include uwsgi_params`. */
function requestMethod(fields: ReadonlyMap<string, string>): string {
  const method = fields.get("REQUEST_METHOD");
  if (!method) throw new InvalidUwsgiVar("REQUEST_METHOD", method, "is missing: does the nginx location `include uwsgi_params`?");
  if (!METHOD_TOKEN.test(method)) throw new InvalidUwsgiVar("REQUEST_METHOD", method, "is not an HTTP method");
  return method;
}

/** `tsgi.url_scheme` from nginx's REQUEST_SCHEME ($scheme), else its HTTPS ($https, "on" when TLS). */
function urlScheme(fields: ReadonlyMap<string, string>, fallback: "http" | "https"): "http" | "https" {
  const scheme = fields.get("REQUEST_SCHEME")?.toLowerCase();
  if (scheme === "http" || scheme === "https") return scheme;
  const https = fields.get("HTTPS")?.toLowerCase();
  if (https === "on" || https === "1" || https === "true") return "https";
  return fallback;
}

/** Vars that go into the environ as they came: every one but the server-owned `tsgi.*` and the dropped ones. */
function passesThrough(name: string): boolean {
  return !DROPPED_VARS.has(name) && !name.startsWith("tsgi.") && name !== "__proto__";
}

/** REMOTE_PORT from nginx, else the connection's; absent for a unix-socket peer nginx did not name. */
function remotePort(fields: ReadonlyMap<string, string>, peer: UwsgiPeer): string | undefined {
  return fields.get("REMOTE_PORT") || (peer.port === undefined ? undefined : String(peer.port));
}

/**
 * The environ for one uwsgi request: a copy of the server's frozen base, the
 * vars (HTTP_* and any extra uwsgi_param pass through), and the CGI keys
 * computed from them. Throws InvalidUwsgiVar when the vars cannot make a
 * request (no REQUEST_METHOD: the nginx location lacks `include uwsgi_params`).
 */
export function uwsgiEnviron(
  base: BaseEnviron,
  fields: ReadonlyMap<string, string>,
  input: InputStream,
  peer: UwsgiPeer,
  mountPoint?: string,
): Environ {
  const method = requestMethod(fields);
  const target = requestTarget(fields, mountPoint);
  const environ = { ...base } as Environ;
  for (const [name, value] of fields) if (passesThrough(name)) environ[name] = value;
  // Set again at the end, and only when the request has them: nginx sends "" for a request without a body or a type.
  delete environ.CONTENT_TYPE;
  delete environ.CONTENT_LENGTH;
  Object.assign(environ, {
    REQUEST_METHOD: method,
    SCRIPT_NAME: target.scriptName,
    PATH_INFO: target.pathInfo,
    QUERY_STRING: target.query,
    REQUEST_URI: target.requestUri,
    SERVER_PROTOCOL: fields.get("SERVER_PROTOCOL") || "HTTP/1.1",
    SERVER_NAME: fields.get("SERVER_NAME") || base.SERVER_NAME,
    SERVER_PORT: fields.get("SERVER_PORT") || base.SERVER_PORT,
    REMOTE_ADDR: fields.get("REMOTE_ADDR") || peer.address,
    "tsgi.url_scheme": urlScheme(fields, base["tsgi.url_scheme"]),
    "tsgi.input": input,
  });
  setOrDelete(environ, "REMOTE_PORT", remotePort(fields, peer));
  setOrDelete(environ, "CONTENT_TYPE", fields.get("CONTENT_TYPE"));
  setOrDelete(environ, "CONTENT_LENGTH", fields.get("CONTENT_LENGTH"));
  return environ;
}

/** Sets a CGI key that is present only when it has a value. */
function setOrDelete(environ: Environ, name: string, value: string | undefined): void {
  if (value) environ[name] = value;
  else delete environ[name];
}
