/**
 * @module proxy/upstreams
 *
 * The workers of every app as the proxy knows them: the ready endpoints of
 * each app with its balancing policy, kept-alive connections per worker
 * process, what each has in flight, and its health, passive (failures seen
 * in traffic) and active (the app's health check). The proxy learns which
 * workers exist only through `setEndpoints` — never from the supervisor or
 * pm2.
 *
 * A worker *process* is known by its instance key: the endpoint's slot id
 * plus its pid, so that a replacement in the same slot starts with fresh
 * connections and a clean health record (ip_hash still hashes the slot id,
 * so clients stay put).
 */
import type http from "node:http";
import { createSelector, type Endpoint, type SelectionContext, type Selector } from "./balancing/selector.ts";
import { ActiveHealthChecker } from "./health/active.ts";
import { PassiveHealth } from "./health/passive.ts";
import { type FrontProxyOptions, limitsOf } from "./options.ts";
import { ConnectionPool, type PoolLimits } from "./upstream/pool.ts";

export function instanceKey(endpoint: Endpoint): string {
  return endpoint.pid === undefined ? endpoint.id : `${endpoint.id}#${endpoint.pid}`;
}

function sameAddress(a: Endpoint["address"], b: Endpoint["address"]): boolean {
  return a.kind === "unix" ? b.kind === "unix" && a.path === b.path : b.kind === "tcp" && a.host === b.host && a.port === b.port;
}

/** One worker process as this proxy sees it, for `status`: in balancing or not, and why. */
export interface EndpointView {
  app: string;
  /** The endpoint's id ("app.slot"). */
  id: string;
  pid?: number;
  inFlight: number;
  /** passing / failing: the app's active health check; unchecked: the app has none, or it has not run on this worker yet. */
  health: "passing" | "failing" | "unchecked";
  /** When the last active check ran (epoch ms). */
  checkedAt?: number;
  /** Why it is out of balancing: its failed check's answer, or its failures in traffic (max_fails). */
  outReason?: string;
}

interface AppEndpoints {
  endpoints: readonly Endpoint[];
  selector: Selector;
}

const NONE_TRIED: ReadonlySet<string> = new Set();

export class Upstreams {
  private readonly apps = new Map<string, AppEndpoints>();
  /** Kept-alive connections per worker process (by instance key). */
  private readonly connections = new Map<string, ConnectionPool>();
  private readonly inFlight = new Map<string, number>();
  private readonly checkers = new Map<string, ActiveHealthChecker>();
  private balance: Readonly<Record<string, string>>;
  /** One object shared by every connection pool, changed in place on reconfigure. */
  readonly limits: PoolLimits;
  private readonly sweeper: NodeJS.Timeout;
  readonly passive: PassiveHealth;
  private readonly selectionContext: SelectionContext;

  constructor(
    private options: FrontProxyOptions,
    clientAddress: (req: http.IncomingMessage) => string,
  ) {
    this.selectionContext = { inFlight: (endpoint) => this.inFlight.get(instanceKey(endpoint)) ?? 0, clientAddress };
    this.balance = options.balance ?? {};
    this.passive = new PassiveHealth(options.passiveHealth);
    this.limits = limitsOf(options);
    // Idle connections past their time are closed by us, before the worker closes them.
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const pool of this.connections.values()) pool.sweep(now);
    }, Math.max(100, Math.min(1_000, this.limits.idleTimeoutMs / 2)));
    this.sweeper.unref();
  }

  /** New balancing policies by app: the next request of each app is chosen by its new policy. */
  setBalance(balance: Readonly<Record<string, string>>): void {
    this.balance = balance;
    for (const [app, known] of this.apps) known.selector = createSelector(balance[app] ?? "round_robin");
  }

  /** A config hot reload: new limits for new connections, new health checks, new balancing. */
  reconfigure(options: FrontProxyOptions): void {
    this.options = options;
    Object.assign(this.limits, limitsOf(options));
    this.setBalance(options.balance ?? {});
    for (const checker of this.checkers.values()) checker.stop();
    this.checkers.clear();
    for (const app of this.apps.keys()) this.checkerFor(app)?.start();
  }

  /** The ready workers of one app; connections to and health records of workers no longer listed are dropped. */
  setEndpoints(app: string, endpoints: readonly Endpoint[]): void {
    this.checkerFor(app)?.start();
    const known = this.apps.get(app);
    const live = new Set(endpoints.map(instanceKey));
    for (const gone of known?.endpoints ?? []) if (!live.has(instanceKey(gone))) this.checkers.get(app)?.forget(instanceKey(gone));
    if (known) known.endpoints = endpoints;
    else this.apps.set(app, { endpoints, selector: createSelector(this.balance[app] ?? "round_robin") });
    for (const [key, connections] of this.connections) {
      if (key.startsWith(`${app}.`) && !live.has(key)) {
        connections.close();
        this.connections.delete(key);
        this.passive.forget(key);
      }
    }
  }

  endpoints(app: string): readonly Endpoint[] {
    return this.apps.get(app)?.endpoints ?? [];
  }

  /** Every worker process this proxy balances over, with its health and what it has in flight. */
  view(now = Date.now()): EndpointView[] {
    const views: EndpointView[] = [];
    for (const [app, { endpoints }] of this.apps) {
      const checker = this.checkers.get(app);
      for (const endpoint of endpoints) {
        const key = instanceKey(endpoint);
        const result = checker?.lastResult(key);
        const health = !result ? "unchecked" : checker!.isHealthy(endpoint) ? "passing" : "failing";
        const outReason =
          health === "failing"
            ? result?.failure ?? "failed its health check"
            : this.passive.isOut(key, now)
              ? "failed in traffic (max_fails): out of balancing until fail_timeout passes"
              : undefined;
        views.push({
          app,
          id: endpoint.id,
          ...(endpoint.pid === undefined ? {} : { pid: endpoint.pid }),
          inFlight: this.inFlight.get(key) ?? 0,
          health,
          ...(result ? { checkedAt: result.at } : {}),
          ...(outReason ? { outReason } : {}),
        });
      }
    }
    return views;
  }

  /** Picks a worker of `app` among those neither tried for this request nor out for failing. */
  choose(app: string, req: http.IncomingMessage, tried: ReadonlySet<string> = NONE_TRIED): Endpoint | undefined {
    const known = this.apps.get(app);
    if (!known) return undefined;
    const checker = this.checkers.get(app);
    const untried =
      tried.size === 0 && !checker
        ? known.endpoints
        : known.endpoints.filter((endpoint) => !tried.has(instanceKey(endpoint)) && (!checker || checker.isHealthy(endpoint)));
    const candidates = this.passive.available(untried, instanceKey);
    return known.selector.select(candidates, req, this.selectionContext);
  }

  /** The kept-alive connections to one worker process. */
  connectionsTo(endpoint: Endpoint, key: string): ConnectionPool {
    let pool = this.connections.get(key);
    if (pool && !sameAddress(pool.address, endpoint.address)) {
      // The same worker identity at a new address (a test, or a `command` app that moved): old connections are no use.
      pool.close();
      pool = undefined;
    }
    if (!pool) {
      pool = new ConnectionPool(endpoint.address, this.limits);
      this.connections.set(key, pool);
    }
    return pool;
  }

  /** Counts a try as in flight on its worker (least_conn reads it); the returned function takes it off, once, and says whether it did. */
  enter(key: string): () => boolean {
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
    let left = false;
    return () => {
      if (left) return false;
      left = true;
      this.inFlight.set(key, (this.inFlight.get(key) ?? 1) - 1);
      return true;
    };
  }

  /** The app's active health checker, made on first use when the app has a health check. */
  private checkerFor(app: string): ActiveHealthChecker | undefined {
    const spec = this.options.healthChecks?.[app];
    if (!spec) return undefined;
    let checker = this.checkers.get(app);
    if (!checker) {
      checker = new ActiveHealthChecker(app, spec, () => this.endpoints(app), instanceKey, (...change) =>
        this.options.onHealthChange?.(...change),
      );
      this.checkers.set(app, checker);
    }
    return checker;
  }

  /** Runs one round of every app's active checks now (tests, and a fresh start). */
  async checkHealth(): Promise<void> {
    await Promise.all([...this.checkers.values()].map((checker) => checker.checkAll()));
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const checker of this.checkers.values()) checker.stop();
    for (const pool of this.connections.values()) pool.close();
    this.connections.clear();
  }
}
