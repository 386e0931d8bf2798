/**
 * the reliability matrix S1 (smuggling-corpus) and S2 (normalized-forwarding), on real
 * sockets: the 20 malformed requests of the reliability matrix "Request smuggling and
 * desync: the cases" (one test per variant where a row lists several), each
 * sent as raw bytes to a frontServer(proxy) on 127.0.0.1 port 0 and
 * followed on the same connection by a valid pipelined request
 * (`GET /followup`). The proxy routes everything to one recording upstream.
 *
 * What tsgi must do for each malformed request (S1): answer 4xx (400, or 501
 * where the table allows it) and close the connection; the follow-up is never
 * executed; the upstream (the app) sees nothing of the malformed request.
 * Row 12's `Transfer_Encoding` may instead be dropped (never mapped to, nor
 * forwarded as, a framing header); row 20 (data after `Connection: close`)
 * serves the first request, ignores the rest and closes. Every case runs
 * twice: with a cold proxy→worker pool, and with a warm one (a kept-alive
 * connection to the worker already open, as in a running stack), where a
 * request head the proxy has accepted reaches the worker at once.
 *
 * S2: valid edge cases (TE chunked, `Chunked`, pipelining, Expect 100) reach
 * the upstream exactly once each, with one framing header and no hop-by-hop
 * header of the client's.
 */
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { FrontProxy } from "../../src/proxy/server.ts";
import { frontServer } from "../../src/proxy/listener.ts";
import { EVERY_FEATURE_WEB_HEADERS, everyFeature } from "../helpers/every-feature.ts";
import { LoopbackServers } from "../helpers/loopback.ts";

// ---- plumbing: every server, socket and proxy is closed after each test ----

const loopback = new LoopbackServers();
const proxies: FrontProxy[] = [];
const folders: Array<() => void> = [];

afterEach(async () => {
  for (const proxy of proxies.splice(0)) proxy.close();
  for (const cleanup of folders.splice(0)) cleanup();
  await loopback.closeAll();
});

const track = (socket: net.Socket) => loopback.track(socket);
const listen = (server: net.Server) => loopback.listen(server);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the upstream (the app) saw of one request. */
interface Seen {
  method: string;
  url: string;
  /** The header lines as they came over the wire: [name, value] in order. */
  rawHeaders: Array<[string, string]>;
  body: string;
  /** The body arrived whole ("end"), not cut off. */
  complete: boolean;
}

interface Stack {
  port: number;
  /** Every request the upstream received, in order (pushed as soon as its head arrived). */
  seen: Seen[];
}

/**
 * Whether the proxy already holds a kept-alive connection to the worker when
 * the request under test arrives. "cold": a fresh proxy, whose first upstream
 * connect takes an event-loop turn. "warm": one request from another client
 * went through first, as in any running stack — the proxy can then forward a
 * request's head at once, so "the app saw nothing" cannot hold by timing.
 */
type Pool = "cold" | "warm";

/**
 * The proxy's configuration: routing alone, or with the front door's
 * features on (test/helpers/every-feature.ts: compression, limits, headers,
 * error pages, redirects, a static site beside `web`). Every case must come
 * out the same with both.
 */
type Features = "plain" | "every feature on";
const FEATURES: readonly Features[] = ["plain", "every feature on"];

/** One recording upstream, a FrontProxy routing every host and path to it, and the front listener the stack uses. */
async function stack(pool: Pool = "cold", features: Features = "plain"): Promise<Stack> {
  const seen: Seen[] = [];
  const upstream = http.createServer((req, res) => {
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) pairs.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
    const record: Seen = { method: req.method ?? "", url: req.url ?? "", rawHeaders: pairs, body: "", complete: false };
    seen.push(record);
    req.setEncoding("latin1");
    req.on("data", (chunk: string) => (record.body += chunk));
    req.on("error", () => undefined);
    req.on("end", () => {
      record.complete = true;
      const body = `ok ${record.url}`;
      res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(body) });
      res.end(body);
    });
  });
  const upstreamPort = await listen(upstream);
  const configured = features === "plain" ? undefined : everyFeature();
  if (configured) folders.push(configured.cleanup);
  const proxy = new FrontProxy(configured ? configured.options : { routes: [{ app: "web", path: "/" }] });
  proxies.push(proxy);
  proxy.setEndpoints("web", [{ id: "web.0", address: { kind: "tcp", host: "127.0.0.1", port: upstreamPort } }]);
  const port = await listen(frontServer(proxy, { headerTimeoutMs: 10_000 }));
  if (pool === "warm") {
    await warmUp(port);
    // The warm-up request is not part of what the test looks at.
    seen.splice(0);
  }
  return { port, seen };
}

/** One complete GET through the proxy on its own client connection, leaving an idle kept-alive proxy→worker connection behind. */
function warmUp(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/warm", agent: false, timeout: CLOSE_WAIT_MS }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`warm-up answered ${res.statusCode}`))));
    });
    req.on("timeout", () => req.destroy(new Error("warm-up timed out")));
    req.on("error", reject);
  });
}

/** What came back on one raw connection. */
interface Exchange {
  /** Everything the server sent, latin1. */
  text: string;
  /** The server ended the connection (FIN or reset) within the wait; false when we had to give up and close it ourselves. */
  closedByServer: boolean;
  /** The connection ended with a reset rather than a FIN. */
  reset: boolean;
}

/** How long a connection may stay open before the test gives up on the server closing it. */
const CLOSE_WAIT_MS = 2000;

/**
 * Opens a raw connection, writes `payload` (then each of `then`, once `waitFor`
 * has been seen in the answer), and reads until the server closes it or
 * CLOSE_WAIT_MS passes.
 */
function exchange(port: number, payload: Buffer, then?: { waitFor: RegExp; write: Buffer }): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = track(net.connect(port, "127.0.0.1"));
    let text = "";
    let reset = false;
    let settled = false;
    let sentRest = false;
    const finish = (closedByServer: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ text, closedByServer, reset });
    };
    const giveUp = setTimeout(() => finish(false), CLOSE_WAIT_MS);
    socket.setEncoding("latin1");
    socket.on("connect", () => socket.write(payload));
    socket.on("data", (chunk: string) => {
      text += chunk;
      if (then && !sentRest && then.waitFor.test(text)) {
        sentRest = true;
        socket.write(then.write);
      }
    });
    socket.on("end", () => finish(true));
    socket.on("error", (error: NodeJS.ErrnoException) => {
      reset = error.code === "ECONNRESET" || error.code === "EPIPE";
      finish(true);
    });
    socket.on("close", () => finish(true));
  });
}

/** One response parsed off the raw stream. */
interface RawResponse {
  status: number;
  headers: Array<[string, string]>;
  body: string;
}

/**
 * Splits the raw bytes a server sent into responses (1xx without body,
 * Content-Length, chunked, or read-to-close). A trailing fragment that is not
 * a whole response head is returned as one with status 0.
 */
function responses(text: string): RawResponse[] {
  const out: RawResponse[] = [];
  let rest = text;
  while (rest.length > 0) {
    const headEnd = rest.indexOf("\r\n\r\n");
    const statusLine = /^HTTP\/1\.[01] (\d{3})[^\r\n]*/.exec(rest);
    if (headEnd === -1 || !statusLine) {
      out.push({ status: 0, headers: [], body: rest });
      break;
    }
    const status = Number(statusLine[1]);
    const headers = rest
      .slice(0, headEnd)
      .split("\r\n")
      .slice(1)
      .map((line): [string, string] => {
        const colon = line.indexOf(":");
        return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
      });
    rest = rest.slice(headEnd + 4);
    const header = (name: string) => headers.find(([key]) => key === name)?.[1];
    let body = "";
    if (status >= 100 && status < 200) {
      // no body
    } else if (header("content-length") !== undefined) {
      const length = Number(header("content-length"));
      body = rest.slice(0, length);
      rest = rest.slice(length);
    } else if (/chunked/i.test(header("transfer-encoding") ?? "")) {
      for (;;) {
        const lineEnd = rest.indexOf("\r\n");
        if (lineEnd === -1) {
          rest = "";
          break;
        }
        const size = parseInt(rest.slice(0, lineEnd), 16);
        if (!Number.isFinite(size) || size === 0) {
          const end = rest.indexOf("\r\n\r\n");
          rest = end === -1 ? "" : rest.slice(end + 4);
          break;
        }
        body += rest.slice(lineEnd + 2, lineEnd + 2 + size);
        rest = rest.slice(lineEnd + 2 + size + 2);
      }
    } else {
      body = rest;
      rest = "";
    }
    out.push({ status, headers, body });
  }
  return out;
}

// ---- S1: the smuggling corpus ----

/** The valid request pipelined after every malformed one: it must never be executed. */
const FOLLOWUP = "GET /followup HTTP/1.1\r\nHost: web.test\r\n\r\n";

interface MalformedCase {
  /** The row of the reliability matrix's table. */
  row: number;
  name: string;
  /** The malformed request, exact bytes (latin1). */
  payload: string;
  /** The 4xx statuses the table allows. */
  allowed: readonly number[];
  /** Row 12's `Transfer_Encoding`: dropping the header (and serving the request without it) is allowed too. */
  mayDrop?: string;
}

const post = (headerLines: string, body: string) => `POST /smuggle HTTP/1.1\r\nHost: web.test\r\n${headerLines}\r\n${body}`;
const chunkedPost = (body: string) => post("Transfer-Encoding: chunked\r\n", body);
const R400 = [400] as const;
const R400_501 = [400, 501] as const;

const CASES: MalformedCase[] = [
  // 1-2: CL and TE together
  { row: 1, name: "CL.TE: Content-Length: 4 then Transfer-Encoding: chunked", payload: post("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\nX"), allowed: R400 },
  { row: 2, name: "TE.CL: Transfer-Encoding: chunked then Content-Length: 4", payload: post("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", "0\r\n\r\nX"), allowed: R400 },
  // 3-4: duplicate Content-Length
  { row: 3, name: "duplicate Content-Length 1 / 2", payload: post("Content-Length: 1\r\nContent-Length: 2\r\n", "AB"), allowed: R400 },
  { row: 4, name: "duplicate Content-Length 0 / 0", payload: post("Content-Length: 0\r\nContent-Length: 0\r\n", ""), allowed: R400 },
  // 5: Content-Length junk
  { row: 5, name: "Content-Length: 4 2", payload: post("Content-Length: 4 2\r\n", "ABCD"), allowed: R400 },
  { row: 5, name: "Content-Length: 1Z", payload: post("Content-Length: 1Z\r\n", "A"), allowed: R400 },
  { row: 5, name: "Content-Length: +1_0", payload: post("Content-Length: +1_0\r\n", "0123456789"), allowed: R400 },
  { row: 5, name: "Content-Length: 010", payload: post("Content-Length: 010\r\n", "0123456789"), allowed: R400 },
  { row: 5, name: "Content-Length: 0x10", payload: post("Content-Length: 0x10\r\n", "0123456789abcdef"), allowed: R400 },
  // 6: empty / overflowing Content-Length
  { row: 6, name: "empty Content-Length", payload: post("Content-Length:\r\n", ""), allowed: R400 },
  { row: 6, name: "Content-Length overflow (1e21 in digits)", payload: post(`Content-Length: 1${"0".repeat(21)}\r\n`, "A"), allowed: R400 },
  // 7: Transfer-Encoding obfuscation
  { row: 7, name: "Transfer-Encoding: xchunked", payload: post("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"), allowed: R400_501 },
  { row: 7, name: "Transfer-Encoding: pigeons", payload: post("Transfer-Encoding: pigeons\r\n", "0\r\n\r\n"), allowed: R400_501 },
  { row: 7, name: "Transfer-Encoding: chunkedchunked", payload: post("Transfer-Encoding: chunkedchunked\r\n", "0\r\n\r\n"), allowed: R400_501 },
  { row: 7, name: "Transfer-Encoding: ,chunked", payload: post("Transfer-Encoding: ,chunked\r\n", "0\r\n\r\n"), allowed: R400_501 },
  // 8: chunked not the last coding
  { row: 8, name: "Transfer-Encoding: chunked, identity", payload: post("Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n"), allowed: R400_501 },
  { row: 8, name: "Transfer-Encoding: chunked + Transfer-Encoding: deflate", payload: post("Transfer-Encoding: chunked\r\nTransfer-Encoding: deflate\r\n", "0\r\n\r\n"), allowed: R400_501 },
  // 9: chunked applied twice
  { row: 9, name: "Transfer-Encoding: chunked + Transfer-Encoding: chunked", payload: post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), allowed: R400 },
  // 10-11: obs-fold
  { row: 10, name: "Transfer-Encoding with obs-fold (chunked\\r\\n  abc)", payload: post("Transfer-Encoding: chunked\r\n  abc\r\n", "0\r\n\r\n"), allowed: R400 },
  { row: 11, name: "obs-fold: Foo: bar\\r\\n Content-Length: 38", payload: "GET /smuggle HTTP/1.1\r\nHost: web.test\r\nFoo: bar\r\n Content-Length: 38\r\n\r\n", allowed: R400 },
  // 12: names that look like framing headers
  { row: 12, name: "space before colon: Content-Length : 4", payload: post("Content-Length : 4\r\n", "ABCD"), allowed: R400 },
  // No body: rejected, the app sees nothing; dropped, the app sees the GET without the header and the follow-up is a
  // legitimate second request; forwarded, the app sees `transfer_encoding`; mapped, the follow-up becomes chunk junk.
  { row: 12, name: "Transfer_Encoding: chunked (400 or drop)", payload: "GET /smuggle HTTP/1.1\r\nHost: web.test\r\nTransfer_Encoding: chunked\r\n\r\n", allowed: R400, mayDrop: "transfer_encoding" },
  // 13: bare LF in the head
  { row: 13, name: "bare LF in headers: x:x\\nTransfer-Encoding: chunked", payload: post("x:x\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), allowed: R400 },
  // 14: chunk-size junk
  { row: 14, name: "chunk size 0_2e", payload: chunkedPost("0_2e\r\n\r\n"), allowed: R400 },
  { row: 14, name: "chunk size -0x0", payload: chunkedPost("-0x0\r\n\r\n"), allowed: R400 },
  { row: 14, name: "chunk size ' 0' (leading space)", payload: chunkedPost(" 0\r\n\r\n"), allowed: R400 },
  { row: 14, name: "chunk size 'a ' (space after size)", payload: chunkedPost("a \r\n0123456789\r\n0\r\n\r\n"), allowed: R400 },
  // 15: chunk line / chunk data framing
  { row: 15, name: "CR in chunk line: 5\\r\\r;ABCD", payload: chunkedPost("5\r\r;ABCD\r\nhello\r\n0\r\n\r\n"), allowed: R400 },
  { row: 15, name: "chunk data not CRLF-terminated", payload: chunkedPost("5\r\nhelloXX0\r\n\r\n"), allowed: R400 },
  // 16: runaway chunk / no last-chunk
  { row: 16, name: "runaway chunk (size 4, 8 bytes of data)", payload: chunkedPost("4\r\nAAAAAAAA\r\n0\r\n\r\n"), allowed: R400 },
  { row: 16, name: "missing last-chunk (the follow-up lands where the next chunk size should be)", payload: chunkedPost("5\r\nhello\r\n"), allowed: R400 },
  // 17: empty header name / broken end of head
  { row: 17, name: "empty header name: ': ignored'", payload: "GET /smuggle HTTP/1.1\r\nHost: web.test\r\n: ignored\r\n\r\n", allowed: R400 },
  { row: 17, name: "head ended by \\r\\n\\rZ", payload: "GET /smuggle HTTP/1.1\r\nHost: web.test\r\n\rZGET /smuggled HTTP/1.1\r\nHost: web.test\r\n\r\n", allowed: R400 },
  // 18: NUL and CR inside a header value
  { row: 18, name: "NUL/CR in a header value: v\\x00\\ralue", payload: "GET /smuggle HTTP/1.1\r\nHost: web.test\r\nX-Value: v\x00\ralue\r\n\r\n", allowed: R400 },
  // 19: Transfer-Encoding in HTTP/1.0
  { row: 19, name: "Transfer-Encoding: chunked in an HTTP/1.0 request", payload: "POST /smuggle HTTP/1.0\r\nHost: web.test\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", allowed: R400 },
];

/** A one-line account of what the server did, for the failure message. */
function describeOutcome(got: Exchange, seen: readonly Seen[]): string {
  const statuses = responses(got.text).map((response) => response.status);
  const upstream = seen.map((request) => `${request.method} ${request.url}${request.complete ? "" : " (body cut off)"}`);
  return `statuses [${statuses.join(", ")}], ${got.closedByServer ? (got.reset ? "reset by server" : "closed by server") : `still open after ${CLOSE_WAIT_MS} ms`}, upstream saw [${upstream.join("; ")}]; raw: ${JSON.stringify(got.text.slice(0, 300))}`;
}

/** Gives a request the proxy may have forwarded time to reach the upstream before the upstream's record is read. */
const SETTLE_MS = 100;

for (const [features, pool] of FEATURES.flatMap((each) => (["cold", "warm"] as const).map((one) => [each, one] as const))) {
  describe(`S1 (${pool} proxy→worker pool, ${features}): the smuggling corpus (the reliability matrix rows 1-20), each followed by a pipelined GET /followup`, () => {
    for (const testCase of CASES) {
      it(`row ${testCase.row}: ${testCase.name}`, async () => {
        const { port, seen } = await stack(pool, features);
        const got = await exchange(port, Buffer.from(testCase.payload + FOLLOWUP, "latin1"));
        await sleep(SETTLE_MS);
        const outcome = describeOutcome(got, seen);
        const answers = responses(got.text);

        if (testCase.mayDrop && answers[0] && answers[0].status < 400) {
          // Row 12's "drop": the request is served without the header — neither forwarded nor taken as framing —
          // so the body-less GET is followed by the follow-up as a legitimate second request.
          const dropped = testCase.mayDrop;
          expect(seen[0]?.rawHeaders.map(([name]) => name.toLowerCase()), `"${dropped}" reached the upstream: ${outcome}`).not.toContain(dropped);
          expect(seen.map((request) => `${request.method} ${request.url} ${JSON.stringify(request.body)}`), outcome).toEqual(['GET /smuggle ""', 'GET /followup ""']);
          expect(answers.map((response) => response.status), outcome).toEqual([200, 200]);
          return;
        }

        // The follow-up is never executed.
        expect(seen.map((request) => request.url), `follow-up executed: ${outcome}`).not.toContain("/followup");
        // 4xx (one of the statuses the table allows) as the only answer...
        expect(answers.map((response) => response.status), `answers: ${outcome}`).toEqual([expect.toBeOneOf([...testCase.allowed])]);
        // ...the connection closed by the server...
        expect(got.closedByServer, `connection left open: ${outcome}`).toBe(true);
        // ...and the app never saw the malformed request (nor anything after it).
        expect(seen, `upstream invoked: ${outcome}`).toHaveLength(0);
      });
    }

    it("row 20: a pipelined request after Connection: close: the first is served, the rest ignored, the connection closed", async () => {
      const { port, seen } = await stack(pool, features);
      const first = "GET /first HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n";
      const got = await exchange(port, Buffer.from(first + FOLLOWUP, "latin1"));
      await sleep(SETTLE_MS);
      const outcome = describeOutcome(got, seen);
      const answers = responses(got.text);
      expect(seen.map((request) => request.url), `upstream: ${outcome}`).toEqual(["/first"]);
      expect(answers.map((response) => response.status), `answers: ${outcome}`).toEqual([200]);
      expect(answers[0]!.body, outcome).toBe("ok /first");
      expect(got.closedByServer, `connection: ${outcome}`).toBe(true);
    });
  });
}

// ---- S2: valid edge cases are forwarded normalized ----

/** RFC 9110 §7.6.1 hop-by-hop headers (plus Proxy-Connection): none of the client's may reach the app. */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

/** Hop-by-hop headers the client adds to each S2 request, to see that none of them gets through. */
const CLIENT_HOP_HEADERS = "Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n";

/** The last request of each S2 exchange: served, then the server closes. */
const CLOSING_FOLLOWUP = "GET /followup HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n";

/**
 * One forwarded request as the app saw it: one framing header at most (one
 * Content-Length, or one `Transfer-Encoding: chunked` — the proxy's own, never
 * both), and of the hop-by-hop headers only the proxy's own Connection to the
 * upstream.
 */
function expectNormalized(request: Seen): void {
  const names = request.rawHeaders.map(([name]) => name.toLowerCase());
  const label = `${request.method} ${request.url} headers ${JSON.stringify(request.rawHeaders)}`;
  const lengths = request.rawHeaders.filter(([name]) => name.toLowerCase() === "content-length");
  const encodings = request.rawHeaders.filter(([name]) => name.toLowerCase() === "transfer-encoding");
  expect(lengths.length + encodings.length, `framing headers: ${label}`).toBeLessThanOrEqual(1);
  if (encodings.length === 1) expect(encodings[0]![1], label).toBe("chunked");
  for (const name of HOP_BY_HOP.filter((hop) => hop !== "connection" && hop !== "transfer-encoding")) expect(names, `${name}: ${label}`).not.toContain(name);
  expect(names, label).not.toContain("x-hop");
  // The proxy's own Connection to the worker, carrying none of the client's tokens.
  for (const [, value] of request.rawHeaders.filter(([name]) => name.toLowerCase() === "connection")) expect(value.toLowerCase(), label).toMatch(/^(keep-alive|close)$/);
}

for (const features of FEATURES) {
  describe(`S2 (${features}): valid edge cases reach the app once each, normalized`, () => {
    it("Transfer-Encoding: chunked body", async () => {
      const { port, seen } = await stack("cold", features);
      const request = `POST /chunked HTTP/1.1\r\nHost: web.test\r\n${CLIENT_HOP_HEADERS}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`;
      const got = await exchange(port, Buffer.from(request + CLOSING_FOLLOWUP, "latin1"));
      const outcome = describeOutcome(got, seen);
      expect(responses(got.text).map((response) => response.status), outcome).toEqual([200, 200]);
      expect(seen.map((each) => each.url), outcome).toEqual(["/chunked", "/followup"]);
      expect(seen[0]).toMatchObject({ method: "POST", body: "hello world", complete: true });
      expectNormalized(seen[0]!);
      expect(got.closedByServer, outcome).toBe(true);
    });

    it("Transfer-Encoding: Chunked (case-insensitive coding name)", async () => {
      const { port, seen } = await stack("cold", features);
      const request = `POST /chunked-case HTTP/1.1\r\nHost: web.test\r\n${CLIENT_HOP_HEADERS}Transfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`;
      const got = await exchange(port, Buffer.from(request + CLOSING_FOLLOWUP, "latin1"));
      const outcome = describeOutcome(got, seen);
      expect(responses(got.text).map((response) => response.status), outcome).toEqual([200, 200]);
      expect(seen.map((each) => each.url), outcome).toEqual(["/chunked-case", "/followup"]);
      expect(seen[0]).toMatchObject({ method: "POST", body: "hello", complete: true });
      expectNormalized(seen[0]!);
      expect(got.closedByServer, outcome).toBe(true);
    });

    it("two pipelined valid requests (GET, then POST with Content-Length)", async () => {
      const { port, seen } = await stack("cold", features);
      const one = `GET /one HTTP/1.1\r\nHost: web.test\r\n${CLIENT_HOP_HEADERS}\r\n`;
      const two = `POST /two HTTP/1.1\r\nHost: web.test\r\n${CLIENT_HOP_HEADERS}Content-Length: 5\r\n\r\nhello`;
      const got = await exchange(port, Buffer.from(one + two + CLOSING_FOLLOWUP, "latin1"));
      const outcome = describeOutcome(got, seen);
      const answers = responses(got.text);
      expect(answers.map((response) => response.status), outcome).toEqual([200, 200, 200]);
      expect(answers.map((response) => response.body), outcome).toEqual(["ok /one", "ok /two", "ok /followup"]);
      expect(seen.map((each) => `${each.method} ${each.url}`), outcome).toEqual(["GET /one", "POST /two", "GET /followup"]);
      expect(seen[1]).toMatchObject({ body: "hello", complete: true });
      for (const request of seen) expectNormalized(request);
      expect(got.closedByServer, outcome).toBe(true);
      // With the features on, each answer went through them: the app's headers on every one.
      if (features !== "plain") {
        for (const answer of answers) expect(answer.headers, outcome).toEqual(expect.arrayContaining(Object.entries(EVERY_FEATURE_WEB_HEADERS)));
      }
    });

    it("Expect: 100-continue: 100 first, the body sent after it, the app sees one request", async () => {
      const { port, seen } = await stack("cold", features);
      const head = `POST /expect HTTP/1.1\r\nHost: web.test\r\n${CLIENT_HOP_HEADERS}Expect: 100-continue\r\nContent-Length: 5\r\n\r\n`;
      const got = await exchange(port, Buffer.from(head, "latin1"), { waitFor: /^HTTP\/1\.1 100 [^\r\n]*\r\n\r\n/, write: Buffer.from(`hello${CLOSING_FOLLOWUP}`, "latin1") });
      const outcome = describeOutcome(got, seen);
      expect(responses(got.text).map((response) => response.status), outcome).toEqual([100, 200, 200]);
      expect(seen.map((each) => each.url), outcome).toEqual(["/expect", "/followup"]);
      expect(seen[0]).toMatchObject({ method: "POST", body: "hello", complete: true });
      expectNormalized(seen[0]!);
      expect(got.closedByServer, outcome).toBe(true);
    });
  });
}
