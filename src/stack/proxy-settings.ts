/**
 * @module stack/proxy-settings
 *
 * What the front proxy needs of the config, as plain data: routes, balancing,
 * limits, retries, health checks, static folders, the listeners' options and
 * the access log. Pure functions of the config, so that the stack process and
 * each proxy process (stack/proxy-process.ts) derive the same settings, and
 * the settings cross the IPC channel as JSON.
 */
import path from "node:path";
import type { AppConfig, StackConfig } from "../config/schema.ts";
import type { AccessLogFormat } from "../proxy/access-log.ts";
import type { HealthCheckSpec } from "../proxy/health/active.ts";
import type { ClientLimitSpec } from "../proxy/limits/client-limits.ts";
import type { RouteSpec } from "../proxy/router.ts";
import type { FrontProxyOptions, RetryPolicy } from "../proxy/server.ts";
import type { CompressPolicy } from "../proxy/compress/negotiate.ts";

export type AppKind = "module" | "command" | "static";

/** The app kinds the supervisor runs; a `static` app is the proxy's alone. */
export function appKind(app: AppConfig): AppKind {
  return app.static !== undefined ? "static" : app.module !== undefined ? "module" : "command";
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
    ...compressOption(compressPoliciesFor(config)),
    ...clientLimitsOption(config),
  };
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
