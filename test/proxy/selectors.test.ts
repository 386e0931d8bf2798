/**
 * The balancing policies, each driven directly with plain fakes: endpoints
 * are bare objects, the request is only a socket with a remoteAddress, and
 * the in-flight counts come from a map the test sets. Round robin cycles;
 * least_conn picks the idlest and spreads ties; random_two never picks the
 * busier of its two draws; ip_hash keeps each client on one endpoint and,
 * being rendezvous hashing, moves only the removed endpoint's clients.
 */
import type { IncomingMessage } from "node:http";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  SELECTORS,
  createSelector,
  ipHash,
  leastConn,
  randomTwo,
  roundRobin,
  type Endpoint,
  type SelectionContext,
} from "../../src/proxy/balancing/selector.ts";

function endpoints(count: number, app = "web"): Endpoint[] {
  return Array.from({ length: count }, (_, slot) => ({ id: `${app}.${slot}`, address: { kind: "tcp", host: "127.0.0.1", port: 9000 + slot } }));
}

/** A request as a policy sees it: only the client's address matters. */
function request(remoteAddress = "127.0.0.1"): IncomingMessage {
  return { socket: { remoteAddress }, headers: {} } as unknown as IncomingMessage;
}

/** In-flight counts by endpoint id (0 when unset). */
function load(counts: Record<string, number> = {}): SelectionContext {
  return { inFlight: (endpoint) => counts[endpoint.id] ?? 0, clientAddress: (req) => req.socket.remoteAddress ?? "" };
}

function ids(picks: Array<Endpoint | undefined>): Array<string | undefined> {
  return picks.map((endpoint) => endpoint?.id);
}

function tally(picks: Array<Endpoint | undefined>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const pick of picks) if (pick) counts[pick.id] = (counts[pick.id] ?? 0) + 1;
  return counts;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("every policy", () => {
  it.each(Object.keys(SELECTORS))("%s: no endpoints -> undefined; one endpoint -> that one", (name) => {
    const selector = createSelector(name);
    expect(selector.select([], request(), load())).toBeUndefined();
    const [only] = endpoints(1);
    for (let i = 0; i < 5; i++) expect(selector.select([only!], request(`10.0.0.${i}`), load({ "web.0": 7 }))).toBe(only);
  });

  it.each(Object.keys(SELECTORS))("%s: picks only among the endpoints it is given", (name) => {
    const selector = createSelector(name);
    const pool = endpoints(4);
    for (let i = 0; i < 200; i++) expect(pool).toContain(selector.select(pool, request(`10.0.${i >> 8}.${i & 255}`), load()));
  });

  it("an unknown policy name throws, naming it and every known one", () => {
    expect(() => createSelector("fastest")).toThrow(/unknown balancing policy "fastest" \(known: round_robin, least_conn, random_two, ip_hash\)/);
  });

  it("createSelector gives each pool its own state", () => {
    const pool = endpoints(3);
    const a = createSelector("round_robin");
    const b = createSelector("round_robin");
    a.select(pool, request(), load());
    expect(b.select(pool, request(), load())).toBe(pool[0]);
  });
});

describe("round_robin", () => {
  it("cycles through the endpoints in order", () => {
    const selector = roundRobin();
    const pool = endpoints(3);
    const picks = Array.from({ length: 7 }, () => selector.select(pool, request(), load()));
    expect(ids(picks)).toEqual(["web.0", "web.1", "web.2", "web.0", "web.1", "web.2", "web.0"]);
  });

  it("ignores load", () => {
    const selector = roundRobin();
    const pool = endpoints(2);
    const busy = load({ "web.0": 100 });
    expect(ids([selector.select(pool, request(), busy), selector.select(pool, request(), busy)])).toEqual(["web.0", "web.1"]);
  });

  it("keeps going fairly when the pool shrinks", () => {
    const selector = roundRobin();
    const picks = [];
    for (let i = 0; i < 4; i++) picks.push(selector.select(endpoints(3), request(), load()));
    const two = endpoints(2);
    for (let i = 0; i < 10; i++) picks.push(selector.select(two, request(), load()));
    expect(tally(picks.slice(4))).toEqual({ "web.0": 5, "web.1": 5 });
  });
});

describe("least_conn", () => {
  it("picks the endpoint with the fewest requests in flight", () => {
    const selector = leastConn();
    const pool = endpoints(4);
    const counts = { "web.0": 3, "web.1": 1, "web.2": 0, "web.3": 2 };
    for (let i = 0; i < 20; i++) expect(selector.select(pool, request(), load(counts))?.id).toBe("web.2");
  });

  it("follows the load as it changes", () => {
    const selector = leastConn();
    const pool = endpoints(3);
    const counts: Record<string, number> = { "web.0": 0, "web.1": 0, "web.2": 0 };
    // Requests that never finish: each one goes to an idlest endpoint, so they spread evenly.
    for (let i = 0; i < 9; i++) {
      const pick = selector.select(pool, request(), load(counts))!;
      counts[pick.id] = counts[pick.id]! + 1;
    }
    expect(counts).toEqual({ "web.0": 3, "web.1": 3, "web.2": 3 });
  });

  it("spreads ties over every tied endpoint, never the busier ones", () => {
    const selector = leastConn();
    const pool = endpoints(4);
    const counts = { "web.0": 1, "web.1": 0, "web.2": 5, "web.3": 0 };
    const picks = Array.from({ length: 100 }, () => selector.select(pool, request(), load(counts)));
    const seen = tally(picks);
    expect(Object.keys(seen).sort()).toEqual(["web.1", "web.3"]);
    expect(seen["web.1"]).toBeGreaterThanOrEqual(40);
    expect(seen["web.3"]).toBeGreaterThanOrEqual(40);
  });

  it("with every endpoint idle, it behaves like round robin over all of them", () => {
    const selector = leastConn();
    const pool = endpoints(3);
    const picks = Array.from({ length: 30 }, () => selector.select(pool, request(), load()));
    expect(tally(picks)).toEqual({ "web.0": 10, "web.1": 10, "web.2": 10 });
  });
});

describe("random_two", () => {
  /** Replaces Math.random with a fixed sequence (cycled), so the two draws are known. */
  function drawing(values: number[]): void {
    let i = 0;
    vi.spyOn(Math, "random").mockImplementation(() => values[i++ % values.length]!);
  }

  it("of two endpoints, always the less busy one", () => {
    const selector = randomTwo();
    const pool = endpoints(2);
    for (const counts of [{ "web.0": 1, "web.1": 0 }, { "web.0": 0, "web.1": 4 }]) {
      const idle = counts["web.0"] < counts["web.1"] ? "web.0" : "web.1";
      for (let i = 0; i < 200; i++) expect(selector.select(pool, request(), load(counts))?.id).toBe(idle);
    }
  });

  it("draws two different endpoints and keeps the less busy (seeded draws)", () => {
    const selector = randomTwo();
    const pool = endpoints(4);
    const counts = { "web.0": 2, "web.1": 5, "web.2": 1, "web.3": 3 };
    // first = floor(r1 * 4), second = floor(r2 * 3), and the same index as first means the last endpoint.
    const cases: Array<[number, number, string]> = [
      [0.0, 0.4, "web.0"], // web.0 (2) vs web.1 (5)
      [0.3, 0.0, "web.0"], // web.1 (5) vs web.0 (2)
      [0.5, 0.9, "web.2"], // web.2 (1) vs web.2 -> web.3 (3)
      [0.8, 0.4, "web.3"], // web.3 (3) vs web.1 (5)
      [0.3, 0.7, "web.2"], // web.1 (5) vs web.2 (1)
    ];
    for (const [first, second, expected] of cases) {
      drawing([first, second]);
      expect(selector.select(pool, request(), load(counts))?.id).toBe(expected);
      vi.restoreAllMocks();
    }
  });

  it("never picks the busiest endpoint, and favours idle ones (10,000 real random picks)", () => {
    const selector = randomTwo();
    const pool = endpoints(5);
    const counts = { "web.0": 0, "web.1": 1, "web.2": 2, "web.3": 3, "web.4": 9 };
    const picks = tally(Array.from({ length: 10_000 }, () => selector.select(pool, request(), load(counts))));
    expect(picks["web.4"]).toBeUndefined();
    // The idlest wins every draw it is in: P = 1 - (4/5)(3/4) = 0.4. The second idlest: P(in draw, web.0 not) = 0.3.
    expect(picks["web.0"]).toBeGreaterThan(3500);
    expect(picks["web.0"]).toBeLessThan(4500);
    expect(picks["web.1"]).toBeGreaterThan(2500);
    expect(picks["web.1"]).toBeLessThan(3500);
    expect(picks["web.0"]!).toBeGreaterThan(picks["web.1"]!);
    expect(picks["web.1"]!).toBeGreaterThan(picks["web.2"]!);
    expect(picks["web.2"]!).toBeGreaterThan(picks["web.3"] ?? 0);
  });

  it("with equal load it spreads over every endpoint", () => {
    const selector = randomTwo();
    const pool = endpoints(4);
    const picks = tally(Array.from({ length: 4000 }, () => selector.select(pool, request(), load())));
    for (const endpoint of pool) {
      expect(picks[endpoint.id]).toBeGreaterThan(800);
      expect(picks[endpoint.id]).toBeLessThan(1200);
    }
  });
});

describe("ip_hash", () => {
  const CLIENTS = Array.from({ length: 1000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);

  function assignment(pool: readonly Endpoint[]): Map<string, string> {
    const selector = ipHash();
    return new Map(CLIENTS.map((client) => [client, selector.select(pool, request(client), load())!.id]));
  }

  it("keeps each client on the same endpoint, whatever the load and the order of the endpoints", () => {
    const pool = endpoints(4);
    const first = assignment(pool);
    const selector = ipHash();
    for (const client of CLIENTS.slice(0, 100)) {
      expect(selector.select(pool, request(client), load({ [first.get(client)!]: 50 }))?.id).toBe(first.get(client));
      expect(selector.select([...pool].reverse(), request(client), load())?.id).toBe(first.get(client));
    }
  });

  it("spreads 1000 clients over every endpoint", () => {
    const counts = tally([...assignment(endpoints(4)).values()].map((id) => ({ id }) as Endpoint));
    for (const id of ["web.0", "web.1", "web.2", "web.3"]) {
      expect(counts[id]).toBeGreaterThan(150);
      expect(counts[id]).toBeLessThan(350);
    }
  });

  it("when one endpoint leaves, only its clients move; when it comes back, they return", () => {
    const pool = endpoints(4);
    const before = assignment(pool);
    const without = assignment(pool.filter((endpoint) => endpoint.id !== "web.2"));
    let moved = 0;
    for (const client of CLIENTS) {
      if (before.get(client) === "web.2") {
        expect(without.get(client)).not.toBe("web.2");
        moved += 1;
      } else {
        expect(without.get(client), client).toBe(before.get(client));
      }
    }
    expect(moved).toBeGreaterThan(150);
    // The moved clients spread over the three others rather than piling onto one.
    const movedTo = tally(CLIENTS.filter((client) => before.get(client) === "web.2").map((client) => ({ id: without.get(client)! }) as Endpoint));
    expect(Object.keys(movedTo).sort()).toEqual(["web.0", "web.1", "web.3"]);
    expect(assignment(pool)).toEqual(before);
  });

  it("a new endpoint takes clients only from the others, about its share", () => {
    const before = assignment(endpoints(4));
    const after = assignment(endpoints(5));
    const changed = CLIENTS.filter((client) => after.get(client) !== before.get(client));
    for (const client of changed) expect(after.get(client)).toBe("web.4");
    expect(changed.length).toBeGreaterThan(120);
    expect(changed.length).toBeLessThan(280);
  });
});
