/**
 * @module proxy/balancing/selector
 *
 * A balancing policy is a Selector: given the ready endpoints of one app and
 * the request, pick one (Caddy's Selector). Policies are registered in one
 * table by the name the config uses (`balance: least_conn`).
 */
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";

/** One upstream worker as the proxy sees it. */
export interface Endpoint {
  /** Stable identity across membership updates ("app.slot"). */
  readonly id: string;
  /** The worker process now in the slot: a new pid is a new process (fresh connections, clean health). */
  readonly pid?: number;
  readonly address: { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };
}

/** What a policy may know besides the endpoints: how busy each one is right now, and who the client is. */
export interface SelectionContext {
  inFlight(endpoint: Endpoint): number;
  /** The client's address, past any trusted proxy in front of us (proxy/forwarded.ts clientAddress). */
  clientAddress(req: IncomingMessage): string;
}

export interface Selector {
  select(endpoints: readonly Endpoint[], req: IncomingMessage, context: SelectionContext): Endpoint | undefined;
}

export type SelectorFactory = () => Selector;

/** Round robin: each endpoint in turn. */
export const roundRobin: SelectorFactory = () => {
  let next = 0;
  return {
    select(endpoints) {
      if (endpoints.length === 0) return undefined;
      const endpoint = endpoints[next % endpoints.length];
      next = (next + 1) % Number.MAX_SAFE_INTEGER;
      return endpoint;
    },
  };
};

/** Least connections: the endpoint with the fewest requests in flight; ties go round robin. */
export const leastConn: SelectorFactory = () => {
  let offset = 0;
  return {
    select(endpoints, _req, context) {
      let best: Endpoint | undefined;
      let bestLoad = Infinity;
      offset = (offset + 1) % Number.MAX_SAFE_INTEGER;
      for (let i = 0; i < endpoints.length; i++) {
        const endpoint = endpoints[(i + offset) % endpoints.length]!;
        const load = context.inFlight(endpoint);
        if (load < bestLoad) {
          best = endpoint;
          bestLoad = load;
        }
      }
      return best;
    },
  };
};

/** Power of two random choices: two endpoints at random, the less busy one wins (Mitzenmacher). */
export const randomTwo: SelectorFactory = () => ({
  select(endpoints, _req, context) {
    if (endpoints.length <= 1) return endpoints[0];
    const first = endpoints[Math.floor(Math.random() * endpoints.length)]!;
    let second = endpoints[Math.floor(Math.random() * (endpoints.length - 1))]!;
    if (second === first) second = endpoints[endpoints.length - 1]!;
    return context.inFlight(second) < context.inFlight(first) ? second : first;
  },
});

function weight(key: string): number {
  return createHash("sha1").update(key).digest().readUInt32BE(0);
}

/**
 * Client IP hash (the client as trusted_proxies lets us see it), by rendezvous (highest random weight) hashing: a client keeps
 * its endpoint while that endpoint is in the pool, and when one endpoint leaves
 * or comes back only its own clients move (a restart of one worker does not
 * reshuffle everyone, unlike hash-mod-n).
 */
export const ipHash: SelectorFactory = () => ({
  select(endpoints, req, context) {
    // Behind a load balancer every request comes from the balancer: hash the client it forwarded for.
    const client = context.clientAddress(req);
    let best: Endpoint | undefined;
    let bestWeight = -1;
    for (const endpoint of endpoints) {
      const score = weight(`${client}|${endpoint.id}`);
      if (score > bestWeight) {
        best = endpoint;
        bestWeight = score;
      }
    }
    return best;
  },
});

/** The policies, by their config name. */
export const SELECTORS: Readonly<Record<string, SelectorFactory>> = {
  round_robin: roundRobin,
  least_conn: leastConn,
  random_two: randomTwo,
  ip_hash: ipHash,
};

export function createSelector(name: string): Selector {
  const factory = SELECTORS[name];
  if (!factory) throw new Error(`unknown balancing policy ${JSON.stringify(name)} (known: ${Object.keys(SELECTORS).join(", ")})`);
  return factory();
}
