/**
 * @module proxy/limits/client-limits
 *
 * Limits per client address (issue #13, item 3), nginx's limit_req and
 * limit_conn: the client is the address after `proxy.trusted_proxies`
 * (proxy/forwarded.ts clientAddress), one table per app and per proxy
 * process.
 *
 * RequestRate is limit_req's leaky bucket, with its arithmetic
 * (ngx_http_limit_req_module.c): per client an `excess` in thousandths of a
 * request and the time it was last updated. A request drains the excess by
 * rate × elapsed, then adds one request (1000):
 *
 *   - a client's first request, or one that finds the bucket empty, passes
 *     at once (excess 0);
 *   - excess > burst: refused, and the excess is left as it was (a refused
 *     request costs nothing);
 *   - otherwise it is accepted, and delayed by (excess - delay) / rate when
 *     the excess is above `delay` requests (0 by default: every excess
 *     request waits its turn at the rate; `nodelay`: none waits).
 *
 * So with rate=10r/s burst=20, 30 requests at once: 21 are accepted (the
 * first, then 20 in the bucket) and 9 refused; without nodelay the 21
 * accepted go out 100 ms apart, with nodelay all at once.
 *
 * InFlight is limit_conn: requests being handled per client address (a
 * WebSocket while its tunnel is open); for HTTP/1.1 that is nginx's
 * "connections that have a request being processed".
 *
 * Memory is bounded: each table holds at most `maxClients` addresses. The
 * rate table is an LRU (a Map in insertion order): when it is full the
 * oldest entry is forgotten, as nginx drops the least recently used state
 * when its zone is full — a forgotten client starts again with an empty
 * bucket. An entry is moved to the young end only once it is in the older
 * half (more than maxClients / 2 newer addresses): moving it on every hit
 * (a Map delete and set) cost more than the rest of the limiter together
 * for a client that sends many requests, and a client seen more often than
 * once every maxClients / 2 new addresses is still never forgotten. The in-flight
 * table keeps an address whose requests have all ended (a delete and a set
 * per request would cost as much again) until it needs the room: when it is
 * full, such addresses are swept out, and if every address has a request in
 * flight a new one is refused (nginx: "if the zone storage is exhausted, the
 * server will return the error").
 *
 * Each proxy process keeps its own tables (nginx's workers share a zone in
 * shared memory; ours do not): see docs/proxy.md for what that does to the
 * effective limits.
 */

/** A request rate limit, as the proxy applies it (stack/proxy-settings.ts derives it from `rate_limit`). */
export interface RateLimitSpec {
  /** Requests per second (nginx's rate= in r/s; 30r/m is 0.5). */
  perSecond: number;
  /** Requests a client may be ahead of the rate (nginx's burst=). */
  burst: number;
  /** Requests of the burst passed without delay (nginx's delay=). */
  delay: number;
  /** Every request of the burst passed without delay (nginx's nodelay). A flag, not delay: Infinity, since the spec crosses IPC as JSON. */
  nodelay: boolean;
  /** The status of a refused request (nginx's limit_req_status). */
  status: number;
  /** The most client addresses the table keeps. */
  maxClients: number;
}

/** An in-flight limit, as the proxy applies it (from `conn_limit`). */
export interface ConnLimitSpec {
  /** Requests in flight per client address (nginx's limit_conn number). */
  max: number;
  /** The status of a refused request (nginx's limit_conn_status). */
  status: number;
  /** The most client addresses the table keeps. */
  maxClients: number;
}

/** The limits of one app; either may be absent. */
export interface ClientLimitSpec {
  rate?: RateLimitSpec;
  conn?: ConnLimitSpec;
}

/** The default bound of a table: about 1.5 MB per app and proxy process at ~150 bytes an entry. */
export const DEFAULT_MAX_CLIENTS = 10_000;

/** What the rate limit says of one request. */
export type RateVerdict =
  /** Go on now (delayMs 0) or after delayMs. */
  | { ok: true; delayMs: number }
  /** Refused; retryAfterMs is when the client's next request would be accepted. */
  | { ok: false; retryAfterMs: number };

const NOW: RateVerdict = Object.freeze({ ok: true, delayMs: 0 }) as RateVerdict;

interface Bucket {
  /** Thousandths of a request above the rate. */
  excess: number;
  /** When excess was last updated (ms). */
  last: number;
  /** Its place in the table: the `inserted` count when it was (re)inserted. */
  seq: number;
}

/** nginx's limit_req for one app: a leaky bucket per client address. */
export class RequestRate {
  /** In use order, least recent first. */
  private readonly buckets = new Map<string, Bucket>();
  /** nginx's units: thousandths of a request per second, and per-request thousandths. */
  private rate = 0;
  private burst = 0;
  private delay = 0;
  /** Entries (re)inserted so far: a bucket more than `refreshAge` behind is moved to the young end when seen. */
  private inserted = 0;
  private refreshAge = 0;

  constructor(
    private spec: RateLimitSpec,
    private readonly now: () => number = monotonicMs,
  ) {
    this.configure(spec);
  }

  /** New parameters (a config reload); the clients' buckets are kept, as nginx keeps a zone across reloads. */
  configure(spec: RateLimitSpec): void {
    this.spec = spec;
    // nginx: rate * 1000 / scale in whole thousandths (10r/m is 166), the epsilon for 3r/m's 0.05 * 1000.
    this.rate = Math.trunc(spec.perSecond * 1000 + 1e-6);
    this.burst = spec.burst * 1000;
    this.delay = spec.nodelay ? Infinity : spec.delay * 1000;
    this.refreshAge = Math.floor(spec.maxClients / 2);
    while (this.buckets.size > spec.maxClients) this.evictOldest();
  }

  get status(): number {
    return this.spec.status;
  }

  /** Client addresses the table holds now. */
  get size(): number {
    return this.buckets.size;
  }

  /** Accounts one request of `client` (ngx_http_limit_req_lookup, then _account). */
  take(client: string): RateVerdict {
    const now = this.now();
    const bucket = this.buckets.get(client);
    if (bucket === undefined) {
      if (this.buckets.size >= this.spec.maxClients) this.evictOldest();
      this.buckets.set(client, { excess: 0, last: now, seq: ++this.inserted });
      return NOW;
    }
    // Recently used last (the oldest client is the first in the Map), once it has aged into the older half.
    if (this.inserted - bucket.seq > this.refreshAge) {
      this.buckets.delete(client);
      this.buckets.set(client, bucket);
      bucket.seq = ++this.inserted;
    }
    let ms = now - bucket.last;
    if (ms < -60_000) ms = 1; // nginx: a clock that went back a lot
    else if (ms < 0) ms = 0;
    let excess = bucket.excess - Math.trunc((this.rate * ms) / 1000) + 1000;
    if (excess < 0) excess = 0;
    if (excess > this.burst) return { ok: false, retryAfterMs: Math.ceil(((excess - this.burst) * 1000) / this.rate) };
    bucket.excess = excess;
    if (ms !== 0) bucket.last = now;
    if (excess <= this.delay) return NOW;
    return { ok: true, delayMs: Math.trunc(((excess - this.delay) * 1000) / this.rate) };
  }

  private evictOldest(): void {
    const oldest = this.buckets.keys().next();
    if (!oldest.done) this.buckets.delete(oldest.value);
  }
}

/** nginx's limit_conn for one app: requests in flight per client address. */
export class InFlight {
  private readonly counts = new Map<string, { count: number }>();
  /** Entries whose count is 0 (kept until the room is needed). */
  private idle = 0;

  constructor(private spec: ConnLimitSpec) {}

  configure(spec: ConnLimitSpec): void {
    this.spec = spec;
  }

  get status(): number {
    return this.spec.status;
  }

  /** Client addresses in the table (with requests in flight, or idle until the room is needed). */
  get size(): number {
    return this.counts.size;
  }

  /** Counts one request of `client` in; its release function (call once, when it ends), or undefined when refused. */
  enter(client: string): (() => void) | undefined {
    let entry = this.counts.get(client);
    if (entry === undefined) {
      if (this.counts.size >= this.spec.maxClients && this.idle > 0) this.sweep();
      if (this.counts.size >= this.spec.maxClients) return undefined;
      entry = { count: 0 };
      this.counts.set(client, entry);
      this.idle += 1;
    } else if (entry.count >= this.spec.max) return undefined;
    if (entry.count === 0) this.idle -= 1;
    entry.count += 1;
    // An entry with a request in flight is never swept, so this one is still the table's when it is released.
    const counted = entry;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      counted.count -= 1;
      if (counted.count === 0) this.idle += 1;
    };
  }

  /** Drops the addresses with nothing in flight. */
  private sweep(): void {
    for (const [client, entry] of this.counts) if (entry.count === 0) this.counts.delete(client);
    this.idle = 0;
  }
}

/** An app's limiters. */
export interface AppLimiters {
  readonly rate?: RequestRate;
  readonly conn?: InFlight;
}

/**
 * Every app's limiters, kept across config reloads: an app whose limit is
 * still there keeps its clients' state with the new parameters; one whose
 * limit is gone loses its table (requests in flight release into the old
 * one, harmlessly).
 */
export class ClientLimits {
  private apps = new Map<string, AppLimiters>();

  constructor(
    specs: Readonly<Record<string, ClientLimitSpec>> = {},
    private readonly now: () => number = monotonicMs,
  ) {
    this.configure(specs);
  }

  configure(specs: Readonly<Record<string, ClientLimitSpec>>): void {
    const next = new Map<string, AppLimiters>();
    for (const [app, spec] of Object.entries(specs)) {
      if (!spec.rate && !spec.conn) continue;
      const old = this.apps.get(app);
      let rate = old?.rate;
      if (spec.rate) rate ? rate.configure(spec.rate) : (rate = new RequestRate(spec.rate, this.now));
      else rate = undefined;
      let conn = old?.conn;
      if (spec.conn) conn ? conn.configure(spec.conn) : (conn = new InFlight(spec.conn));
      else conn = undefined;
      next.set(app, { ...(rate ? { rate } : {}), ...(conn ? { conn } : {}) });
    }
    this.apps = next;
  }

  /** The app's limiters, or undefined when it has none (the request pass then costs one Map lookup). */
  of(app: string): AppLimiters | undefined {
    return this.apps.get(app);
  }
}

function monotonicMs(): number {
  return Math.floor(performance.now());
}
