/**
 * The gateway worker's uwsgi listener under fuzzed packets, on real sockets:
 * `tsgi-stack serve … --uwsgi 127.0.0.1:0 --no-arbiter` as its own process
 * (so a crash is an exit, and its RSS is its own), fed valid nginx-style
 * packets with bodies, mutated packets, lying datasizes, foreign modifiers
 * and noise, each on its own connection, which we half-close after writing.
 *
 * Asserted: the worker never exits; it answers or closes every connection
 * (none hangs); every connection the pure parser says is broken or cut
 * short gets no response and exactly one log line naming its peer; the
 * peak RSS (VmHWM) stays under a bound. The figures (inputs, rejects,
 * answers, max RSS) are printed for the long run:
 *
 *   FUZZ_RUNS=100000 FUZZ_SEED=1 npx vitest run test/fuzz/uwsgi-listener.fuzz.test.ts
 */
import { readFileSync } from "node:fs";
import net from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseUwsgiPacket } from "../../src/gateway/uwsgi/parser.ts";
import { UwsgiError } from "../../src/gateway/uwsgi/errors.ts";
import { fixture, isAlive, serve, type Served, stopAll } from "../helpers/serve.ts";
import { describeBytes, fuzzRuns, fuzzSeed, sampleInputs } from "./params.ts";

/** Connections open at once: enough to keep the worker busy, few enough for a shared 2-core box. */
const CONCURRENCY = 16;
/** A connection the worker neither answers nor closes within this is a hang. */
const HANG_MS = 5_000;
/** Peak RSS allowed: a node worker idles near 60 MiB; a leak over thousands of connections shows well above this. */
const MAX_RSS_BYTES = 256 * 1024 * 1024;

function u16(n: number): Buffer {
  return Buffer.from([n & 0xff, (n >> 8) & 0xff]);
}
function packet(vars: ReadonlyArray<readonly [string, Buffer]>): Buffer {
  const block = Buffer.concat(vars.flatMap(([name, value]) => [u16(name.length), Buffer.from(name, "latin1"), u16(value.length), value]));
  return Buffer.concat([Buffer.from([0]), u16(block.length), Buffer.from([0]), block]);
}

/** What nginx's uwsgi_params send, with a random method, path, headers and body. */
const nginxRequest = fc
  .record({
    method: fc.constantFrom("GET", "POST", "PUT", "HEAD", "DELETE", "", "G E T"),
    path: fc.constantFrom("/", "/echo", "/a%20b", "/x?y=1", ""),
    headers: fc.array(fc.tuple(fc.constantFrom("HTTP_X_A", "HTTP_HOST", "HTTP_COOKIE", "HTTP_CONTENT_TYPE"), fc.string({ maxLength: 30 })), { maxLength: 5 }),
    body: fc.uint8Array({ maxLength: 3000 }),
    /** CONTENT_LENGTH as sent: the body's true length, a lie, garbage, or none. */
    length: fc.oneof(fc.constant("true"), fc.constant(""), fc.constantFrom("-1", "1e3", "0x10", " 5", "99999999999999999999", "12"), fc.nat(5000).map(String)),
    /** Send less of the body than the packet announces. */
    cut: fc.oneof({ arbitrary: fc.constant(undefined), weight: 4 }, { arbitrary: fc.nat(), weight: 1 }),
  })
  .map((r) => {
    const body = Buffer.from(r.body);
    const length = r.length === "true" ? String(body.length) : r.length;
    const vars: Array<[string, Buffer]> = [
      ["QUERY_STRING", Buffer.from("")],
      ["REQUEST_METHOD", Buffer.from(r.method)],
      ["CONTENT_LENGTH", Buffer.from(length)],
      ["REQUEST_URI", Buffer.from(r.path)],
      ["PATH_INFO", Buffer.from(r.path.split("?")[0]!)],
      ["SERVER_PROTOCOL", Buffer.from("HTTP/1.1")],
      ["REMOTE_ADDR", Buffer.from("127.0.0.1")],
      ...r.headers.map(([name, value]): [string, Buffer] => [name, Buffer.from(value)]),
    ];
    const whole = Buffer.concat([packet(vars), body]);
    return r.cut === undefined ? whole : whole.subarray(0, r.cut % (whole.length + 1));
  });

/** Mutations of a valid request: bytes set, inserted, deleted; the datasize rewritten; modifiers changed. */
const mutatedRequest = fc
  .tuple(nginxRequest, fc.array(fc.tuple(fc.constantFrom("set", "insert", "delete", "datasize", "modifier"), fc.nat(), fc.integer({ min: 0, max: 0xffff })), { minLength: 1, maxLength: 4 }))
  .map(([bytes, edits]) => {
    let out = Buffer.from(bytes);
    for (const [op, at, value] of edits) {
      const i = out.length ? at % out.length : 0;
      if (op === "set" && out.length) out[i] = value & 0xff;
      else if (op === "insert") out = Buffer.concat([out.subarray(0, i), Buffer.from([value & 0xff]), out.subarray(i)]);
      else if (op === "delete") out = Buffer.concat([out.subarray(0, i), out.subarray(i + 1 + (value % 8))]);
      else if (op === "datasize" && out.length >= 4) out.writeUInt16LE(value, 1);
      else if (op === "modifier" && out.length >= 4) out[value % 2 ? 0 : 3] = value & 0xff;
    }
    return out;
  });

const noise = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  // A 0/0 header announcing a big block, then too few bytes: buffered up to 64 KiB, then refused at EOF.
  fc.integer({ min: 1, max: 0xffff }).map((size) => Buffer.concat([Buffer.from([0, size & 0xff, size >> 8, 0]), Buffer.alloc(size % 5000, 0x41)])),
);

const input = fc.oneof({ arbitrary: nginxRequest, weight: 3 }, { arbitrary: mutatedRequest, weight: 5 }, { arbitrary: noise, weight: 2 });

/** What the pure parser says of an input's packet, given the connection ends after it. */
function expectation(bytes: Buffer): "rejected" | "served" | "silent" {
  if (bytes.length === 0) return "silent";
  try {
    const result = parseUwsgiPacket(bytes);
    return result.status === "complete" ? "served" : "rejected";
  } catch (error) {
    if (error instanceof UwsgiError) return "rejected";
    throw error;
  }
}

interface Outcome {
  localPort: number;
  response: Buffer;
  hung: boolean;
}

/** One connection: write, half-close, read until the worker closes (or HANG_MS passes). */
function send(port: number, bytes: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let localPort = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ localPort, response: Buffer.concat(chunks), hung: true });
    }, HANG_MS);
    socket.on("connect", () => {
      localPort = socket.localPort ?? 0;
      socket.end(bytes);
    });
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ localPort, response: Buffer.concat(chunks), hung: false });
    });
  });
}

function rssOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
}

describe("uwsgi listener fuzz (a real worker process)", () => {
  let worker: Served;
  let port = 0;
  beforeAll(async () => {
    worker = await serve([fixture("framing-echo.ts"), "--uwsgi", "127.0.0.1:0", "--no-arbiter"]);
    port = Number(/uwsgi:\/\/127\.0\.0\.1:(\d+)/.exec(worker.listeners.join(" "))?.[1]);
    expect(port).toBeGreaterThan(0);
  });
  afterAll(() => stopAll());

  it("survives the fuzzed packets: no exit, no hang, one log line per reject, bounded RSS", async () => {
    const runs = fuzzRuns(600, "FUZZ_LISTENER_RUNS");
    const seed = fuzzSeed();
    const inputs = sampleInputs(input, runs);
    const stats = { served: 0, rejected: 0, silent: 0, hung: 0, maxRss: 0 };
    /** Client ports of the connections that must be rejected with a log line, each once. */
    const mustLog = new Map<number, number>();
    const failures: string[] = [];
    let next = 0;
    const sampler = setInterval(() => (stats.maxRss = Math.max(stats.maxRss, rssOf(worker.pid).rss)), 100);
    const started = Date.now();
    async function lane(): Promise<void> {
      while (next < inputs.length && failures.length < 5) {
        const index = next++;
        const bytes = inputs[index]!;
        const expected = expectation(bytes);
        const outcome = await send(port, bytes);
        stats[expected] += 1;
        if (outcome.hung) {
          stats.hung += 1;
          failures.push(`input #${index} (seed ${seed}) hung: the worker neither answered nor closed in ${HANG_MS} ms\n${describeBytes(bytes)}`);
        }
        if (expected === "rejected") {
          mustLog.set(outcome.localPort, (mustLog.get(outcome.localPort) ?? 0) + 1);
          if (outcome.response.length > 0) failures.push(`input #${index} (seed ${seed}) is a broken packet but got a response\n${describeBytes(bytes)}`);
        }
        if (expected === "served" && !/^HTTP\/1\.1 \d{3} /.test(outcome.response.toString("latin1"))) {
          failures.push(`input #${index} (seed ${seed}) is a whole packet but got no HTTP response: ${JSON.stringify(outcome.response.toString("latin1").slice(0, 80))}\n${describeBytes(bytes)}`);
        }
        if (!isAlive(worker.pid)) failures.push(`the worker died after input #${index} (seed ${seed})\n${describeBytes(bytes)}\nstderr: ${worker.stderr().slice(-2000)}`);
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, () => lane()));
    clearInterval(sampler);
    const { hwm } = rssOf(worker.pid);

    // Every reject is one line naming the client's port; stderr may trail the sockets by a moment.
    const logged = () => {
      const counts = new Map<number, number>();
      for (const match of worker.stderr().matchAll(/^tsgi uwsgi: 127\.0\.0\.1:(\d+): /gm)) counts.set(Number(match[1]), (counts.get(Number(match[1])) ?? 0) + 1);
      return counts;
    };
    const deadline = Date.now() + 3000;
    let missing: number[] = [];
    do {
      const counts = logged();
      missing = [...mustLog].filter(([p, n]) => (counts.get(p) ?? 0) < n).map(([p]) => p);
      if (missing.length === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    } while (Date.now() < deadline);
    const rejectLines = [...logged().values()].reduce((a, b) => a + b, 0);

    console.log(
      `uwsgi listener fuzz: seed ${seed}, ${inputs.length} inputs in ${Date.now() - started} ms: ${stats.served} served, ${stats.rejected} rejected (${rejectLines} log lines), ${stats.silent} empty, ${stats.hung} hung; max RSS ${(Math.max(stats.maxRss, hwm) / 1048576).toFixed(1)} MiB`,
    );
    expect(failures).toEqual([]);
    expect(isAlive(worker.pid)).toBe(true);
    expect(missing.map((p) => `client port ${p}: no log line`)).toEqual([]);
    expect(/internal error/.test(worker.stderr())).toBe(false);
    expect(hwm).toBeLessThan(MAX_RSS_BYTES);
    // The mix reached every path: some served, some refused.
    expect(stats.served).toBeGreaterThan(0);
    expect(stats.rejected).toBeGreaterThan(0);
  });
});
