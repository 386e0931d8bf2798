/**
 * @module tsgi/environ
 *
 * Builds the environ in two stages, as wsgiref and Gunicorn do: `baseEnviron`
 * once per server (the keys every request shares), then `requestEnviron` per
 * request, which copies the base and never mutates it. Both are pure: the
 * server hands in what it parsed, and gets a plain object back.
 */
import type { Environ, ErrorStream, InputStream, TsgiVersion } from "./types.ts";

export const TSGI_VERSION: TsgiVersion = Object.freeze([1, 0] as const);

/** What a server knows about itself: stage one of the environ. */
export interface ServerInfo {
  serverName: string;
  serverPort: string | number;
  urlScheme?: "http" | "https";
  /** True when the same app runs in several processes (a pool): always so under the supervisor. */
  multiprocess?: boolean;
  errors: ErrorStream;
}

/** The keys every request of one server shares. Frozen: requests copy it. */
export type BaseEnviron = Readonly<
  Pick<
    Environ,
    | "SERVER_NAME"
    | "SERVER_PORT"
    | "SCRIPT_NAME"
    | "tsgi.version"
    | "tsgi.url_scheme"
    | "tsgi.errors"
    | "tsgi.multithread"
    | "tsgi.multiprocess"
    | "tsgi.run_once"
  >
>;

export function baseEnviron(server: ServerInfo): BaseEnviron {
  return Object.freeze({
    SERVER_NAME: server.serverName,
    SERVER_PORT: String(server.serverPort),
    SCRIPT_NAME: "",
    "tsgi.version": TSGI_VERSION,
    "tsgi.url_scheme": server.urlScheme ?? "http",
    "tsgi.errors": server.errors,
    // One JavaScript thread per worker process: an app never runs two requests in parallel threads.
    "tsgi.multithread": false,
    "tsgi.multiprocess": server.multiprocess ?? false,
    "tsgi.run_once": false,
  });
}

/** What a server parsed off one request: stage two of the environ. */
export interface RequestHead {
  method: string;
  /** The request target as received: origin-form `/a%20b?x=1`, absolute-form, or `*`. */
  target: string;
  /** "HTTP/1.1" */
  protocol: string;
  /** Header names and values alternating, as received (node's `req.rawHeaders`). */
  rawHeaders: readonly string[];
  remoteAddr: string;
  remotePort?: number | string;
  /** The mount point the app is served under (`/hello`), stripped from the path into SCRIPT_NAME. */
  scriptName?: string;
}

/** A request the environ cannot represent: the server answers it with `status`. */
export class EnvironError extends Error {
  readonly status = 400;
  constructor(message: string, readonly value: string) {
    super(`${message}: ${JSON.stringify(value)}`);
    this.name = "EnvironError";
  }
}

/**
 * Header name -> environ key. A header name containing "_" maps to no key at
 * all: `X_Forwarded_For` would otherwise land on HTTP_X_FORWARDED_FOR and pass
 * for the proxy's `X-Forwarded-For` (nginx's ignore_invalid_headers and
 * Gunicorn 22's header_map=drop make the same choice).
 */
const keyCache = new Map<string, string | null>();
const KEY_CACHE_LIMIT = 1024;

function environKey(headerName: string): string | null {
  let key = keyCache.get(headerName);
  if (key !== undefined) return key;
  const upper = headerName.toUpperCase();
  if (upper.includes("_")) key = null;
  else if (upper === "CONTENT-TYPE") key = "CONTENT_TYPE";
  else if (upper === "CONTENT-LENGTH") key = "CONTENT_LENGTH";
  else key = `HTTP_${upper.replaceAll("-", "_")}`;
  // Header names are client-controlled: bound the cache so a client cannot grow it forever.
  if (keyCache.size < KEY_CACHE_LIMIT) keyCache.set(headerName, key);
  return key;
}

/** Splits an origin-form or absolute-form target into its raw path and query. */
function splitTarget(target: string): { path: string; query: string } {
  let rest = target;
  if (!rest.startsWith("/") && rest !== "*") {
    // absolute-form (RFC 9112 §3.2.2): drop "scheme://authority".
    const match = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(rest);
    if (!match) throw new EnvironError("request target is neither a path nor an absolute URL", target);
    rest = rest.slice(match[0].length) || "/";
  }
  const hash = rest.indexOf("#");
  if (hash !== -1) rest = rest.slice(0, hash);
  const question = rest.indexOf("?");
  if (question === -1) return { path: rest, query: "" };
  return { path: rest.slice(0, question), query: rest.slice(question + 1) };
}

function decodePath(rawPath: string): string {
  if (!rawPath.includes("%")) return rawPath;
  try {
    return decodeURIComponent(rawPath);
  } catch {
    throw new EnvironError("malformed percent-encoding in the request path", rawPath);
  }
}

/** Splits a decoded path into SCRIPT_NAME and PATH_INFO for a mount point (which must match at a segment boundary). */
function mount(path: string, scriptName: string): { scriptName: string; pathInfo: string } {
  const prefix = scriptName.endsWith("/") ? scriptName.slice(0, -1) : scriptName;
  if (prefix && path.startsWith(prefix) && (path.length === prefix.length || path[prefix.length] === "/")) {
    return { scriptName: prefix, pathInfo: path.slice(prefix.length) };
  }
  return { scriptName: "", pathInfo: path };
}

/**
 * The environ for one request: a copy of `base` plus the request's CGI keys,
 * one HTTP_* key per header (repeats joined with ", "; Cookie with "; "), and
 * `tsgi.input`. Throws EnvironError for a target it cannot decode.
 */
export function requestEnviron(base: BaseEnviron, head: RequestHead, input: InputStream): Environ {
  const { path, query } = splitTarget(head.target);
  const mounted = mount(decodePath(path), head.scriptName ?? base.SCRIPT_NAME);
  const environ = {
    ...base,
    REQUEST_METHOD: head.method,
    SCRIPT_NAME: mounted.scriptName,
    PATH_INFO: mounted.pathInfo,
    QUERY_STRING: query,
    REQUEST_URI: head.target,
    SERVER_PROTOCOL: head.protocol,
    REMOTE_ADDR: head.remoteAddr,
    "tsgi.input": input,
  } as Environ;
  if (head.remotePort !== undefined) environ.REMOTE_PORT = String(head.remotePort);

  const raw = head.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = environKey(raw[i]!);
    if (key === null) continue;
    const value = raw[i + 1]!;
    const previous = environ[key] as string | undefined;
    if (previous === undefined) environ[key] = value;
    else environ[key] = `${previous}${key === "HTTP_COOKIE" ? "; " : ", "}${value}`;
  }
  return environ;
}
