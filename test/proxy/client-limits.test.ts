/**
 * The limits per client address (proxy/limits/client-limits.ts) against
 * nginx's limit_req and limit_conn, with a fake clock: the leaky bucket's
 * rate, burst, nodelay and delay= as ngx_http_limit_req_module.c computes
 * them (a client's first request finds an empty bucket, so `burst` requests
 * are accepted on top of it; a refused request costs nothing), the
 * Retry-After it implies, the bound on the tables, and a reload that keeps
 * the clients' state. On real sockets: client-limits-proxy.test.ts.
 */
import { describe, expect, it } from "vitest";
import { ClientLimits, InFlight, type RateLimitSpec, RequestRate } from "../../src/proxy/limits/client-limits.ts";

function clock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

const spec = (overrides: Partial<RateLimitSpec>): RateLimitSpec => ({
  perSecond: 10,
  burst: 0,
  delay: 0,
  nodelay: false,
  status: 429,
  maxClients: 10_000,
  ...overrides,
});

/** `count` requests of one client at the same instant: the delay of each accepted one, or "refused". */
function burstOf(rate: RequestRate, count: number, client = "10.0.0.1"): (number | "refused")[] {
  return Array.from({ length: count }, () => {
    const verdict = rate.take(client);
    return verdict.ok ? verdict.delayMs : "refused";
  });
}

describe("RequestRate: nginx's limit_req leaky bucket", () => {
  it("rate=10r/s without burst: one request per 100 ms, the rest refused", () => {
    const time = clock();
    const rate = new RequestRate(spec({}), time.now);
    expect(burstOf(rate, 3)).toEqual([0, "refused", "refused"]);
    time.advance(99);
    expect(burstOf(rate, 1)).toEqual(["refused"]);
    time.advance(1);
    expect(burstOf(rate, 2)).toEqual([0, "refused"]);
  });

  it("rate=10r/s burst=20: of 30 at once, 21 accepted, spaced 100 ms apart, and 9 refused", () => {
    const rate = new RequestRate(spec({ burst: 20 }), clock().now);
    const verdicts = burstOf(rate, 30);
    expect(verdicts.slice(0, 21)).toEqual(Array.from({ length: 21 }, (_, i) => i * 100));
    expect(verdicts.slice(21)).toEqual(Array(9).fill("refused"));
  });

  it("rate=10r/s burst=20 nodelay: the 21 go at once, and the burst refills at the rate", () => {
    const time = clock();
    const rate = new RequestRate(spec({ burst: 20, nodelay: true }), time.now);
    expect(burstOf(rate, 25)).toEqual([...Array(21).fill(0), ...Array(4).fill("refused")]);
    time.advance(100); // one slot drained
    expect(burstOf(rate, 2)).toEqual([0, "refused"]);
    time.advance(1000); // ten more
    expect(burstOf(rate, 11)).toEqual([...Array(10).fill(0), "refused"]);
    time.advance(2100); // the bucket empties, and no further
    expect(burstOf(rate, 22)).toEqual([...Array(21).fill(0), "refused"]);
  });

  it("rate=5r/s burst=12 delay=8 (two-stage): the first requests at once, then spaced at the rate, then refused", () => {
    const rate = new RequestRate(spec({ perSecond: 5, burst: 12, delay: 8 }), clock().now);
    // Excess 0 (the first), then 1..8 thousand: at once; 9..12: (excess - 8) / 5r/s; 13: over the burst.
    expect(burstOf(rate, 15)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 200, 400, 600, 800, "refused", "refused"]);
  });

  it("rate=30r/m: one request every 2 s", () => {
    const time = clock();
    const rate = new RequestRate(spec({ perSecond: 0.5 }), time.now);
    expect(burstOf(rate, 2)).toEqual([0, "refused"]);
    time.advance(1999);
    expect(burstOf(rate, 1)).toEqual(["refused"]);
    time.advance(1);
    expect(burstOf(rate, 1)).toEqual([0]);
  });

  it("a refused request costs nothing; its Retry-After is when the next would be accepted", () => {
    const time = clock();
    const rate = new RequestRate(spec({ perSecond: 1, burst: 2, nodelay: true }), time.now);
    burstOf(rate, 3);
    expect(rate.take("10.0.0.1")).toEqual({ ok: false, retryAfterMs: 1000 });
    time.advance(400);
    for (let i = 0; i < 100; i++) rate.take("10.0.0.1");
    expect(rate.take("10.0.0.1")).toEqual({ ok: false, retryAfterMs: 600 });
    time.advance(600);
    expect(rate.take("10.0.0.1")).toEqual({ ok: true, delayMs: 0 });
  });

  it("keeps each client's bucket apart", () => {
    const rate = new RequestRate(spec({ burst: 1, nodelay: true }), clock().now);
    expect(burstOf(rate, 3, "10.0.0.1")).toEqual([0, 0, "refused"]);
    expect(burstOf(rate, 3, "10.0.0.2")).toEqual([0, 0, "refused"]);
  });

  it("holds at most max_clients addresses, forgetting the oldest; one seen more often than every max_clients / 2 new addresses is kept", () => {
    const time = clock();
    const rate = new RequestRate(spec({ burst: 0, maxClients: 100 }), time.now);
    rate.take("keep");
    for (let i = 0; i < 50_000; i++) {
      rate.take(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      if (i % 40 === 0) rate.take("keep"); // seen more often than once every max_clients / 2 new addresses: never forgotten
      expect(rate.size).toBeLessThanOrEqual(100);
    }
    expect(rate.size).toBe(100);
    // "keep" is still known (its bucket is full: refused); an early address was forgotten (accepted as new).
    expect(rate.take("keep").ok).toBe(false);
    expect(rate.take("10.0.0.0").ok).toBe(true);
  });
});

describe("InFlight: nginx's limit_conn", () => {
  it("refuses a client's request over `max` until one of its own ends; others are unaffected", () => {
    const conn = new InFlight({ max: 2, status: 503, maxClients: 100 });
    const first = conn.enter("a")!;
    const second = conn.enter("a")!;
    expect(conn.enter("a")).toBeUndefined();
    expect(conn.enter("b")).toBeTypeOf("function");
    first();
    first(); // released once only
    expect(conn.enter("a")).toBeTypeOf("function");
    expect(conn.enter("a")).toBeUndefined();
    second();
    expect(conn.status).toBe(503);
  });

  it("makes room by forgetting clients with nothing in flight, and refuses a new one when max_clients are in flight", () => {
    const conn = new InFlight({ max: 1, status: 429, maxClients: 2 });
    const a = conn.enter("a")!;
    conn.enter("b");
    expect(conn.enter("c")).toBeUndefined();
    a();
    expect(conn.size).toBe(2); // "a" is kept, idle, until the room is needed
    expect(conn.enter("a")).toBeTypeOf("function");
    conn.enter("a")?.();
    expect(conn.enter("c")).toBeUndefined();
  });

  it("holds at most max_clients addresses under many clients, their requests ending", () => {
    const conn = new InFlight({ max: 1, status: 429, maxClients: 100 });
    const open: (() => void)[] = [];
    for (let i = 0; i < 50_000; i++) {
      const leave = conn.enter(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      expect(leave).toBeTypeOf("function");
      open.push(leave!);
      if (open.length > 60) open.shift()!(); // 60 in flight at a time, the oldest ending
      expect(conn.size).toBeLessThanOrEqual(100);
    }
  });
});

describe("ClientLimits across a reload", () => {
  it("keeps a client's bucket under new parameters, and drops an app's table with its limit", () => {
    const time = clock();
    const limits = new ClientLimits({ web: { rate: spec({ burst: 1, nodelay: true }) } }, time.now);
    const before = limits.of("web")!.rate!;
    expect(burstOf(before, 3)).toEqual([0, 0, "refused"]);
    limits.configure({ web: { rate: spec({ burst: 3, nodelay: true }) } });
    expect(limits.of("web")!.rate).toBe(before);
    expect(burstOf(before, 3)).toEqual([0, 0, "refused"]); // 2 of the 4 slots were taken
    limits.configure({ web: { conn: { max: 1, status: 429, maxClients: 10 } } });
    expect(limits.of("web")!.rate).toBeUndefined();
    expect(limits.of("web")!.conn).toBeDefined();
    limits.configure({});
    expect(limits.of("web")).toBeUndefined();
  });
});
