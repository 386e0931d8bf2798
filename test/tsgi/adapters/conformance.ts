/**
 * @module test/tsgi/adapters/conformance
 *
 * The one conformance suite every adapter and framework runs through (Hono's
 * `runTest({ newRouter })` habit): `runAdapterConformance(name, makeApp)`.
 *
 * `makeApp(hooks)` returns a TSGI app — a framework behind an adapter, or a
 * TSGI app itself — that serves these routes at its own root. The app knows
 * nothing of where it is mounted: the suite serves the one app both at the
 * root (SCRIPT_NAME "") and at /mnt (SCRIPT_NAME "/mnt"), because mounting is
 * the environ's job, and the adapter must present the framework with paths
 * relative to the mount (PATH_INFO), as WSGI does:
 *
 *   GET  /hello       200 text/plain "hello" (HEAD too)
 *   GET  /items/:id   200 application/json {"id": id}
 *   GET  /query       200 application/json {"name", "n"} from the query string
 *   GET  /whereami    200 application/json {"url", "path"}: "url" is the path
 *                     and query the client asked for, mount included (what the
 *                     app would use to link to itself: originalUrl,
 *                     X-Forwarded-Prefix, SCRIPT_NAME); "path" is the path the
 *                     app routed on, relative to the mount
 *   POST /echo        200 application/json {"received": <the JSON request body>}
 *   POST /upload      200 application/json {"bytes", "sha256"} of the raw body, read as a stream
 *   GET  /cookies     200 application/json {"a", "b"} from the Cookie header;
 *                     sets two cookies: x=1 and y=2
 *   GET  /stream      200 text/plain "chunk 0\n" … "chunk 4\n", about 20 ms apart
 *   GET  /error       throws, the framework's way: a 500
 *   GET  /forever     200 text/plain "tick\n" every 10 ms until the client leaves;
 *                     then calls hooks.streamAborted() from the framework's own
 *                     abort signal (res 'close', stream destroy, onAbort)
 *   anything else     404
 *
 * Each case runs over every transport given (in memory, on a socket), and
 * nothing but the /error failure may reach tsgi.errors.
 */
import { createHash } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { TsgiApp } from "../../../src/tsgi/types.ts";
import {
  type Client,
  countingCloses,
  header,
  headerValues,
  json,
  memoryTransport,
  type Transport,
  waitFor,
} from "./harness.ts";

export interface ConformanceHooks {
  /** Called by /forever when the framework tells the route that the client went away. */
  streamAborted(): void;
}

/** Builds the app under test, once per transport: the suite mounts it itself, at the root and at /mnt. */
export type MakeApp = (hooks: ConformanceHooks) => TsgiApp | Promise<TsgiApp>;

const MOUNT = "/mnt";
const UPLOAD_BYTES = 5 * 1024 * 1024;
const UPLOAD_CHUNK = 64 * 1024;
const TEST_TIMEOUT = 10_000;

/** Deterministic upload content, generated chunk by chunk so the test never holds it twice. */
function uploadChunk(index: number): Uint8Array {
  const chunk = new Uint8Array(UPLOAD_CHUNK);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (index * 131 + i * 31 + (i >> 8)) & 0xff;
  return chunk;
}

async function* uploadBody(): AsyncIterable<Uint8Array> {
  for (let index = 0; index < UPLOAD_BYTES / UPLOAD_CHUNK; index++) yield uploadChunk(index);
}

function uploadDigest(): string {
  const hash = createHash("sha256");
  for (let index = 0; index < UPLOAD_BYTES / UPLOAD_CHUNK; index++) hash.update(uploadChunk(index));
  return hash.digest("hex");
}

/** Runs the shared suite against one implementation, over each transport. */
export function runAdapterConformance(name: string, makeApp: MakeApp, transports: Transport[] = [memoryTransport]): void {
  for (const transport of transports) {
    describe(`${name} (${transport.name})`, () => suite(makeApp, transport));
  }
}

function suite(makeApp: MakeApp, transport: Transport): void {
  let aborted = 0;
  const hooks: ConformanceHooks = { streamAborted: () => void (aborted += 1) };
  let client: Client;
  let mounted: Client;
  let forever: { client: Client; closes: () => number };

  beforeAll(async () => {
    // One app, three servers: at the root, at /mnt, and at the root with its close() calls counted.
    const app = await makeApp(hooks);
    client = await transport.connect(app, "");
    mounted = await transport.connect(app, MOUNT);
    const counted = countingCloses(app);
    forever = { client: await transport.connect(counted.app, ""), closes: counted.closes };
  }, TEST_TIMEOUT);

  afterEach(() => {
    const logged = [client, mounted, forever?.client].flatMap((each) => each?.errors.splice(0) ?? []);
    expect(logged.filter((line) => !line.includes("GET /error"))).toEqual([]);
  });

  afterAll(async () => {
    await Promise.all([client?.close(), mounted?.close(), forever?.client.close()]);
  });

  it("routes two paths and answers 404 for others", { timeout: TEST_TIMEOUT }, async () => {
    const hello = await client.request({ target: "/hello" });
    expect(hello.status).toBe(200);
    expect(header(hello, "content-type")).toMatch(/^text\/plain/);
    expect(hello.body.toString()).toBe("hello");

    const item = await client.request({ target: "/items/42" });
    expect(item.status).toBe(200);
    expect(header(item, "content-type")).toMatch(/^application\/json/);
    expect(json(item)).toEqual({ id: "42" });

    const missing = await client.request({ target: "/no/such/page" });
    expect(missing.status).toBe(404);
  });

  it("parses a JSON request body and echoes it", { timeout: TEST_TIMEOUT }, async () => {
    const sent = { name: "Ada", tags: ["math", "engines"], nested: { n: 1 } };
    const response = await client.request({
      method: "POST",
      target: "/echo",
      headers: [["Content-Type", "application/json"]],
      body: JSON.stringify(sent),
    });
    expect(response.status).toBe(200);
    expect(json(response)).toEqual({ received: sent });
  });

  it("streams a response: chunks in order, the head before the last chunk", { timeout: TEST_TIMEOUT }, async () => {
    const response = await client.request({ target: "/stream" });
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe("chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    expect(response.complete).toBe(true);
    expect(response.chunkTimes.length).toBeGreaterThanOrEqual(3);
    const last = response.chunkTimes.at(-1)!;
    // Five chunks 20 ms apart: a buffered response would arrive all at once, head included.
    expect(last - response.chunkTimes[0]!).toBeGreaterThanOrEqual(40);
    expect(last - response.headAt).toBeGreaterThanOrEqual(40);
  });

  it("turns a thrown error into a 500", { timeout: TEST_TIMEOUT }, async () => {
    const response = await client.request({ target: "/error" });
    expect(response.status).toBe(500);
    expect(response.complete).toBe(true);
  });

  it("reads the Cookie header and sets two cookies", { timeout: TEST_TIMEOUT }, async () => {
    const response = await client.request({ target: "/cookies", headers: [["Cookie", "a=1; b=two"]] });
    expect(response.status).toBe(200);
    expect(json(response)).toEqual({ a: "1", b: "two" });
    const cookies = headerValues(response, "set-cookie");
    expect(cookies).toHaveLength(2);
    expect(cookies[0]).toMatch(/^x=1(;|$)/);
    expect(cookies[1]).toMatch(/^y=2(;|$)/);
  });

  it("passes the query string", { timeout: TEST_TIMEOUT }, async () => {
    const response = await client.request({ target: "/query?name=Ada%20Lovelace&n=2" });
    expect(response.status).toBe(200);
    expect(json(response)).toEqual({ name: "Ada Lovelace", n: "2" });
  });

  it("serves the same app, unchanged, under SCRIPT_NAME /mnt: its routes match the path below the mount", { timeout: TEST_TIMEOUT }, async () => {
    const hello = await mounted.request({ target: `${MOUNT}/hello` });
    expect(hello.status).toBe(200);
    expect(hello.body.toString()).toBe("hello");

    const item = await mounted.request({ target: `${MOUNT}/items/7?x=1` });
    expect(json(item)).toEqual({ id: "7" });

    const query = await mounted.request({ target: `${MOUNT}/query?name=Ada%20Lovelace&n=2` });
    expect(json(query)).toEqual({ name: "Ada Lovelace", n: "2" });

    const echo = await mounted.request({
      method: "POST",
      target: `${MOUNT}/echo`,
      headers: [["Content-Type", "application/json"]],
      body: JSON.stringify({ mounted: true }),
    });
    expect(json(echo)).toEqual({ received: { mounted: true } });

    // The app has no /mnt routes: had it seen the full path, none of the above would have matched.
    const missing = await mounted.request({ target: `${MOUNT}/no/such/page` });
    expect(missing.status).toBe(404);
    const twice = await mounted.request({ target: `${MOUNT}${MOUNT}/hello` });
    expect(twice.status).toBe(404);
  });

  it("tells a mounted app the full path the client asked for, and the path it routed on", { timeout: TEST_TIMEOUT }, async () => {
    const where = await mounted.request({ target: `${MOUNT}/whereami?x=1` });
    expect(where.status).toBe(200);
    expect(json(where)).toEqual({ url: `${MOUNT}/whereami?x=1`, path: "/whereami" });
    const rootWhere = await client.request({ target: "/whereami?x=1" });
    expect(json(rootWhere)).toEqual({ url: "/whereami?x=1", path: "/whereami" });
  });

  it("answers HEAD with the GET head and no body", { timeout: TEST_TIMEOUT }, async () => {
    const get = await client.request({ target: "/hello" });
    const response = await client.request({ method: "HEAD", target: "/hello" });
    expect(response.status).toBe(200);
    expect(header(response, "content-type")).toBe(header(get, "content-type"));
    expect(response.body.byteLength).toBe(0);
    // A length the GET declares, the HEAD declares too (RFC 9110 §9.3.2).
    if (header(get, "content-length") !== undefined) {
      expect(header(response, "content-length")).toBe(header(get, "content-length"));
    }
  });

  it("reads a 5 MiB request body as a stream", { timeout: TEST_TIMEOUT }, async () => {
    const response = await client.request({
      method: "POST",
      target: "/upload",
      headers: [
        ["Content-Type", "application/octet-stream"],
        ["Content-Length", String(UPLOAD_BYTES)],
      ],
      body: uploadBody,
    });
    expect(response.status).toBe(200);
    expect(json(response)).toEqual({ bytes: UPLOAD_BYTES, sha256: uploadDigest() });
  });

  it("tells the framework when the client goes away, and closes the body once", { timeout: TEST_TIMEOUT }, async () => {
    const before = aborted;
    const response = await forever.client.request({ target: "/forever", leaveAfterChunks: 2 });
    expect(response.status).toBe(200);
    expect(response.complete).toBe(false);
    expect(response.body.toString()).toMatch(/^(tick\n)+/);
    await waitFor(() => aborted > before, 3000, "the framework to notice the abort");
    await waitFor(() => forever.closes() >= 1, 3000, "close()");
    // Give a double close() the chance to happen before counting.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(forever.closes()).toBe(1);
    expect(aborted).toBe(before + 1);
  });
}
