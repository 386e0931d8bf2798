/**
 * @module export/nginx
 *
 * The stack's front proxy written as nginx configuration: what an operator
 * who keeps nginx in front gets from `tsgi-stack export nginx`, and the
 * proxy service of `export compose`. Pure: a validated config and where the
 * workers are (NginxTarget) in, the text of an `http {}`-level file out (for
 * /etc/nginx/conf.d/), with what nginx cannot say as the stack says it noted
 * under its config key (export/differences.ts).
 *
 * How each part maps:
 * - an upstream per worker app, its servers the target's (for `up
 *   --no-proxy`, the stack's upstream links: stable paths to whichever
 *   workers serve now), the balancing as nginx's (least_conn; ip_hash as
 *   `hash $remote_addr consistent`, which hashes the whole address as ours
 *   does; random_two as `random two least_conn`), keepalive and its timeout;
 * - routing: a server block per host named in a route (exact or
 *   `*.example.com`) and a default one for the routes without a host. The
 *   stack's router ranks routes by host first, then longest prefix, and
 *   matches a prefix at a segment boundary; nginx picks the longest prefix
 *   within a server. So each server gets a location per prefix any route
 *   could match there (`= /api` and `/api/`, the boundary), each assigned
 *   the app and mount the stack's own Router gives for that prefix: the
 *   two agree on every path by construction rather than by a second rule
 *   (with slashes not merged, as the router does not; both match `/%61pi`
 *   as `/api`: nginx decodes the path, the stack's front door decodes the
 *   unreserved characters, RFC 3986 §6.2.2.2);
 * - the mount point: `uwsgi_param SCRIPT_NAME` over uwsgi (the worker moves
 *   it from PATH_INFO), the mount header over HTTP (replacing any copy a
 *   client sent), as the stack's proxy sets it;
 * - WebSocket upgrades go to a named location that proxies HTTP/1.1 with
 *   the Upgrade kept and websocket_idle_timeout as its timeouts — uwsgi
 *   cannot carry an upgrade, so even a uwsgi export sends them over HTTP;
 * - TRACE: nginx answers it 405 itself, before any location, as the stack
 *   does for an app without `allow_trace`; an app that allows it is a
 *   difference;
 * - the limits and timeouts by their nginx names; trusted_proxies as the
 *   realip module plus the same rule for X-Forwarded-* (a client's own are
 *   replaced unless its peer is trusted);
 * - static apps as `alias`, GET and HEAD only, dotfiles 404, folders
 *   redirected to their slash form; their `index`, `fallback` and `cache`
 *   as `index`, `try_files` and `add_header Cache-Control` over maps of
 *   `$uri` (export/nginx-static.ts);
 * - TLS as `listen … ssl` with the config's certificate and key, and
 *   `http2` on it unless `proxy.tls.http2` is false;
 * - `rate_limit` and `conn_limit` as limit_req and limit_conn, in each of
 *   the app's locations (export/nginx-limits.ts);
 * - `compress` as gzip (and gzip_static too for a static app's siblings): br and
 *   zstd are outside nginx's core (export/nginx-compress.ts);
 * - `error_pages` as error_page and an internal location per file, one
 *   of its own per file for an app with `headers` so that its pages carry
 *   them (export/nginx-error-pages.ts);
 * - `redirect` apps as `return`, `trailing_slash` as `if … return 308`,
 *   `headers` as add_header … always (with the worker's copy hidden), in
 *   each of the app's locations, and `proxy.https_redirect` as a map and a
 *   `return` at the top of each server (export/nginx-answers.ts).
 */
import type { AppConfig, StackConfig } from "../config/schema.ts";
import { SCRIPT_NAME_HEADER } from "../contract/script-name.ts";
import { formatDuration } from "../contract/units.ts";
import { STATIC_METHODS } from "../http/request-rules.ts";
import { Router } from "../proxy/router.ts";
import { appKind } from "../stack/proxy-settings.ts";
import type { Differences } from "./differences.ts";
import { compressDirectives, staticCompressDirectives } from "./nginx-compress.ts";
import { limitDirectives, limitZones } from "./nginx-limits.ts";
import { NginxErrorPages } from "./nginx-error-pages.ts";
import { staticMaps, staticNamedLocations, staticSiteDirectives } from "./nginx-static.ts";
import {
  headerDirectives,
  httpsRedirectDirectives,
  httpsRedirectMap,
  redirectDirectives,
  redirectQueryMap,
  trailingSlashDirectives,
} from "./nginx-answers.ts";
import { DOLLAR_DEFINITION, ident, quotedLiteral, usesDollar } from "./nginx-syntax.ts";

export type NginxProtocol = "uwsgi" | "http";

/** Where nginx finds each app's workers and folders: the stack's upstream links, or Compose's service names. */
export interface NginxTarget {
  /** How nginx talks to the workers (upgrades always go over HTTP). */
  protocol: NginxProtocol;
  /** An app's upstream servers as nginx writes them (`unix:/…/hello.0.sock`, `hello:8000`) for a protocol, or why nginx cannot reach it. */
  upstream(app: string, protocol: NginxProtocol): { servers: string[] } | { unreachable: string };
  /** A static app's folder as nginx sees it (default: the config's, absolute). */
  staticFolder?(app: string, folder: string): string;
  /** An `error_pages` file as nginx sees it (default: the config's, absolute). */
  errorPageFile?(file: string): string;
  /** Where nginx listens (default: `proxy.listen`, and `proxy.tls.listen` with TLS). */
  listen?: { http: string[]; tls: string[] };
  /** The access log: a file, or `/dev/stdout` in a container (`export nginx` writes `<log dir>/<name>.access.log`). */
  accessLog: string;
  /** Names the upstreams and the log (a stack id). */
  name: string;
}

/** What a location does: pass to an app's workers under a mount, serve a folder, or answer. */
type LocationAction =
  | { kind: "worker"; app: string; mount: string }
  | { kind: "static"; app: string; folder: string; mount: string }
  | { kind: "redirect"; app: string; mount: string }
  | { kind: "none" };

/** A server block: the host it answers (undefined: the default server) and its locations, by prefix. */
interface ServerBlock {
  host: string | undefined;
  locations: { prefix: string; action: LocationAction }[];
}

const upstreamName = (target: NginxTarget, app: string, protocol: NginxProtocol) => `${ident(target.name)}_${ident(app)}${protocol === "uwsgi" ? "_uwsgi" : ""}`;

/** The config's `balance`, in nginx's words; undefined: round robin, nginx's default. */
const BALANCE: Record<string, string | undefined> = {
  round_robin: undefined,
  least_conn: "least_conn;",
  // The stack hashes the whole client address onto the workers; nginx's ip_hash only the first three octets of IPv4.
  ip_hash: "hash $remote_addr consistent;",
  random_two: "random two least_conn;",
};

/** The prefixes a server's routes can match, and the Router's answer for each: the locations of that server. */
function serverBlocks(config: StackConfig): ServerBlock[] {
  const routes = Object.entries(config.apps).flatMap(([app, settings]) =>
    settings.routes.map((route) => ({ app, host: route.host, path: route.path === "/" ? undefined : route.path })),
  );
  const router = new Router(routes);
  const prefixes = [...new Set(routes.map((route) => (route.path ?? "").replace(/\/+$/, "")))].sort();
  const hosts = [...new Set(routes.flatMap((route) => (route.host === undefined ? [] : [route.host])))].sort();
  const blockFor = (host: string | undefined): ServerBlock => {
    // A wildcard server is asked as a name under it that no exact route names.
    const asked = host?.startsWith("*.") ? `tsgi-any-name${host.slice(1)}` : (host ?? "");
    const locations = ["", ...prefixes.filter((prefix) => prefix !== "")].map((prefix) => {
      const match = router.match(asked, prefix === "" ? "/" : prefix);
      if (!match) return { prefix, action: { kind: "none" } as LocationAction };
      const app = config.apps[match.app]!;
      const kind = appKind(app);
      return {
        prefix,
        action: (kind === "static"
          ? { kind: "static", app: match.app, folder: app.static!, mount: match.mount }
          : kind === "redirect"
            ? { kind: "redirect", app: match.app, mount: match.mount }
            : { kind: "worker", app: match.app, mount: match.mount }) as LocationAction,
      };
    });
    // A location that does what the one around it does adds nothing: nginx would pick that one for its paths anyway.
    const same = (a: LocationAction, b: LocationAction) => JSON.stringify(a) === JSON.stringify(b);
    const around = (prefix: string) =>
      locations
        .filter((other) => other.prefix !== prefix && (other.prefix === "" || prefix.startsWith(`${other.prefix}/`)))
        .sort((a, b) => b.prefix.length - a.prefix.length)[0];
    return { host, locations: locations.filter((location) => location.prefix === "" || !same(location.action, around(location.prefix)!.action)) };
  };
  return [...hosts.map(blockFor), blockFor(undefined)];
}

/**
 * A variable of this export's maps (`$tsgi_3e832512_connection`): maps are
 * http-wide, and two stacks' files may be included in one nginx.
 */
const mapped = (target: NginxTarget, name: string) => `$${ident(target.name)}_${name}`;

/** Forwarding headers a client may send that no pass sets, cleared so that the app never takes one as the front's. */
const CLIENT_FORWARDED = ["X-Forwarded-Prefix", "X-Forwarded-Port", "X-Forwarded-Ssl", "X-Forwarded-Server", "X-Forwarded-Scheme", "X-Forwarded-Uri"];

/** The headers every pass to a worker sets (at server level: a location that sets none inherits them). */
function passHeaders(config: StackConfig, target: NginxTarget): string[] {
  const trusted = config.proxy.trusted_proxies.length > 0;
  return [
    "proxy_http_version 1.1;",
    // The Host as the client sent it, port included, as the stack's proxy forwards it.
    "proxy_set_header Host $http_host;",
    "proxy_set_header Upgrade $http_upgrade;",
    `proxy_set_header Connection ${mapped(target, "connection")};`,
    `proxy_set_header X-Forwarded-For ${trusted ? mapped(target, "forwarded_for") : "$remote_addr"};`,
    `proxy_set_header X-Forwarded-Proto ${trusted ? mapped(target, "forwarded_proto") : "$scheme"};`,
    "proxy_set_header X-Forwarded-Host $host;",
    "proxy_set_header Forwarded \"\";",
    // The stack's proxy drops every X-Forwarded-* a client sends; these are the others frameworks read.
    ...CLIENT_FORWARDED.map((name) => `proxy_set_header ${name} "";`),
    "proxy_set_header X-Request-Id $request_id;",
    `proxy_set_header ${SCRIPT_NAME_HEADER} $tsgi_mount;`,
  ];
}

/** The uwsgi vars nginx's own uwsgi_params file sends, with the mount point as SCRIPT_NAME. */
function uwsgiParams(config: StackConfig, target: NginxTarget): string[] {
  const trusted = config.proxy.trusted_proxies.length > 0;
  return [
    "uwsgi_param QUERY_STRING $query_string;",
    "uwsgi_param REQUEST_METHOD $request_method;",
    "uwsgi_param CONTENT_TYPE $content_type;",
    "uwsgi_param CONTENT_LENGTH $content_length;",
    "uwsgi_param REQUEST_URI $request_uri;",
    "uwsgi_param PATH_INFO $document_uri;",
    "uwsgi_param SCRIPT_NAME $tsgi_mount;",
    "uwsgi_param DOCUMENT_ROOT $document_root;",
    "uwsgi_param SERVER_PROTOCOL $server_protocol;",
    "uwsgi_param REQUEST_SCHEME $scheme;",
    "uwsgi_param HTTPS $https if_not_empty;",
    "uwsgi_param REMOTE_ADDR $remote_addr;",
    "uwsgi_param REMOTE_PORT $remote_port;",
    "uwsgi_param SERVER_PORT $server_port;",
    "uwsgi_param SERVER_NAME $host;",
    // The client's own X-Forwarded-* never reach the app as if nginx had said them.
    `uwsgi_param HTTP_X_FORWARDED_FOR ${trusted ? mapped(target, "forwarded_for") : "$remote_addr"};`,
    `uwsgi_param HTTP_X_FORWARDED_PROTO ${trusted ? mapped(target, "forwarded_proto") : "$scheme"};`,
    "uwsgi_param HTTP_X_FORWARDED_HOST $host;",
    "uwsgi_param HTTP_FORWARDED \"\" if_not_empty;",
    // An HTTP_ var set here (even empty, and then not sent) keeps the client's header of that name from the app.
    ...[...CLIENT_FORWARDED, SCRIPT_NAME_HEADER].map((name) => `uwsgi_param HTTP_${name.toUpperCase().replace(/-/g, "_")} "" if_not_empty;`),
    "uwsgi_param HTTP_X_REQUEST_ID $request_id;",
  ];
}

/** The timeouts of a pass, by the protocol's directive prefix. */
function passTimeouts(config: StackConfig, directive: "proxy" | "uwsgi"): string[] {
  const { limits } = config.proxy;
  return [
    `${directive}_connect_timeout ${formatDuration(limits.connect_timeout)};`,
    `${directive}_read_timeout ${formatDuration(limits.upstream_timeout)};`,
    `${directive}_send_timeout ${formatDuration(limits.upstream_timeout)};`,
  ];
}

/** Retries: the app's tries, over errors and timeouts before the response began (and POSTs when non_idempotent). */
function retries(app: AppConfig, directive: "proxy" | "uwsgi"): string[] {
  if (app.retry.tries <= 1) return [`${directive}_next_upstream off;`];
  return [
    `${directive}_next_upstream error timeout${app.retry.non_idempotent ? " non_idempotent" : ""};`,
    `${directive}_next_upstream_tries ${app.retry.tries};`,
  ];
}

function indent(lines: string[], depth = 1): string[] {
  return lines.map((line) => (line === "" ? line : `${"    ".repeat(depth)}${line}`));
}

function upstreamBlock(config: StackConfig, target: NginxTarget, app: string, protocol: NginxProtocol, servers: string[]): string[] {
  const settings = config.apps[app]!;
  const { limits } = config.proxy;
  const balance = BALANCE[settings.balance];
  return [
    `upstream ${upstreamName(target, app, protocol)} {`,
    ...indent([
      ...(balance ? [balance] : []),
      ...servers.map((server) => `server ${server};`),
      // nginx keeps no uwsgi connection alive: only the HTTP upstream has a cache.
      ...(limits.upstream_keepalive > 0 && protocol === "http"
        ? [`keepalive ${limits.upstream_keepalive * servers.length};`, `keepalive_timeout ${formatDuration(limits.upstream_keepalive_timeout)};`]
        : []),
    ]),
    "}",
  ];
}

/** The body of a location passing to an app's workers under `mount`. */
function workerLocation(config: StackConfig, target: NginxTarget, app: string, mount: string, upgradeLocation: string, pages: NginxErrorPages): string[] {
  const settings = config.apps[app]!;
  const directive = target.protocol === "uwsgi" ? "uwsgi" : "proxy";
  return [
    ...trailingSlashDirectives(settings),
    ...headerDirectives(settings, directive),
    `set $tsgi_mount ${quotedLiteral(mount)};`,
    `set $tsgi_app ${quotedLiteral(app)};`,
    // An upgrade goes over HTTP whatever the protocol (a uwsgi connection cannot carry one), with the WebSocket timeouts.
    "if ($http_upgrade != \"\") { return 418; }",
    `error_page 418 = ${upgradeLocation};`,
    // The 418 above keeps the server's error_page lines out of this location: its pages are repeated here.
    ...pages.appLines(app),
    ...limitDirectives(config, target.name, app),
    ...compressDirectives(settings),
    ...retries(settings, directive),
    target.protocol === "uwsgi" ? `uwsgi_pass ${upstreamName(target, app, "uwsgi")};` : `proxy_pass http://${upstreamName(target, app, "http")};`,
  ];
}

/** The named location an upgrade request of (app, mount) is sent to. */
function upgradeBlock(config: StackConfig, target: NginxTarget, name: string, app: string, mount: string): string[] {
  const idle = formatDuration(config.proxy.limits.websocket_idle_timeout);
  return [
    `location ${name} {`,
    ...indent([
      `set $tsgi_mount ${quotedLiteral(mount)};`,
      `set $tsgi_app ${quotedLiteral(app)};`,
      `proxy_connect_timeout ${formatDuration(config.proxy.limits.connect_timeout)};`,
      // A WebSocket quiet both ways this long is closed (websocket_idle_timeout).
      `proxy_read_timeout ${idle};`,
      `proxy_send_timeout ${idle};`,
      ...headerDirectives(config.apps[app]!, "proxy"),
      ...limitDirectives(config, target.name, app),
      `proxy_pass http://${upstreamName(target, app, "http")};`,
    ]),
    "}",
  ];
}

/** The body of a location serving a static app's folder; `rest` is the location's prefix past the mount. */
function staticLocation(folder: string, rest: string, exact: boolean, prefix: string, site: { index: string[]; rest: string[] }, headers: string[]): string[] {
  if (exact) return [`return 301 ${prefix}/$is_args$args;`];
  return [
    `alias ${quotedLiteral(`${folder.replace(/\/+$/, "")}${rest}/`)};`,
    ...site.index,
    // An `if` block is a location of its own for add_header: the app's headers are repeated inside.
    `if ($request_method !~ ^(GET|HEAD)$) { add_header Allow "${STATIC_METHODS}" always; ${headers.map((line) => `${line} `).join("")}return 405; }`,
    "if ($uri ~ \"/\\.\") { return 404; }",
    // The stack follows a link only while it stays inside the folder; nginx cannot tell where a link leads, so it
    // follows none below the folder (stricter: a link inside the folder is refused too).
    `disable_symlinks on ${quotedLiteral(`from=${folder}`)};`,
    ...site.rest,
  ];
}

function listenLines(target: NginxTarget, config: StackConfig, isDefault: boolean): string[] {
  const hostPort = (address: { host: string; port: number }) => (address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`);
  const listen = target.listen ?? { http: config.proxy.listen.map(hostPort), tls: (config.proxy.tls?.listen ?? []).map(hostPort) };
  const suffix = isDefault ? " default_server" : "";
  // `listen … ssl http2` rather than nginx 1.25.1's `http2 on;`: Debian bookworm's nginx is 1.22, which knows only the
  // listen parameter; newer nginx (the nginx:stable image) still accepts it, with a deprecation warning.
  const tls = config.proxy.tls?.http2 === false ? " ssl" : " ssl http2";
  return [...listen.http.map((address) => `listen ${address}${suffix};`), ...listen.tls.map((address) => `listen ${address}${tls}${suffix};`)];
}

function serverBlock(config: StackConfig, target: NginxTarget, block: ServerBlock, reachable: Set<string>, pages: NginxErrorPages, differences: Differences): string[] {
  const tls = config.proxy.tls;
  const { limits } = config.proxy;
  const staticFolder = (app: string, folder: string) => target.staticFolder?.(app, folder) ?? folder;
  const body: string[] = [
    ...listenLines(target, config, block.host === undefined),
    `server_name ${block.host ?? "_"};`,
    ...(tls ? [`ssl_certificate ${quotedLiteral(tls.cert)};`, `ssl_certificate_key ${quotedLiteral(tls.key)};`] : []),
    `client_max_body_size ${limits.client_max_body_size};`,
    `client_header_timeout ${formatDuration(limits.header_timeout)};`,
    `client_body_timeout ${formatDuration(limits.body_timeout)};`,
    "absolute_redirect off;",
    // The stack's router does not merge slashes: //api/x is not under /api.
    "merge_slashes off;",
    // The client address is taken from X-Forwarded-For only when a peer the config trusts sent it.
    ...config.proxy.trusted_proxies.flatMap((cidr) => [`set_real_ip_from ${cidr};`]),
    ...(config.proxy.trusted_proxies.length > 0 ? ["real_ip_header X-Forwarded-For;", "real_ip_recursive on;"] : []),
    ...httpsRedirectDirectives(config, target.name),
    "set $tsgi_mount \"\";",
    "set $tsgi_app \"-\";",
    ...passHeaders(config, target),
    ...(target.protocol === "uwsgi" ? uwsgiParams(config, target) : []),
    ...passTimeouts(config, target.protocol === "uwsgi" ? "uwsgi" : "proxy"),
    ...pages.serverLines(),
  ];
  const locations: string[] = [];
  const upgrades = new Map<string, { name: string; app: string; mount: string }>();
  const servedStatic: { app: string; mount: string }[] = [];
  for (const { prefix, action } of block.locations) {
    const forms: { match: string; exact: boolean }[] =
      prefix === "" ? [{ match: "/", exact: false }] : [{ match: `= ${prefix}`, exact: true }, { match: `${prefix}/`, exact: false }];
    for (const { match, exact } of forms) {
      let inner: string[];
      if (action.kind === "none" || (action.kind === "worker" && !reachable.has(action.app))) {
        inner = ["return 404;"];
      } else if (action.kind === "redirect") {
        inner = [...headerDirectives(config.apps[action.app]!, undefined), ...redirectDirectives(target.name, config.apps[action.app]!, action.mount)];
      } else if (action.kind === "static") {
        const redirect = exact && prefix === action.mount;
        const settings = config.apps[action.app]!;
        const headers = headerDirectives(settings, undefined);
        inner = [
          ...trailingSlashDirectives(settings),
          ...headers,
          ...limitDirectives(config, target.name, action.app),
          ...staticCompressDirectives(settings),
          ...pages.staticLines(action.app),
          ...staticLocation(
            staticFolder(action.app, action.folder),
            prefix.slice(action.mount.length),
            redirect,
            prefix,
            redirect ? { index: [], rest: [] } : staticSiteDirectives(config, target.name, action.app, action.mount, differences),
            headers,
          ),
        ];
        if (!redirect) servedStatic.push({ app: action.app, mount: action.mount });
      } else {
        // One named location per (app, mount) of this server for its upgrades (named locations are a server's own).
        const key = `${action.app}\0${action.mount}`;
        if (!upgrades.has(key)) upgrades.set(key, { name: `@${ident(target.name)}_upgrade_${upgrades.size}`, app: action.app, mount: action.mount });
        inner = workerLocation(config, target, action.app, action.mount, upgrades.get(key)!.name, pages);
      }
      locations.push("", `location ${match} {`, ...indent(inner), "}");
    }
  }
  const named = [
    ...[...upgrades.values()].flatMap(({ name, app, mount }) => ["", ...upgradeBlock(config, target, name, app, mount)]),
    ...staticNamedLocations(config, target.name, servedStatic, pages),
  ];
  return ["server {", ...indent([...body, ...locations, ...named, ...pages.locations()]), "}"];
}

/** The access log, in the format the config names, in nginx's words. */
function accessLog(config: StackConfig, target: NginxTarget): string[] {
  const file = target.accessLog;
  const format = config.proxy.access_log;
  if (format === "off") return ["access_log off;"];
  const name = `${ident(target.name)}_${format}`;
  const definition =
    format === "json"
      ? `log_format ${name} escape=json '{"time":"$time_iso8601","remote_addr":"$remote_addr","method":"$request_method","uri":"$request_uri","protocol":"$server_protocol","status":$status,"bytes":$body_bytes_sent,"referer":"$http_referer","user_agent":"$http_user_agent","app":"$tsgi_app","upstream":"$upstream_addr","request_time":$request_time,"request_id":"$request_id"}';`
      : `log_format ${name} '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" app=$tsgi_app upstream=$upstream_addr rt=$request_time id=$request_id';`;
  return [definition, `access_log ${quotedLiteral(file)} ${name};`];
}

/**
 * The http-level configuration for the stack. Notes in `differences` what
 * nginx cannot express (the caller settles them: export/differences.ts).
 */
export function nginxConfig(config: StackConfig, target: NginxTarget, differences: Differences): string {
  const reachable = new Set<string>();
  const upstreams: string[] = [];
  for (const [app, settings] of Object.entries(config.apps)) {
    if (appKind(settings) === "static" || appKind(settings) === "redirect") continue;
    if (settings.allow_trace) differences.note(`apps.${app}.allow_trace`, "nginx answers TRACE with 405 itself, before any location; nearest: TRACE refused, as for an app without allow_trace");
    const protocols: NginxProtocol[] = target.protocol === "uwsgi" ? ["uwsgi", "http"] : ["http"];
    const found = protocols.map((protocol) => ({ protocol, upstream: target.upstream(app, protocol) }));
    const missing = found.find((entry) => "unreachable" in entry.upstream);
    if (missing && "unreachable" in missing.upstream) {
      differences.note(`apps.${app}.${appKind(settings)}`, `${missing.upstream.unreachable}; nearest: its routes answer 404`);
      continue;
    }
    reachable.add(app);
    for (const { protocol, upstream } of found) if ("servers" in upstream) upstreams.push("", ...upstreamBlock(config, target, app, protocol, upstream.servers));
  }
  const pages = new NginxErrorPages(config, mapped(target, "error_allow"), target.errorPageFile?.bind(target));
  const trusted = config.proxy.trusted_proxies;
  const servers = serverBlocks(config).flatMap((block) => ["", ...serverBlock(config, target, block, reachable, pages, differences)]);
  const text = [
    // With an Upgrade header, the connection to the worker is upgraded; without, it stays a kept-alive one.
    `map $http_upgrade ${mapped(target, "connection")} {`,
    "    default upgrade;",
    "    \"\" \"\";",
    "}",
    ...(trusted.length > 0
      ? [
          "",
          // X-Forwarded-* and the client address are taken from a peer the config trusts, and only from one.
          `geo $realip_remote_addr ${mapped(target, "peer_trusted")} {`,
          "    default 0;",
          ...trusted.map((cidr) => `    ${cidr} 1;`),
          "}",
          `map "${mapped(target, "peer_trusted")}:$http_x_forwarded_for" ${mapped(target, "forwarded_for")} {`,
          "    default $realip_remote_addr;",
          "    \"~^1:(?<chain>.+)$\" \"$chain, $realip_remote_addr\";",
          "}",
          `map "${mapped(target, "peer_trusted")}:$http_x_forwarded_proto" ${mapped(target, "forwarded_proto")} {`,
          "    default $scheme;",
          "    \"~^1:(?<proto>https?)$\" $proto;",
          "}",
        ]
      : []),
    "",
    ...accessLog(config, target),
    ...limitZones(config, target.name),
    ...staticMaps(config, target.name),
    ...httpsRedirectMap(config, target.name),
    ...redirectQueryMap(config, target.name),
    ...pages.allowDefinition(),
    ...upstreams,
    ...servers,
    "",
  ].join("\n");
  // A `$` of the config's own words is written as a variable holding one (export/nginx-syntax.ts).
  return usesDollar(text) ? [...DOLLAR_DEFINITION, text].join("\n") : text;
}
