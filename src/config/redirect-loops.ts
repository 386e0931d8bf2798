/**
 * @module config/redirect-loops
 *
 * A redirect loop the config itself shows (issue #13): a redirect app whose
 * target the stack routes back to a redirect app, and so on until one comes
 * round again. Each redirect app's routes are followed as a request for the
 * route's own host and path would be, with the proxy's own functions
 * (proxy/redirects.ts for the Location, proxy/router.ts for the route), so
 * the check and the proxy cannot disagree on where a redirect lands.
 *
 * An absolute target (`https://example.com/x`) is followed only when a route
 * names its host: a host-less route would match any host, but a target on a
 * host the config never names is another site's. The scheme does not matter:
 * the stack routes the plain and the TLS listeners alike.
 */
import type { CheckContext, CheckProblem } from "./checks.ts";
import type { PathSegment } from "./errors.ts";
import { foldHostCase, normalizeRoutePath } from "./schema.ts";
import { compileRedirect, type CompiledRedirect, redirectLocation } from "../proxy/redirects.ts";
import { normalizeHost, Router, type RouteSpec } from "../proxy/router.ts";

type AppEntry = [string, Record<string, unknown>];

const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

interface Hop {
  app: string;
  host: string | undefined;
  path: string;
}

/** The redirect apps the schema found nothing wrong with, compiled. */
function redirectsOf(apps: readonly AppEntry[], context: CheckContext): Map<string, CompiledRedirect> {
  const redirects = new Map<string, CompiledRedirect>();
  for (const [name, app] of apps) {
    const redirect = app.redirect;
    if (!isRecord(redirect) || typeof redirect.to !== "string" || context.faulted(["apps", name, "redirect"])) continue;
    redirects.set(name, compileRedirect({ to: redirect.to, status: 301, keepPath: redirect.keep_path !== false, keepQuery: false }));
  }
  return redirects;
}

/** Every route of the file the schema accepted, as the proxy's router takes them. */
function routesOf(apps: readonly AppEntry[], context: CheckContext): RouteSpec[] {
  const routes: RouteSpec[] = [];
  for (const [name, app] of apps) {
    if (!Array.isArray(app.routes)) continue;
    app.routes.forEach((route: unknown, index) => {
      if (!isRecord(route) || context.faulted(["apps", name, "routes", index])) return;
      const path = normalizeRoutePath(typeof route.path === "string" ? route.path : "/");
      routes.push({ app: name, host: typeof route.host === "string" ? foldHostCase(route.host) : undefined, path: path === "/" ? undefined : path });
    });
  }
  return routes;
}

/** Whether some route names `host` (exactly or under its wildcard): a target there comes back to this stack. */
function namedHost(routes: readonly RouteSpec[], host: string): boolean {
  return routes.some((route) => route.host !== undefined && (route.host.startsWith("*.") ? host.endsWith(route.host.slice(1)) && host.length > route.host.length - 1 : route.host === host));
}

/** Where a request for `hop` is redirected to, or undefined when that is not on this stack. */
function targetOf(hop: Hop, router: Router, routes: readonly RouteSpec[], redirect: CompiledRedirect): Omit<Hop, "app"> | undefined {
  const mount = router.match(hop.host, hop.path)?.mount ?? "";
  const location = redirectLocation(redirect, mount, hop.path, "");
  if (redirect.sameHost) return { host: hop.host, path: location.split("?")[0]! };
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return undefined; // a host the schema's pattern let through but no client could reach: not this stack's
  }
  const host = normalizeHost(url.host);
  return namedHost(routes, host) ? { host, path: url.pathname } : undefined;
}

const describe = (hop: Hop) => `${hop.host ?? ""}${hop.path} (app "${hop.app}")`;

export function redirectLoops(apps: readonly AppEntry[], context: CheckContext): CheckProblem[] {
  const redirects = redirectsOf(apps, context);
  if (redirects.size === 0) return [];
  const routes = routesOf(apps, context);
  const router = new Router(routes);
  const problems: CheckProblem[] = [];
  const reported = new Set<string>();
  const hopAt = (host: string | undefined, path: string): Hop | undefined => {
    const app = router.match(host, path)?.app;
    return app === undefined ? undefined : { app, host, path };
  };
  for (const start of routes) {
    if (!redirects.has(start.app)) continue;
    // A wildcard route is asked as a name under it that no exact route names (as export/nginx.ts does).
    const first = hopAt(start.host?.startsWith("*.") ? `tsgi-any-name${start.host.slice(1)}` : start.host, start.path ?? "/");
    if (first?.app !== start.app) continue; // a more specific route answers this route's own path
    const chain: Hop[] = [];
    const seen = new Set<string>();
    let hop: Hop | undefined = first;
    while (hop && redirects.has(hop.app) && !seen.has(hop.app)) {
      seen.add(hop.app);
      chain.push(hop);
      const target: Omit<Hop, "app"> | undefined = targetOf(hop, router, routes, redirects.get(hop.app)!);
      hop = target && hopAt(target.host, target.path);
    }
    // Ends at an app that answers, off the stack, or in a loop this route only leads into (reported from the loop's own routes).
    if (!hop || hop.app !== start.app) continue;
    const members = [...seen].sort().join(" ");
    if (reported.has(members)) continue;
    reported.add(members);
    const segments: PathSegment[] = ["apps", start.app, "redirect", "to"];
    problems.push({
      segments,
      message: `a redirect loop: ${[...chain, hop].map(describe).join(" -> ")}; a request routed here never reaches an app that answers it`,
    });
  }
  return problems;
}
