/**
 * @module proxy/redirects
 *
 * The Locations of the redirects the proxy answers itself, as pure
 * functions of the request's path and query (issue #13):
 *
 *   redirect app     `to` + the path below the route's prefix + the query
 *                    (nginx's `return 301 https://example.com$request_uri`,
 *                    Caddy's `redir https://example.com{uri}`)
 *   trailing slash   the same path with a `/` added or removed, query kept
 *   https redirect   `https://` + the request's Host (port replaced) + the
 *                    path and query as sent
 *
 * The path is the one the router matched: dot segments removed, its
 * percent-encoding as the client sent it (never decoded, so `%2F` stays
 * `%2F`). Two rules keep a Location from sending a client elsewhere than
 * the config says: a same-host Location never starts with `//` or `/\`
 * (a browser reads either as another host: `GET //evil.com` under a
 * host-only route must not redirect to evil.com), and every byte outside
 * printable ASCII is percent-encoded (node hands over the target as latin1,
 * a char a byte), so a Location is always a valid header value.
 *
 * config/redirect-loops.ts follows these same functions through the
 * config's routes to find a loop before any client does.
 */

/** A redirect app's `redirect`, ready for requests: `to` split once, at configure time. */
export interface CompiledRedirect {
  readonly status: number;
  /** `https://example.com/new` or `/new`, without its query. */
  readonly base: string;
  /** `to`'s own query (without `?`), or "". */
  readonly query: string;
  /** `to` is a path on the request's own host. */
  readonly sameHost: boolean;
  readonly keepPath: boolean;
  readonly keepQuery: boolean;
}

export interface RedirectSpec {
  to: string;
  status: number;
  keepPath: boolean;
  keepQuery: boolean;
}

export function compileRedirect(spec: RedirectSpec): CompiledRedirect {
  const question = spec.to.indexOf("?");
  return {
    status: spec.status,
    base: question === -1 ? spec.to : spec.to.slice(0, question),
    query: question === -1 ? "" : spec.to.slice(question + 1),
    sameHost: spec.to.startsWith("/"),
    keepPath: spec.keepPath,
    keepQuery: spec.keepQuery,
  };
}

/** `%XX` for every byte outside printable ASCII: the Location is a valid header value whatever the target held. */
export const headerSafe = (text: string): string =>
  /[^\x21-\x7e]/.test(text) ? text.replace(/[^\x21-\x7e]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`) : text;

/** `//evil.com/x` -> `/evil.com/x`: a same-host path is never read as another host (nor `/\evil.com`, which browsers treat alike). */
export function foldLeadingSlashes(path: string): string {
  return /^[/\\]{2}/.test(path) ? path.replace(/^[/\\]+/, "/") : path;
}

/** The query of a request target (without `?`), or "". */
export function queryOf(url: string): string {
  const question = url.indexOf("?");
  return question === -1 ? "" : url.slice(question + 1);
}

/** Where a redirect app sends a request for `path` (routed under `mount`) with `query`. */
export function redirectLocation(redirect: CompiledRedirect, mount: string, path: string, query: string): string {
  let target = redirect.base;
  if (redirect.keepPath) {
    const rest = path.slice(mount.length);
    target = target.endsWith("/") && rest.startsWith("/") ? target + rest.slice(1) : target + rest;
  }
  if (redirect.sameHost) target = foldLeadingSlashes(target);
  const queries = redirect.keepQuery && query !== "" ? (redirect.query === "" ? query : `${redirect.query}&${query}`) : redirect.query;
  if (queries !== "") {
    // `https://example.com?q` is valid, but every client and nginx write the root's slash: `https://example.com/?q`.
    if (!redirect.sameHost && !/^https?:\/\/[^/]+\//i.test(target)) target += "/";
    target += `?${queries}`;
  }
  return headerSafe(target);
}

export type TrailingSlash = "add" | "remove";

/**
 * The other form of `path` under an app's `trailing_slash`, or undefined
 * when the path already has the form asked for. `add` leaves a last segment
 * with a dot alone (`/app.js`: a file's name); `remove` never touches `/`.
 */
export function trailingSlashPath(mode: TrailingSlash, path: string): string | undefined {
  if (mode === "remove") {
    if (!path.endsWith("/") || path === "/") return undefined;
    return path.replace(/\/+$/, "") || "/";
  }
  if (path.endsWith("/") || path.slice(path.lastIndexOf("/") + 1).includes(".")) return undefined;
  return `${path}/`;
}

/** A same-host Location for `path` with the request's query. */
export function sameHostLocation(path: string, query: string): string {
  return headerSafe(foldLeadingSlashes(query === "" ? path : `${path}?${query}`));
}

/**
 * `https://` + the Host's name + `:port` (none for 443) + the target as
 * sent. `host` is a Host the head rules accepted (http/request-rules.ts
 * isValidHost: a name, an IPv4 address or a bracketed IPv6 one, then an
 * optional port), so nothing a client sends can end the authority early.
 */
export function httpsLocation(host: string, port: number, url: string): string {
  const name = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0]!;
  return headerSafe(`https://${name}${port === 443 ? "" : `:${port}`}${url}`);
}
