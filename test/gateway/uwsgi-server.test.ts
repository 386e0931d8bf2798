/**
 * The uwsgi server on real sockets (127.0.0.1, port 0): raw packets in, exact
 * response bytes out. The socket is what is under test here — framing, body
 * streaming, back-pressure, closing and draining — so no in-memory fakes.
 * The last block tests the socket-free parts directly (uwsgi/environ.ts, the
 * refusal of uwsgi/sink.ts, BodyInput of uwsgi/input.ts with a fake socket),
 * for the cases a real connection makes awkward to reach.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Environ, StartResponse, TsgiApp } from "../../src/tsgi/types.ts";
import type { RunOutcome } from "../../src/tsgi/handler.ts";
import { readAll } from "../../src/tsgi/util.ts";
import { InFlight } from "../../src/gateway/in-flight.ts";
import { createUwsgiServer, type UwsgiServer, type UwsgiServerOptions } from "../../src/gateway/uwsgi/server.ts";
import { encodeUwsgiPacket, type UwsgiVar } from "../../src/gateway/uwsgi/parser.ts";
import { bodyLength, collectVars, uwsgiEnviron } from "../../src/gateway/uwsgi/environ.ts";
import { BODY_HIGH_WATER_MARK, BodyInput } from "../../src/gateway/uwsgi/input.ts";
import { refusalResponse } from "../../src/gateway/uwsgi/sink.ts";
import { InvalidUwsgiVar } from "../../src/gateway/uwsgi/errors.ts";
import { baseEnviron } from "../../src/tsgi/environ.ts";

const MIB = 1024 * 1024;

/** The vars nginx sends with `include uwsgi_params` for a request, plus overrides. */
function nginxVars(method: string, uri: string, extra: Array<[string, string | Uint8Array]> = []): Array<[string, string | Uint8Array]> {
  const [path = "/", query = ""] = uri.split("?");
  return [
    ["QUERY_STRING", query],
    ["REQUEST_METHOD", method],
    ["CONTENT_TYPE", ""],
    ["CONTENT_LENGTH", ""],
    ["REQUEST_URI", uri],
    ["PATH_INFO", decodeURIComponent(path)],
    ["DOCUMENT_ROOT", "/usr/share/nginx/html"],
    ["SERVER_PROTOCOL", "HTTP/1.1"],
    ["REQUEST_SCHEME", "http"],
    ["REMOTE_ADDR", "192.0.2.7"],
    ["REMOTE_PORT", "40000"],
    ["SERVER_PORT", "8080"],
    ["SERVER_NAME", "example.test"],
    ["HTTP_HOST", "example.test"],
    ...extra,
  ];
}

/** Drops the first var named `name` and replaces it with `value`. */
function withVar(vars: Array<[string, string | Uint8Array]>, name: string, value: string): Array<[string, string | Uint8Array]> {
  return [...vars.filter(([n]) => n !== name), [name, value]];
}

interface Exchange {
  data: Buffer;
  /** How the connection ended: a clean close, or a reset/error. */
  ended: "close" | "error";
}

/**
 * Connects, writes `parts` (pausing `gapMs` between them), optionally
 * half-closes, and collects every byte until the server closes.
 */
function exchange(port: number, parts: Buffer[], options: { gapMs?: number; halfClose?: boolean; timeoutMs?: number } = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let ended: Exchange["ended"] = "close";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${options.timeoutMs ?? 4000} ms; got ${Buffer.concat(chunks).length} bytes`));
    }, options.timeoutMs ?? 4000);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", () => (ended = "error"));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), ended });
    });
    socket.on("connect", async () => {
      for (const [i, part] of parts.entries()) {
        if (i > 0 && options.gapMs) await new Promise((r) => setTimeout(r, options.gapMs));
        if (socket.destroyed) return;
        socket.write(part);
      }
      if (options.halfClose) socket.end();
    });
  });
}

function split(response: Buffer): { head: string; body: Buffer } {
  const at = response.indexOf("\r\n\r\n");
  if (at === -1) throw new Error(`no header block in ${JSON.stringify(response.toString("latin1").slice(0, 200))}`);
  return { head: response.subarray(0, at + 4).toString("latin1"), body: response.subarray(at + 4) };
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** 8 MiB of deterministic bytes in 64 KiB chunks: chunk i is filled with i % 251. */
function* bigBody(total: number): Generator<Uint8Array> {
  const size = 64 * 1024;
  for (let i = 0; i * size < total; i++) yield new Uint8Array(Math.min(size, total - i * size)).fill(i % 251);
}
function bigBodyHash(total: number): string {
  const hash = createHash("sha256");
  for (const chunk of bigBody(total)) hash.update(chunk);
  return hash.digest("hex");
}

/** Environ keys the echo route reports. */
const REPORTED = [
  "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_URI", "SERVER_NAME", "SERVER_PORT",
  "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "CONTENT_TYPE", "CONTENT_LENGTH", "DOCUMENT_ROOT",
  "tsgi.url_scheme", "tsgi.multiprocess",
];

interface Probe {
  closedBodies: number;
  outcomes: Array<{ environ: Environ | undefined; outcome: RunOutcome }>;
  release?: () => void;
  holding?: Promise<void>;
  slowReads: number;
}

function makeApp(probe: Probe): TsgiApp {
  const text = (start: StartResponse, status: string, body: string) => {
    start(status, [["Content-Type", "text/plain"]]);
    return [body];
  };
  return async (environ, start) => {
    switch (environ.PATH_INFO) {
      case "/hello":
        start("200 OK", [["Content-Type", "text/plain"]]);
        return ["hello ", "world"];
      case "/environ": {
        const report: Record<string, unknown> = {};
        for (const key of REPORTED) report[key] = environ[key];
        for (const key of Object.keys(environ)) if (key.startsWith("HTTP_")) report[key] = environ[key];
        start("200 OK", [["Content-Type", "application/json"]]);
        return [JSON.stringify(report)];
      }
      case "/echo": {
        const body = await readAll(environ["tsgi.input"]);
        start("200 OK", [["Content-Type", "application/octet-stream"]]);
        return [body];
      }
      case "/slow-hash": {
        // Reads the body slowly: the server must pause the socket rather than buffer the upload.
        const hash = createHash("sha256");
        let length = 0;
        for await (const chunk of environ["tsgi.input"]) {
          hash.update(chunk);
          length += chunk.length;
          probe.slowReads += 1;
          if (probe.slowReads % 16 === 0) await new Promise((r) => setTimeout(r, 5));
        }
        return text(start, "200 OK", `${length} ${hash.digest("hex")}`);
      }
      case "/big":
        start("200 OK", [["Content-Type", "application/octet-stream"]]);
        return bigBody(8 * MIB);
      case "/endless": {
        start("200 OK", [["Content-Type", "application/octet-stream"]]);
        const chunk = new Uint8Array(64 * 1024);
        return Object.assign(
          (function* () {
            for (;;) yield chunk;
          })(),
          { close: () => void (probe.closedBodies += 1) },
        );
      }
      case "/hold":
        await probe.holding;
        return text(start, "200 OK", "held");
      case "/throw":
        throw new Error("the app broke");
      case "/cookies":
        start("200 OK", [["Set-Cookie", "a=1"], ["Set-Cookie", "b=2"]]);
        return [];
      default:
        return text(start, "404 Not Found", "nope");
    }
  };
}

async function startServer(options: Partial<UwsgiServerOptions> = {}) {
  const logs: string[] = [];
  const probe: Probe = { closedBodies: 0, outcomes: [], slowReads: 0 };
  const server = createUwsgiServer(makeApp(probe), {
    errors: { write: (message) => void logs.push(message) },
    onResponse: (environ, outcome) => probe.outcomes.push({ environ, outcome }),
    ...options,
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return { server, port, logs, probe };
}

function stop(server: UwsgiServer): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

const until = async (condition: () => boolean, timeoutMs = 2000) => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe("uwsgi server: requests and responses", () => {
  let ctx: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    ctx = await startServer();
  });
  afterAll(() => stop(ctx.server));

  it("answers a GET with the exact HTTP/1.1 bytes and closes", async () => {
    const { data, ended } = await exchange(ctx.port, [encodeUwsgiPacket(nginxVars("GET", "/hello"))]);
    expect(data.toString("latin1")).toBe(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world",
    );
    expect(ended).toBe("close");
  });

  it("answers a HEAD with the head only", async () => {
    const { data } = await exchange(ctx.port, [encodeUwsgiPacket(nginxVars("HEAD", "/hello"))]);
    expect(data.toString("latin1")).toBe("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\n");
  });

  it("serves a packet that arrives one byte at a time", async () => {
    const packet = encodeUwsgiPacket(nginxVars("GET", "/hello"));
    const parts = [...packet].map((byte) => Buffer.from([byte]));
    const { data } = await exchange(ctx.port, parts, { gapMs: 1 });
    expect(split(data).body.toString()).toBe("hello world");
  });

  it("still answers a peer that half-closes after its request", async () => {
    const { data } = await exchange(ctx.port, [encodeUwsgiPacket(nginxVars("GET", "/hello"))], { halfClose: true });
    expect(split(data).body.toString()).toBe("hello world");
  });

  it("echoes a POST body sent in pieces after the packet", async () => {
    const body = Buffer.from("x".repeat(70_000) + "the end");
    const vars = withVar(nginxVars("POST", "/echo"), "CONTENT_LENGTH", String(body.length));
    const packet = encodeUwsgiPacket(vars);
    // The first piece carries the packet and the start of the body together, as nginx writes them.
    const parts = [Buffer.concat([packet, body.subarray(0, 10)]), body.subarray(10, 40_000), body.subarray(40_000)];
    const { data } = await exchange(ctx.port, parts, { gapMs: 10 });
    const { head, body: echoed } = split(data);
    expect(head).toBe(
      `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
    );
    expect(echoed.equals(body)).toBe(true);
  });

  it("gives an empty body when CONTENT_LENGTH is absent or empty, whatever follows the packet", async () => {
    const { data } = await exchange(ctx.port, [encodeUwsgiPacket(nginxVars("POST", "/echo")), Buffer.from("not a body")]);
    expect(split(data).head).toContain("Content-Length: 0\r\n");
    expect(split(data).body.length).toBe(0);
  });

  it("reads no more than CONTENT_LENGTH bytes of body", async () => {
    const vars = withVar(nginxVars("POST", "/echo"), "CONTENT_LENGTH", "5");
    const { data } = await exchange(ctx.port, [encodeUwsgiPacket(vars), Buffer.from("hello, and more")]);
    expect(split(data).body.toString()).toBe("hello");
  });

  it("streams a large upload to a slow reader with back-pressure, intact", { timeout: 20_000 }, async () => {
    // Counts how often the server pauses the socket: the upload must wait for the app, not pile up in memory.
    let pauses = 0;
    const spy = (socket: net.Socket) => {
      const pause = socket.pause.bind(socket);
      socket.pause = () => {
        pauses += 1;
        return pause();
      };
    };
    ctx.server.prependListener("connection", spy);
    try {
      const total = 16 * MIB;
      const body = Buffer.concat([...bigBody(total)].map((chunk) => Buffer.from(chunk)));
      const vars = withVar(nginxVars("POST", "/slow-hash"), "CONTENT_LENGTH", String(total));
      const { data } = await exchange(ctx.port, [encodeUwsgiPacket(vars), body], { timeoutMs: 15_000 });
      expect(split(data).body.toString()).toBe(`${total} ${sha256(body)}`);
      expect(pauses).toBeGreaterThan(0);
    } finally {
      ctx.server.off("connection", spy);
    }
  });

  it("streams an 8 MiB generator body without Content-Length, ended by the close", { timeout: 15_000 }, async () => {
    const { data, ended } = await exchange(ctx.port, [encodeUwsgiPacket(nginxVars("GET", "/big"))], { timeoutMs: 10_000 });
    const { head, body } = split(data);
    expect(head).toBe("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n");
    expect(body.length).toBe(8 * MIB);
    expect(sha256(body)).toBe(bigBodyHash(8 * MIB));
    expect(ended).toBe("close");
  });

  it("answers 500 when the app throws, without diagnostics, and logs the error", async () => {
    const { data } = await exchange(ctx.port, [encodeUwsgiPacket(nginxVars("GET", "/throw"))]);
    expect(data.toString("latin1")).toBe(
      "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 22\r\n" +
        "Connection: close\r\n\r\nInternal Server Error\n",
    );
    expect(ctx.logs.join("")).toContain("the app broke");
  });

  it("sends repeated headers (Set-Cookie) as separate lines", async () => {
    const { data } = await exchange(ctx.port, [encodeUwsgiPacket(nginxVars("GET", "/cookies"))]);
    expect(split(data).head).toBe(
      "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
  });

  it("reports each response to onResponse", async () => {
    const before = ctx.probe.outcomes.length;
    await exchange(ctx.port, [encodeUwsgiPacket(nginxVars("GET", "/missing"))]);
    await until(() => ctx.probe.outcomes.length > before);
    const last = ctx.probe.outcomes.at(-1)!;
    expect(last.environ?.PATH_INFO).toBe("/missing");
    expect(last.outcome).toMatchObject({ code: 404, bytes: 4, clientGone: false });
  });
});

describe("uwsgi server: the environ from nginx's vars", () => {
  let ctx: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    ctx = await startServer({ multiprocess: true });
  });
  afterAll(() => stop(ctx.server));

  async function environOf(vars: Array<[string, string | Uint8Array]>): Promise<Record<string, unknown>> {
    const { data } = await exchange(ctx.port, [encodeUwsgiPacket(vars)]);
    return JSON.parse(split(data).body.toString("utf8")) as Record<string, unknown>;
  }

  it("maps uwsgi_params to the CGI keys", async () => {
    const environ = await environOf(nginxVars("GET", "/environ?a=1&b=%20"));
    expect(environ).toEqual({
      REQUEST_METHOD: "GET",
      SCRIPT_NAME: "",
      PATH_INFO: "/environ",
      QUERY_STRING: "a=1&b=%20",
      REQUEST_URI: "/environ?a=1&b=%20",
      SERVER_NAME: "example.test",
      SERVER_PORT: "8080",
      SERVER_PROTOCOL: "HTTP/1.1",
      REMOTE_ADDR: "192.0.2.7",
      REMOTE_PORT: "40000",
      DOCUMENT_ROOT: "/usr/share/nginx/html",
      "tsgi.url_scheme": "http",
      "tsgi.multiprocess": true,
      HTTP_HOST: "example.test",
      // CONTENT_TYPE / CONTENT_LENGTH: nginx sends "" for a request without them; the environ leaves them out.
    });
  });

  it("takes PATH_INFO from nginx ($document_uri: decoded, UTF-8) and strips a SCRIPT_NAME var from it", async () => {
    const vars = withVar(
      withVar(nginxVars("GET", "/app/environ"), "PATH_INFO", Buffer.from("/app/environ", "utf8").toString("latin1")),
      "SCRIPT_NAME",
      "/app",
    );
    const environ = await environOf(vars);
    expect(environ).toMatchObject({ SCRIPT_NAME: "/app", PATH_INFO: "/environ" });
    const utf8Path = nginxVars("GET", "/caf%C3%A9").map(([n, v]): [string, string | Uint8Array] =>
      n === "PATH_INFO" ? [n, Buffer.from("/café", "utf8")] : [n, v],
    );
    // A path that is not /environ reaches the 404 route: check its environ through onResponse instead.
    await exchange(ctx.port, [encodeUwsgiPacket(utf8Path)]);
    await until(() => ctx.probe.outcomes.some((o) => o.environ?.PATH_INFO === "/café"));
  });

  it("joins repeated headers as nginx >= 1.23 does, and drops the ones the CGI keys stand for", async () => {
    const environ = await environOf(
      nginxVars("POST", "/environ", [
        ["HTTP_X_FORWARDED_FOR", "foo"],
        ["HTTP_X_FORWARDED_FOR", "bar"],
        ["HTTP_X_FORWARDED_FOR", "bazz"],
        ["HTTP_COOKIE", "a=1"],
        ["HTTP_COOKIE", "b=2"],
        ["HTTP_TRANSFER_ENCODING", "chunked"],
        ["HTTP_CONTENT_LENGTH", "999"],
        ["HTTP_CONTENT_TYPE", "text/evil"],
        ["CONTENT_TYPE", "text/plain"],
        ["CONTENT_LENGTH", "0"],
      ]),
    );
    expect(environ).toMatchObject({
      HTTP_X_FORWARDED_FOR: "foo, bar, bazz",
      HTTP_COOKIE: "a=1; b=2",
      CONTENT_TYPE: "text/plain",
      CONTENT_LENGTH: "0",
    });
    expect(environ).not.toHaveProperty("HTTP_TRANSFER_ENCODING");
    expect(environ).not.toHaveProperty("HTTP_CONTENT_LENGTH");
    expect(environ).not.toHaveProperty("HTTP_CONTENT_TYPE");
  });

  it("sets tsgi.url_scheme from REQUEST_SCHEME, else from HTTPS", async () => {
    expect((await environOf(withVar(nginxVars("GET", "/environ"), "REQUEST_SCHEME", "https")))["tsgi.url_scheme"]).toBe("https");
    const noScheme = nginxVars("GET", "/environ").filter(([n]) => n !== "REQUEST_SCHEME");
    expect((await environOf([...noScheme, ["HTTPS", "on"]]))["tsgi.url_scheme"]).toBe("https");
    expect((await environOf(noScheme))["tsgi.url_scheme"]).toBe("http");
  });

  it("falls back to REQUEST_URI and the socket for what a minimal client does not send", async () => {
    const environ = await environOf([
      ["REQUEST_METHOD", "GET"],
      ["REQUEST_URI", "/environ?q=1"],
    ]);
    expect(environ).toMatchObject({
      PATH_INFO: "/environ",
      QUERY_STRING: "q=1",
      REMOTE_ADDR: "127.0.0.1",
      SERVER_NAME: "127.0.0.1",
      SERVER_PORT: String(ctx.port),
      SERVER_PROTOCOL: "HTTP/1.1",
    });
  });
});

describe("uwsgi server: refused requests", () => {
  let ctx: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    ctx = await startServer({ maxVarsSize: 1024, maxBodySize: 1000, headerTimeout: 300 });
  });
  afterAll(() => stop(ctx.server));

  const served = async () => split((await exchange(ctx.port, [encodeUwsgiPacket(nginxVars("GET", "/hello"))])).data).body.toString();
  const lastLog = () => ctx.logs.at(-1) ?? "";

  const closedCases: Array<{ name: string; bytes: Buffer[]; log: RegExp; halfClose?: boolean }> = [
    {
      name: "a malformed vars block",
      bytes: [Buffer.from([0, 4, 0, 0, 10, 0, 0x41, 0x42])],
      log: /invalid uwsgi packet: a var name of 10 bytes runs past the vars block/,
    },
    {
      name: "an oversized vars block (refused from the header)",
      bytes: [Buffer.from([0, 0x00, 0x08, 0]), Buffer.alloc(2048)],
      log: /vars block of 2048 bytes is over the limit of 1024 bytes/,
    },
    {
      name: "an unsupported modifier",
      bytes: [encodeUwsgiPacket(nginxVars("GET", "/hello"), { modifier1: 5 })],
      log: /unsupported uwsgi packet type: modifier1=5 modifier2=0/,
    },
    {
      name: "a packet cut short by the peer",
      bytes: [encodeUwsgiPacket(nginxVars("GET", "/hello")).subarray(0, 20)],
      halfClose: true,
      log: /connection closed after 20 of the \d+ bytes of a uwsgi packet/,
    },
    {
      name: "an HTTP request sent to the uwsgi port",
      bytes: [Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")],
      log: /unsupported uwsgi packet type: modifier1=71 modifier2=32/,
    },
  ];

  for (const { name, bytes, log, halfClose } of closedCases) {
    it(`closes the connection on ${name}, logs one line naming the peer, and keeps serving`, async () => {
      const before = ctx.logs.length;
      const { data } = await exchange(ctx.port, bytes, { halfClose });
      expect(data.length).toBe(0);
      await until(() => ctx.logs.length > before);
      expect(ctx.logs.length).toBe(before + 1);
      expect(lastLog()).toMatch(/^tsgi uwsgi: 127\.0\.0\.1:\d+: /);
      expect(lastLog()).toMatch(log);
      expect(lastLog().trimEnd()).not.toContain("\n");
      expect(await served()).toBe("hello world");
    });
  }

  it("closes a peer that does not send its whole packet within headerTimeout, even trickling bytes", async () => {
    const started = Date.now();
    // A byte every 100 ms would keep an idle timer at bay; the header deadline is absolute.
    const trickle = [Buffer.from([0, 100, 0, 0]), ...Array.from({ length: 20 }, () => Buffer.from([1]))];
    const { data } = await exchange(ctx.port, trickle, { gapMs: 100 });
    const elapsed = Date.now() - started;
    expect(data.length).toBe(0);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1000);
    expect(lastLog()).toMatch(/no complete uwsgi packet within 300 ms \([4-7] bytes received\)/);
  });

  it("answers 400 to a packet without REQUEST_METHOD (nginx without include uwsgi_params)", async () => {
    const { data } = await exchange(ctx.port, [encodeUwsgiPacket([["PATH_INFO", "/hello"], ["HTTP_HOST", "x"]])]);
    expect(data.toString("latin1")).toBe(
      "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 12\r\nConnection: close\r\n\r\nBad Request\n",
    );
    expect(lastLog()).toMatch(/uwsgi var REQUEST_METHOD: is missing: does the nginx location `include uwsgi_params`\?/);
  });

  it("answers 400 to a bad or conflicting CONTENT_LENGTH", async () => {
    const bad = await exchange(ctx.port, [encodeUwsgiPacket(withVar(nginxVars("POST", "/echo"), "CONTENT_LENGTH", "12abc"))]);
    expect(split(bad.data).head).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(lastLog()).toMatch(/CONTENT_LENGTH="12abc": is not a decimal byte count/);
    const twice = await exchange(ctx.port, [encodeUwsgiPacket([...nginxVars("POST", "/echo"), ["CONTENT_LENGTH", "1"], ["CONTENT_LENGTH", "2"]])]);
    expect(split(twice.data).head).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
  });

  it("answers 413 to a body over maxBodySize without calling the app", async () => {
    const outcomes = ctx.probe.outcomes.length;
    const vars = withVar(nginxVars("POST", "/echo"), "CONTENT_LENGTH", "5000");
    const { data } = await exchange(ctx.port, [encodeUwsgiPacket(vars), Buffer.alloc(5000)]);
    expect(data.toString("latin1")).toBe(
      "HTTP/1.1 413 Content Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 18\r\n" +
        "Connection: close\r\n\r\nContent Too Large\n",
    );
    expect(lastLog()).toMatch(/request body of 5000 bytes is over the limit of 1000 bytes/);
    await until(() => ctx.probe.outcomes.length > outcomes);
    // RunOutcome.bytes counts body bytes only: "Content Too Large\n", not the head.
    expect(ctx.probe.outcomes.at(-1)).toMatchObject({ environ: undefined, outcome: { code: 413, bytes: 18 } });
  });

  it("lets the app see a body cut short as an error, and logs it", async () => {
    const vars = withVar(nginxVars("POST", "/echo"), "CONTENT_LENGTH", "100");
    const before = ctx.logs.length;
    const { data } = await exchange(ctx.port, [encodeUwsgiPacket(vars), Buffer.from("only this")], { halfClose: true });
    // The app failed before its headers: a plain 500, and the cause in the log.
    expect(split(data).head).toMatch(/^HTTP\/1\.1 500 /);
    await until(() => ctx.logs.length > before);
    expect(ctx.logs.slice(before).join("")).toContain("connection closed after 9 of the 100 request body bytes");
  });

  it("survives 300 random packets: each rejected with one log line, then serves", { timeout: 20_000 }, async () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const before = ctx.logs.length;
    let sent = 0;
    const batch: Array<Promise<Exchange>> = [];
    for (let i = 0; i < 300; i++) {
      const junk = Buffer.alloc(1 + Math.floor(random() * 200));
      for (let j = 0; j < junk.length; j++) junk[j] = Math.floor(random() * 256);
      if (i % 2 === 0) junk[0] = junk[3] = 0; // half of them get past the modifier check
      sent += 1;
      batch.push(exchange(ctx.port, [junk], { halfClose: true }));
      if (batch.length === 50) await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
    await until(() => ctx.logs.length - before >= sent, 5000);
    expect(ctx.logs.length - before).toBe(sent);
    expect(await served()).toBe("hello world");
  });
});

describe("uwsgi server: peers, aborts and draining", () => {
  it("closes a peer that is not in allowedPeers, with one log line", async () => {
    const ctx = await startServer({ allowedPeers: ["192.0.2.1"] });
    try {
      const { data } = await exchange(ctx.port, [encodeUwsgiPacket(nginxVars("GET", "/hello"))]);
      expect(data.length).toBe(0);
      await until(() => ctx.logs.length === 1);
      expect(ctx.logs[0]).toMatch(/^tsgi uwsgi: 127\.0\.0\.1:\d+: uwsgi peer 127\.0\.0\.1 is not in the allowed peers\n$/);
    } finally {
      await stop(ctx.server);
    }
  });

  it("allows loopback by default and any peer with '*'", async () => {
    for (const allowedPeers of [undefined, ["*"]]) {
      const ctx = await startServer(allowedPeers ? { allowedPeers } : {});
      try {
        const { data } = await exchange(ctx.port, [encodeUwsgiPacket(nginxVars("GET", "/hello"))]);
        expect(split(data).body.toString()).toBe("hello world");
      } finally {
        await stop(ctx.server);
      }
    }
  });

  it("notices a client that goes away mid-stream: body closed, outcome clientGone", async () => {
    const ctx = await startServer();
    try {
      const socket = net.connect(ctx.port, "127.0.0.1");
      let received = 0;
      await new Promise<void>((resolve) => {
        socket.on("data", (chunk: Buffer) => {
          received += chunk.length;
          if (received > 256 * 1024) {
            socket.destroy();
            resolve();
          }
        });
        socket.on("connect", () => socket.write(encodeUwsgiPacket(nginxVars("GET", "/endless"))));
      });
      await until(() => ctx.probe.outcomes.length === 1);
      expect(ctx.probe.outcomes[0]!.outcome.clientGone).toBe(true);
      expect(ctx.probe.closedBodies).toBe(1);
      await until(() => ctx.server.inFlight === 0);
    } finally {
      await stop(ctx.server);
    }
  });

  it("drains: counts in-flight requests, lets them finish after close(), closes idle connections", async () => {
    const ctx = await startServer();
    const registry = new InFlight();
    const drained = await startServer({ inFlight: registry });
    try {
      for (const { server, port, probe } of [ctx, drained]) {
        probe.holding = new Promise((resolve) => (probe.release = resolve));
        const idle = net.connect(port, "127.0.0.1");
        idle.on("error", () => undefined);
        const idleClosed = new Promise((resolve) => idle.on("close", resolve));
        const held = exchange(port, [encodeUwsgiPacket(nginxVars("GET", "/hold"))]);
        await until(() => server.inFlight === 1);
        if (server === drained.server) expect(registry.size).toBe(1);

        let closed = false;
        server.close(() => (closed = true));
        expect(server.closeIdleConnections()).toBe(1);
        await idleClosed;
        // The held request is still running: the server has not closed.
        await new Promise((r) => setTimeout(r, 50));
        expect(closed).toBe(false);

        probe.release!();
        const { data } = await held;
        expect(split(data).body.toString()).toBe("held");
        await until(() => closed);
        expect(server.inFlight).toBe(0);
        if (server === drained.server) expect(registry.size).toBe(0);
      }
    } finally {
      ctx.server.closeAllConnections();
      drained.server.closeAllConnections();
    }
  });

  /**
   * Records how the server ends its sockets. A Node client cannot tell a reset
   * from a FIN (libuv reports both as EOF after a short read), so the test
   * looks at the server side; test/integration/nginx-uwsgi.test.ts shows what
   * nginx makes of it.
   */
  function watchResets(server: UwsgiServer): { resets: number } {
    const seen = { resets: 0 };
    server.prependListener("connection", (socket: net.Socket) => {
      const reset = socket.resetAndDestroy.bind(socket);
      socket.resetAndDestroy = () => {
        seen.resets += 1;
        return reset();
      };
    });
    return seen;
  }

  it("closeAllConnections resets in-flight connections (a truncated body never looks complete)", async () => {
    const ctx = await startServer();
    const seen = watchResets(ctx.server);
    const idle = net.connect(ctx.port, "127.0.0.1");
    idle.on("error", () => undefined);
    const held = exchange(ctx.port, [encodeUwsgiPacket(nginxVars("GET", "/endless"))]);
    await until(() => ctx.server.inFlight === 1);
    expect(ctx.server.closeAllConnections()).toBe(2);
    const { data } = await held;
    expect(split(data).head).not.toContain("Content-Length");
    expect(seen.resets).toBe(1); // the in-flight one; the idle one is simply closed
    await new Promise<void>((resolve) => ctx.server.close(() => resolve()));
  });

  it("resets the connection when the app fails after its headers went out", async () => {
    const failing: TsgiApp = (_environ, start) => {
      start("200 OK", [["Content-Type", "text/plain"]]);
      return (async function* () {
        yield "partial ";
        throw new Error("failed mid-body");
      })();
    };
    const logs: string[] = [];
    const server = createUwsgiServer(failing, { errors: { write: (m) => void logs.push(m) } });
    const seen = watchResets(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { data } = await exchange((server.address() as net.AddressInfo).port, [encodeUwsgiPacket(nginxVars("GET", "/"))]);
      expect(data.toString("latin1")).toBe("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\npartial ");
      expect(seen.resets).toBe(1);
      expect(logs.join("")).toContain("failed mid-body");
    } finally {
      await stop(server);
    }
  });
});

describe("uwsgi parts, without a socket", () => {
  const vars = (pairs: Array<[string, string]>): UwsgiVar[] => pairs.map(([name, value]) => [name, Buffer.from(value, "latin1")]);
  const base = baseEnviron({ serverName: "srv", serverPort: 9000, errors: { write: () => undefined } });
  const input = new BodyInput({ pause() {}, resume() {} } as unknown as net.Socket, 0);
  const environ = (pairs: Array<[string, string]>, peer = { address: "", port: undefined as number | undefined }, mount?: string) =>
    uwsgiEnviron(base, collectVars(vars(pairs)), input, peer, mount);

  it("collectVars: an empty CONTENT_LENGTH is no value; two different ones are refused", () => {
    expect(bodyLength(collectVars(vars([["CONTENT_LENGTH", ""], ["CONTENT_LENGTH", "5"]])))).toBe(5);
    expect(() => collectVars(vars([["CONTENT_LENGTH", "5"], ["CONTENT_LENGTH", "6"]]))).toThrow(InvalidUwsgiVar);
    expect(() => bodyLength(collectVars(vars([["CONTENT_LENGTH", "-1"]])))).toThrow(/not a decimal byte count/);
  });

  it("uwsgiEnviron: the server's mount point applies only to paths under it", () => {
    expect(environ([["REQUEST_METHOD", "GET"], ["PATH_INFO", "/app/x"]], undefined, "/app/")).toMatchObject({ SCRIPT_NAME: "/app", PATH_INFO: "/x" });
    expect(environ([["REQUEST_METHOD", "GET"], ["PATH_INFO", "/apple"]], undefined, "/app")).toMatchObject({ SCRIPT_NAME: "", PATH_INFO: "/apple" });
  });

  it("uwsgiEnviron: a unix-socket peer nginx did not name has no REMOTE_PORT; tsgi.* vars cannot be injected", () => {
    const env = environ([["REQUEST_METHOD", "GET"], ["PATH_INFO", "/"], ["tsgi.url_scheme", "https"]]);
    expect(env).not.toHaveProperty("REMOTE_PORT");
    expect(env["tsgi.url_scheme"]).toBe("http");
    expect(env["tsgi.input"]).toBe(input);
  });

  it("uwsgiEnviron: refuses a PATH_INFO that is not UTF-8 and a method that is not a token", () => {
    expect(() => environ([["REQUEST_METHOD", "GET"], ["PATH_INFO", "/\xff"]])).toThrow(/PATH_INFO.*is not valid UTF-8/);
    expect(() => environ([["REQUEST_METHOD", "G T"], ["PATH_INFO", "/"]])).toThrow(/is not an HTTP method/);
  });

  it("refusalResponse: a HEAD gets the same head and no body, and counts no body bytes", () => {
    const get = refusalResponse(400, false);
    const head = refusalResponse(400, true);
    expect(get.bodyBytes).toBe(12);
    expect(head.bodyBytes).toBe(0);
    expect(get.response.toString("latin1")).toBe(`${head.response.toString("latin1")}Bad Request\n`);
  });

  it("BodyInput: pauses the socket past the high-water mark and resumes as the app reads", async () => {
    const socket = { paused: false, pause: () => void (socket.paused = true), resume: () => void (socket.paused = false) };
    const body = new BodyInput(socket as unknown as net.Socket, 2 * BODY_HIGH_WATER_MARK);
    body.push(Buffer.alloc(BODY_HIGH_WATER_MARK));
    expect(socket.paused).toBe(true);
    const reader = body[Symbol.asyncIterator]();
    expect((await reader.next()).value).toHaveLength(BODY_HIGH_WATER_MARK);
    expect(socket.paused).toBe(false);
    body.push(Buffer.alloc(BODY_HIGH_WATER_MARK + 10)); // 10 bytes past CONTENT_LENGTH: not the body
    expect((await reader.next()).value).toHaveLength(BODY_HIGH_WATER_MARK);
    expect((await reader.next()).done).toBe(true);
  });

  it("BodyInput: a short body fails the pending read; discard ends it instead", async () => {
    const fake = { pause() {}, resume() {} } as unknown as net.Socket;
    const short = new BodyInput(fake, 10);
    const pending = short[Symbol.asyncIterator]().next();
    short.connectionEnded();
    await expect(pending).rejects.toThrow(/after 0 of the 10 request body bytes/);
    const unread = new BodyInput(fake, 10);
    const waiting = unread[Symbol.asyncIterator]().next();
    unread.discard();
    expect((await waiting).done).toBe(true);
  });

  it("docs/uwsgi.md documents every uwsgi error code", () => {
    const source = readFileSync(new URL("../../src/gateway/uwsgi/errors.ts", import.meta.url), "utf8");
    const docs = readFileSync(new URL("../../docs/uwsgi.md", import.meta.url), "utf8");
    const codes = [...source.matchAll(/code = "(TSGI_ERR_UWSGI_\w+)"/g)].map((match) => match[1]);
    expect(codes.length).toBeGreaterThan(8);
    expect(codes.filter((code) => !docs.includes(`\`${code}\``))).toEqual([]);
  });
});
