/**
 * @module stack/plan
 *
 * Everything a stack will run, compiled from a validated config: the worker
 * pools (the supervisor's input), the proxy processes' settings and count,
 * the files `up --watch` watches, and the listeners that live as long as the
 * stack does. `plan(config)` is pure — no I/O, no processes, nothing read from
 * the machine (`proxy.workers: auto` stays `auto` until the stack runs it) —
 * and its result is plain data: it can be compared (stack/diff.ts turns two
 * plans into what a hot reload does), golden-tested, and rendered by others.
 *
 * The rule that keeps hot reload honest: whatever the running stack reads of
 * the config, it reads from the plan. A key that reaches the plan is then
 * diffed without anyone listing it (stack/diff.ts compares sections whole).
 */
import type { AddressConfig, AppConfig, StackConfig } from "../config/schema.ts";
import { settingsFromConfig } from "../contract/worker-settings.ts";
import type { PoolSpec } from "../supervisor/types.ts";
import type { LogBound } from "../supervisor/log-keeper.ts";
import { controlSocketPath } from "./control.ts";
import { type AppKind, type ProxySettings, appKind, hasWorkers, proxySettings, staticRootsFor } from "./proxy-settings.ts";

/** One app of the config, as `status` lists it. */
export interface AppPlan {
  kind: AppKind;
  /** The routes, as `host/path` (`*` for any host). */
  routes: string[];
  /** The folder a static app serves (absolute). */
  folder?: string;
}

/** What a running stack cannot change: a difference here needs a restart of the stack. */
export interface FixedPlan {
  /** pm2's home, the workers' sockets and logs, the control socket. */
  stateDir: string;
  /** The HTTP listeners (`proxy.listen`), as configured (port 0 is made real when bound). */
  listen: AddressConfig[];
  /** The HTTPS listeners (`proxy.tls.listen`); none without `proxy.tls`. */
  tlsListen: AddressConfig[];
  /** `proxy.tls.http2`: whether the HTTPS listeners offer HTTP/2 (fixed when they are made); absent without `proxy.tls`. */
  tlsHttp2?: boolean;
  /** The admin listener: status page, JSON status, metrics. */
  admin: AddressConfig;
  /** `proxy.admin_token`: what the admin listener requires, when set (TSGI_ADMIN_TOKEN takes its place at start). */
  adminToken?: string;
  /** The control socket the CLI talks to. */
  control: string;
  /** `logs`: how much of each worker's output file is kept on disk (the supervisor's log keeper rotates it). */
  logBound: LogBound;
}

/** The front proxy: its settings (sent to each proxy process) and how many processes run them. */
export interface ProxyPlan {
  /** `proxy.workers`: a count, or `auto` (one per CPU, resolved when the stack runs). */
  processes: number | "auto";
  settings: ProxySettings;
}

export interface StackPlan {
  fixed: FixedPlan;
  /** Every app, static ones included, in the config's order. */
  apps: Record<string, AppPlan>;
  /** The worker apps' pools, by app (a static app has none). */
  pools: Record<string, PoolSpec>;
  proxy: ProxyPlan;
  /** Each worker app's `watch` globs (absolute; `!` excludes), for `up --watch`. */
  watch: Record<string, string[]>;
}

/** The config's apps that have workers, for the supervisor. */
export function workerApps(config: StackConfig): [string, AppConfig][] {
  return Object.entries(config.apps).filter(([, app]) => hasWorkers(appKind(app)));
}

/** The supervisor's input for one app of the config (never a static one: see workerApps). */
export function poolSpecFor(name: string, app: AppConfig): PoolSpec {
  return {
    name,
    kind: app.module ? "module" : "command",
    module: app.module,
    interface: app.interface,
    command: app.command,
    instances: app.instances,
    env: { ...app.env },
    cwd: app.cwd,
    maxMemoryBytes: app.max_memory,
    ...settingsFromConfig((key) => app[key]),
    readyTimeoutMs: app.ready_timeout,
    restart: {
      maxRestarts: app.restart.max_restarts,
      backoffMs: app.restart.backoff,
      minUptimeMs: app.restart.min_uptime,
    },
  };
}

function appsFor(config: StackConfig): Record<string, AppPlan> {
  const roots = staticRootsFor(config);
  return Object.fromEntries(
    Object.entries(config.apps).map(([name, app]) => [
      name,
      {
        kind: appKind(app),
        routes: app.routes.map((route) => `${route.host ?? "*"}${route.path}`),
        ...(roots[name] === undefined ? {} : { folder: roots[name] }),
      },
    ]),
  );
}

const copyAddress = ({ host, port }: AddressConfig): AddressConfig => ({ host, port });

export function plan(config: StackConfig): StackPlan {
  const { proxy } = config;
  const workers = workerApps(config);
  return {
    fixed: {
      stateDir: config.state_dir,
      listen: proxy.listen.map(copyAddress),
      tlsListen: (proxy.tls?.listen ?? []).map(copyAddress),
      ...(proxy.tls ? { tlsHttp2: proxy.tls.http2 } : {}),
      admin: copyAddress(proxy.admin),
      ...(proxy.admin_token === undefined ? {} : { adminToken: proxy.admin_token }),
      control: controlSocketPath(config.state_dir),
      logBound: { maxBytes: config.logs.max_size, keep: config.logs.keep },
    },
    apps: appsFor(config),
    pools: Object.fromEntries(workers.map(([name, app]) => [name, poolSpecFor(name, app)])),
    proxy: { processes: proxy.workers, settings: proxySettings(config) },
    watch: Object.fromEntries(workers.map(([name, app]) => [name, [...app.watch]])),
  };
}
