/**
 * @module test/reliability/load
 *
 * The two load generators of the reliability tests, both bounded by the
 * harness caps (60 s, 200 req/s, 500 sockets, 127.0.0.1 only):
 *   - `cannon`: autocannon, a real load generator, for traffic whose every
 *     answer must be the same body (it counts a different body as a mismatch);
 *   - `steady`: a small client of ours, for traffic each answer of which needs a
 *     check of its own (a checksum, a counter, a header), and for a load that
 *     runs until the test says stop rather than for a fixed time.
 * Both count "failed" as the matrix does: a status that was not expected, a
 * reset or refused connection, or a truncated or altered body.
 */
import http from "node:http";
import autocannon from "autocannon";
import { CAPS } from "./bounds.ts";
import { failedFigure } from "./record.ts";

export interface LoadResult {
  total: number;
  failed: number;
  /** The first few failures, said plainly (for the assertion message). */
  failures: string[];
  latenciesMs: number[];
  p50Ms: number;
  p99Ms: number;
  /** "F / N failed, p50 …, p99 …" */
  figure: string;
}

function checkCaps(url: string, rate: number, sockets: number, seconds?: number): void {
  const host = new URL(url).hostname;
  if (host !== "127.0.0.1") throw new Error(`load target ${url}: the reliability harness loads 127.0.0.1 only`);
  if (rate > CAPS.rate) throw new Error(`load rate ${rate} req/s is over the harness cap of ${CAPS.rate}`);
  if (sockets > CAPS.sockets) throw new Error(`${sockets} sockets is over the harness cap of ${CAPS.sockets}`);
  if (seconds !== undefined && seconds > CAPS.loadSeconds) throw new Error(`${seconds} s of load is over the harness cap of ${CAPS.loadSeconds} s`);
}

export interface CannonOptions {
  url: string;
  rate: number;
  seconds: number;
  connections?: number;
  /** The exact body every answer must carry. */
  expectBody?: string;
  method?: "GET" | "POST";
  body?: string;
  /** Stop early once this settles (the load then lasts as long as what it accompanies, up to `seconds`). */
  until?: Promise<unknown>;
}

/** autocannon at `rate` req/s for `seconds` (or until `until` settles): failed = errors (resets, refusals, timeouts) + non-2xx + altered bodies. */
export async function cannon(options: CannonOptions): Promise<LoadResult & { raw: autocannon.Result }> {
  const connections = options.connections ?? 20;
  checkCaps(options.url, options.rate, connections, options.seconds);
  const failures: string[] = [];
  const instance = autocannon({
    url: options.url,
    connections,
    overallRate: options.rate,
    duration: options.seconds,
    method: options.method ?? "GET",
    body: options.body,
    expectBody: options.expectBody,
    timeout: 10,
  });
  instance.on("reqError", (error: Error) => failures.length < 10 && failures.push(`error: ${error.message}`));
  instance.on("response", (_client: unknown, status: number) => status >= 300 && failures.length < 10 && failures.push(`status ${status}`));
  instance.on("reqMismatch", (body: string) => failures.length < 10 && failures.push(`altered body: ${JSON.stringify(String(body).slice(0, 80))}`));
  let ended = false;
  void options.until?.finally(() => !ended && instance.stop());
  const raw = await instance;
  ended = true;
  const failed = raw.errors + raw.non2xx + raw.mismatches;
  // autocannon counts a request as sent once written; those still unanswered at the end are neither failed nor done.
  const total = raw.requests.sent;
  const p50Ms = raw.latency.p50;
  const p99Ms = raw.latency.p99;
  return { total, failed, failures, latenciesMs: [], p50Ms, p99Ms, figure: `${failed} / ${total} failed, p50 ${p50Ms} ms, p99 ${p99Ms} ms`, raw };
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface SteadyOptions {
  url: string;
  rate: number;
  /** Kept-alive sockets at most. */
  sockets?: number;
  /** The method of the n-th request (GET when absent). */
  method?: (n: number) => string;
  /** The body of the n-th request (for POSTs), when there is one. */
  body?: (n: number) => string;
  headers?: (n: number) => Record<string, string>;
  /** Why the n-th answer is wrong, or undefined when it is right. */
  check: (answer: Answer, n: number) => string | undefined;
}

export interface Steady {
  /** Stops sending, waits for every answer, and returns the figures. */
  stop(): Promise<LoadResult>;
  /** Requests sent so far. */
  sent(): number;
}

/** One request over `agent`: the answer whole, or the error (a truncated body is an error). */
export function request(agent: http.Agent | false, url: string, method = "GET", body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent, method, headers: body === undefined ? headers : { ...headers, "Content-Length": Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => (res.complete ? resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }) : reject(new Error("truncated body"))));
      res.on("aborted", () => reject(new Error("response aborted mid-body")));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Our own steady load: `rate` req/s spread over 10 ms ticks, each answer checked by `check`, until stop(). */
export function steady(options: SteadyOptions): Steady {
  const sockets = options.sockets ?? 20;
  checkCaps(options.url, options.rate, sockets);
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
  const failures: string[] = [];
  let failed = 0;
  const latenciesMs: number[] = [];
  const inFlight = new Set<Promise<void>>();
  let total = 0;
  const begun = performance.now();
  const timer = setInterval(() => {
    // Send what the rate owes by now: a late tick catches up instead of lowering the rate.
    const due = Math.floor(((performance.now() - begun) / 1000) * options.rate);
    while (total < due) {
      const n = total++;
      const sentAt = performance.now();
      const done = request(agent, options.url, options.method?.(n) ?? "GET", options.body?.(n), options.headers?.(n) ?? {})
        .then((answer) => {
          latenciesMs.push(performance.now() - sentAt);
          const wrong = options.check(answer, n);
          if (wrong !== undefined) {
            failed++;
            if (failures.length < 10) failures.push(`request ${n}: ${wrong}`);
          }
        })
        .catch((error: Error & { code?: string }) => {
          failed++;
          if (failures.length < 10) failures.push(`request ${n}: ${error.code ?? error.message}`);
        })
        .finally(() => inFlight.delete(done));
      inFlight.add(done);
    }
  }, 10);
  return {
    sent: () => total,
    async stop() {
      clearInterval(timer);
      await Promise.all(inFlight);
      agent.destroy();
      const figure = failedFigure(failed, total, latenciesMs);
      const sorted = [...latenciesMs].sort((a, b) => a - b);
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
      return { total, failed, failures, latenciesMs, p50Ms: at(0.5), p99Ms: at(0.99), figure };
    },
  };
}
