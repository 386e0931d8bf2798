/**
 * @module tsgi/validate
 *
 * Middleware that checks both sides of the TSGI contract (docs/tsgi.md), the
 * analogue of wsgiref.validate. Put it between a server and an app:
 *
 *     serve(validator(app));                  // the server and the app are checked
 *     dispatcher({ "/api": validator(api) }); // a middleware is checked as a server
 *
 * It checks and never changes what passes through: the app gets a shallow copy
 * of the environ whose `tsgi.input` and `tsgi.errors` are checking wrappers
 * (every other value is the server's own, `===`), the server gets the app's
 * status and header list as they are (the same array) and a wrapper around the
 * body that yields the app's chunks unchanged. An array body is handed on as a
 * copy of the array, so that servers still see an array and still measure it.
 *
 * A hard violation throws TsgiValidationError, whose message names the rule as
 * "(docs/tsgi.md, <rule>)" and shows the bad value. It is thrown where the
 * violation happens: into the app (from startResponse, write, tsgi.input,
 * tsgi.errors) or into the server (from the validated app call, the body's
 * iterator, close()). A soft one is a TsgiWarning passed to `onWarning`
 * (default: written to the server's `environ["tsgi.errors"]`).
 *
 * The checklist, by rule (H = hard, throws; S = soft, warns; [server] or
 * [app] = who broke it):
 *
 * the application
 *   H [app]    validator() is given a function.
 *   H [server] the app is called with exactly (environ, startResponse), startResponse a function.
 * environ
 *   H [server] environ is a plain object (its prototype is Object.prototype or null).
 *   H [server] every required key is present: REQUEST_METHOD, SCRIPT_NAME, PATH_INFO,
 *              QUERY_STRING, SERVER_NAME, SERVER_PORT, SERVER_PROTOCOL, REMOTE_ADDR and the
 *              seven tsgi.* keys.
 *   H [server] CGI-style keys (upper case, no dot; HTTP_* included) hold strings; an absent
 *              key is absent, never present with the value undefined.
 * REQUEST_METHOD
 *   H [server] an HTTP token (RFC 9110 §5.6.2).   S a method with lower-case letters.
 * SCRIPT_NAME and PATH_INFO
 *   H [server] SCRIPT_NAME is "" or starts with "/" and does not end with "/".
 *   H [server] PATH_INFO is "" or starts with "/" ("*" only for OPTIONS * with SCRIPT_NAME "").
 *   H [server] they are not both "".
 *   H [server] PATH_INFO is percent-decoded: SCRIPT_NAME + PATH_INFO is not the raw,
 *              still-encoded path of REQUEST_URI.
 * QUERY_STRING
 *   H [server] no "#": a fragment never reaches the app (its type is the environ rule's).
 * CONTENT_TYPE and CONTENT_LENGTH
 *   H [server] CONTENT_LENGTH, when present, is decimal digits.
 *   H [server] no HTTP_CONTENT_TYPE or HTTP_CONTENT_LENGTH key.
 * HTTP_* keys
 *   H [server] the name part is upper case, "-" mapped to "_" (no lower case, no "-").
 *   H [server] values have no CR, LF or NUL and only Latin-1 characters (one per byte).
 * server and client keys
 *   H [server] SERVER_PORT (and REMOTE_PORT if present) is decimal digits.
 *   H [server] SERVER_PROTOCOL is "HTTP/x.y" or "HTTP/x".   S SERVER_NAME is "".
 * tsgi.version      H [server] an array [1, minor] of two non-negative integers.
 * tsgi.url_scheme   H [server] "http" or "https".
 * tsgi.input
 *   H [server] an async iterable. The check never starts an iteration: starting one is
 *              what sends "100 Continue" (rule 100-continue).
 *   H [server] every chunk is a Uint8Array.
 *   H [server] never more bytes than CONTENT_LENGTH; never a normal end before it.
 *   H [app]    iterated at most once.
 * tsgi.errors
 *   H [server] has write(); flush, if present, is a function.
 *   H [app]    write() is called with a string.
 * process flags     H [server] tsgi.multithread, tsgi.multiprocess, tsgi.run_once are booleans.
 * extension keys    S [server] an unknown tsgi.* key (the prefix is reserved), or a lower-case
 *                              key without a namespace prefix.
 * startResponse
 *   H [app]    a second call without excInfo.
 *   H [app]    a body chunk, or the end of the body, before startResponse was called.
 *   H [server] startResponse returned something other than a function.
 * status
 *   H [app]    a string: three digits, one space, a reason phrase; a code of 200-599
 *              (1xx interim responses belong to the server); the reason has no control
 *              characters but HTAB and only Latin-1 characters.
 *   S [app]    the reason phrase is empty.
 * response headers
 *   H [app]    an Array of [name, value] pairs of strings; names are HTTP tokens;
 *              values have no control characters but HTAB and only Latin-1 characters.
 *   S [app]    a name with characters beyond letters, digits and "-" (nginx drops "_");
 *              a value with leading or trailing whitespace; a value with non-ASCII
 *              characters; a "Status" header; Content-Type twice; no Content-Type on a
 *              response whose body is not empty.
 * excInfo
 *   S [app]    excInfo that is not an Error.
 *   S [server] startResponse accepted excInfo after body bytes had been handed to it
 *              (a server that has sent the headers must rethrow it; only a middleware
 *              that buffers and discards may accept it).
 * write
 *   H [app]    called with a string or Uint8Array, and only before the app's return
 *              value (or its Promise) settles, never from inside the body.
 *   H [server] write() returned something other than a Promise.
 * the body
 *   H [app]    the app returns (or resolves to) an Iterable or AsyncIterable that is not a
 *              string, not a byte array, not a foreign thenable.
 *   H [app]    every chunk is a string or Uint8Array; each iterator step is an object.
 *   S [app]    a string chunk with a lone surrogate (it would be sent as U+FFFD).
 *   H [server] the server iterates the body at most once.
 * close
 *   H [server] close() is called at most once, and no chunk is asked for after it.
 *   S [server] the body was garbage-collected without close() having been called (no call
 *              is on the stack to throw into, as in wsgiref).
 * Content-Length
 *   H [app]    the header is decimal digits (at most 2^53 - 1) and appears at most once.
 *   H [app]    the body (write() and returned chunks together) never exceeds it and does
 *              not end short of it, except for HEAD and bodiless statuses.
 * HEAD and bodiless statuses
 *   H [app]    no Content-Length on a 204.   S [app] body bytes on a 204 or 304.
 * hop-by-hop headers
 *   H [app]    none of Connection, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade.
 *
 * Not checkable from between the two sides, and why: UNCHECKED_RULES below.
 *
 * Why one file of ~1000 lines: like wsgiref's validate.py it is one
 * checklist — the header below lists every rule, each a small check*
 * function or stream wrapper, and test/tsgi/docs-rules.test.ts holds the
 * rule names equal to docs/tsgi.md. Split, the checklist would no longer be
 * readable in one place.
 */
import type { AppResult, Chunk, Environ, ErrorStream, HeaderList, InputStream, ResponseBody, StartResponse, TsgiApp, WriteFn } from "./types.ts";
import { FIELD_NAME, FIELD_VALUE, TOKEN } from "../contract/http-grammar.ts";
import { TsgiContractError } from "./handler.ts";
import { getHeader, isChunk, isHopByHop, statusHasNoBody, toBytes } from "./util.ts";

/** Every rule of docs/tsgi.md, by its heading name ("### Rule: <name>"). A test keeps this list and the doc equal. */
export const RULE_NAMES = [
  "the application",
  "environ",
  "REQUEST_METHOD",
  "SCRIPT_NAME and PATH_INFO",
  "QUERY_STRING",
  "CONTENT_TYPE and CONTENT_LENGTH",
  "HTTP_* keys",
  "server and client keys",
  "tsgi.version",
  "tsgi.url_scheme",
  "tsgi.input",
  "100-continue",
  "tsgi.errors",
  "process flags",
  "extension keys",
  "startResponse",
  "status",
  "response headers",
  "excInfo",
  "write",
  "the body",
  "close",
  "buffering and streaming",
  "Content-Length",
  "chunked encoding",
  "HEAD and bodiless statuses",
  "hop-by-hop headers",
  "error handling",
  "middleware",
] as const;

export type RuleName = (typeof RULE_NAMES)[number];

/**
 * The rules a middleware cannot check, because what they govern happens on the
 * wire, below the server side of the interface. The servers' own tests check
 * them (test/tsgi/handler tests, the adapters' conformance suite).
 */
export const UNCHECKED_RULES: Readonly<Partial<Record<RuleName, string>>> = {
  "100-continue": "the interim response goes out on the wire; the validator only makes sure it never starts reading tsgi.input itself",
  "buffering and streaming": "when bytes reach the client is the transport's business, invisible to a middleware",
  "chunked encoding": "message framing happens below the interface",
  "error handling": "what the client receives after an error is on the wire; the validator lets every error pass through unchanged",
  middleware: "a middleware is checked by two validators, one on each side of it",
};

/** Who broke a rule: the server (or a middleware acting as one) or the application. */
export type Party = "server" | "application";

/** A hard violation of docs/tsgi.md, found by the validator. */
export class TsgiValidationError extends TsgiContractError {
  constructor(
    readonly rule: RuleName,
    readonly party: Party,
    message: string,
    readonly value?: unknown,
  ) {
    super(rule, message);
    this.name = "TsgiValidationError";
  }
}

/** A soft violation: legal, but probably not what was meant. An Error, so that its stack shows where it happened. */
export class TsgiWarning extends Error {
  constructor(
    readonly rule: RuleName,
    readonly party: Party,
    message: string,
    readonly value?: unknown,
  ) {
    super(`${message} (docs/tsgi.md, ${rule})`);
    this.name = "TsgiWarning";
  }
}

export type WarningSink = (warning: TsgiWarning) => void;

export interface ValidatorOptions {
  /** Receives every soft violation (default: one line on the server's `environ["tsgi.errors"]`). */
  onWarning?: WarningSink;
}

const ignoreWarnings: WarningSink = () => {};

// ---------------------------------------------------------------------------
// Showing values in messages
// ---------------------------------------------------------------------------

const MAX_SHOWN = 80;

/** A short, unambiguous rendering of a bad value, for messages: strings quoted, objects by kind. */
function show(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN)}…` : value);
  }
  if (value === null || value === undefined || typeof value === "number" || typeof value === "boolean") return String(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "symbol") return value.toString();
  if (typeof value === "function") return `function ${value.name || "(anonymous)"}`;
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${value.byteLength} bytes)`;
  if (Array.isArray(value)) {
    const shown = `[${value.slice(0, 4).map(show).join(", ")}${value.length > 4 ? ", …" : ""}]`;
    return shown.length > MAX_SHOWN * 2 ? `${shown.slice(0, MAX_SHOWN * 2)}…]` : shown;
  }
  const name = (value as object).constructor?.name;
  if (!name || name === "Object") return "an object";
  return `${/^[AEIOU]/.test(name) ? "an" : "a"} ${name}`;
}

// ---------------------------------------------------------------------------
// Grammar (RFC 9110)
// ---------------------------------------------------------------------------

// token, field-name and field-value are the shared grammar of contract/http-grammar.ts.
/** Header names every proxy forwards: nginx drops names with "_" (ignore_invalid_headers), and so does our environ. */
const PLAIN_HEADER_NAME = /^[A-Za-z0-9-]+$/;
/** What an HTTP_* key's name part may hold once a server upper-cased the header name and mapped "-" to "_". */
const HTTP_KEY = /^HTTP_[!#$%&'*+.^_`|~0-9A-Z]+$/;
/** Characters no request header value can hold once an HTTP parser accepted it. */
const BROKEN_VALUE = /[\r\n\0]|[^\x00-\xff]/;
const DIGITS = /^\d+$/;
const STATUS = /^(\d{3}) ([^]*)$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** CGI-style keys: upper case and no dot. They carry request data as strings. */
const CGI_STYLE_KEY = /^[A-Z][A-Z0-9_]*$/;

const REQUIRED_KEYS = [
  "REQUEST_METHOD",
  "SCRIPT_NAME",
  "PATH_INFO",
  "QUERY_STRING",
  "SERVER_NAME",
  "SERVER_PORT",
  "SERVER_PROTOCOL",
  "REMOTE_ADDR",
  "tsgi.version",
  "tsgi.url_scheme",
  "tsgi.input",
  "tsgi.errors",
  "tsgi.multithread",
  "tsgi.multiprocess",
  "tsgi.run_once",
] as const;

const TSGI_KEYS: ReadonlySet<string> = new Set(REQUIRED_KEYS.filter((key) => key.startsWith("tsgi.")));

function serverError(rule: RuleName, message: string, value?: unknown): TsgiValidationError {
  return new TsgiValidationError(rule, "server", message, value);
}

function appError(rule: RuleName, message: string, value?: unknown): TsgiValidationError {
  return new TsgiValidationError(rule, "application", message, value);
}

// ---------------------------------------------------------------------------
// The server side: the call and the environ
// ---------------------------------------------------------------------------

/** Rule "the application", server side: exactly (environ, startResponse). */
export function checkApplicationCall(args: readonly unknown[]): void {
  if (args.length !== 2) {
    throw new TsgiValidationError("the application", "server", `the app must be called with (environ, startResponse), got ${args.length} arguments`, args.length);
  }
  if (typeof args[1] !== "function") {
    throw new TsgiValidationError("the application", "server", `startResponse must be a function, got ${show(args[1])}`, args[1]);
  }
}

/** Rule "environ": a plain object with every required key, CGI-style keys holding strings. */
export function checkEnvironObject(environ: unknown): asserts environ is Environ {
  if (typeof environ !== "object" || environ === null || Array.isArray(environ)) {
    throw new TsgiValidationError("environ", "server", `environ must be a plain object, got ${show(environ)}`, environ);
  }
  const proto = Object.getPrototypeOf(environ);
  if (proto !== Object.prototype && proto !== null) {
    // Middleware copies the environ with {...environ}: inherited keys would vanish from the copy.
    throw new TsgiValidationError("environ", "server", `environ must be a plain object, got ${show(environ)}`, environ);
  }
  for (const key of REQUIRED_KEYS) {
    if (!Object.hasOwn(environ, key)) {
      throw new TsgiValidationError("environ", "server", `environ is missing the required key ${show(key)}`, key);
    }
  }
  for (const [key, value] of Object.entries(environ)) {
    if (value === undefined) {
      throw new TsgiValidationError("environ", "server", `environ key ${show(key)} is present with the value undefined; leave an absent key out`, key);
    }
    if ((CGI_STYLE_KEY.test(key) || key.startsWith("HTTP_")) && typeof value !== "string") {
      throw new TsgiValidationError("environ", "server", `environ key ${key} must be a string, got ${show(value)}`, value);
    }
  }
}

/** Rule "REQUEST_METHOD": a token, as received (methods are case-sensitive). */
export function checkRequestMethod(environ: Environ, warn: WarningSink): void {
  const method = environ.REQUEST_METHOD;
  if (!TOKEN.test(method)) {
    throw new TsgiValidationError("REQUEST_METHOD", "server", `REQUEST_METHOD must be an HTTP token, got ${show(method)}`, method);
  }
  if (method !== method.toUpperCase()) {
    warn(new TsgiWarning("REQUEST_METHOD", "server", `REQUEST_METHOD ${show(method)} has lower-case letters: methods are case-sensitive, and every standard one is upper case`, method));
  }
}

/** The raw path of a request target: absolute-form authority, query and fragment removed. */
function rawPathOf(target: string): string {
  let rest = target.replace(/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/, "");
  const cut = rest.search(/[?#]/);
  if (cut !== -1) rest = rest.slice(0, cut);
  return rest;
}

/** Rule "SCRIPT_NAME and PATH_INFO": their shape, and that PATH_INFO was percent-decoded. */
export function checkPaths(environ: Environ): void {
  const { SCRIPT_NAME: script, PATH_INFO: path } = environ;
  if (script !== "" && (!script.startsWith("/") || script.endsWith("/"))) {
    throw new TsgiValidationError("SCRIPT_NAME and PATH_INFO", "server", `SCRIPT_NAME must be "" or start with "/" and not end with "/", got ${show(script)}`, script);
  }
  const asterisk = path === "*" && script === "" && environ.REQUEST_METHOD === "OPTIONS";
  if (path !== "" && !path.startsWith("/") && !asterisk) {
    throw new TsgiValidationError("SCRIPT_NAME and PATH_INFO", "server", `PATH_INFO must be "" or start with "/", got ${show(path)}`, path);
  }
  if (script === "" && path === "") {
    throw new TsgiValidationError("SCRIPT_NAME and PATH_INFO", "server", `SCRIPT_NAME and PATH_INFO are both "": the root of a server is PATH_INFO "/"`, path);
  }
  const uri = environ.REQUEST_URI;
  if (typeof uri === "string") {
    const raw = rawPathOf(uri);
    // Only a path that decoding would change can prove a server forgot to decode it.
    if (/%[0-9A-Fa-f]{2}/.test(raw) && script + path === raw) {
      throw new TsgiValidationError("SCRIPT_NAME and PATH_INFO", "server", `PATH_INFO must be percent-decoded, got the raw path ${show(path)}`, path);
    }
  }
}

/** Rule "QUERY_STRING": raw, without the "?", and never with the fragment, which clients do not send. */
export function checkQueryString(environ: Environ): void {
  const query = environ.QUERY_STRING;
  if (query.includes("#")) {
    throw new TsgiValidationError("QUERY_STRING", "server", `QUERY_STRING must not carry a fragment ("#..."), got ${show(query)}`, query);
  }
}

/** Rule "CONTENT_TYPE and CONTENT_LENGTH": the two headers CGI names without HTTP_. */
export function checkContentKeys(environ: Environ): void {
  const length = environ.CONTENT_LENGTH;
  if (length !== undefined && !DIGITS.test(length)) {
    throw new TsgiValidationError("CONTENT_TYPE and CONTENT_LENGTH", "server", `CONTENT_LENGTH must be decimal digits, got ${show(length)}`, length);
  }
  for (const key of ["HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"]) {
    if (Object.hasOwn(environ, key)) {
      throw new TsgiValidationError("CONTENT_TYPE and CONTENT_LENGTH", "server", `environ must not have ${key} (the header goes in ${key.slice(5)}), got ${show(environ[key])}`, key);
    }
  }
}

/** Rule "HTTP_* keys": the mapping from header names, and values as an HTTP parser delivers them. */
export function checkHttpKeys(environ: Environ): void {
  for (const [key, value] of Object.entries(environ)) {
    const isHeader = key.startsWith("HTTP_");
    if (!isHeader && key !== "CONTENT_TYPE") continue;
    if (isHeader && !HTTP_KEY.test(key)) {
      throw new TsgiValidationError("HTTP_* keys", "server", `${show(key)} is not a header key: the name is upper-cased with "-" as "_"`, key);
    }
    if (BROKEN_VALUE.test(value as string)) {
      throw new TsgiValidationError("HTTP_* keys", "server", `${key} holds CR, LF, NUL or a character above U+00FF: ${show(value)}`, value);
    }
  }
}

/** Rule "server and client keys": SERVER_*, REMOTE_* and REQUEST_URI. */
export function checkServerKeys(environ: Environ, warn: WarningSink): void {
  if (!DIGITS.test(environ.SERVER_PORT)) {
    throw new TsgiValidationError("server and client keys", "server", `SERVER_PORT must be decimal digits, got ${show(environ.SERVER_PORT)}`, environ.SERVER_PORT);
  }
  if (environ.REMOTE_PORT !== undefined && !DIGITS.test(environ.REMOTE_PORT)) {
    throw new TsgiValidationError("server and client keys", "server", `REMOTE_PORT must be decimal digits, got ${show(environ.REMOTE_PORT)}`, environ.REMOTE_PORT);
  }
  if (!/^HTTP\/\d(\.\d)?$/.test(environ.SERVER_PROTOCOL)) {
    throw new TsgiValidationError("server and client keys", "server", `SERVER_PROTOCOL must look like "HTTP/1.1", got ${show(environ.SERVER_PROTOCOL)}`, environ.SERVER_PROTOCOL);
  }
  if (environ.SERVER_NAME === "") {
    warn(new TsgiWarning("server and client keys", "server", `SERVER_NAME is "": URL reconstruction falls back on it when there is no Host header`, ""));
  }
}

/** Rule "tsgi.version": [1, minor]. */
export function checkVersion(environ: Environ): void {
  const version: unknown = environ["tsgi.version"];
  const ok =
    Array.isArray(version) &&
    version.length === 2 &&
    version.every((part) => Number.isInteger(part) && part >= 0) &&
    version[0] === 1;
  if (!ok) {
    throw new TsgiValidationError("tsgi.version", "server", `tsgi.version must be [1, minor], got ${show(version)}`, version);
  }
}

/** Rule "tsgi.url_scheme". */
export function checkUrlScheme(environ: Environ): void {
  const scheme: unknown = environ["tsgi.url_scheme"];
  if (scheme !== "http" && scheme !== "https") {
    throw new TsgiValidationError("tsgi.url_scheme", "server", `tsgi.url_scheme must be "http" or "https", got ${show(scheme)}`, scheme);
  }
}

/**
 * Rule "tsgi.input", the shape only. It must not call [Symbol.asyncIterator]:
 * starting an iteration is what sends "100 Continue" to a waiting client.
 */
export function checkInputStream(environ: Environ): void {
  const input: unknown = environ["tsgi.input"];
  if (typeof input !== "object" || input === null || typeof (input as InputStream)[Symbol.asyncIterator] !== "function") {
    throw new TsgiValidationError("tsgi.input", "server", `tsgi.input must be an AsyncIterable of Uint8Array, got ${show(input)}`, input);
  }
}

/** Rule "tsgi.errors", the shape only. */
export function checkErrorStream(environ: Environ): void {
  const errors: unknown = environ["tsgi.errors"];
  if (typeof errors !== "object" || errors === null || typeof (errors as ErrorStream).write !== "function") {
    throw new TsgiValidationError("tsgi.errors", "server", `tsgi.errors must have a write(message) method, got ${show(errors)}`, errors);
  }
  const flush = (errors as ErrorStream).flush;
  if (flush !== undefined && typeof flush !== "function") {
    throw new TsgiValidationError("tsgi.errors", "server", `tsgi.errors.flush must be a function when present, got ${show(flush)}`, flush);
  }
}

/** Rule "process flags". */
export function checkProcessFlags(environ: Environ): void {
  for (const key of ["tsgi.multithread", "tsgi.multiprocess", "tsgi.run_once"] as const) {
    const flag: unknown = environ[key];
    if (typeof flag !== "boolean") {
      throw new TsgiValidationError("process flags", "server", `${key} must be a boolean, got ${show(flag)}`, flag);
    }
  }
}

/** Rule "extension keys": tsgi.* is reserved; others' keys carry their own prefix. */
export function checkExtensionKeys(environ: Environ, warn: WarningSink): void {
  for (const key of Object.keys(environ)) {
    if (key.startsWith("tsgi.") && !TSGI_KEYS.has(key)) {
      warn(new TsgiWarning("extension keys", "server", `unknown key ${show(key)}: the tsgi. prefix is reserved for this specification`, key));
    } else if (!key.includes(".") && !CGI_STYLE_KEY.test(key) && !key.startsWith("HTTP_")) {
      warn(new TsgiWarning("extension keys", "server", `key ${show(key)} is neither a CGI key nor prefixed ("myserver.${key}")`, key));
    }
  }
}

/** Every environ rule, in the order of docs/tsgi.md. Throws on the first hard violation. */
export function checkEnviron(environ: unknown, warn: WarningSink = ignoreWarnings): asserts environ is Environ {
  checkEnvironObject(environ);
  checkRequestMethod(environ, warn);
  checkPaths(environ);
  checkQueryString(environ);
  checkContentKeys(environ);
  checkHttpKeys(environ);
  checkServerKeys(environ, warn);
  checkVersion(environ);
  checkUrlScheme(environ);
  checkInputStream(environ);
  checkErrorStream(environ);
  checkProcessFlags(environ);
  checkExtensionKeys(environ, warn);
}

// ---------------------------------------------------------------------------
// The application side: startResponse's arguments and the body
// ---------------------------------------------------------------------------

/** Rule "status": returns the status code. */
export function checkStatus(status: unknown, warn: WarningSink = ignoreWarnings): number {
  if (typeof status !== "string") {
    throw appError("status", `the status must be a string like "200 OK", got ${show(status)}`, status);
  }
  const match = STATUS.exec(status);
  if (!match) {
    throw appError("status", `the status must be three digits, a space and a reason phrase, got ${show(status)}`, status);
  }
  const code = Number(match[1]);
  const reason = match[2]!;
  if (code < 200 || code > 599) {
    const why = code >= 100 && code < 200 ? "1xx interim responses belong to the server" : "HTTP status codes are 100-599";
    throw appError("status", `the status code must be 200-599 (${why}), got ${show(status)}`, status);
  }
  if (!FIELD_VALUE.test(reason)) {
    throw appError("status", `the reason phrase may hold only HTAB, printable ASCII and Latin-1 characters, got ${show(status)}`, status);
  }
  if (reason === "") {
    warn(new TsgiWarning("status", "application", `the status ${show(status)} has no reason phrase`, status));
  }
  return code;
}

/** Rules "response headers" and "hop-by-hop headers": the list, each pair, each name and value. */
export function checkHeaders(headers: unknown, warn: WarningSink = ignoreWarnings): asserts headers is HeaderList {
  if (!Array.isArray(headers)) {
    throw appError("response headers", `headers must be an Array of [name, value] pairs, got ${show(headers)}`, headers);
  }
  let contentTypes = 0;
  for (const pair of headers as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" || typeof pair[1] !== "string") {
      throw appError("response headers", `each header must be a [name, value] pair of strings, got ${show(pair)}`, pair);
    }
    const [name, value] = pair as [string, string];
    if (!FIELD_NAME.test(name)) {
      throw appError("response headers", `header name ${show(name)} is not an HTTP token`, name);
    }
    if (!FIELD_VALUE.test(value)) {
      throw appError("response headers", `the value of ${name} holds a control character or a character above U+00FF: ${show(value)}`, value);
    }
    if (isHopByHop(name)) {
      throw appError("hop-by-hop headers", `the app may not set the hop-by-hop header ${show(name)} (value ${show(value)})`, name);
    }
    if (!PLAIN_HEADER_NAME.test(name)) {
      warn(new TsgiWarning("response headers", "application", `header name ${show(name)} has characters besides letters, digits and "-"; proxies such as nginx drop names with "_"`, name));
    }
    if (value !== value.trim()) {
      warn(new TsgiWarning("response headers", "application", `the value of ${name} has leading or trailing whitespace, which clients strip: ${show(value)}`, value));
    }
    if (/[\x80-\xff]/.test(value)) {
      warn(new TsgiWarning("response headers", "application", `the value of ${name} has non-ASCII characters, sent as Latin-1 bytes: ${show(value)}`, value));
    }
    const lower = name.toLowerCase();
    if (lower === "status") {
      warn(new TsgiWarning("response headers", "application", `a "Status" header means nothing in TSGI: the status is startResponse's first argument (value ${show(value)})`, value));
    }
    if (lower === "content-type" && ++contentTypes === 2) {
      warn(new TsgiWarning("response headers", "application", `Content-Type is set more than once (${show(value)})`, value));
    }
  }
}

/** Rule "Content-Length": the declared length, if any. */
export function checkContentLength(headers: HeaderList): number | undefined {
  let declared: number | undefined;
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== "content-length") continue;
    if (!DIGITS.test(value) || !Number.isSafeInteger(Number(value))) {
      throw appError("Content-Length", `Content-Length must be decimal digits (at most 2^53 - 1), got ${show(value)}`, value);
    }
    if (declared !== undefined) {
      throw appError("Content-Length", `Content-Length is set more than once (${declared} and ${show(value)})`, value);
    }
    declared = Number(value);
  }
  return declared;
}

/** Rule "HEAD and bodiless statuses", for the headers: RFC 9110 §8.6 forbids Content-Length on a 204. */
export function checkBodilessHeaders(code: number, headers: HeaderList): void {
  if (code !== 204) return;
  const length = getHeader(headers, "content-length");
  if (length !== undefined) {
    throw appError("HEAD and bodiless statuses", `a 204 response must not have a Content-Length, got ${show(length)}`, length);
  }
}

/** Rule "excInfo": the value an app passes when it replaces a response because of an error. */
export function checkExcInfo(excInfo: unknown, warn: WarningSink = ignoreWarnings): void {
  if (excInfo !== undefined && !(excInfo instanceof Error)) {
    warn(new TsgiWarning("excInfo", "application", `excInfo should be the Error being handled, got ${show(excInfo)}`, excInfo));
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null && typeof (value as PromiseLike<unknown>).then === "function";
}

/** Rule "the body": what the app returned (after awaiting its Promise) must be a body. */
export function checkBody(result: unknown): asserts result is ResponseBody {
  if (typeof result === "string") {
    throw appError("the body", `the app returned a bare string, which would be sent one UTF-16 unit at a time; return [string] instead, got ${show(result)}`, result);
  }
  if (ArrayBuffer.isView(result)) {
    throw appError("the body", `the app returned bare bytes, which iterate as numbers; return [bytes] instead, got ${show(result)}`, result);
  }
  const iterable =
    typeof result === "object" &&
    result !== null &&
    (typeof (result as Iterable<unknown>)[Symbol.iterator] === "function" ||
      typeof (result as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function");
  if (!iterable) {
    const hint = isThenable(result) ? " (a thenable that is not a Promise: servers check `instanceof Promise`)" : "";
    throw appError("the body", `the app must return an Iterable or AsyncIterable of chunks, or a Promise of one${hint}, got ${show(result)}`, result);
  }
}

/** Rule "the body" (or "write"), for one chunk. */
export function checkChunk(chunk: unknown, rule: "the body" | "write", warn: WarningSink = ignoreWarnings): asserts chunk is Chunk {
  if (!isChunk(chunk)) {
    const where = rule === "write" ? "write() takes" : "body chunks must be";
    throw appError(rule, `${where} a string or a Uint8Array, got ${show(chunk)}`, chunk);
  }
  if (typeof chunk === "string" && LONE_SURROGATE.test(chunk)) {
    warn(new TsgiWarning(rule, "application", `a string chunk holds a lone surrogate, sent as U+FFFD (a character split across chunks?): ${show(chunk)}`, chunk));
  }
}

// ---------------------------------------------------------------------------
// One request: the checks that need to remember what happened
// ---------------------------------------------------------------------------

/**
 * Reports bodies that a server dropped without closing. wsgiref does this in
 * __del__; there is no call on the stack to throw into, so it is a warning.
 */
interface CloseWatch {
  closed: boolean;
  warn: WarningSink;
  what: string;
}
const unclosed = new FinalizationRegistry<CloseWatch>((watch) => {
  if (!watch.closed) {
    watch.warn(new TsgiWarning("close", "server", `the server never called close() on the body of ${watch.what}`, watch.what));
  }
});

/** The state of one request as the validator has seen it; one instance per call of the validated app. */
class RequestCheck {
  /** What the app gets: the server's environ, copied, with checking streams. */
  readonly environ: Environ;
  private readonly head: boolean;
  private readonly what: string;
  private started = false;
  private code = 0;
  private declaredLength: number | undefined;
  private hasContentType = false;
  private warnedContentType = false;
  private warnedBodiless = false;
  /** A character split across two chunks would warn for each half: once per response is enough. */
  private readonly warnChunkOnce: WarningSink;
  /** Bytes the app produced so far, write() and body together. */
  private produced = 0;
  /** A non-empty chunk reached the server: by docs/tsgi.md, the headers are out. */
  private committed = false;
  /** The app's return value (or its Promise) settled: write() is over. */
  private settled = false;

  constructor(
    serverEnviron: Environ,
    private readonly serverStartResponse: StartResponse,
    private readonly warn: WarningSink,
  ) {
    this.head = serverEnviron.REQUEST_METHOD === "HEAD";
    let chunkWarnings = 0;
    this.warnChunkOnce = (warning) => {
      if (chunkWarnings++ === 0) warn(warning);
    };
    this.what = `${serverEnviron.REQUEST_METHOD} ${serverEnviron.SCRIPT_NAME}${serverEnviron.PATH_INFO}`;
    this.environ = {
      ...serverEnviron,
      "tsgi.input": this.wrapInput(serverEnviron["tsgi.input"], serverEnviron.CONTENT_LENGTH),
      "tsgi.errors": this.wrapErrors(serverEnviron["tsgi.errors"]),
    };
  }

  // -- tsgi.input and tsgi.errors --------------------------------------------

  private wrapInput(input: InputStream, contentLength: string | undefined): InputStream {
    const declared = contentLength === undefined ? undefined : Number(contentLength);
    let iterations = 0;
    return {
      [Symbol.asyncIterator]: () => {
        if (++iterations > 1) {
          throw appError("tsgi.input", "tsgi.input is single-use: the app started a second iteration", iterations);
        }
        // Called only now, when the app reads: this call is what sends "100 Continue".
        const iterator = input[Symbol.asyncIterator]();
        let received = 0;
        const wrapped: AsyncIterator<Uint8Array> = {
          next: async () => {
            const step: unknown = await iterator.next();
            if (typeof step !== "object" || step === null) {
              throw serverError("tsgi.input", `tsgi.input's iterator returned ${show(step)} instead of an iterator result`, step);
            }
            const { done, value } = step as IteratorResult<unknown>;
            if (done) {
              if (declared !== undefined && received < declared) {
                throw serverError("tsgi.input", `tsgi.input ended after ${received} bytes, but CONTENT_LENGTH is ${declared}: a cut-off body must throw, not end`, received);
              }
              return step as IteratorResult<Uint8Array>;
            }
            if (!(value instanceof Uint8Array)) {
              throw serverError("tsgi.input", `tsgi.input must yield Uint8Array chunks, got ${show(value)}`, value);
            }
            received += value.byteLength;
            if (declared !== undefined && received > declared) {
              throw serverError("tsgi.input", `tsgi.input yielded ${received} bytes, more than CONTENT_LENGTH ${declared}`, received);
            }
            return step as IteratorResult<Uint8Array>;
          },
        };
        if (typeof iterator.return === "function") wrapped.return = (value?: unknown) => iterator.return!(value);
        if (typeof iterator.throw === "function") wrapped.throw = (error?: unknown) => iterator.throw!(error);
        return wrapped;
      },
    };
  }

  private wrapErrors(errors: ErrorStream): ErrorStream {
    const wrapped: ErrorStream = {
      write: (message: string) => {
        if (typeof message !== "string") {
          throw appError("tsgi.errors", `tsgi.errors.write() takes a string, got ${show(message)}`, message);
        }
        return errors.write(message);
      },
    };
    if (typeof errors.flush === "function") wrapped.flush = () => errors.flush!();
    return wrapped;
  }

  // -- startResponse and write -----------------------------------------------

  readonly startResponse: StartResponse = (...args: unknown[]) => {
    const [status, headers, excInfo] = args;
    if (args.length < 2 || args.length > 3) {
      throw appError("startResponse", `startResponse takes (status, headers, excInfo?), got ${args.length} arguments`, args.length);
    }
    if (this.started && excInfo === undefined) {
      throw appError("startResponse", `startResponse was called a second time without excInfo (status ${show(status)})`, status);
    }
    const code = checkStatus(status, this.warn);
    checkHeaders(headers, this.warn);
    const declared = checkContentLength(headers);
    checkBodilessHeaders(code, headers);
    checkExcInfo(excInfo, this.warn);

    const committed = this.committed;
    // The server's own startResponse gets the app's arguments exactly as given.
    const serverWrite: unknown = (this.serverStartResponse as (...a: unknown[]) => unknown)(...args);
    if (excInfo !== undefined && committed) {
      this.warn(new TsgiWarning("excInfo", "server", `startResponse accepted excInfo after ${this.produced} body bytes were handed to it; a server that sent the headers must rethrow excInfo`, excInfo));
    }
    if (typeof serverWrite !== "function") {
      throw serverError("startResponse", `startResponse must return the write() callable, got ${show(serverWrite)}`, serverWrite);
    }
    this.started = true;
    this.code = code;
    this.declaredLength = declared;
    this.hasContentType = getHeader(headers, "content-type") !== undefined;
    return this.wrapWrite(serverWrite as WriteFn);
  };

  private wrapWrite(serverWrite: WriteFn): WriteFn {
    return (chunk: Chunk) => {
      if (this.settled) {
        throw appError("write", `write() was called after the app returned its body (or from inside it); yield the chunk from the body instead: ${show(chunk)}`, chunk);
      }
      checkChunk(chunk, "write", this.warnChunkOnce);
      this.count(chunk);
      const result: unknown = serverWrite(chunk);
      if (!isThenable(result)) {
        throw serverError("write", `write() must return a Promise, got ${show(result)}`, result);
      }
      return result as Promise<void>;
    };
  }

  /** Accounts for one chunk the app produced, before it reaches the server. */
  private count(chunk: Chunk): void {
    const length = toBytes(chunk).byteLength;
    if (length === 0) return;
    const exempt = this.head || statusHasNoBody(this.code);
    if (!exempt && this.declaredLength !== undefined && this.produced + length > this.declaredLength) {
      throw appError("Content-Length", `the app produced ${this.produced + length} bytes after declaring Content-Length: ${this.declaredLength}`, this.produced + length);
    }
    this.produced += length;
    this.committed = true;
    if (statusHasNoBody(this.code)) {
      if (!this.warnedBodiless) {
        this.warnedBodiless = true;
        this.warn(new TsgiWarning("HEAD and bodiless statuses", "application", `a ${this.code} response has no body, but the app produced ${length} bytes for it (the server discards them)`, this.code));
      }
    } else if (!this.hasContentType && !this.warnedContentType) {
      this.warnedContentType = true;
      this.warn(new TsgiWarning("response headers", "application", `the ${this.code} response has a body but no Content-Type header`, this.code));
    }
  }

  /** The end of the body: startResponse happened, and a declared length was met. */
  private ended(): void {
    if (!this.started) {
      throw appError("startResponse", "the body ended without startResponse having been called", undefined);
    }
    const exempt = this.head || statusHasNoBody(this.code);
    if (!exempt && this.declaredLength !== undefined && this.produced < this.declaredLength) {
      throw appError("Content-Length", `the body ended after ${this.produced} bytes, but Content-Length declared ${this.declaredLength}`, this.produced);
    }
  }

  // -- the body ----------------------------------------------------------------

  /** The app's return value arrived: write() is over, the body is checked and wrapped for the server. */
  takeResult(result: unknown): ResponseBody {
    this.settled = true;
    try {
      checkBody(result);
      if (Array.isArray(result)) return this.takeArray(result);
    } catch (error) {
      // The body will never reach the server, so nobody else can close it.
      closeQuietly(result);
      throw error;
    }
    return this.wrapIterable(result);
  }

  /** The app's call failed: write() is over too. */
  failed(): void {
    this.settled = true;
  }

  private takeArray(body: unknown[]): ResponseBody {
    if (!this.started) {
      throw appError("startResponse", `the app returned an array without having called startResponse: ${show(body)}`, body);
    }
    for (const chunk of body) {
      checkChunk(chunk, "the body", this.warnChunkOnce);
      this.count(chunk);
    }
    this.ended();
    // A copy, still an array, so that the server still measures it and sends a Content-Length.
    return this.handOver(body, body.slice() as Chunk[] & { close?: () => void | Promise<void> }, () => undefined);
  }

  private wrapIterable(body: ResponseBody): ResponseBody {
    const sync = typeof (body as Iterable<Chunk>)[Symbol.iterator] === "function";
    const async = typeof (body as AsyncIterable<Chunk>)[Symbol.asyncIterator] === "function";
    const state = { iterations: 0, closed: false };
    const beforeNext = () => {
      if (state.closed) throw serverError("close", "the server asked the body for a chunk after calling close()", undefined);
    };
    const startIteration = () => {
      if (++state.iterations > 1) throw serverError("the body", "the server iterated the body a second time", state.iterations);
    };
    const wrapper: Record<PropertyKey, unknown> = {};
    if (async) {
      wrapper[Symbol.asyncIterator] = () => {
        startIteration();
        const iterator = (body as AsyncIterable<unknown>)[Symbol.asyncIterator]();
        const wrapped: AsyncIterator<Chunk> = {
          next: async () => {
            beforeNext();
            return this.step(await iterator.next());
          },
        };
        if (typeof iterator.return === "function") wrapped.return = (value?: unknown) => iterator.return!(value) as Promise<IteratorResult<Chunk>>;
        if (typeof iterator.throw === "function") wrapped.throw = (error?: unknown) => iterator.throw!(error) as Promise<IteratorResult<Chunk>>;
        return wrapped;
      };
    }
    if (sync) {
      wrapper[Symbol.iterator] = () => {
        startIteration();
        const iterator = (body as Iterable<unknown>)[Symbol.iterator]();
        const wrapped: Iterator<Chunk> = {
          next: () => {
            beforeNext();
            return this.step(iterator.next());
          },
        };
        if (typeof iterator.return === "function") wrapped.return = (value?: unknown) => iterator.return!(value) as IteratorResult<Chunk>;
        if (typeof iterator.throw === "function") wrapped.throw = (error?: unknown) => iterator.throw!(error) as IteratorResult<Chunk>;
        return wrapped;
      };
    }
    return this.handOver(body, wrapper as unknown as ResponseBody, () => (state.closed = true));
  }

  /** One step of the body's iterator, checked and passed on as the same object. */
  private step(step: unknown): IteratorResult<Chunk> {
    if (typeof step !== "object" || step === null) {
      throw appError("the body", `the body's iterator returned ${show(step)} instead of an iterator result`, step);
    }
    const { done, value } = step as IteratorResult<unknown>;
    if (done) {
      this.ended();
      return step as IteratorResult<Chunk>;
    }
    checkChunk(value, "the body", this.warnChunkOnce);
    if (!this.started) {
      throw appError("startResponse", `the body produced a chunk before startResponse was called: ${show(value)}`, value);
    }
    this.count(value);
    return step as IteratorResult<Chunk>;
  }

  /**
   * Gives `wrapper` a close() that the server must call exactly once and that
   * calls the app's own close(), and watches for a server that never calls it.
   */
  private handOver(body: object, wrapper: ResponseBody, onClose: () => void): ResponseBody {
    // The watch is held strongly by the registry: it must not reach the wrapper, or the wrapper could never be collected.
    const watch: CloseWatch = { closed: false, warn: this.warn, what: this.what };
    let calls = 0;
    wrapper.close = () => {
      if (++calls > 1) throw serverError("close", `the server called close() ${calls} times; it must call it exactly once`, calls);
      onClose();
      watch.closed = true;
      unclosed.unregister(watch);
      const close = (body as { close?: unknown }).close;
      return typeof close === "function" ? (close.call(body) as void | Promise<void>) : undefined;
    };
    unclosed.register(wrapper, watch, watch);
    return wrapper;
  }
}

/** Closes a body the validator refused, ignoring what its close() does: the refusal is the error to report. */
function closeQuietly(result: unknown): void {
  const close = (result as { close?: unknown } | null | undefined)?.close;
  if (typeof close !== "function") return;
  try {
    void Promise.resolve(close.call(result)).catch(() => undefined);
  } catch {
    // Already reporting a violation: a failing close() changes nothing.
  }
}

/** The default warning sink: one line on the server's error stream. */
function writeTo(errors: ErrorStream): WarningSink {
  return (warning) => {
    try {
      errors.write(`tsgi validator: ${warning.message}\n`);
    } catch {
      // A broken error stream is reported by checkEnviron; never fail a request over a warning.
    }
  };
}

/**
 * Wraps `app` so that both sides of every request are checked against
 * docs/tsgi.md. See the module header for the checklist.
 */
export function validator(app: TsgiApp, options: ValidatorOptions = {}): TsgiApp {
  if (typeof app !== "function") {
    throw appError("the application", `validator() needs a TSGI app (a function), got ${show(app)}`, app);
  }
  return (...args: unknown[]): AppResult => {
    checkApplicationCall(args);
    const [environ, startResponse] = args as [unknown, StartResponse];
    checkEnvironObject(environ);
    const errors = environ["tsgi.errors"];
    const warn = options.onWarning ?? writeTo(errors);
    checkEnviron(environ, warn);
    const check = new RequestCheck(environ, startResponse, warn);
    let result: AppResult;
    try {
      result = app(check.environ, check.startResponse);
    } catch (error) {
      check.failed();
      throw error;
    }
    if (result instanceof Promise) {
      return result.then(
        (body: unknown) => check.takeResult(body),
        (error: unknown) => {
          check.failed();
          throw error;
        },
      );
    }
    return check.takeResult(result);
  };
}
