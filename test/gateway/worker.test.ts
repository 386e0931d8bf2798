/**
 * The gateway worker, end to end: `tsgi-stack serve` as a real process on
 * 127.0.0.1 port 0, driven over real sockets. Boot failures, HTTP serving,
 * app errors that must not kill the worker, and Gunicorn's lifecycle:
 * graceful stop, recycling, timeouts, chain reload.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import net from "node:net";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fork } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { BIN, fixture, httpGet, isAlive, runCli, serve, type Served, sleep, stopAll } from "../helpers/serve.ts";

const LOOPBACK = "127.0.0.1:0";

/** Sends raw bytes on a fresh connection and collects everything until the server closes it or `untilMs` passes. */
function rawExchange(url: string, payload: string, untilMs = 2000): Promise<{ data: string; closedByServer: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ data, closedByServer: false });
    }, untilMs);
    socket.on("connect", () => socket.write(payload));
    socket.on("data", (chunk) => (data += chunk));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ data, closedByServer: true });
    });
  });
}

afterAll(stopAll);

describe("serve: a module that cannot load is one line and a distinct exit code", () => {
  it("names the missing file and exits APP_LOAD_ERROR (4), without the arbiter", async () => {
    const result = await runCli(["serve", "no/such/app.ts", "--http", LOOPBACK, "--no-arbiter"]);
    expect(result.code).toBe(4);
    expect(result.stderr.split("\n")[0]).toMatch(/cannot load app no\/such\/app\.ts: no such file: .*no\/such\/app\.ts/);
  });

  it("halts the arbiter instead of restart-looping", async () => {
    const result = await runCli(["serve", "no/such/app.ts", "--http", LOOPBACK]);
    expect(result.code).toBe(4);
    expect(result.stdout).toMatch(/APP_LOAD_ERROR \(4\): halting/);
    expect(result.stderr.match(/cannot load app/g)).toHaveLength(1);
  });

  it("names the module and its error when the import throws", async () => {
    const result = await runCli(["serve", fixture("throws-at-import.ts"), "--http", LOOPBACK, "--no-arbiter"]);
    expect(result.code).toBe(4);
    expect(result.stderr.split("\n")[0]).toMatch(/throws-at-import\.ts.*database URL is not set/);
  });

  it("names a missing export and lists the ones there are", async () => {
    const result = await runCli(["serve", "examples/hello/app.ts:nope", "--http", LOOPBACK, "--no-arbiter"]);
    expect(result.code).toBe(4);
    expect(result.stderr.split("\n")[0]).toMatch(/has no export "nope" \(its exports: app\)/);
  });

  it("refuses an export that is not an app", async () => {
    const result = await runCli(["serve", fixture("not-callable.ts"), "--http", LOOPBACK, "--no-arbiter"]);
    expect(result.code).toBe(4);
    expect(result.stderr.split("\n")[0]).toMatch(/export "app" of .*not-callable\.ts is number, not a TSGI, Node or Fetch app/);
  });

  it("exits BOOT_ERROR (3) naming the address when the port is taken", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const result = await runCli(["serve", "examples/hello/app.ts", "--http", `127.0.0.1:${port}`, "--no-arbiter"]);
      expect(result.code).toBe(3);
      expect(result.stderr).toContain(`cannot listen on http://127.0.0.1:${port}: listen EADDRINUSE`);
    } finally {
      blocker.close();
    }
  });

  it("rejects a bad flag value naming the flag", async () => {
    const result = await runCli(["serve", "examples/hello/app.ts", "--timeout", "soon"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--timeout: "soon" is not a duration');
  });
});

describe("serve: HTTP/1.1", () => {
  let worker: Served;
  beforeAll(async () => {
    worker = await serve([fixture("lifecycle.ts"), "--http", LOOPBACK]);
  });

  it("answers on a kept-alive connection, twice", async () => {
    const request = "GET /pid HTTP/1.1\r\nHost: t\r\n\r\n";
    const { data } = await rawExchange(worker.url, request + request, 1000);
    const responses = data.split("HTTP/1.1 200 OK").length - 1;
    expect(responses).toBe(2);
    expect(data).toContain("Connection: keep-alive");
  });

  it("answers HEAD with the headers and no body", async () => {
    const { data } = await rawExchange(worker.url, "HEAD /pid HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    expect(data).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(data).toMatch(/Content-Length: \d+\r\n/);
    expect(data.endsWith("\r\n\r\n")).toBe(true);
  });

  it("streams a chunked request body back", async () => {
    const parts = ["alpha-", "beta-", "gamma"];
    const body = new ReadableStream({
      start(controller) {
        for (const part of parts) controller.enqueue(new TextEncoder().encode(part));
        controller.close();
      },
    });
    const response = await fetch(`${worker.url}/echo`, { method: "POST", body, duplex: "half" } as RequestInit);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("alpha-beta-gamma");
  });

  it("sends 100 Continue only when the app reads the body", async () => {
    const head = "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
    const { hostname, port } = new URL(worker.url);
    const data = await new Promise<string>((resolve) => {
      const socket = net.connect(Number(port), hostname, () => socket.write(head));
      let seen = "";
      socket.on("data", (chunk) => {
        seen += chunk;
        if (seen.includes("100 Continue") && !seen.includes("200 OK")) socket.write("hello");
      });
      socket.on("close", () => resolve(seen));
    });
    expect(data).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/);
    expect(data).toMatch(/\r\n\r\n5\r\nhello\r\n0\r\n\r\n$/);
  });

  it("answers malformed HTTP with 400 and keeps serving", async () => {
    const { data } = await rawExchange(worker.url, "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    expect(data).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    expect((await fetch(`${worker.url}/pid`)).status).toBe(200);
  });

  it.each([
    ["/throw-before", "an exception before startResponse"],
    ["/not-iterable", "a body that is not iterable"],
    ["/bad-chunk", "a chunk that is not bytes"],
    ["/twice", "startResponse called twice"],
  ])("answers %s (%s) with a plain 500 and logs the app's stack", async (route) => {
    const response = await fetch(`${worker.url}${route}`);
    expect(response.status).toBe(500);
    expect(await response.text()).toBe("Internal Server Error\n");
    await sleep(50);
    expect(worker.stderr()).toContain(`error in app while handling GET ${route}`);
  });

  it.each([
    ["/throw-after", "an exception after the headers"],
    ["/too-long", "more bytes than Content-Length"],
    ["/too-short", "fewer bytes than Content-Length"],
  ])("aborts %s (%s) so the client never sees a complete response", async (route) => {
    const { data, closedByServer } = await rawExchange(worker.url, `GET ${route} HTTP/1.1\r\nHost: t\r\n\r\n`);
    expect(closedByServer).toBe(true);
    if (route === "/too-long") {
      // The first chunk fits, so the head went out; the rest never does.
      expect(data).toContain("Content-Length: 5");
      expect(data).not.toContain("678");
    } else {
      expect(data).toMatch(/^HTTP\/1\.1 200 OK/);
      expect(data).not.toMatch(/\r\n0\r\n\r\n$/);
    }
  });

  it("produces a streamed body only as fast as the client reads it (back-pressure out)", async () => {
    const { hostname, port } = new URL(worker.url);
    const socket = net.connect(Number(port), hostname, () => socket.write("GET /big HTTP/1.1\r\nHost: t\r\n\r\n"));
    socket.once("data", () => socket.pause()); // read the head, then stop reading
    await sleep(700);
    const { produced } = JSON.parse((await httpGet(`${worker.url}/progress`)).body);
    socket.destroy();
    // Socket buffers on both sides hold a few MiB; without back-pressure all 256 MiB would be produced at once.
    expect(produced).toBeGreaterThan(0);
    expect(produced).toBeLessThan(32 * 1024 * 1024);
  });

  it("stops reading an upload while the app is not reading it (back-pressure in)", async () => {
    const { hostname, port } = new URL(worker.url);
    const total = 128 * 1024 * 1024;
    const socket = net.connect(Number(port), hostname);
    await once(socket, "connect");
    socket.write(`POST /slow-reader?wait=1500 HTTP/1.1\r\nHost: t\r\nContent-Length: ${total}\r\n\r\n`);
    const chunk = Buffer.alloc(1024 * 1024, 97);
    let accepted = 0;
    let response = "";
    socket.on("data", (data) => (response += data));
    // Write until the kernel and the worker stop taking bytes.
    const writeUntilBlocked = async () => {
      const blockedAt = Date.now() + 800;
      while (Date.now() < blockedAt && accepted < total) {
        accepted += chunk.byteLength;
        if (!socket.write(chunk)) await Promise.race([once(socket, "drain"), sleep(300)]);
      }
    };
    await writeUntilBlocked();
    expect(socket.writableLength).toBeGreaterThan(0); // our side is stuck: the worker is not reading
    expect(accepted - socket.writableLength).toBeLessThan(48 * 1024 * 1024);
    // Once the app reads, the upload completes and is counted in full.
    while (accepted < total) {
      accepted += chunk.byteLength;
      if (!socket.write(chunk)) await once(socket, "drain");
    }
    await new Promise<void>((resolve) => socket.on("data", () => response.includes(String(total)) && resolve()));
    expect(response).toMatch(new RegExp(`\\r\\n\\r\\n${total}$`));
    socket.destroy();
  });

  it("calls close() exactly once whatever happened, and the worker keeps its pid", async () => {
    const { hostname, port } = new URL(worker.url);
    // A client that reads a little of an endless stream and leaves.
    await new Promise<void>((resolve) => {
      const socket = net.connect(Number(port), hostname, () => socket.write("GET /stream-forever HTTP/1.1\r\nHost: t\r\n\r\n"));
      socket.once("data", () => setTimeout(() => socket.destroy(), 50));
      socket.on("close", () => resolve());
    });
    await sleep(200);
    const closes = JSON.parse(await (await fetch(`${worker.url}/closes`)).text());
    expect(closes).toEqual({ "/throw-after": 1, "/too-long": 1, "/too-short": 1, "/bad-chunk": 1, "/stream-forever": 1 });
    const pid = Number(await (await fetch(`${worker.url}/pid`)).text());
    expect(isAlive(pid)).toBe(true);
  });
});

describe("serve: worker lifecycle", () => {
  afterEach(stopAll);

  it("tells its parent 'ready' over IPC, as pm2's wait_ready expects", async () => {
    const child = fork(BIN, ["serve", "examples/hello/app.ts", "--http", LOOPBACK, "--no-arbiter"], { silent: true });
    const messages: unknown[] = [];
    await new Promise<void>((resolve) =>
      child.on("message", (message) => {
        messages.push(message);
        if (messages.length === 2) resolve();
      }),
    );
    expect(messages[0]).toBe("ready");
    expect(messages[1]).toMatchObject({ type: "tsgi:ready", data: { pid: child.pid, listeners: [expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/)] } });
    process.kill(child.pid!, "SIGKILL");
  });

  it("drains an in-flight request on SIGTERM, then exits 0 and refuses new connections", async () => {
    const worker = await serve([fixture("lifecycle.ts"), "--http", LOOPBACK, "--no-arbiter"]);
    const inFlight = fetch(`${worker.url}/slow?ms=800`);
    await sleep(200);
    process.kill(worker.pid, "SIGTERM");
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(response.headers.get("connection")).toBe("close");
    expect(await response.text()).toBe("slow done");
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    await expect(fetch(`${worker.url}/pid`)).rejects.toThrow();
  });

  it("drops what is still running at the graceful timeout", async () => {
    const worker = await serve([fixture("lifecycle.ts"), "--http", LOOPBACK, "--no-arbiter", "--graceful-timeout", "500ms"]);
    const hanging = rawExchange(worker.url, "GET /hang HTTP/1.1\r\nHost: t\r\n\r\n", 5000);
    await sleep(100);
    const signalledAt = Date.now();
    process.kill(worker.pid, "SIGTERM");
    expect((await worker.exited).code).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(2000);
    expect(await hanging).toEqual({ data: "", closedByServer: true });
  });

  it("recycles itself after --max-requests", async () => {
    const worker = await serve([fixture("lifecycle.ts"), "--http", LOOPBACK, "--no-arbiter", "--max-requests", "3"]);
    for (let i = 0; i < 3; i++) expect((await fetch(`${worker.url}/pid`)).status).toBe(200);
    expect((await worker.exited).code).toBe(0);
    expect(worker.stdout()).toContain("served 3 requests (max-requests 3): recycling");
  });

  it("is replaced by the arbiter after recycling, with no failed request", async () => {
    const worker = await serve([fixture("lifecycle.ts"), "--http", LOOPBACK, "--max-requests", "2"]);
    const pids = new Set<string>();
    const statuses: number[] = [];
    // A kept-alive client throughout: a retiring worker's responses say "Connection: close", so the client reconnects cleanly.
    const deadline = Date.now() + 15_000;
    while (pids.size < 3 && Date.now() < deadline) {
      const response = await fetch(`${worker.url}/pid`);
      statuses.push(response.status);
      pids.add(await response.text());
    }
    expect(pids.size).toBe(3);
    expect(statuses.every((status) => status === 200)).toBe(true);
  });

  it("leaves with exit code TIMEOUT (5) when a request awaits past --timeout", async () => {
    const worker = await serve([fixture("lifecycle.ts"), "--http", LOOPBACK, "--no-arbiter", "--timeout", "1s"]);
    const startedAt = Date.now();
    const hanging = await rawExchange(worker.url, "GET /hang HTTP/1.1\r\nHost: t\r\n\r\n", 5000);
    expect(hanging.closedByServer).toBe(true);
    expect((await worker.exited).code).toBe(5);
    expect(Date.now() - startedAt).toBeLessThan(3000);
    expect(worker.stderr()).toContain("request GET /hang ran past the 1000 ms timeout");
  });

  it("is killed by the watchdog when a request blocks the event loop", async () => {
    const worker = await serve([fixture("lifecycle.ts"), "--http", LOOPBACK, "--no-arbiter", "--timeout", "1s"]);
    const spinning = await rawExchange(worker.url, "GET /spin HTTP/1.1\r\nHost: t\r\n\r\n", 5000);
    expect(spinning.closedByServer).toBe(true);
    expect(await worker.exited).toEqual({ code: null, signal: "SIGKILL" });
    expect(worker.stderr()).toMatch(/event loop blocked for \d+ ms \(timeout 1000 ms\)/);
  });

  it("keeps serving under the arbiter while the watchdog kills a blocked worker", async () => {
    const worker = await serve([fixture("lifecycle.ts"), "--http", LOOPBACK, "--timeout", "1s", "-w", "2"], {
      readyPattern: /2 worker\(s\) ready on (.+)$/m,
    });
    const spinning = rawExchange(worker.url, "GET /spin HTTP/1.1\r\nHost: t\r\n\r\n", 5000);
    // Let the spinning worker block first: a connection it accepted in the same batch as /spin would wait with it.
    await sleep(300);
    const statuses: number[] = [];
    while (!(await Promise.race([spinning.then(() => true), sleep(0).then(() => false)]))) {
      statuses.push((await httpGet(`${worker.url}/pid`)).status);
    }
    expect(statuses.length).toBeGreaterThan(5);
    expect(statuses.every((status) => status === 200)).toBe(true);
    await sleep(1500); // the replacement boots
    expect(worker.stdout()).toMatch(/exited \(SIGKILL\) after \d+ ms: replacing it/);
    expect((await httpGet(`${worker.url}/pid`)).status).toBe(200);
  });

  it("recycles on --timeout under the arbiter without refusing a connection", async () => {
    const worker = await serve([fixture("lifecycle.ts"), "--http", LOOPBACK, "--timeout", "1s"]);
    const before = (await httpGet(`${worker.url}/pid`)).body;
    const hanging = rawExchange(worker.url, "GET /hang HTTP/1.1\r\nHost: t\r\n\r\n", 5000);
    let after = before;
    while (after === before) after = (await httpGet(`${worker.url}/pid`)).body;
    expect((await hanging).closedByServer).toBe(true);
    await sleep(300);
    expect(isAlive(Number(before))).toBe(false);
  });

  it("chain-reloads on SIGHUP: every worker replaced, requests served throughout", async () => {
    const worker = await serve([fixture("lifecycle.ts"), "--http", LOOPBACK, "-w", "2"], { readyPattern: /2 worker\(s\) ready on (.+)$/m });
    const pidsBefore = new Set<string>();
    for (let i = 0; i < 10; i++) pidsBefore.add((await httpGet(`${worker.url}/pid`)).body);
    process.kill(worker.pid, "SIGHUP");
    const statuses: number[] = [];
    const deadline = Date.now() + 10_000;
    let replaced = false;
    while (Date.now() < deadline && !replaced) {
      const response = await httpGet(`${worker.url}/pid`);
      statuses.push(response.status);
      replaced = [...pidsBefore].every((old) => !isAlive(Number(old))) && !pidsBefore.has(response.body);
    }
    expect(replaced).toBe(true);
    expect(statuses.length).toBeGreaterThan(5);
    expect(statuses.every((status) => status === 200)).toBe(true);
  });

  it("serves HTTP on a unix socket", async () => {
    const socketPath = path.join(mkdtempSync(path.join(os.tmpdir(), "tsgi-")), "worker.sock");
    await serve(["examples/hello/app.ts", "--socket", socketPath, "--no-arbiter"]);
    const body = await new Promise<string>((resolve, reject) => {
      http.get({ socketPath, path: "/x" }, (res) => {
        let text = "";
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => resolve(text));
      }).on("error", reject);
    });
    expect(body).toBe("Hello from TSGI: GET /x\n");
  });
});

describe("serve: every interface from the command line", () => {
  afterEach(stopAll);

  it.each([
    ["examples/hello/app.ts", "/", "Hello from TSGI: GET /"],
    ["examples/express/app.ts", "/", "Hello from Express behind TSGI"],
    ["examples/hono/app.ts", "/", "Hello from Hono behind TSGI"],
    ["examples/dispatch/app.ts", "/goodbye/world", "Goodbye, world! (mounted at /goodbye)"],
  ])("%s answers %s", async (module, route, expected) => {
    const worker = await serve([module, "--http", LOOPBACK, "--no-arbiter"]);
    const response = await fetch(`${worker.url}${route}`);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain(expected);
  });

  it("loads a TypeScript app from a folder with no package.json", async () => {
    const folder = mkdtempSync(path.join(os.tmpdir(), "tsgi-app-"));
    writeFileSync(
      path.join(folder, "app.ts"),
      'export const app = (environ: { PATH_INFO: string }, start: (s: string, h: [string, string][]) => void) => {\n' +
        '  start("200 OK", [["Content-Type", "text/plain"]]);\n  return [`bare ${environ.PATH_INFO}`];\n};\n',
    );
    const worker = await serve([path.join(folder, "app.ts"), "--http", LOOPBACK, "--no-arbiter"]);
    expect(await (await fetch(`${worker.url}/x`)).text()).toBe("bare /x");
  });

  it("serves a plain (req, res) listener with --interface node", async () => {
    const worker = await serve([fixture("plain-listener.ts"), "--interface", "node", "--http", LOOPBACK, "--no-arbiter"]);
    expect(await (await fetch(`${worker.url}/a?b=1`)).text()).toBe("plain listener saw GET /a?b=1\n");
  });
});
