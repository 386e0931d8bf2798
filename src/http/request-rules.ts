/**
 * @module http/request-rules
 *
 * What a request head must be before anything of ours acts on it, for both
 * front doors — the proxy's listener and a worker's own HTTP listener
 * (`serve`) — on top of node's strict parser (llhttp), which lets through a
 * few things RFC 9110/9112 and nginx refuse. Pure: a head in, a verdict out;
 * each rule names the RFC section or the nginx behaviour it follows.
 *
 *   version     HTTP/1.x only: 0.9 is 400, 2.0 and up 505 (RFC 9112 §2.6;
 *               HTTP/2 is not spoken in plain text here) — but 2.0 for a
 *               request from the proxy's HTTP/2 listener (option http2)
 *   size        a request target over 8 KiB: 414; a header line over 8 KiB
 *               or more than 1000 header fields: 431 (nginx's
 *               large_client_header_buffers 4 8k)
 *   framing     a Content-Length that is not a plain decimal, a
 *               Transfer-Encoding other than exactly `chunked`, sent twice,
 *               or in an HTTP/1.0 request: 400 (request smuggling)
 *   host        Host sent twice, empty, or not host[:port], or missing
 *               from an HTTP/1.1 request: 400 (RFC 9112 §3.2; nginx's
 *               ngx_http_validate_host)
 *   singletons  a second Authorization, If-Match, If-None-Match,
 *               If-Modified-Since, If-Unmodified-Since, Content-Range,
 *               If-Range or Expect: 400 (nginx: "client sent duplicate
 *               header line")
 *   target      `*` with any method but OPTIONS, an absolute-form target
 *               that is not an http(s) URL with a host, anything else that
 *               is not a path, or a `%` not followed by two hex digits: 400
 *   method      TRACE: 405 unless the app opts in (it echoes the request,
 *               cookies and all); CONNECT is answered by the listener (405)
 *
 * `normalizeTarget` then gives the target both front doors act on:
 * absolute-form becomes origin-form plus the host it named (RFC 9112
 * §3.2.2: that host replaces the Host header), and dot segments are removed
 * from the path (RFC 3986 §5.2.4), as nginx does before it matches a
 * location.
 */
import { isIPv6 } from "node:net";

/** Why a request head is refused: the status, and a reason for the answer's text. */
export interface HeadProblem {
  status: 400 | 405 | 414 | 431 | 505;
  reason: string;
  /** For 405: the methods allowed instead. */
  allow?: string;
}

/** The parts of a parsed request head the rules read (node's IncomingMessage has them all). */
export interface RequestHeadView {
  readonly method?: string;
  readonly url?: string;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly rawHeaders: readonly string[];
}

export interface RuleOptions {
  /** Let TRACE through (the app asked for it); refused with 405 otherwise. */
  allowTrace?: boolean;
  /** The request came as an HTTP/2 stream (proxy/http2/): HTTP/2.0 is its version, not a 505. */
  http2?: boolean;
}

/**
 * nginx's large_client_header_buffers (4 x 8k): a request line longer than
 * one buffer is answered 414, a header line longer than one 431. node's own
 * limit is the whole head (16 KiB, answered 431 by the listener).
 */
export const MAX_REQUEST_TARGET = 8 * 1024;
export const MAX_HEADER_LINE = 8 * 1024;
/** More header fields than any client sends: 431 (node would silently keep only the first 2000). */
export const MAX_HEADER_FIELDS = 1000;

/** The Allow header of a 405: the methods an app may be sent. */
export const ALLOWED_METHODS = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS";
/** The Allow header of a static folder's 405: the only methods it answers. */
export const STATIC_METHODS = "GET, HEAD";

/** Request headers that may appear once: a second one is a 400, not a list to join. */
const SINGLETONS: ReadonlySet<string> = new Set([
  "authorization",
  "if-match",
  "if-none-match",
  "if-modified-since",
  "if-unmodified-since",
  "content-range",
  "if-range",
  "expect",
]);

/** The first rule a request head breaks, or undefined when it keeps them all. */
export function headProblem(head: RequestHeadView, options: RuleOptions = {}): HeadProblem | undefined {
  // One pass over the header fields (fieldProblem): this runs on every request of both front doors.
  return versionProblem(head, options) ?? sizeProblem(head) ?? fieldProblem(head) ?? targetProblem(head) ?? methodProblem(head, options);
}

function versionProblem(head: RequestHeadView, options: RuleOptions): HeadProblem | undefined {
  if (head.httpVersionMajor === 1) return undefined;
  if (head.httpVersionMajor === 2 && options.http2) return undefined;
  if (head.httpVersionMajor === 0) return { status: 400, reason: `HTTP/${head.httpVersionMajor}.${head.httpVersionMinor} is not supported` };
  return { status: 505, reason: `HTTP/${head.httpVersionMajor}.${head.httpVersionMinor} is not supported here: HTTP/1.1 is` };
}

function sizeProblem(head: RequestHeadView): HeadProblem | undefined {
  if ((head.url ?? "").length > MAX_REQUEST_TARGET) return { status: 414, reason: `the request target is longer than ${MAX_REQUEST_TARGET} bytes` };
  if (head.rawHeaders.length / 2 > MAX_HEADER_FIELDS) return { status: 431, reason: `more than ${MAX_HEADER_FIELDS} header fields` };
  return undefined;
}

/** One pass over the header fields: line length, framing, Host and the singletons. */
function fieldProblem(head: RequestHeadView): HeadProblem | undefined {
  const raw = head.rawHeaders;
  let transferEncoding: string | undefined;
  let host: string | undefined;
  let seen: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    // name ": " value: the line as the client sent it, less its CRLF.
    if (raw[i]!.length + 2 + raw[i + 1]!.length > MAX_HEADER_LINE) {
      return { status: 431, reason: `the ${raw[i]} header line is longer than ${MAX_HEADER_LINE} bytes` };
    }
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name === "content-length" && !/^(0|[1-9]\d{0,15})$/.test(value.trim())) {
      return bad(`Content-Length ${JSON.stringify(value.trim())} is not a plain decimal number`);
    }
    if (name === "transfer-encoding") {
      if (transferEncoding !== undefined) return bad("Transfer-Encoding is sent twice");
      transferEncoding = value.trim();
    } else if (name === "host") {
      if (host !== undefined) return bad("Host is sent twice");
      host = value.trim();
    } else if (SINGLETONS.has(name)) {
      seen ??= new Set();
      if (seen.has(name)) return bad(`${raw[i]} is sent twice`);
      seen.add(name);
    }
  }
  if (transferEncoding !== undefined) {
    if (transferEncoding.toLowerCase() !== "chunked") return bad(`Transfer-Encoding ${JSON.stringify(transferEncoding)} is not "chunked"`);
    if (head.httpVersionMinor === 0) return bad("Transfer-Encoding in an HTTP/1.0 request");
  }
  if (host !== undefined && !isValidHost(host)) return bad(`Host ${JSON.stringify(host)} is not a host[:port]`);
  // RFC 9112 §3.2: an HTTP/1.1 request without Host MUST get 400, absolute-form or not (nginx: "client sent
  // HTTP/1.1 request without Host header"). Passed on, the worker's node:http refuses it instead, and the
  // requests pipelined behind it no longer stop at our front door.
  if (host === undefined && head.httpVersionMinor === 1) return bad("an HTTP/1.1 request without Host");
  return undefined;
}

function targetProblem(head: RequestHeadView): HeadProblem | undefined {
  const target = head.url ?? "";
  if (target === "*") return head.method === "OPTIONS" ? undefined : bad(`the target * is for OPTIONS, not ${head.method}`);
  let path: string;
  if (target.startsWith("/")) path = target;
  else {
    const absolute = parseAbsolute(target);
    if (!absolute) return bad("the request target is neither a path nor an http(s) URL with a host");
    path = absolute.pathAndQuery;
  }
  if (!path.includes("%")) return undefined;
  const end = path.search(/[?#]/);
  if (/%(?![0-9A-Fa-f]{2})/.test(end === -1 ? path : path.slice(0, end))) return bad("a % in the path is not followed by two hex digits");
  return undefined;
}

function methodProblem(head: RequestHeadView, options: RuleOptions): HeadProblem | undefined {
  if (head.method === "TRACE" && !options.allowTrace) return { status: 405, reason: "TRACE is not allowed", allow: ALLOWED_METHODS };
  return undefined;
}

const bad = (reason: string): HeadProblem => ({ status: 400, reason });

/* ------------------------------------------------------------------ host */

const PORT = /^\d{1,5}$/;
/** reg-name and IPv4 (RFC 3986 §3.2.2): unreserved, pct-encoded and sub-delims; no "/", "\", "@" or ":". */
const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/;

/**
 * host[:port] as RFC 9112 §3.2 and nginx accept it: a bracketed IPv6
 * literal, or a name or IPv4 address with no empty label (`..x`) and not
 * just dots; an optional port of 0-65535 (an empty one, `host:`, is allowed
 * by the grammar).
 */
export function isValidHost(value: string): boolean {
  if (value === "") return false;
  let name = value;
  let port: string | undefined;
  if (value.startsWith("[")) {
    const close = value.indexOf("]");
    if (close === -1) return false;
    if (!isIPv6Literal(value.slice(1, close))) return false;
    const rest = value.slice(close + 1);
    if (rest === "") return true;
    if (!rest.startsWith(":")) return false;
    port = rest.slice(1);
    return port === "" || (PORT.test(port) && Number(port) <= 65535);
  }
  const colon = value.indexOf(":");
  if (colon !== -1) {
    name = value.slice(0, colon);
    port = value.slice(colon + 1);
    if (port !== "" && !(PORT.test(port) && Number(port) <= 65535)) return false;
  }
  if (!REG_NAME.test(name) || name.includes("..")) return false;
  // A trailing dot is the root label (nginx drops it); what is left must not be empty.
  return name.replace(/\.$/, "") !== "";
}

/** The inside of an IP-literal (RFC 3986 §3.2.2): an IPv6 address (no zone id, no IPvFuture). */
function isIPv6Literal(text: string): boolean {
  return /^[0-9A-Fa-f:.]+$/.test(text) && isIPv6(text);
}

/* ---------------------------------------------------------------- target */

interface AbsoluteTarget {
  /** host[:port] as written in the URI. */
  authority: string;
  /** The path (at least "/") and query, as written. */
  pathAndQuery: string;
}

/** An absolute-form target (RFC 9112 §3.2.2): http or https, a valid authority, then a path or nothing. */
function parseAbsolute(target: string): AbsoluteTarget | undefined {
  const match = /^(https?):\/\/([^/?#]*)(.*)$/i.exec(target);
  if (!match) return undefined;
  const authority = match[2]!;
  // userinfo ("user@host") is deprecated for http(s) and a classic way to confuse parsers: refused.
  if (authority.includes("@") || !isValidHost(authority)) return undefined;
  const rest = match[3]!;
  if (rest !== "" && !rest.startsWith("/") && !rest.startsWith("?")) return undefined;
  return { authority, pathAndQuery: rest === "" || rest.startsWith("?") ? `/${rest}` : rest };
}

/** The target both front doors act on: origin-form, with its path's unreserved characters decoded and dot segments removed, and the host an absolute-form target named. */
export interface NormalizedTarget {
  /** origin-form: the normalized path, then `?query` when there is one. */
  url: string;
  /** The path alone (percent-encoded but for unreserved characters, dot segments removed). */
  path: string;
  /** The authority of an absolute-form target: it replaces the Host header. */
  host?: string;
}

/** Call after headProblem() found nothing: `*` and malformed targets are not handled here. */
export function normalizeTarget(target: string): NormalizedTarget {
  let host: string | undefined;
  let pathAndQuery = target;
  if (!target.startsWith("/")) {
    const absolute = parseAbsolute(target);
    if (absolute) {
      host = absolute.authority;
      pathAndQuery = absolute.pathAndQuery;
    }
  }
  const hash = pathAndQuery.indexOf("#");
  if (hash !== -1) pathAndQuery = pathAndQuery.slice(0, hash);
  const question = pathAndQuery.indexOf("?");
  const rawPath = question === -1 ? pathAndQuery : pathAndQuery.slice(0, question);
  const path = removeDotSegments(decodeUnreserved(rawPath));
  const url = question === -1 ? path : `${path}${pathAndQuery.slice(question)}`;
  return host === undefined ? { url, path } : { url, path, host };
}

/**
 * RFC 3986 §6.2.2.2: a percent-encoded unreserved character (a letter, a
 * digit, `-`, `.`, `_`, `~`) is the character itself, so `/%61pi` is `/api`
 * — routed, limited and given headers as `/api` (nginx decodes before it
 * matches a location, and a worker would decode it anyway). Every other
 * escape is kept as sent: `%2F` is not a `/`, `%20` stays `%20`.
 */
export function decodeUnreserved(path: string): string {
  if (!path.includes("%")) return path;
  return path.replace(/%([0-9A-Fa-f]{2})/g, (escape, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(char) ? char : escape;
  });
}

/** RFC 3986 §5.2.4 on an absolute path; `.` and `..` also when percent-encoded (`%2e`), as nginx decodes them before it merges. */
export function removeDotSegments(path: string): string {
  if (!path.includes(".") && !/%2e/i.test(path)) return path;
  const output: string[] = [];
  const segments = path.split("/").slice(1);
  segments.forEach((segment, index) => {
    const plain = segment.replace(/%2e/gi, ".");
    const last = index === segments.length - 1;
    if (plain === ".") {
      if (last) output.push("");
    } else if (plain === "..") {
      output.pop();
      if (last) output.push("");
    } else output.push(segment);
  });
  return `/${output.join("/")}`;
}
