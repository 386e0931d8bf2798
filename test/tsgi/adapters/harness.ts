/**
 * @module test/tsgi/adapters/harness
 *
 * Drives a TSGI app the two ways a gateway does and reports what a client
 * would see: in memory (requestEnviron + runApp into a collecting sink, no
 * socket at all) and on a real socket (toNodeListener on 127.0.0.1 port 0,
 * requests through node:http). Both return the same TestResponse, so one
 * conformance suite runs unchanged over either. Not a general HTTP client.
 */
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { baseEnviron, requestEnviron } from "../../../src/tsgi/environ.ts";
import { type ResponseSink, runApp } from "../../../src/tsgi/handler.ts";
import { toNodeListener } from "../../../src/tsgi/adapters/node-http.ts";
import type { Environ, ErrorStream, HeaderList, InputStream, ResponseBody, TsgiApp } from "../../../src/tsgi/types.ts";

export interface TestRequest {
  method?: string;
  /** Path and query as the client sends them ("/mnt/hello?x=1"). */
  target: string;
  headers?: Array<[string, string]>;
  /** A fixed body (sent with Content-Length) or a stream of chunks (sent chunked). */
  body?: string | Uint8Array | (() => AsyncIterable<Uint8Array>);
  /** The client goes away after receiving this many body chunks. */
  leaveAfterChunks?: number;
}

export interface TestResponse {
  status: number;
  reason: string;
  headers: HeaderList;
  body: Buffer;
  /** Milliseconds from sending the request to receiving the head, and to each body chunk. */
  headAt: number;
  chunkTimes: number[];
  /** The response ended normally (not aborted, and the client did not leave). */
  complete: boolean;
}

/** The first value of a header, or undefined. */
export function header(response: TestResponse, name: string): string | undefined {
  return headerValues(response, name)[0];
}

/** Every value of a header, in order (Set-Cookie). */
export function headerValues(response: TestResponse, name: string): string[] {
  const wanted = name.toLowerCase();
  return response.headers.filter(([key]) => key.toLowerCase() === wanted).map(([, value]) => value);
}

export function json(response: TestResponse): unknown {
  return JSON.parse(response.body.toString("utf8"));
}

export interface Client {
  request(request: TestRequest): Promise<TestResponse>;
  /** What the app and the gateway wrote to tsgi.errors. */
  readonly errors: string[];
  close(): Promise<void>;
}

export interface Transport {
  name: string;
  /** Serves `app` with the mount point `scriptName` ("" for none). */
  connect(app: TsgiApp, scriptName: string): Promise<Client>;
}

export function collectingErrors(): ErrorStream & { lines: string[] } {
  const lines: string[] = [];
  return { lines, write: (message) => void lines.push(message) };
}

async function* once_(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  if (bytes.byteLength > 0) yield bytes;
}

function bodyBytes(body: string | Uint8Array): Uint8Array {
  return typeof body === "string" ? Buffer.from(body) : body;
}

// ---------------------------------------------------------------------------
// In memory

export interface SinkOptions {
  /** The client goes away after receiving this many body chunks. */
  leaveAfterChunks?: number;
  /** The client is slow: each write reports a full buffer that drains after this many milliseconds. */
  slowMs?: number;
}

/** A ResponseSink that records what a client would receive, and can play a client that leaves or lags. */
export class CollectingSink implements ResponseSink {
  head: { code: number; status: string; headers: HeaderList; at: number } | undefined;
  readonly chunks: Array<{ bytes: Uint8Array; at: number }> = [];
  ended = false;
  aborted = false;
  private gone = false;
  private listeners: Array<() => void> = [];
  private readonly start = performance.now();

  constructor(private readonly options: SinkOptions = {}) {}

  get clientGone(): boolean {
    return this.gone;
  }

  onClientGone(listener: () => void): void {
    if (this.gone) listener();
    else this.listeners.push(listener);
  }

  sendHead(code: number, status: string, headers: HeaderList): void {
    this.head = { code, status, headers, at: performance.now() - this.start };
  }

  write(bytes: Uint8Array): boolean {
    this.chunks.push({ bytes: Uint8Array.from(bytes), at: performance.now() - this.start });
    const { leaveAfterChunks, slowMs } = this.options;
    if (leaveAfterChunks !== undefined && this.chunks.length >= leaveAfterChunks) setImmediate(() => this.leave());
    // A slow client: every write fills the buffer, and it drains slowMs later.
    return slowMs === undefined;
  }

  drained(): Promise<void> {
    const { slowMs } = this.options;
    return new Promise((resolve) => (slowMs === undefined ? resolve() : setTimeout(resolve, slowMs)));
  }

  end(): void {
    this.ended = true;
  }

  abort(): void {
    this.aborted = true;
  }

  /** The client goes away. */
  leave(): void {
    if (this.gone) return;
    this.gone = true;
    for (const listener of this.listeners.splice(0)) listener();
  }

  toResponse(): TestResponse {
    const head = this.head ?? { code: 0, status: "", headers: [], at: 0 };
    return {
      status: head.code,
      reason: head.status.slice(4),
      headers: head.headers,
      body: Buffer.concat(this.chunks.map((chunk) => chunk.bytes)),
      headAt: head.at,
      chunkTimes: this.chunks.map((chunk) => chunk.at),
      complete: this.ended && !this.aborted && !this.gone,
    };
  }
}

export interface EnvironOptions {
  scriptName?: string;
  protocol?: string;
  urlScheme?: "http" | "https";
  remoteAddr?: string;
  remotePort?: number;
  /** Replaces the body of the request: an input the test instruments. */
  input?: InputStream;
  errors?: ErrorStream;
}

/** The environ a gateway on 127.0.0.1:8080 would build for `request`. */
export function environFor(request: TestRequest, options: EnvironOptions = {}): Environ {
  const { input, headers } = memoryInput(request);
  const base = baseEnviron({
    serverName: "127.0.0.1",
    serverPort: 8080,
    urlScheme: options.urlScheme,
    errors: options.errors ?? collectingErrors(),
  });
  return requestEnviron(
    base,
    {
      method: request.method ?? "GET",
      target: request.target,
      protocol: options.protocol ?? "HTTP/1.1",
      rawHeaders: headers.flat(),
      remoteAddr: options.remoteAddr ?? "127.0.0.1",
      remotePort: options.remotePort ?? 50123,
      scriptName: options.scriptName,
    },
    options.input ?? input,
  );
}

/** Runs one request through runApp into a CollectingSink, as the gateway would. */
export async function runInMemory(app: TsgiApp, environ: Environ, options: SinkOptions = {}): Promise<CollectingSink> {
  const sink = new CollectingSink(options);
  await runApp(app, environ, sink);
  return sink;
}

function memoryInput(request: TestRequest): { input: InputStream; headers: Array<[string, string]> } {
  const headers: Array<[string, string]> = [["Host", "127.0.0.1:8080"], ...(request.headers ?? [])];
  const body = request.body;
  if (body === undefined) return { input: once_(new Uint8Array()), headers };
  if (typeof body === "function") {
    const sized = headers.some(([name]) => name.toLowerCase() === "content-length");
    return { input: body(), headers: sized ? headers : [...headers, ["Transfer-Encoding", "chunked"]] };
  }
  const bytes = bodyBytes(body);
  return { input: once_(bytes), headers: [...headers, ["Content-Length", String(bytes.byteLength)]] };
}

/** Runs requests straight through runApp, as the gateway would, with no socket. */
export const memoryTransport: Transport = {
  name: "in memory",
  async connect(app, scriptName) {
    const errors = collectingErrors();
    return {
      errors: errors.lines,
      async close() {},
      async request(request) {
        const environ = environFor(request, { scriptName, errors });
        const sink = await runInMemory(app, environ, { leaveAfterChunks: request.leaveAfterChunks });
        return sink.toResponse();
      },
    };
  },
};

// ---------------------------------------------------------------------------
// On a real socket

function sendBody(req: http.ClientRequest, body: TestRequest["body"]): void {
  if (body === undefined) {
    req.end();
  } else if (typeof body === "function") {
    Readable.from(body()).pipe(req);
  } else {
    req.end(bodyBytes(body));
  }
}

function socketRequest(port: number, request: TestRequest): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    // A header list (kept as given, repeats included) makes node:http leave Host out: add it.
    const headers: Array<[string, string]> = [["Host", `127.0.0.1:${port}`], ...(request.headers ?? [])];
    if (request.body !== undefined && typeof request.body !== "function") {
      headers.push(["Content-Length", String(bodyBytes(request.body).byteLength)]);
    }
    const req = http.request({
      host: "127.0.0.1",
      port,
      method: request.method ?? "GET",
      path: request.target,
      headers: headers.flat(),
      agent: false,
    });
    req.on("error", reject);
    req.on("response", (res) => {
      const headAt = performance.now() - start;
      const chunks: Buffer[] = [];
      const chunkTimes: number[] = [];
      let left = false;
      const finish = (complete: boolean) =>
        resolve({
          status: res.statusCode ?? 0,
          reason: res.statusMessage ?? "",
          headers: pairs(res.rawHeaders),
          body: Buffer.concat(chunks),
          headAt,
          chunkTimes,
          complete,
        });
      res.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        chunkTimes.push(performance.now() - start);
        if (request.leaveAfterChunks !== undefined && chunks.length >= request.leaveAfterChunks && !left) {
          left = true;
          req.destroy();
          finish(false);
        }
      });
      res.on("end", () => finish(!left));
      res.on("error", () => finish(false));
      res.on("aborted", () => finish(false));
    });
    sendBody(req, request.body);
  });
}

function pairs(raw: string[]): HeaderList {
  const list: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) list.push([raw[i]!, raw[i + 1]!]);
  return list;
}

/** Serves the app through toNodeListener on 127.0.0.1, port 0, and talks to it over TCP. */
export const socketTransport: Transport = {
  name: "on a socket",
  async connect(app, scriptName) {
    const errors = collectingErrors();
    const listener = toNodeListener(app, { errors, scriptName });
    const server = http.createServer(listener);
    server.on("checkContinue", listener.serveContinue);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    return {
      errors: errors.lines,
      request: (request) => socketRequest(port, request),
      async close() {
        server.closeAllConnections();
        server.close();
        await once(server, "close");
      },
    };
  },
};

// ---------------------------------------------------------------------------
// Probes

/** Wraps an app so a test can count the server's close() calls on the bodies it returns. */
export function countingCloses(app: TsgiApp): { app: TsgiApp; closes: () => number } {
  let closes = 0;
  const wrap = (body: ResponseBody): ResponseBody => {
    if (Array.isArray(body)) return body;
    const original = body.close?.bind(body);
    return Object.assign(body, {
      close: () => {
        closes += 1;
        return original?.();
      },
    });
  };
  const counted: TsgiApp = (environ, startResponse) => {
    const result = app(environ, startResponse);
    return result instanceof Promise ? result.then(wrap) : wrap(result);
  };
  return { app: counted, closes: () => closes };
}

/** Resolves when `condition` holds, checking every 5 ms; rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 2000, what = "condition"): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
