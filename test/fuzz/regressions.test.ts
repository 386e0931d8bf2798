/**
 * Inputs the fuzzers found, kept as they were found (hex, as the fuzzer
 * printed them) so that each stays fixed. Each names the fuzzer, the seed
 * and the input number it came from.
 */
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { FrontProxy } from "../../src/proxy/server.ts";
import { frontServer } from "../../src/proxy/listener.ts";

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function listen(server: net.Server): Promise<number> {
  const sockets = new Set<net.Socket>();
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as net.AddressInfo).port;
}

/** Our proxy in front of a node:http upstream that records every request it gets; the pool is warm, as in a running stack. */
async function stack(): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const upstream = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    req.on("end", () => res.end("ok"));
  });
  const upstreamPort = await listen(upstream);
  const proxy = new FrontProxy({ routes: [{ app: "echo", path: "/" }], retry: { echo: { tries: 1, nonIdempotent: false } } });
  closers.push(async () => proxy.close());
  proxy.setEndpoints("echo", [{ id: "echo.0", address: { kind: "tcp", host: "127.0.0.1", port: upstreamPort } }]);
  const port = await listen(frontServer(proxy, { headerTimeoutMs: 10_000 }));
  expect(await exchange(port, Buffer.from("GET /warm HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))).toMatch(/^HTTP\/1\.1 200 /);
  seen.splice(0);
  return { port, seen };
}

/** Writes the bytes, half-closes after a moment, and returns everything until the proxy closes. */
function exchange(port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let text = "";
    socket.setEncoding("latin1");
    socket.on("connect", () => {
      socket.write(bytes);
      setTimeout(() => socket.end(), 300);
    });
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("error", () => undefined);
    socket.on("close", () => resolve(text));
  });
}

describe("differential fuzzer finds", () => {
  it("seed 1 #1846: an HTTP/1.1 request without Host is refused by the proxy, and nothing pipelined behind it reaches the worker", async () => {
    // GET without Host (X-Host instead), then a chunked POST and a POST with Content-Length, pipelined.
    // Before: passed on, the worker's node:http answered 400 and closed, and the third request still went through.
    const input = Buffer.from(
      "474554202f662f313834362f3020485454502f312e310d0a582d486f73743a2066757a7a2e746573740d0a0d0a504f5354202f662f313834362f3120485454502f312e310d0a486f73743a2066757a7a2e746573740d0a5472616e736665722d456e636f64696e673a206368756e6b65640d0a0d0a360d0a64630a6139350d0a320d0a62320d0a610d0a3d35303d620d0a3536610d0a300d0a0d0a504f5354202f662f313834362f3220485454502f312e310d0a486f73743a2066757a7a2e746573740d0a436f6e74656e742d4c656e6774683a20320d0a436f6e6e656374696f6e3a20636c6f73650d0a0d0a3832",
      "hex",
    );
    const { port, seen } = await stack();
    const answer = await exchange(port, input);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer.match(/HTTP\/1\.1 \d{3}/g)).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen).toEqual([]);
  });
});
