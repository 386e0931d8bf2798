/**
 * @module proxy/router
 *
 * Which app a request goes to: by Host first (an exact name beats a
 * `*.example.com` wildcard), then by the longest path prefix, matched at a
 * segment boundary (`/api` matches `/api` and `/api/x`, not `/apix`). A route
 * with no host matches any host; a route with no path matches every path.
 * The table is immutable: a config change builds a new Router and swaps it in.
 */

export interface RouteSpec {
  app: string;
  /** `example.com` or `*.example.com`; any host when absent. */
  host?: string;
  /** A path prefix starting with "/"; every path when absent. */
  path?: string;
}

export interface RouteMatch {
  app: string;
  /** The matched path prefix ("" for a host-only route): the mount point the app is served under. */
  mount: string;
}

interface CompiledRoute {
  app: string;
  host: string | undefined;
  wildcard: boolean;
  prefix: string;
}

/** "Example.COM:8080" -> "example.com": Host comparisons ignore case and port. */
export function normalizeHost(host: string | undefined): string {
  if (!host) return "";
  const withoutPort = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0]!;
  return withoutPort.toLowerCase().replace(/\.$/, "");
}

function underPrefix(path: string, prefix: string): boolean {
  return prefix === "" || (path.startsWith(prefix) && (path.length === prefix.length || path[prefix.length] === "/"));
}

/** How specific a route's host is: exact beats wildcard beats any. */
function hostRank(route: CompiledRoute): number {
  if (route.host === undefined) return 0;
  return route.wildcard ? 1 : 2;
}

export class Router {
  private readonly routes: readonly CompiledRoute[];

  constructor(routes: readonly RouteSpec[]) {
    this.routes = routes
      .map((route) => {
        const host = route.host?.toLowerCase();
        return {
          app: route.app,
          host: host?.startsWith("*.") ? host.slice(1) : host,
          wildcard: host?.startsWith("*.") ?? false,
          prefix: (route.path ?? "").replace(/\/+$/, ""),
        };
      })
      // Most specific first: host rank, then the longest prefix.
      .sort((a, b) => hostRank(b) - hostRank(a) || b.prefix.length - a.prefix.length);
  }

  match(hostHeader: string | undefined, path: string): RouteMatch | undefined {
    const host = normalizeHost(hostHeader);
    for (const route of this.routes) {
      if (route.host !== undefined) {
        const hostMatches = route.wildcard ? host.endsWith(route.host) && host.length > route.host.length : host === route.host;
        if (!hostMatches) continue;
      }
      if (underPrefix(path, route.prefix)) return { app: route.app, mount: route.prefix };
    }
    return undefined;
  }
}
