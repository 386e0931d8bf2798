/**
 * @module export/nginx-answers
 *
 * The proxy's own answers and an app's response headers in nginx's words,
 * for export/nginx.ts (issue #13):
 *
 *   redirect app      in each of its locations, `return STATUS TARGET…`, the
 *                     path below the prefix taken from $request_uri (as sent,
 *                     percent-encoding kept) by a regex `if` — `if` with
 *                     `return` is the one use of `if` nginx calls safe
 *   trailing_slash    the same, with `return 308` to the other form
 *   headers           `add_header NAME "VALUE" always;` (nginx's `always`:
 *                     on every status, errors included, as the stack does)
 *                     beside `proxy_hide_header NAME;` (or uwsgi_), so that
 *                     the worker's own header of that name is replaced, not
 *                     doubled. Written in every location of the app: nginx
 *                     inherits add_header from the server only into a
 *                     location that has none of its own
 *   https_redirect    a map of scheme, Host and path to what the request
 *                     gets — 1: `return STATUS https://$host[:port]$request_uri`,
 *                     2: 400 (no Host, as the stack refuses to make a Location
 *                     up), 0: served (HTTPS, or a path under `except`) —
 *                     and two `if`s at the top of each server, before any
 *                     location
 *
 * A `$` in a target or header value would be read by nginx as a variable:
 * noted as a difference. Same-host targets fold leading slashes, as the
 * stack does, so `//evil.com` never becomes a Location.
 */
import type { AppConfig, StackConfig } from "../config/schema.ts";
import { ident, literal, quoted, quotedLiteral, regexLiteral } from "./nginx-syntax.ts";

/** The nginx variable holding what https_redirect does with a request (0 serve, 1 redirect, 2 refuse). */
const httpsVariable = (stack: string) => `$${ident(stack)}_to_https`;

/** The http-level map of `proxy.https_redirect`, or nothing. */
export function httpsRedirectMap(config: StackConfig, stack: string): string[] {
  const https = config.proxy.https_redirect;
  if (!https) return [];
  const excepts = https.except.map((prefix) => prefix.replace(/\/+$/, ""));
  return [
    "",
    // The first regex that matches wins: the paths left on plain HTTP, then a request without Host, then the rest of plain HTTP.
    `map "$scheme|$http_host|$uri" ${httpsVariable(stack)} {`,
    "    default 0;",
    ...excepts.map((prefix) => `    ${quoted(`~^http\\|[^|]*\\|${regexLiteral(prefix)}(/|$)`)} 0;`),
    `    ${quoted("~^http\\|\\|")} 2;`,
    `    ${quoted("~^http\\|")} 1;`,
    "}",
  ];
}

/** The server-level lines of `proxy.https_redirect`: before any location, as the stack's pass runs before routing. */
export function httpsRedirectDirectives(config: StackConfig, stack: string): string[] {
  const https = config.proxy.https_redirect;
  if (!https) return [];
  const port = https.port ?? config.proxy.tls?.listen[0]?.port ?? 443;
  return [
    `if (${httpsVariable(stack)} = 2) { return 400; }`,
    `if (${httpsVariable(stack)} = 1) { return ${https.status} https://$host${port === 443 ? "" : `:${port}`}$request_uri; }`,
  ];
}

/** The app's `headers`: the worker's copy hidden, ours added on every status (a null one only hidden). */
export function headerDirectives(app: AppConfig, directive: "proxy" | "uwsgi" | undefined): string[] {
  return Object.entries(app.headers).flatMap(([name, value]) => [
    ...(directive ? [`${directive}_hide_header ${name};`] : []),
    ...(value === null ? [] : [`add_header ${name} ${quotedLiteral(value)} always;`]),
  ]);
}

/**
 * The `if … return` lines of `trailing_slash` in a location of the app: from
 * $request_uri (as sent), the query kept, leading slashes folded into one.
 */
export function trailingSlashDirectives(app: AppConfig): string[] {
  if (app.trailing_slash === "add") {
    // A last segment without a dot (a file name keeps its form), no slash at the end.
    return [`if ($request_uri ~ ${quoted("^[/\\\\]+(?<tsgi_path>([^?]*/)?[^/?.]+)(?<tsgi_query>\\?.*)?$")}) { return 308 "/$tsgi_path/$tsgi_query"; }`];
  }
  if (app.trailing_slash === "remove") {
    return [`if ($request_uri ~ ${quoted("^[/\\\\]+(?<tsgi_path>[^?]*[^/?])/+(?<tsgi_query>\\?.*)?$")}) { return 308 "/$tsgi_path$tsgi_query"; }`];
  }
  return [];
}

/**
 * A redirect app's location under `mount`: the path below it appended when
 * `keep_path` (taken from $request_uri; a path whose prefix the client
 * percent-encoded falls through to `to` alone), the query when `keep_query`.
 * `https://example.com` alone is written with its root's slash (the same
 * URL: an empty http path is `/`).
 */
export function redirectDirectives(stack: string, app: AppConfig, mount: string): string[] {
  const redirect = app.redirect!;
  const question = redirect.to.indexOf("?");
  const to = question === -1 ? redirect.to : redirect.to.slice(0, question);
  const base = /^https?:\/\/[^/]+$/i.test(to) ? `${to}/` : to;
  const ownQuery = question === -1 ? "" : redirect.to.slice(question + 1);
  const query = ownQuery === "" ? (redirect.keep_query ? "$is_args$args" : "") : `?${literal(ownQuery)}${redirect.keep_query ? `$${ident(stack)}_and_args` : ""}`;
  const lines: string[] = [];
  if (redirect.keep_path) {
    // `to` ending in `/` takes the rest without its first slash; `to: /` without any leading ones (never `//host`).
    const rest = base === "/" ? "[/\\\\]*(?<tsgi_rest>[^?]*)" : base.endsWith("/") ? "/(?<tsgi_rest>[^?]*)" : "(?<tsgi_rest>/[^?]*)";
    lines.push(`if ($request_uri ~ ${quoted(`^${regexLiteral(mount)}${rest}`)}) { return ${redirect.status} "${literal(base)}$tsgi_rest${query}"; }`);
  }
  lines.push(`return ${redirect.status} "${literal(base)}${query}";`);
  return lines;
}

/** The http-level map joining a redirect's own query and the request's (`&` only when the request has one). */
export function redirectQueryMap(config: StackConfig, stack: string): string[] {
  const needed = Object.values(config.apps).some((app) => app.redirect?.keep_query && app.redirect.to.includes("?"));
  if (!needed) return [];
  return ["", `map $args $${ident(stack)}_and_args {`, "    \"\" \"\";", "    default &$args;", "}"];
}
