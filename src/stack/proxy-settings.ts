/**
 * @module stack/proxy-settings
 *
 * What the front proxy needs of the config, as plain data: routes, balancing,
 * limits, retries, health checks, static folders, the listeners' options and
 * the access log. Pure functions of the config, so that the stack process and
 * each proxy process (stack/proxy-process.ts) derive the same settings, and
 * the settings cross the IPC channel as JSON. One exception reads the disk:
 * the `error_pages` files, read here once per plan (at `up` and at each
 * reload) so that an edited page is a changed setting a reload applies, and
 * no proxy process reads a file while it serves.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import type { AppConfig, StackConfig } from "../config/schema.ts";
import type { AccessLogFormat } from "../proxy/access-log.ts";
import type { HealthCheckSpec } from "../proxy/health/active.ts";
import type { ClientLimitSpec } from "../proxy/limits/client-limits.ts";
import type { RouteSpec } from "../proxy/router.ts";
import type { FrontProxyOptions, RetryPolicy } from "../proxy/server.ts";
import type { CompressPolicy } from "../proxy/compress/negotiate.ts";
import type { ErrorPagesSpec } from "../proxy/error-pages/pages.ts";
import type { StaticSiteSpec } from "../proxy/static-site.ts";
import type { HttpsRedirect } from "../proxy/options.ts";
import type { RedirectSpec, TrailingSlash } from "../proxy/redirects.ts";

export type AppKind = "module" | "command" | "static" | "redirect";

/** The app kinds the supervisor runs; a `static` or `redirect` app is the proxy's alone. */
export function appKind(app: AppConfig): AppKind {
  if (app.static !== undefined) return "static";
  if (app.redirect !== undefined) return "redirect";
  return app.module !== undefined ? "module" : "command";
}

/** Whether the supervisor runs workers for an app of this kind (the proxy answers a `static` or `redirect` app itself). */
export function hasWorkers(kind: AppKind): boolean {
  return kind === "module" || kind === "command";
}

/** The folders of the static apps, for the proxy: app name -> absolute path (the loader resolved them). */
export function staticRootsFor(config: StackConfig): Record<string, string> {
  const roots: Record<string, string> = {};
  for (const [name, app] of Object.entries(config.apps)) {
    if (app.static !== undefined) roots[name] = app.static;
  }
  return roots;
}

/** The config's `health` blocks, as the proxy's active checks. */
export function healthChecksFor(config: StackConfig): Record<string, HealthCheckSpec> {
  const checks: Record<string, HealthCheckSpec> = {};
  for (const [name, app] of Object.entries(config.apps)) {
    if (app.health) checks[name] = { path: healthPathFor(app), intervalMs: app.health.interval, timeoutMs: app.health.timeout };
  }
  return checks;
}

/**
 * The path a health check asks a worker for, by the same rule as a request:
 * a gateway worker is told its mount point and routes on what follows it, so
 * it gets `health.path` as written; a command app is told nothing and gets
 * every path as the client sent it, mount included, so its check is
 * `health.path` under the app's first path route (`/legacy` + `/healthz`).
 */
export function healthPathFor(app: AppConfig): string {
  const path = app.health?.path ?? "/";
  if (appKind(app) !== "command") return path;
  const mount = app.routes.find((route) => route.path !== undefined && route.path !== "/")?.path;
  return mount === undefined ? path : `${mount.replace(/\/+$/, "")}${path}`;
}

/** The config's `retry` blocks, as the proxy's retry policies. */
function retryPoliciesFor(config: StackConfig): Record<string, RetryPolicy> {
  return Object.fromEntries(
    Object.entries(config.apps).map(([name, app]) => [name, { tries: app.retry.tries, nonIdempotent: app.retry.non_idempotent }]),
  );
}

/**
 * The config's `compress` blocks, as the proxy's compression policies (the
 * same on every Node: the proxy leaves out, when it compresses, the codings
 * its Node cannot produce — zstd before Node 22.15).
 */
export function compressPoliciesFor(config: StackConfig): Record<string, CompressPolicy> {
  const policies: Record<string, CompressPolicy> = {};
  for (const [name, app] of Object.entries(config.apps)) {
    const compress = app.compress;
    if (!compress) continue;
    policies[name] = {
      types: compress.types.map((type) => type.toLowerCase()),
      minLength: compress.min_length,
      encodings: compress.encodings.filter((encoding, i) => compress.encodings.indexOf(encoding) === i),
      levels: { ...compress.level },
    };
  }
  return policies;
}

/** No `compress` key at all when no app compresses: the options (and the plan that shows them) stay as they were. */
const compressOption = (policies: Record<string, CompressPolicy>) => (Object.keys(policies).length > 0 ? { compress: policies } : {});

/**
 * The config's `rate_limit` and `conn_limit` blocks, as the proxy's limits
 * per client address, for the apps that have one. Each proxy process applies
 * them as written: the rate is NOT divided by `proxy.workers` (docs/proxy.md
 * says why).
 */
export function clientLimitsFor(config: StackConfig): Record<string, ClientLimitSpec> {
  const limits: Record<string, ClientLimitSpec> = {};
  for (const [name, app] of Object.entries(config.apps)) {
    const { rate_limit: rate, conn_limit: conn } = app;
    if (!rate && !conn) continue;
    limits[name] = {
      ...(rate
        ? { rate: { perSecond: rate.rate, burst: rate.burst, delay: rate.delay, nodelay: rate.nodelay, status: rate.status, maxClients: rate.max_clients } }
        : {}),
      ...(conn ? { conn: { max: conn.max, status: conn.status, maxClients: conn.max_clients } } : {}),
    };
  }
  return limits;
}

/**
 * The `error_pages` of the stack and of each app, with their files read
 * (the config's checks found each readable and within 1 MiB). A file gone
 * between the check and this read leaves its status to the default page
 * rather than failing the reload that the check let through.
 */
export function errorPagesFor(config: StackConfig): ErrorPagesSpec {
  const read = (pages: Readonly<Record<string, string>> | undefined): Record<string, string> => {
    const html: Record<string, string> = {};
    for (const [key, file] of Object.entries(pages ?? {})) {
      try {
        html[key] = readFileSync(file, "utf8");
      } catch {
        // see above: the default page answers this status
      }
    }
    return html;
  };
  const stack = read(config.proxy.error_pages);
  const apps: Record<string, Record<string, string>> = {};
  for (const [name, app] of Object.entries(config.apps)) if (app.error_pages) apps[name] = read(app.error_pages);
  return { ...(Object.keys(stack).length > 0 ? { stack } : {}), ...(Object.keys(apps).length > 0 ? { apps } : {}) };
}

/** `errorPages`, only when the config has some (a config without gives the options it always did). */
function errorPagesOption(config: StackConfig): { errorPages?: ErrorPagesSpec } {
  const pages = errorPagesFor(config);
  return pages.stack || pages.apps ? { errorPages: pages } : {};
}

/** The proxy's routing table for the config. */
export function routesFor(config: StackConfig): { routes: RouteSpec[]; balance: Record<string, string> } {
  const routes: RouteSpec[] = [];
  const balance: Record<string, string> = {};
  for (const [name, app] of Object.entries(config.apps)) {
    balance[name] = app.balance;
    for (const route of app.routes) routes.push({ app: name, host: route.host, path: route.path === "/" ? undefined : route.path });
  }
  return { routes, balance };
}

/** The FrontProxy's options for a config, without its callbacks (those belong to the process that runs it). */
export type ProxyOptionsData = Omit<FrontProxyOptions, "onHealthChange" | "onResponse">;

export function frontProxyOptions(config: StackConfig): ProxyOptionsData {
  const { routes, balance } = routesFor(config);
  const { limits } = config.proxy;
  return {
    routes,
    balance,
    upstreamTimeoutMs: limits.upstream_timeout,
    connectTimeoutMs: limits.connect_timeout,
    upstreamKeepalive: limits.upstream_keepalive,
    upstreamKeepaliveTimeoutMs: limits.upstream_keepalive_timeout,
    bodyTimeoutMs: limits.body_timeout,
    websocketIdleTimeoutMs: limits.websocket_idle_timeout,
    clientMaxBodySize: limits.client_max_body_size,
    retry: retryPoliciesFor(config),
    trustedProxies: config.proxy.trusted_proxies,
    healthChecks: healthChecksFor(config),
    allowTrace: Object.fromEntries(Object.entries(config.apps).filter(([, app]) => app.allow_trace).map(([name]) => [name, true])),
    staticRoots: staticRootsFor(config),
    ...staticSitesOption(config),
    ...compressOption(compressPoliciesFor(config)),
    ...clientLimitsOption(config),
    ...errorPagesOption(config),
    ...answerOptions(config),
  };
}

/** `staticSites`, only when a static app has `index`, `fallback` or `cache` (a config without them gives the options it always did). */
function staticSitesOption(config: StackConfig): { staticSites?: Record<string, StaticSiteSpec> } {
  const sites: Record<string, StaticSiteSpec> = {};
  for (const [name, app] of Object.entries(config.apps)) {
    if (app.static === undefined || (app.index === undefined && app.fallback === undefined && app.cache === undefined)) continue;
    sites[name] = {
      ...(app.index === undefined ? {} : { index: [...app.index] }),
      ...(app.fallback === undefined ? {} : { fallback: app.fallback }),
      ...(app.cache === undefined
        ? {}
        : { cache: { maxAgeSeconds: Math.floor(app.cache.max_age / 1000), immutable: [...app.cache.immutable], noCache: [...app.cache.no_cache] } }),
    };
  }
  return Object.keys(sites).length > 0 ? { staticSites: sites } : {};
}

/**
 * The proxy's own answers and headers (issue #13): `redirect` apps,
 * `trailing_slash` other than keep, `headers`, and `proxy.https_redirect`,
 * each key only when the config has one (a config without them gives the
 * options it always did, and the proxy adds no pass).
 */
export function answerOptions(config: StackConfig): Pick<FrontProxyOptions, "redirects" | "trailingSlash" | "headers" | "httpsRedirect"> {
  const redirects: Record<string, RedirectSpec> = {};
  const trailingSlash: Record<string, TrailingSlash> = {};
  const headers: Record<string, Record<string, string | null>> = {};
  for (const [name, app] of Object.entries(config.apps)) {
    const redirect = app.redirect;
    if (redirect) redirects[name] = { to: redirect.to, status: redirect.status, keepPath: redirect.keep_path, keepQuery: redirect.keep_query };
    if (app.trailing_slash !== "keep") trailingSlash[name] = app.trailing_slash;
    if (Object.keys(app.headers).length > 0) headers[name] = { ...app.headers };
  }
  const https = config.proxy.https_redirect;
  const tlsPort = config.proxy.tls?.listen[0]?.port ?? 443;
  const some = <T extends object>(record: T) => (Object.keys(record).length > 0 ? record : undefined);
  const options: Pick<FrontProxyOptions, "redirects" | "trailingSlash" | "headers" | "httpsRedirect"> = {};
  if (some(redirects)) options.redirects = redirects;
  if (some(trailingSlash)) options.trailingSlash = trailingSlash;
  if (some(headers)) options.headers = headers;
  if (https) options.httpsRedirect = httpsRedirectOf(https, tlsPort);
  return options;
}

function httpsRedirectOf(https: NonNullable<StackConfig["proxy"]["https_redirect"]>, tlsPort: number): HttpsRedirect {
  return { status: https.status, port: https.port ?? tlsPort, except: https.except.map((prefix) => prefix.replace(/\/+$/, "")) };
}

/** `clientLimits`, only when an app has one (a config without limits gives the options it always did). */
function clientLimitsOption(config: StackConfig): { clientLimits?: Record<string, ClientLimitSpec> } {
  const limits = clientLimitsFor(config);
  return Object.keys(limits).length > 0 ? { clientLimits: limits } : {};
}

/** Everything one proxy process runs from: the proxy's options, its listeners' and its access log's. */
export interface ProxySettings {
  proxy: ProxyOptionsData;
  headerTimeoutMs: number;
  /** The certificate files of the HTTPS listeners (each proxy process reads and watches them), and whether they offer HTTP/2. */
  tls?: { cert: string; key: string; http2: boolean };
  /** The access log file, or none (`access_log: off`). */
  accessLog?: { file: string; format: AccessLogFormat };
  /** How long a stopping proxy process lets requests in flight finish before it cuts their connections: the longest graceful_timeout of the apps. */
  drainTimeoutMs: number;
}

/** Where the front proxy writes its access log (`access_log` other than `off`), and `tsgi-stack logs --access` reads it. */
export function accessLogFile(config: StackConfig): string {
  return path.join(config.state_dir, "logs", "access.log");
}

export function proxySettings(config: StackConfig): ProxySettings {
  const { proxy } = config;
  return {
    proxy: frontProxyOptions(config),
    headerTimeoutMs: proxy.limits.header_timeout,
    drainTimeoutMs: Math.max(0, ...Object.values(config.apps).map((app) => app.graceful_timeout)),
    ...(proxy.tls ? { tls: { cert: proxy.tls.cert, key: proxy.tls.key, http2: proxy.tls.http2 } } : {}),
    ...(proxy.access_log === "off" ? {} : { accessLog: { file: accessLogFile(config), format: proxy.access_log } }),
  };
}
