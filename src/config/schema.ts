/**
 * @module config/schema
 *
 * THE schema of the YAML config (issue #3): one
 * TypeBox declaration that is at once
 *
 *   - the validator (Value.Errors walks it: load.ts),
 *   - the defaults (each field's `default`, applied by defaults.ts),
 *   - the normalizer (Type.Transform turns `10s` into 10000 ms, `256M` into
 *     bytes, `host:port` into `{ host, port }`: Value.Decode),
 *   - the TypeScript types (StackConfig is StaticDecode<> of it),
 *   - the docs and the editors' JSON Schema (generate-docs.ts renders
 *     docs/config.md and docs/config.schema.json from it; a test fails when
 *     those files are stale).
 *
 * So a field is added in one place: here, with its description, its default
 * and its unit next to it. Two conventions make that work:
 *
 *   - A field with a default is declared REQUIRED: defaults.ts fills it in
 *     before validation, so it is always there in the loaded config (and its
 *     decoded type says so). The JSON Schema for editors drops such fields from
 *     `required`, since the file may leave them out (generate-docs.ts).
 *   - `x-format` names a value format from FORMATS: what the docs call the type,
 *     what it is loaded as, and the phrase an error message expects. Lists and
 *     mappings carry JSON Schema `examples`, which error messages quote.
 *
 * Every object rejects unknown keys (`additionalProperties: false`). Rules
 * that span fields (exactly one of `module`/`command`, no duplicate routes,
 * files that exist) are in checks.ts; they are also written here as
 * plain JSON Schema (`oneOf`, `dependencies`) for editors, which TypeBox's own
 * validator ignores. Path resolution needs the config file's folder and is done
 * in normalize.ts; the names of the keys never change between the file and the
 * loaded config, so an error path and a diff path read the same (`apps.hello.timeout`).
 *
 * Why one file of ~480 lines: it is the config's one declaration, a list of
 * small field definitions in the order docs/config.md shows them (Gunicorn's
 * config.py is one file for the same reason); split, the order and the
 * single source would be lost.
 */
import { MAX_INSTANCES } from "../contract/limits.ts";
import type { Static, StaticDecode, TInteger, TLiteral, TSchema } from "@sinclair/typebox";
import { Type } from "./typebox.ts";
import { DEFAULT_STATE_DIR } from "./paths.ts";
import { INTERFACES } from "../contract/module-spec.ts";
import { PROXY_UPSTREAM_IDLE_MS, WORKER_KEEP_ALIVE_MS, wholeSeconds } from "../contract/keep-alive.ts";
import { CONFIGURED_SETTINGS, type ConfiguredSetting, parseSetting } from "../contract/worker-settings.ts";
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, parseSize } from "../contract/units.ts";

/** The schema keyword naming a value format of FORMATS. */
export const FORMAT = "x-format";
/** On a map (Type.Record): the format of its keys, which TypeBox keeps only as a pattern. */
export const KEY_FORMAT = "x-key-format";

export interface FormatInfo {
  /** What docs/config.md calls the type. */
  readonly type: string;
  /** What the loaded config holds (the unit after normalization). */
  readonly loadedAs: string;
  /** The phrase after "expected" in an error message. */
  readonly expected: string;
  /** The unit of the loaded number, for the docs. */
  readonly unit?: string;
}

export const FORMATS = {
  duration: { type: "duration", loadedAs: "milliseconds", unit: "ms", expected: "a duration such as 30s, 500ms, 2m or 1m30s" },
  size: { type: "size", loadedAs: "bytes", unit: "bytes", expected: "a size such as 10m, 256M or 512k" },
  address: { type: "host:port", loadedAs: "{ host, port }", expected: "a HOST:PORT address such as 127.0.0.1:8080" },
  path: { type: "path", loadedAs: "absolute path", expected: "a file or folder path" },
  module: { type: "path[:export]", loadedAs: "absolute path[:export]", expected: "a module such as app.ts or app.ts:handler" },
  command: { type: "string", loadedAs: "string", expected: "a shell command such as \"node server.js\"" },
  cidr: { type: "address or CIDR", loadedAs: "string", expected: "an IP address or CIDR block such as 10.0.0.0/8" },
  glob: { type: "glob", loadedAs: "absolute glob", expected: "a glob such as src/**/*.ts" },
  host: { type: "host", loadedAs: "lowercase host", expected: "a host name such as example.com or *.example.com" },
  "url-path": { type: "URL path", loadedAs: "path without a trailing /", expected: "a URL path starting with /, such as /api" },
  "app-name": { type: "name", loadedAs: "name", expected: "a lowercase letter, then lowercase letters, digits, _ or -" },
  "env-name": { type: "name", loadedAs: "name", expected: "an environment variable name such as NODE_ENV" },
  apps: { type: "map of name → app", loadedAs: "map of name → app", expected: "a mapping of app names to apps, such as { hello: { module: app.ts } }" },
  "env-value": { type: "string", loadedAs: "string", expected: "a string (numbers and booleans are turned into strings)" },
  "process-count": { type: "integer ≥ 1 or `auto`", loadedAs: "integer or \"auto\"", expected: "a number of processes such as 2, or auto" },
  "media-type": { type: "media type", loadedAs: "media type", expected: "a media type such as text/html, application/json or text/*" },
  "error-status": { type: "status or class", loadedAs: "string", expected: "a status from 400 to 599 (such as 502) or a class (4xx or 5xx)" },
  "folder-glob": { type: "glob in the folder", loadedAs: "glob", expected: "a glob relative to the folder, such as assets/** or *.html" },
  "file-name": { type: "file name", loadedAs: "file name", expected: "a file name without /, such as index.html" },
  "file-url": { type: "URL path", loadedAs: "URL path", expected: "the URL path of a file in the folder, such as /index.html" },
  rate: { type: "rate", loadedAs: "requests per second", unit: "r/s", expected: "a rate such as 10r/s or 30r/m" },
  "redirect-target": { type: "URL or path", loadedAs: "string", expected: "an http(s) URL such as https://example.com/new, or a path such as /new (no #fragment)" },
  "header-name": { type: "header name", loadedAs: "header name", expected: "a header name (letters, digits and !#$%&'*+.^_`|~-) such as Strict-Transport-Security" },
  "header-value": { type: "header value or null", loadedAs: "string or null", expected: "a header value (printable characters, no line break or control character, no space at either end), or null to remove the header" },
} as const satisfies Record<string, FormatInfo>;
export type FormatName = keyof typeof FORMATS;

export const APP_NAME_PATTERN = "^[a-z][a-z0-9_-]*$";
const ENV_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$";
// 0-65535, with or without leading zeros; port 0 asks the kernel for a free port.
const PORT = "(6553[0-5]|655[0-2]\\d|65[0-4]\\d{2}|6[0-4]\\d{3}|[1-5]\\d{4}|\\d{1,4})";
// HOST:PORT, [IPv6]:PORT or :PORT (loopback), the forms contract/address.ts reads from flags.
const ADDRESS_PATTERN = `^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]*):${PORT}$`;
const LABEL = "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?";
// An exact host or one leading wildcard label (`*.example.com`), without a port: the proxy drops the Host's port.
const HOST_PATTERN = `^(\\*\\.)?${LABEL}(\\.${LABEL})*$`;
// An IPv4 or IPv6 address, optionally with a /prefix length; proxy/forwarded.ts parses it fully.
const CIDR_PATTERN = "^[0-9A-Fa-f.:]+(/\\d{1,3})?$";
// Starts with /, no whitespace, no query or fragment.
const URL_PATH_PATTERN = "^/[^\\s?#]*$";

/** The most proxy processes `proxy.workers` may ask for: more than the machine's CPUs only adds context switches. */
export const MAX_PROXY_WORKERS = 64;

/** The proxy's balancing policies, by the names its selector registry uses. */
export const BALANCE_POLICIES = ["round_robin", "least_conn", "ip_hash", "random_two"] as const;

/* ------------------------------------------------------------------ field kinds */

interface FieldOptions {
  description: string;
  default?: unknown;
}

function formatted(format: FormatName): { [FORMAT]: FormatName } {
  return { [FORMAT]: format };
}

function choice<const T extends string[]>(values: T, options: FieldOptions) {
  return Type.Union(values.map((value) => Type.Literal(value)) as { [K in keyof T]: TLiteral<T[K]> }, options);
}

/** `30s`, `500ms`, `2m`, `1h` or a bare number of seconds; loaded as milliseconds. */
function duration(options: FieldOptions) {
  return Type.Transform(
    Type.Union([Type.String({ pattern: DURATION_PATTERN }), Type.Number({ minimum: 0 })], { ...options, ...formatted("duration") }),
  )
    .Decode((value) => parseDuration(value))
    .Encode((ms) => `${ms}ms`);
}

/** `10m`, `256M`, `512k`, `1g` (powers of 1024) or a bare number of bytes; loaded as bytes. */
function size(options: FieldOptions) {
  return Type.Transform(
    Type.Union([Type.String({ pattern: SIZE_PATTERN }), Type.Integer({ minimum: 0 })], { ...options, ...formatted("size") }),
  )
    .Decode((value) => parseSize(value))
    .Encode((bytes) => String(bytes));
}

export interface AddressConfig {
  host: string;
  port: number;
}

/** Splits a HOST:PORT that matched ADDRESS_PATTERN; an empty host is loopback, as in contract/address.ts. */
export function splitAddress(value: string): AddressConfig {
  const colon = value.lastIndexOf(":");
  const host = value.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  return { host: host || "127.0.0.1", port: Number(value.slice(colon + 1)) };
}

function address(options: FieldOptions) {
  return Type.Transform(Type.String({ ...options, pattern: ADDRESS_PATTERN, ...formatted("address") }))
    .Decode(splitAddress)
    .Encode(({ host, port }) => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`));
}

function path(options: FieldOptions) {
  return Type.String({ ...options, minLength: 1, ...formatted("path") });
}

/* ------------------------------------------------------------------ error_pages (proxy/error-pages/) */

/**
 * `error_pages` on the stack (`proxy.error_pages`) or on one app, which wins
 * over the stack's. Any key is a string here: checks.ts names a bad one
 * (contract/error-pages.ts says what a key may be) more clearly than a pattern could.
 */
function errorPages(scope: "proxy" | "app") {
  return Type.Optional(
    Type.Record(Type.String(), path({ description: "An HTML file (at most 1 MiB), relative to the config file's folder." }), {
      description:
        (scope === "proxy"
          ? "HTML pages for the proxy's own error answers, as nginx's `error_page 502 /502.html`: a status (`502`) or a class (`5xx`, `4xx`) mapped to a file. "
          : "HTML pages for the proxy's own error answers about this app (no route has no app: those take `proxy.error_pages`); the app's map wins over `proxy.error_pages`, a status over a class. ") +
        "Served to every client with the original status and `Content-Type: text/html; charset=utf-8`. Only the proxy's own answers are replaced (no route, a worker unreachable or timed out, limits, no ready worker, a static folder's 404): a worker's own 404 or 500 passes through untouched. The files are read when the config is loaded (at `up`, and at each reload): a page edited or removed later is served as it was read until the next reload. Absent: the proxy's default page (HTML for a browser, plain text otherwise).",
      examples: [{ "502": "errors/502.html", "5xx": "errors/5xx.html" }],
      [KEY_FORMAT]: "error-status",
    }),
  );
}

/** Host names compare without case: `Hello.Localhost` routes like `hello.localhost`. */
export function foldHostCase(host: string): string {
  return host.toLowerCase();
}

/** A mount point has no trailing slash (it becomes SCRIPT_NAME); `/` stays `/`. */
export function normalizeRoutePath(urlPath: string): string {
  return urlPath.replace(/\/+$/, "") || "/";
}

/* ------------------------------------------------------------------ proxy */

const TlsSchema = Type.Object(
  {
    cert: path({ description: "The certificate chain file (PEM)." }),
    key: path({ description: "The private key file (PEM)." }),
    listen: Type.Array(address({ description: "An HTTPS listener." }), {
      description: "Where the proxy serves HTTPS.",
      minItems: 1,
      default: ["127.0.0.1:8443"],
    }),
    http2: Type.Boolean({
      description:
        "Offer HTTP/2 (ALPN h2) beside HTTP/1.1 on the HTTPS listeners, with the same routing, limits, retries and access log; WebSockets stay on HTTP/1.1. false: HTTP/1.1 only.",
      default: true,
    }),
  },
  {
    additionalProperties: false,
    description: "Serve HTTPS too, with this certificate. Absent: no HTTPS listener.",
    examples: [{ cert: "certs/fullchain.pem", key: "certs/privkey.pem" }],
  },
);

/** What stays on plain HTTP when `https_redirect` is on: ACME's HTTP-01 challenges are fetched over plain HTTP, before any certificate exists. */
export const DEFAULT_HTTPS_REDIRECT_EXCEPT = ["/.well-known/acme-challenge"];

const HttpsRedirectSchema = Type.Object(
  {
    status: Type.Union([Type.Literal(308), Type.Literal(301)], {
      description:
        "The redirect's status: 308 (the default) keeps the method and body, so a POST sent to http:// arrives as a POST; 301 is what nginx configs usually say, and browsers turn a POST into a GET on it.",
      default: 308,
    }),
    port: Type.Optional(
      Type.Integer({
        description:
          "The port in the Location (443 is left out). Absent: the port of the first `proxy.tls.listen`; set it when the stack is behind a port mapping (it listens on 8443, the world reaches it on 443).",
        minimum: 1,
        maximum: 65535,
      }),
    ),
    except: Type.Array(
      Type.String({ description: "A path prefix (whole segments).", pattern: URL_PATH_PATTERN, maxLength: 2048, ...formatted("url-path") }),
      {
        description:
          "Path prefixes the plain listeners still serve as routed (whole segments): by default ACME's HTTP-01 challenge path, which a certificate authority fetches over plain HTTP. `[]`: redirect everything.",
        default: DEFAULT_HTTPS_REDIRECT_EXCEPT,
      },
    ),
  },
  {
    additionalProperties: false,
    description:
      "Answer every request on the plain HTTP listeners (`proxy.listen`) with a redirect to the same host, path and query over HTTPS, as nginx's `return 308 https://$host$request_uri` and Caddy's automatic HTTPS do; `https_redirect: {}` turns it on. Needs `proxy.tls`. A request without a Host gets 400 (no Location is made from an invalid Host). Absent: the plain listeners serve the apps.",
    examples: [{}, { status: 301, port: 443 }],
  },
);

const LimitsSchema = Type.Object(
  {
    client_max_body_size: size({
      description: "The largest request body the proxy accepts; a larger one gets 413, as in nginx. 0: no limit.",
      default: "1m",
    }),
    header_timeout: duration({
      description: "How long a client may take to send the request headers before the proxy closes the connection.",
      default: "60s",
    }),
    body_timeout: duration({
      description:
        "How long the proxy waits between two reads of a request body (nginx's client_body_timeout): a client that stalls longer gets 408 and its connection closes.",
      default: "60s",
    }),
    connect_timeout: duration({
      description: "How long the proxy waits to connect to a worker; a worker that does not accept in time counts as failed and the request tries another (502 when none is left).",
      default: "60s",
    }),
    upstream_timeout: duration({
      description:
        "How long the proxy waits for a worker between two reads (nginx's proxy_read_timeout): for the response headers, then for each part of the body. Before the headers: 504; after: the client connection closes.",
      default: "60s",
    }),
    upstream_keepalive: Type.Integer({
      description:
        "Idle kept-alive connections the proxy keeps open to each worker for reuse (nginx's keepalive). Above the number of requests a worker has in flight at busy times, connections are closed and opened again. 0: a new connection per request.",
      minimum: 0,
      default: 64,
    }),
    upstream_keepalive_timeout: duration({
      description: `How long an idle connection to a worker is kept for reuse. Keep it below the workers' own idle timeout (${WORKER_KEEP_ALIVE_MS / 1000} s for gateway workers and Node servers), or a reused connection may be one the worker is closing.`,
      // Derived from the worker's keep-alive, one margin below it (contract/keep-alive.ts).
      default: wholeSeconds(PROXY_UPSTREAM_IDLE_MS),
    }),
    websocket_idle_timeout: duration({
      description: "A proxied WebSocket (or any upgraded connection) with no traffic either way for this long is closed.",
      default: "60s",
    }),
  },
  { additionalProperties: false, description: "Limits the proxy enforces on every request.", default: {} },
);

const ProxySchema = Type.Object(
  {
    listen: Type.Array(address({ description: "An HTTP listener." }), {
      description: "Where the proxy serves HTTP: the front door.",
      minItems: 1,
      default: ["127.0.0.1:8080"],
    }),
    admin: address({
      description:
        "Where the admin listener serves the status page (/), JSON status (/status), Prometheus metrics (/metrics) and the reload, restart and scale actions. On loopback by default; on any other address it needs `admin_token`.",
      default: "127.0.0.1:8081",
    }),
    admin_token: Type.Optional(
      Type.String({
        description:
          "The token the admin listener requires (as `Authorization: Bearer <token>`, or as the password a browser asks for). Required when `admin` is not a loopback address. TSGI_ADMIN_TOKEN in the stack's environment takes its place, so the secret need not be in the file.",
        minLength: 16,
        pattern: "^\\S+$",
        examples: ["${ADMIN_TOKEN}"],
      }),
    ),
    workers: Type.Union([Type.Integer({ minimum: 1, maximum: MAX_PROXY_WORKERS }), Type.Literal("auto")], {
      description:
        "How many proxy processes serve the listeners, as nginx's worker_processes: a number (at most 64), or `auto` for one per CPU. They share the listening sockets, which the stack process holds: one that dies is replaced at once, and the connections that arrive meanwhile wait in the socket's queue. Each runs its own health checks and upstream connections.",
      default: 1,
      examples: [2, "auto"],
      ...formatted("process-count"),
    }),
    tls: Type.Optional(TlsSchema),
    https_redirect: Type.Optional(HttpsRedirectSchema),
    limits: LimitsSchema,
    trusted_proxies: Type.Array(Type.String({ description: "An IP address or CIDR block.", pattern: CIDR_PATTERN, ...formatted("cidr") }), {
      description:
        "Peers whose X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host and Forwarded headers are believed (a load balancer in front of this stack): their hops are kept and the peer's address appended. From any other peer these headers are dropped and replaced. Empty: trust no one.",
      default: [],
      examples: [["127.0.0.1", "10.0.0.0/8"]],
    }),
    error_pages: errorPages("proxy"),
    access_log: choice(["combined", "json", "off"], {
      description:
        "The access log, one line per request, in <state_dir>/logs/access.log (`tsgi-stack logs --access` reads it): `combined` (nginx's format plus app, worker, time and request id), `json` (one object per line) or `off`.",
      default: "combined",
    }),
  },
  { additionalProperties: false, description: "The front proxy (the nginx role).", default: {} },
);

/* ------------------------------------------------------------------ apps */

type CountField = TInteger;
type DurationField = ReturnType<typeof duration>;
/** The app keys the worker settings table declares, each with the field type of its kind. */
type WorkerSettingFields = {
  [S in ConfiguredSetting as S["configKey"]]: S["kind"] extends "count" ? CountField : DurationField;
};

/**
 * The app keys that are worker settings, built from their rows of
 * contract/worker-settings.ts: the description is the row's, and the default
 * is the flag's default, so `serve` run by hand and a worker run by the stack
 * start from the same value.
 */
function workerSettingFields(): WorkerSettingFields {
  const fields: Record<string, CountField | DurationField> = {};
  for (const setting of CONFIGURED_SETTINGS) {
    const { description } = setting;
    fields[setting.configKey] =
      setting.kind === "count"
        ? Type.Integer({ description, minimum: 0, default: parseSetting(setting, setting.default) })
        : duration({ description, default: setting.default });
  }
  return fields as WorkerSettingFields;
}

const RouteSchema = Type.Transform(
  Type.Object(
    {
      host: Type.Optional(
        Type.String({
          description: "Match this Host header: exact, or `*.example.com` for any subdomain. Absent: any host.",
          pattern: HOST_PATTERN,
          // A DNS name is at most 253 characters; anything longer is a mistake, not a host.
          maxLength: 253,
          ...formatted("host"),
        }),
      ),
      path: Type.Optional(
        Type.String({
          description: "Match this path prefix (whole segments) and mount the app there: it becomes SCRIPT_NAME. Absent: `/`.",
          pattern: URL_PATH_PATTERN,
          // Longer than any request target the proxy accepts (8 KiB would be refused 414 anyway).
          maxLength: 2048,
          ...formatted("url-path"),
        }),
      ),
    },
    { additionalProperties: false, minProperties: 1, description: "A route: a host, a path prefix, or both.", examples: [{ path: "/api" }] },
  ),
)
  .Decode(({ host, path: urlPath }) => ({
    ...(host === undefined ? {} : { host: foldHostCase(host) }),
    path: normalizeRoutePath(urlPath ?? "/"),
  }))
  .Encode((route) => route);

const HealthSchema = Type.Object(
  {
    path: Type.String({ description: "The path the proxy GETs on each worker, as the app routes it; any 2xx or 3xx is healthy. A `command` app gets it under its first path route, as it gets every request (`/legacy` + `/healthz`).", pattern: URL_PATH_PATTERN, ...formatted("url-path") }),
    interval: duration({ description: "Time between two checks of a worker.", default: "5s" }),
    timeout: duration({ description: "A check that takes longer has failed.", default: "2s" }),
  },
  {
    additionalProperties: false,
    description: "Active health checks. Absent: a worker is healthy while it runs and answers.",
    examples: [{ path: "/healthz", interval: "5s" }],
  },
);

const RestartSchema = Type.Object(
  {
    max_restarts: Type.Integer({
      description: "Restarts in a row of a worker that died sooner than `min_uptime`, after which the app is stopped and reported as crash-looping (other apps go on). 0: never restart.",
      minimum: 0,
      default: 10,
    }),
    backoff: duration({
      description: "The delay before the first restart; it doubles with each quick death (pm2's exp_backoff_restart_delay) and resets once a worker stays up.",
      default: "100ms",
    }),
    min_uptime: duration({ description: "A worker that ran at least this long before dying counts as stable: its restarts start over.", default: "1s" }),
  },
  { additionalProperties: false, description: "What happens when a worker dies.", default: {} },
);

const RetrySchema = Type.Object(
  {
    tries: Type.Integer({
      description:
        "How many workers one request may be offered to (nginx's proxy_next_upstream_tries): a request that could not be sent, or that a worker dropped without answering, goes to the next. 1: never retried.",
      minimum: 1,
      default: 3,
    }),
    non_idempotent: Type.Boolean({
      description:
        "Also send a POST, PATCH or other non-idempotent request to another worker when the first dropped it after taking it — it may then run twice. A request that never reached a worker is always retried.",
      default: false,
    }),
  },
  { additionalProperties: false, description: "Which failed requests the proxy sends to another worker.", default: {} },
);

/* ------------------------------------------------------------------ redirects and response headers (proxy/answers.ts) */

// An http(s) URL with a host (no userinfo), or a path (never `//`, which a browser reads as another host); no whitespace, no #fragment.
const REDIRECT_TARGET_PATTERN = "^(https?://[A-Za-z0-9.\\[\\]:-]+([/?][^\\s#]*)?|/(?![/\\\\])[^\\s#]*)$";

/** The statuses a redirect may have: the permanent and temporary ones, each with and without the method kept. */
export const REDIRECT_STATUSES = [301, 302, 303, 307, 308] as const;

const RedirectSchema = Type.Object(
  {
    to: Type.String({
      description:
        "Where to send the client: an http(s) URL (`https://example.com/new`) or a path on the same host (`/new`). With `keep_path`, the request's path below the route's prefix is appended to it; with `keep_query`, its query.",
      pattern: REDIRECT_TARGET_PATTERN,
      maxLength: 2048,
      ...formatted("redirect-target"),
    }),
    status: Type.Union(
      REDIRECT_STATUSES.map((status) => Type.Literal(status)),
      {
        description:
          "301 (moved for good: browsers and caches remember it), 302 or 303 (for now), 307 or 308 (as 302 and 301, with the method and body kept). 301, as nginx's usual `return 301`; Caddy's `redir` says 302 unless told.",
        default: 301,
      },
    ),
    keep_path: Type.Boolean({
      description: "Append the request's path below the route's prefix (`/old/a/b` routed at `/old` to `https://example.com/new`: `https://example.com/new/a/b`); a host-only route appends the whole path, as nginx's `$request_uri`. false: every request goes to `to` itself.",
      default: true,
    }),
    keep_query: Type.Boolean({ description: "Append the request's query (after any query `to` has, joined with `&`).", default: true }),
  },
  {
    additionalProperties: false,
    description:
      "Or answer the app's routes with a redirect, from the proxy itself, with no worker processes: nginx's `return 301 URL`, Caddy's `redir`. A host-only route with `to: https://example.com` moves a whole host (www to the bare name). The path keeps its percent-encoding; a path that would make `//host` of a same-host target has its leading slashes folded, so no request can turn it into a redirect elsewhere.",
    examples: [{ to: "https://example.com" }, { to: "/new", status: 308, keep_path: false }],
  },
);

// An RFC 9110 token: what a field name may be.
const HEADER_NAME_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
// Visible ASCII and obs-text, spaces and tabs only inside: no CR, LF, NUL or other control (RFC 9110 §5.5).
const HEADER_VALUE_PATTERN = "^[\\x21-\\x7e\\x80-\\xff]([\\t\\x20-\\x7e\\x80-\\xff]*[\\x21-\\x7e\\x80-\\xff])?$";

const HeadersSchema = Type.Record(
  Type.String({ pattern: HEADER_NAME_PATTERN, ...formatted("header-name") }),
  Type.Union([Type.String({ pattern: HEADER_VALUE_PATTERN, maxLength: 8192 }), Type.Null()], { ...formatted("header-value") }),
  {
    description:
      "Response headers set on every response of the app, as nginx's `add_header NAME VALUE always` (and Caddy's `header`): on the workers' responses, replacing a header of the same name a worker sent, and on the proxy's own answers for the app (errors, redirects, static files). `null` (`Server: null`) removes the workers' header of that name instead, as Caddy's `header -Server`. Connection-level names (Connection, Keep-Alive, Transfer-Encoding, Upgrade…) and Content-Length belong to the proxy and are refused.",
    additionalProperties: false,
    [KEY_FORMAT]: "header-name",
    examples: [{ "Strict-Transport-Security": "max-age=31536000", "X-Content-Type-Options": "nosniff", "X-Powered-By": null }],
    default: {},
  },
);

/* ------------------------------------------------------------------ compress (proxy/compress/) */

/** The codings the proxy compresses with, in its order of preference (proxy/compress/negotiate.ts). */
export const COMPRESS_ENCODINGS = ["br", "zstd", "gzip"] as const;

/** What is compressed when `types` is left out: Caddy's `encode` list, plus XML and web app manifests. */
export const DEFAULT_COMPRESS_TYPES = [
  "text/*",
  "application/json",
  "application/javascript",
  "application/xml",
  "application/xhtml+xml",
  "application/atom+xml",
  "application/rss+xml",
  "application/manifest+json",
  "application/wasm",
  "image/svg+xml",
];

// type/subtype or type/*, as proxy/compress/negotiate.ts matches them (parameters such as charset are not part of it).
const MEDIA_TYPE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/([A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*|\\*)$";

const CompressSchema = Type.Object(
  {
    types: Type.Array(Type.String({ description: "A media type, or `type/*`.", pattern: MEDIA_TYPE_PATTERN, ...formatted("media-type") }), {
      description:
        "The Content-Types compressed (parameters such as `charset` ignored; `text/*` for every text/ type). The default is Caddy's list plus XML and web app manifests; nginx's gzip_types default is text/html alone. Images, video, fonts in woff2 and archives are compressed already.",
      default: DEFAULT_COMPRESS_TYPES,
      examples: [["text/*", "application/json"]],
    }),
    min_length: Type.Integer({
      description:
        "A response whose Content-Length is below this many bytes is sent as is (a response of unknown length is compressed). nginx's gzip_min_length is 20; below a few hundred bytes a compressed body is barely smaller, and sometimes larger.",
      minimum: 0,
      default: 256,
    }),
    encodings: Type.Array(choice([...COMPRESS_ENCODINGS], { description: "A content coding." }), {
      description:
        "The codings offered, in the proxy's order of preference among those a client accepts with the same q-value. `zstd` needs Node 22.15 or later; on an older Node it is left out (the others still work).",
      minItems: 1,
      default: [...COMPRESS_ENCODINGS],
      examples: [["br", "gzip"]],
    }),
    level: Type.Object(
      {
        gzip: Type.Integer({ description: "gzip's level, 1 (fastest) to 9 (smallest); zlib's own default is 6, nginx's gzip_comp_level 1.", minimum: 1, maximum: 9, default: 6 }),
        br: Type.Integer({ description: "Brotli's quality, 0 to 11. 11 is for files compressed ahead of time: on the fly it costs tens of times more CPU than 4.", minimum: 0, maximum: 11, default: 4 }),
        zstd: Type.Integer({ description: "zstd's level, 1 to 19 (zstd's own default is 3).", minimum: 1, maximum: 19, default: 3 }),
      },
      { additionalProperties: false, description: "The compression level of each coding.", default: {} },
    ),
  },
  {
    additionalProperties: false,
    description:
      "Compress the app's responses for clients that accept it (Accept-Encoding: br, zstd, gzip), as nginx's gzip and Caddy's encode do; `compress: {}` turns it on with the defaults. Never compressed: a HEAD, 204, 206 or 304 response, one that has a Content-Encoding or Content-Range, `Cache-Control: no-transform`, or a type not in `types`. A `static` app serves a file's precompressed `.br`, `.zst` or `.gz` sibling (of the `encodings`) when there is one, and compresses its other files on the fly by the same rules (a HEAD gets the GET's head; a Range request gets the plain bytes, 206). Absent: no compression.",
    examples: [{ types: ["text/*", "application/json"], level: { gzip: 5 } }],
  },
);

export const AppSchema = Type.Object(
  {
    module: Type.Optional(
      Type.String({
        description: "A TSGI, Node-listener or Fetch app, served by gateway workers: the module file, then `:export` (default: `app`, then the default export). TypeScript loads directly.",
        minLength: 1,
        ...formatted("module"),
      }),
    ),
    command: Type.Optional(
      Type.String({
        description: "Or any HTTP server that listens on $PORT: the shell command that starts one instance (run in `cwd`).",
        minLength: 1,
        ...formatted("command"),
      }),
    ),
    static: Type.Optional(
      path({
        description:
          "Or a folder the proxy serves itself, with no worker processes: files by path under the route's mount, index.html for a folder, ETag, Last-Modified, Range and conditional requests; dotfiles and paths leaving the folder are 404.",
      }),
    ),
    // index, fallback, cache: how a `static` folder is served.
    ...staticSiteFields(),
    redirect: Type.Optional(RedirectSchema),
    interface: choice([...INTERFACES], {
      description: "How a `module` app is called: `tsgi`, `node` (an Express/Koa/Fastify or `(req, res)` listener), `fetch` (`(Request) => Response`, Hono), or `auto` to tell from the export. Module apps only.",
      default: "auto",
    }),
    instances: Type.Integer({ description: "How many worker processes serve the app (at most 256).", minimum: 1, maximum: MAX_INSTANCES, default: 1 }),
    routes: Type.Array(RouteSchema, {
      description: "Which requests the proxy sends to the app. Empty: none (a background app).",
      default: [],
      examples: [[{ host: "hello.localhost" }, { path: "/hello" }]],
    }),
    balance: choice([...BALANCE_POLICIES], {
      description: "How the proxy picks an instance: `round_robin`, `least_conn` (fewest requests in flight), `ip_hash` (one client, one instance), `random_two` (the less busy of two random instances).",
      default: "round_robin",
    }),
    allow_trace: Type.Boolean({
      description:
        "Let TRACE requests reach the app. Otherwise the proxy answers them 405, as nginx does: TRACE echoes the request back, cookies and credentials included.",
      default: false,
    }),
    health: Type.Optional(HealthSchema),
    compress: Type.Optional(CompressSchema),
    headers: HeadersSchema,
    trailing_slash: choice(["keep", "add", "remove"], {
      description:
        "Make the app's paths end in `/` (`add`) or not (`remove`) by redirecting with 308 (the method and body kept) to the other form, query kept; `keep` passes every path as sent. `add` leaves alone a path whose last segment has a dot (`/app.js`): files keep their names. `remove` never touches `/`. A path and its other form always route to the same app, so the redirect cannot loop.",
      default: "keep",
    }),
    retry: RetrySchema,
    watch: Type.Array(Type.String({ description: "A glob.", minLength: 1, ...formatted("glob") }), {
      description: "Files whose change reloads the app's workers one by one (development hot reload). Globs relative to the config file's folder.",
      default: [],
      examples: [["src/**/*.ts"]],
    }),
    env: Type.Record(
      Type.String({ pattern: ENV_NAME_PATTERN, ...formatted("env-name") }),
      Type.Transform(Type.Union([Type.String(), Type.Number(), Type.Boolean()], { ...formatted("env-value") }))
        .Decode((value) => String(value))
        .Encode((value) => value),
      {
        description: "Environment variables of the app's processes, on top of the stack's own environment. PORT is set by the stack.",
        additionalProperties: false,
        [KEY_FORMAT]: "env-name",
        examples: [{ NODE_ENV: "production" }],
        default: {},
      },
    ),
    cwd: path({ description: "The working directory of the app's processes.", default: "." }),
    max_memory: Type.Optional(size({ description: "A worker using more memory (RSS) than this is restarted. Absent: no limit." })),
    // max_requests, max_requests_jitter, timeout, graceful_timeout: the worker settings table's rows.
    ...workerSettingFields(),
    ready_timeout: duration({ description: "How long a new worker may take to become ready before it counts as failed to start.", default: "10s" }),
    restart: RestartSchema,
    ...clientLimitFields(),
    error_pages: errorPages("app"),
  },
  {
    additionalProperties: false,
    description: "An app: exactly one of `module`, `command`, `static` or `redirect`, and how to run and route it.",
    examples: [{ module: "app.ts", routes: [{ path: "/app" }] }],
    // For editors only: TypeBox's validator ignores these; checks.ts gives the clear messages.
    oneOf: [{ required: ["module"] }, { required: ["command"] }, { required: ["static"] }, { required: ["redirect"] }],
    dependencies: { interface: { required: ["module"] } },
  },
);

/* ------------------------------------------------------------------ static folders (proxy/static-site.ts) */

/**
 * The app keys of a `static` app past its folder: the index files, the
 * single-page-app fallback and Cache-Control. Sibling keys rather than an
 * object form of `static` (`static: { root: … }`): each is then one key of
 * its own in the docs and in every error message, as `compress` is.
 */
function staticSiteFields() {
  // A file name in the folder: no slash, not a dotfile.
  const INDEX_NAME_PATTERN = "^[^/\\\\.][^/\\\\]*$";
  // A URL path to a file: starts with /, ends with a name.
  const FALLBACK_PATTERN = "^/[^\\s?#]*[^/\\s?#]$";
  const pattern = Type.String({ description: "A glob.", minLength: 1, ...formatted("folder-glob") });
  const CacheSchema = Type.Object(
    {
      max_age: duration({
        description: "How long browsers and shared caches may keep a file without asking again (`Cache-Control: public, max-age=N`), for a file neither `immutable` nor `no_cache` matches.",
        default: "0s",
      }),
      immutable: Type.Array(pattern, {
        description:
          "Files whose name changes whenever their content does (hashed names such as `assets/app.3f9a2c1b.js`): `Cache-Control: public, max-age=31536000, immutable`, kept a year and never revalidated. Globs relative to the folder; one without a `/` matches the file name in any folder.",
        default: [],
        examples: [["assets/**", "*.woff2"]],
      }),
      no_cache: Type.Array(pattern, {
        description:
          "Files a browser must revalidate on every use (`Cache-Control: no-cache`; a 304 when unchanged): the HTML pages that name the hashed assets, so that a new deploy is seen at once. Checked before `immutable`. Globs as for `immutable`.",
        default: ["*.html"],
        examples: [["*.html", "sw.js"]],
      }),
    },
    {
      additionalProperties: false,
      description:
        "`static` apps: the Cache-Control of the folder's files, by name (nginx's `expires` and `add_header Cache-Control`). The answer for a path the `fallback` serves is that of the fallback file. Absent: `Cache-Control: public, max-age=0` for every file (revalidate each time).",
      examples: [{ max_age: "1h", immutable: ["assets/**"] }],
    },
  );
  return {
    index: Type.Optional(
      Type.Array(Type.String({ description: "A file name.", pattern: INDEX_NAME_PATTERN, ...formatted("file-name") }), {
        description:
          "`static` apps: the files served for a folder URL (`/docs/`), the first that exists, as nginx's `index`. `[]`: none, a folder URL is 403 (as nginx with autoindex off). Absent: `[index.html]`.",
        examples: [["index.html", "index.htm"]],
      }),
    ),
    fallback: Type.Optional(
      Type.String({
        description:
          "`static` apps: the file (a path in the folder, such as `/index.html`) served with status 200 for a GET or HEAD of a page route where nothing exists (`/users/42`), for single-page apps: nginx's `try_files $uri $uri/ /index.html`. A path whose last segment has a dot (`/missing.js`, `/logo.png`) is still 404. Absent: 404.",
        pattern: FALLBACK_PATTERN,
        maxLength: 2048,
        ...formatted("file-url"),
        examples: ["/index.html"],
      }),
    ),
    cache: Type.Optional(CacheSchema),
  };
}

/* ------------------------------------------------------------------ limits per client address (issue #13) */

/**
 * `10r/s` or `30r/m`, nginx's rate syntax (whole requests per second or per
 * minute; `30r/m` is half a request a second); loaded as requests per second.
 * The functions of this block are called from AppSchema, above them: they
 * hold their constants inside, out of the temporal dead zone.
 */
function rate(options: FieldOptions) {
  return Type.Transform(Type.String({ ...options, pattern: "^[1-9][0-9]{0,6}r/[sm]$", ...formatted("rate") }))
    .Decode((value) => Number.parseInt(value, 10) / (value.endsWith("/m") ? 60 : 1))
    .Encode((perSecond) => (Number.isInteger(perSecond) ? `${perSecond}r/s` : `${Math.round(perSecond * 60)}r/m`));
}

/** The status of a refused request: an error status, so that no client takes it for an answer. */
function limitStatus(nginxName: string) {
  return Type.Integer({
    description: `The status of a refused request (nginx's ${nginxName}, whose default is 503): 429 Too Many Requests is what clients and their retry libraries expect. Any 4xx or 5xx.`,
    minimum: 400,
    maximum: 599,
    default: 429,
  });
}

/** The most client addresses one table keeps (per app and proxy process): the memory bound, about 150 bytes an address. */
function maxClients() {
  return Type.Integer({
    description:
      "The most client addresses the proxy keeps for this limit, per proxy process (nginx's zone size): about 150 bytes each. When full, the rate limit forgets its oldest address, which starts again with an empty bucket (one seen more often than every max_clients / 2 new addresses is never forgotten); the connection limit forgets addresses with nothing in flight, and refuses a new one while all of them have requests in flight.",
    minimum: 1,
    maximum: 1_000_000,
    default: 10_000,
  });
}

/**
 * The app keys for limits per client address: nginx's limit_req and
 * limit_conn, per app. Declared as a function (hoisted) so that these keys
 * sit at the end of AppSchema and this block stays in one piece.
 */
function clientLimitFields() {
  const RateLimitSchema = Type.Object(
    {
      rate: rate({
        description:
          "The rate each client address may send requests at (nginx's limit_req rate=): whole requests per second (`10r/s`) or per minute (`30r/m`). The client is the address after `proxy.trusted_proxies`.",
      }),
      burst: requestCount(
        "Requests a client may send ahead of the rate (nginx's burst=): they wait their turn at the rate (or go at once with `nodelay`); beyond them, requests are refused. 0: none ahead.",
      ),
      nodelay: Type.Boolean({
        description: "Serve the requests within `burst` at once rather than spacing them at the rate (nginx's nodelay). Their slots in the burst still free up only at the rate.",
        default: false,
      }),
      delay: requestCount(
        "Requests within the burst served at once before the rest are spaced at the rate (nginx's delay=, two-stage limiting). 0: every request over the rate waits. Not with `nodelay`.",
      ),
      status: limitStatus("limit_req_status"),
      max_clients: maxClients(),
    },
    {
      additionalProperties: false,
      description:
        "Limit the request rate of each client address, as nginx's limit_req: a leaky bucket per address with `burst`, refused requests answered `status` (429) with Retry-After. Each proxy process keeps its own bucket per address (see docs/proxy.md). Absent: no limit.",
      examples: [{ rate: "10r/s", burst: 20, nodelay: true }],
    },
  );
  const ConnLimitSchema = Type.Object(
    {
      max: Type.Integer({
        description: "Requests (and open WebSockets) each client address may have in flight at once (nginx's limit_conn number); one more is refused.",
        minimum: 1,
      }),
      status: limitStatus("limit_conn_status"),
      max_clients: maxClients(),
    },
    {
      additionalProperties: false,
      description:
        "Limit the requests each client address has in flight at once, as nginx's limit_conn: one over `max` is answered `status` (429) with Retry-After: 1. Counted per proxy process. Absent: no limit.",
      examples: [{ max: 10 }],
    },
  );
  return { rate_limit: Type.Optional(RateLimitSchema), conn_limit: Type.Optional(ConnLimitSchema) };
}

/** A whole number of requests, 0 by default. */
function requestCount(description: string) {
  return Type.Integer({ description, minimum: 0, maximum: 1_000_000, default: 0 });
}

const LogsSchema = Type.Object(
  {
    max_size: size({
      description:
        "A worker's output file (<state_dir>/logs/<app>.<slot>.out.log or .err.log) is rotated once it passes this size (checked every 250 ms, so it may pass it by what the app writes meanwhile).",
      default: "10m",
    }),
    keep: Type.Integer({
      description: "How many rotated files of each output file are kept (`.1` the newest); older ones are deleted. 0: the file is only emptied.",
      minimum: 0,
      maximum: 100,
      default: 3,
    }),
  },
  {
    additionalProperties: false,
    description:
      "How much of the workers' output is kept on disk: each slot's file is rotated at `max_size`, `keep` rotated files kept (about (keep + 1) × max_size per slot and stream). Applied at the next `up`.",
    default: {},
  },
);

export const StackConfigSchema = Type.Object(
  {
    state_dir: path({
      description: "Where the stack keeps its state (relative to the config file): pm2's home (pm2/), the workers' sockets (sockets/) and heartbeat files (heartbeats/), the logs (logs/: each worker's output and the access log), the control socket (control.sock), and stack.log for `up -d`. Never the user's global ~/.pm2. One per config file.",
      default: DEFAULT_STATE_DIR,
    }),
    proxy: ProxySchema,
    logs: LogsSchema,
    apps: Type.Record(Type.String({ pattern: APP_NAME_PATTERN, ...formatted("app-name") }), AppSchema, {
      description: "The apps, by name (a lowercase letter, then lowercase letters, digits, `_` or `-`).",
      additionalProperties: false,
      minProperties: 1,
      [KEY_FORMAT]: "app-name",
      ...formatted("apps"),
    }),
  },
  { additionalProperties: false, description: "A tsgi-stack config: the front proxy and the apps behind it." },
);

/** The config as the file holds it once `${VAR}`s are expanded and defaults applied. */
export type StackConfigInput = Static<typeof StackConfigSchema>;

type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/**
 * The loaded config: validated, normalized (durations in ms, sizes in bytes,
 * addresses split, paths absolute) and deep-frozen. The keys are the file's.
 */
export type StackConfig = DeepReadonly<StaticDecode<typeof StackConfigSchema>>;
export type ProxyConfig = StackConfig["proxy"];
export type AppConfig = StackConfig["apps"][string];
export type RouteConfig = AppConfig["routes"][number];
export type TlsConfig = NonNullable<ProxyConfig["tls"]>;
export type HealthConfig = NonNullable<AppConfig["health"]>;
export type RestartConfig = AppConfig["restart"];

/** The schema of one node, as the walkers in messages.ts and generate-docs.ts see it. */
export type AnySchema = TSchema & Record<string, unknown>;
