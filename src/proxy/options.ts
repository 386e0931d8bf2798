/**
 * @module proxy/options
 *
 * What the front proxy can be told (stack/proxy-settings.ts fills it from
 * the config), with each default beside its field, and the limits of its
 * connections to workers derived from it.
 */
import { PROXY_UPSTREAM_IDLE_MS } from "../contract/keep-alive.ts";
import type { AccessEntry } from "./exchange.ts";
import type { ClientLimitSpec } from "./limits/client-limits.ts";
import type { HealthCheckSpec, HealthListener } from "./health/active.ts";
import type { PassiveHealthOptions } from "./health/passive.ts";
import type { RouteSpec } from "./router.ts";
import type { PoolLimits } from "./upstream/pool.ts";
import type { CompressPolicy } from "./compress/negotiate.ts";
import type { ErrorPagesSpec } from "./error-pages/pages.ts";
import type { StaticSiteSpec } from "./static-site.ts";
import type { RedirectSpec, TrailingSlash } from "./redirects.ts";

export interface FrontProxyOptions {
  routes: readonly RouteSpec[];
  /** The balancing policy per app, by config name (default round_robin). */
  balance?: Readonly<Record<string, string>>;
  /** Longest silence from a worker (ms): before its response head the client gets 504 (nginx's proxy_read_timeout, 60 s). */
  upstreamTimeoutMs?: number;
  /** How long connecting to a worker may take (ms) before it counts as failed (nginx's proxy_connect_timeout, 60 s). */
  connectTimeoutMs?: number;
  /** Idle kept-alive connections kept per worker (nginx's keepalive; default 64). */
  upstreamKeepalive?: number;
  /** How long an idle connection to a worker may be reused (ms; default PROXY_UPSTREAM_IDLE_MS, below the workers' keep-alive). */
  upstreamKeepaliveTimeoutMs?: number;
  /** Longest pause between two reads of a request body (ms) before 408 (nginx's client_body_timeout, 60 s). */
  bodyTimeoutMs?: number;
  /** client_max_body_size in bytes: larger bodies get 413 (0: no limit). */
  clientMaxBodySize?: number;
  /** Which failed requests go to another worker, per app (default: 3 tries, idempotent methods only). */
  retry?: Readonly<Record<string, RetryPolicy>>;
  /** An upgraded connection (WebSocket) idle this long either way is closed (ms; default 60 s). */
  websocketIdleTimeoutMs?: number;
  /** Active health checks per app (the config's `health`). */
  healthChecks?: Readonly<Record<string, HealthCheckSpec>>;
  /** Told when an active check takes a worker out or puts it back. */
  onHealthChange?: HealthListener;
  /** max_fails / fail_timeout (default: nginx's 1 and 10 s). */
  passiveHealth?: PassiveHealthOptions;
  /** Peers whose X-Forwarded-* and Forwarded headers are kept (addresses or CIDR blocks); everyone else's are replaced. */
  trustedProxies?: readonly string[];
  /** Apps the proxy serves itself from a folder (the config's `static`): app name -> absolute folder. */
  staticRoots?: Readonly<Record<string, string>>;
  /** The static apps with `index`, `fallback` or `cache` (the others serve index.html and send's Cache-Control). */
  staticSites?: Readonly<Record<string, StaticSiteSpec>>;
  /** Apps whose responses the proxy compresses (the config's `compress`), with their types, minimum length, codings and levels. */
  compress?: Readonly<Record<string, CompressPolicy>>;
  /** Apps that take TRACE requests (`allow_trace`); every other app's are answered 405. */
  allowTrace?: Readonly<Record<string, boolean>>;
  /** Limits per client address, per app (the config's `rate_limit` and `conn_limit`); apps absent here have none. */
  clientLimits?: Readonly<Record<string, ClientLimitSpec>>;
  /** The `error_pages` (stack's and apps'), their files already read; absent: the default pages only. */
  errorPages?: ErrorPagesSpec;
  /** Apps the proxy answers with a redirect itself (the config's `redirect`). */
  redirects?: Readonly<Record<string, RedirectSpec>>;
  /** Apps whose paths are redirected to end (`add`) or not end (`remove`) in a slash (`trailing_slash`); absent apps keep theirs. */
  trailingSlash?: Readonly<Record<string, TrailingSlash>>;
  /** Response headers set on every response, per app (the config's `headers`; null: the worker's removed). */
  headers?: Readonly<Record<string, Readonly<Record<string, string | null>>>>;
  /** The plain listeners redirect to HTTPS (`proxy.https_redirect`). */
  httpsRedirect?: HttpsRedirect;
  /** Called after each proxied response, for the access log and the metrics. */
  onResponse?: (entry: AccessEntry) => void;
  /** Called for each try a worker failed (could not connect, timed out, broke): `retried` when another try follows. */
  onUpstreamFailure?: (app: string, worker: string, kind: string, retried: boolean) => void;
}

export interface HttpsRedirect {
  /** 308 or 301. */
  status: number;
  /** The port in the Location (443 left out). */
  port: number;
  /** Path prefixes still served over plain HTTP (ACME's challenges), without a trailing slash. */
  except: readonly string[];
}

export interface RetryPolicy {
  /** Workers one request may be offered to; 1: no retry. */
  tries: number;
  /** Resend a non-idempotent request a worker dropped after taking it. */
  nonIdempotent: boolean;
}

export const DEFAULT_RETRY: RetryPolicy = { tries: 3, nonIdempotent: false };

/** The limits of the proxy's connections to workers (one object, shared by every pool, changed in place on reconfigure). */
export function limitsOf(options: FrontProxyOptions): PoolLimits {
  return {
    connectMs: options.connectTimeoutMs ?? 60_000,
    readMs: options.upstreamTimeoutMs ?? 60_000,
    maxIdle: options.upstreamKeepalive ?? 64,
    idleTimeoutMs: options.upstreamKeepaliveTimeoutMs ?? PROXY_UPSTREAM_IDLE_MS,
  };
}
