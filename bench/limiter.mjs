#!/usr/bin/env node
/**
 * The limiter's own cost: `node bench/limiter.mjs` (after `npm run build`).
 *
 * What the proxy's client limits pass (src/proxy/passes.ts) adds to a
 * request whose client is under its limits, in a loop, without sockets: the
 * client's address (no trusted proxy), the rate limit's bucket, the
 * in-flight count and its release on the response's 'close'. The loop with
 * and without that work, in alternating rounds, so that the difference is
 * the limiter's; `clients` spreads the requests over that many addresses
 * (1: one client, the hot case; 10000: the table full, each address seen
 * once every 10,000 requests). It prints ns a request; compare it with the
 * proxy's own CPU per request (bench/proxy.mjs, "proxy CPU µs/req"). Pure
 * CPU, no process started; a second or two of load.
 *
 * Options: --requests N (default 2,000,000 a round), --rounds N (default 5).
 */
import { EventEmitter } from "node:events";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { ClientLimits } = await import(pathToFileURL(path.join(ROOT, "dist/proxy/limits/client-limits.js")).href);
const { clientAddress, TrustedProxies } = await import(pathToFileURL(path.join(ROOT, "dist/proxy/forwarded.js")).href);

const { values: flags } = parseArgs({ options: { requests: { type: "string", default: "2000000" }, rounds: { type: "string", default: "5" } } });
const REQUESTS = Number(flags.requests);
const ROUNDS = Number(flags.rounds);

const trusted = new TrustedProxies([]);
const headers = { host: "bench.test" };

/** ns a request over one round: a stand-in response (an emitter that closes), with or without the limiter's work. */
function round(limits, peers, withLimits) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < REQUESTS; i++) {
    const res = new EventEmitter();
    if (withLimits) {
      const limiters = limits.of("bench");
      const client = clientAddress(peers[i % peers.length], headers, trusted);
      if (!limiters.rate.take(client).ok) throw new Error("refused: the rate is meant to be far above the loop");
      const leave = limiters.conn.enter(client);
      if (!leave) throw new Error("refused: conn_limit is meant to be far above the loop");
      res.once("close", leave);
    }
    res.emit("close");
  }
  return Number(process.hrtime.bigint() - started) / REQUESTS;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

console.log(`| clients | without (ns/req) | with (ns/req) | the limiter's cost (ns/req), median (min–max) of ${ROUNDS} |`);
console.log("|---:|---:|---:|---:|");
for (const clients of [1, 100, 10_000]) {
  // Far above the loop's pace: every request is accounted, none refused.
  const limits = new ClientLimits({
    bench: { rate: { perSecond: 1e9, burst: 1e9, delay: 0, nodelay: true, status: 429, maxClients: 10_000 }, conn: { max: 1000, status: 429, maxClients: 10_000 } },
  });
  const peers = Array.from({ length: clients }, (_, i) => `10.0.${(i >> 8) & 255}.${i & 255}`);
  round(limits, peers, true); // warm-up
  round(limits, peers, false);
  const without = [];
  const withLimits = [];
  for (let r = 0; r < ROUNDS; r++) {
    without.push(round(limits, peers, false));
    withLimits.push(round(limits, peers, true));
  }
  const costs = withLimits.map((value, r) => value - without[r]);
  console.log(
    `| ${clients} | ${median(without).toFixed(0)} | ${median(withLimits).toFixed(0)} | ${median(costs).toFixed(0)} (${Math.min(...costs).toFixed(0)}–${Math.max(...costs).toFixed(0)}) |`,
  );
}
