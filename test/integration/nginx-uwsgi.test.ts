/**
 * A REAL nginx (Debian's /usr/sbin/nginx; CI installs it with apt) in front of
 * createUwsgiServer through `uwsgi_pass` and nginx's own `uwsgi_params`
 * (the reliability matrix, W1). The first 13 cases are nginx's own uwsgi.t and
 * uwsgi_body.t, with our server where those tests run uWSGI: the same
 * outcomes are expected. The rest are what a user checks: queries, bodies in
 * and out (checksummed), statuses and repeated headers passing through, and a
 * response that breaks mid-body never reaching the client as complete.
 *
 * nginx runs in the foreground (daemon off, master_process off) from a temp
 * dir holding its config, pid, logs and temp paths; it is stopped by its pid.
 * If nginx is missing this test FAILS: it does not skip.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TsgiApp } from "../../src/tsgi/types.ts";
import { readAll } from "../../src/tsgi/util.ts";
import { createUwsgiServer, type UwsgiServer } from "../../src/gateway/uwsgi/server.ts";
import { NGINX, nginxConfig, type RunningNginx, startNginx } from "../helpers/nginx.ts";

const UWSGI_PARAMS = "/etc/nginx/uwsgi_params";
const MIB = 1024 * 1024;
const BIG_RESPONSE = 20 * MIB;

/* ---------------------------------------------------------------- the app */

function* bigBody(total: number): Generator<Uint8Array> {
  const size = 64 * 1024;
  for (let i = 0; i * size < total; i++) yield new Uint8Array(Math.min(size, total - i * size)).fill((i * 7) % 256);
}

function sha256Of(chunks: Iterable<Uint8Array>): string {
  const hash = createHash("sha256");
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest("hex");
}

/** The apps of nginx's uwsgi.t ("/", the default) and uwsgi_body.t ("/body"), and ours. */
const app: TsgiApp = async (environ, start) => {
  const path = environ.PATH_INFO;
  if (path === "/body") {
    // uwsgi_body.t's app: reads CONTENT_LENGTH bytes when there is a CONTENT_LENGTH.
    start("200 OK", [["Content-Type", "text/plain"]]);
    if (environ.CONTENT_LENGTH === undefined) return ["SEE-THIS"];
    const body = Buffer.from(await readAll(environ["tsgi.input"])).toString("latin1");
    return [`cl=${Number(environ.CONTENT_LENGTH)} '${body}'`];
  }
  if (path.startsWith("/environ")) {
    const keys = ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_URI", "SERVER_PROTOCOL",
      "SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR", "HTTP_HOST", "HTTP_USER_AGENT", "CONTENT_LENGTH", "tsgi.url_scheme"];
    start("200 OK", [["Content-Type", "application/json"]]);
    return [JSON.stringify(Object.fromEntries(keys.map((key) => [key, environ[key]])))];
  }
  if (path === "/echo-hash") {
    const hash = createHash("sha256");
    let length = 0;
    for await (const chunk of environ["tsgi.input"]) {
      hash.update(chunk);
      length += chunk.length;
    }
    start("200 OK", [["Content-Type", "text/plain"]]);
    return [`${length} ${hash.digest("hex")} ${environ.CONTENT_LENGTH ?? "-"}`];
  }
  if (path === "/big") {
    start("200 OK", [["Content-Type", "application/octet-stream"]]);
    return bigBody(BIG_RESPONSE);
  }
  if (path === "/broken") {
    start("200 OK", [["Content-Type", "application/octet-stream"]]);
    return (async function* () {
      yield* bigBody(MIB);
      throw new Error("the app failed mid-body");
    })();
  }
  if (path === "/cookies") {
    // Ignores any request body on purpose: the server must still get the response to nginx.
    start("200 OK", [["Content-Type", "text/plain"], ["Set-Cookie", "a=1; Path=/"], ["Set-Cookie", "b=2; Path=/"]]);
    return ["two cookies"];
  }
  if (path === "/not-found") {
    start("404 Not Found", [["Content-Type", "text/plain"]]);
    return ["no such thing\n"];
  }
  // uwsgi.t's app.
  start("200 OK", [
    ["Content-Type", "text/plain"],
    ["X-Forwarded-For", (environ.HTTP_X_FORWARDED_FOR as string | undefined) ?? ""],
    ["X-Cookie", (environ.HTTP_COOKIE as string | undefined) ?? ""],
    ["X-Foo", (environ.HTTP_FOO as string | undefined) ?? ""],
    ["X-Blah", (environ.HTTP_X_BLAH as string | undefined) ?? ""],
  ]);
  return ["SEE-THIS"];
};

/* ------------------------------------------------------------ nginx setup */

function nginxConf(dir: string, port: number, uwsgiPort: number): string {
  return nginxConfig(
    dir,
    `    access_log ${dir}/access.log;
    client_max_body_size 32m;

    upstream u {
        server 127.0.0.1:${uwsgiPort};
    }

    server {
        listen 127.0.0.1:${port};
        server_name localhost;

        # uwsgi_body.t: caches $content_length early, before a chunked body is read.
        set $variable $content_length;

        location / {
            include ${UWSGI_PARAMS};
            # uwsgi.t: a param named after a header makes nginx drop the client's copies of it.
            uwsgi_param HTTP_X_BLAH "blah";
            uwsgi_pass 127.0.0.1:${uwsgiPort};
        }

        location /var {
            include ${UWSGI_PARAMS};
            uwsgi_pass $arg_b;
        }
    }`,
    { connections: 128 },
  );
}

/* ---------------------------------------------------------------- clients */

interface RawResponse {
  status: number;
  head: string;
  body: string;
  text: string;
}

/** Sends a raw request (as nginx's own tests do) and reads until nginx closes. */
function raw(port: number, request: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no response within 5 s to ${JSON.stringify(request.slice(0, 60))}`));
    }, 5_000);
    socket.on("connect", () => socket.write(request));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("latin1");
      const at = text.indexOf("\r\n\r\n");
      resolve({ status: Number(/^HTTP\/1\.\d (\d{3})/.exec(text)?.[1] ?? 0), head: text.slice(0, at + 2), body: text.slice(at + 4), text });
    });
  });
}

/** What nginx's tests call http_get: an HTTP/1.0 GET with a Host header. */
const get10 = (port: number, path: string, extra = "") => raw(port, `GET ${path} HTTP/1.0\r\nHost: localhost\r\n${extra}\r\n`);

interface FetchedResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  length: number;
  sha256: string;
  text: string;
  complete: boolean;
}

/** An HTTP/1.1 request through node:http, hashing the body as it streams; `body` may be written in pieces (chunked). */
function request(
  port: number,
  options: { method?: string; path: string; headers?: http.OutgoingHttpHeaders; body?: Buffer[] },
): Promise<FetchedResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method: options.method ?? "GET", path: options.path, headers: options.headers, agent: false },
      (res) => {
        const hash = createHash("sha256");
        let length = 0;
        const firstBytes: Buffer[] = [];
        res.on("data", (chunk: Buffer) => {
          hash.update(chunk);
          length += chunk.length;
          if (length <= 4096) firstBytes.push(chunk);
        });
        const finish = (complete: boolean) =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            length,
            sha256: hash.digest("hex"),
            text: Buffer.concat(firstBytes).toString("utf8"),
            complete,
          });
        res.on("end", () => finish(res.complete));
        // The connection broke before the message ended: the client knows the body is incomplete.
        res.on("aborted", () => undefined);
        res.on("error", () => finish(false));
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error("no response within 20 s")));
    req.on("error", reject);
    void (async () => {
      for (const piece of options.body ?? []) {
        req.write(piece);
        await new Promise((r) => setTimeout(r, 5));
      }
      req.end();
    })();
  });
}

/* ------------------------------------------------------------------ tests */

describe("nginx uwsgi_pass -> createUwsgiServer", () => {
  let dir: string | undefined;
  let uwsgi: UwsgiServer | undefined;
  let uwsgiPort = 0;
  let nginx: RunningNginx | undefined;
  const appErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(NGINX)) {
      throw new Error(`${NGINX} is missing: this test needs a real nginx (apt-get install nginx). It does not skip.`);
    }
    if (!existsSync(UWSGI_PARAMS)) throw new Error(`${UWSGI_PARAMS} is missing: it ships with Debian's nginx packages.`);
    uwsgi = createUwsgiServer(app, { errors: { write: (message) => void appErrors.push(message) } });
    await new Promise<void>((resolve) => uwsgi!.listen(0, "127.0.0.1", resolve));
    uwsgiPort = (uwsgi.address() as net.AddressInfo).port;
    dir = await mkdtemp(join(tmpdir(), "tsgi-nginx-uwsgi-"));
    nginx = await startNginx(dir, (port) => nginxConf(dir!, port, uwsgiPort));
  }, 30_000);

  afterAll(async () => {
    if (nginx?.child.pid !== undefined && nginx.child.exitCode === null) {
      process.kill(nginx.child.pid, "SIGTERM");
      const exited = await Promise.race([nginx.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 5_000))]);
      if (!exited) {
        process.kill(nginx.child.pid, "SIGKILL");
        await nginx.exited;
      }
    }
    if (uwsgi) {
      uwsgi.closeAllConnections();
      await new Promise<void>((resolve) => uwsgi!.close(() => resolve()));
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 15_000);

  const port = () => nginx!.port;

  describe("nginx's uwsgi.t", () => {
    it("uwsgi request", async () => {
      const response = await get10(port(), "/");
      expect(response.status).toBe(200);
      expect(response.body).toBe("SEE-THIS");
    });

    it("no data in HEAD", async () => {
      const response = await raw(port(), "HEAD /head HTTP/1.0\r\nHost: localhost\r\n\r\n");
      expect(response.status).toBe(200);
      expect(response.text).not.toContain("SEE-THIS");
      expect(response.head).toMatch(/\r\nContent-Length: 8\r\n/);
    });

    it("uwsgi request with many ignored headers", async () => {
      const response = await get10(port(), "/headers", "X-Blah: ignored header\r\n".repeat(19));
      expect(response.body).toBe("SEE-THIS");
      // The app saw only the uwsgi_param, none of the 19 client headers.
      expect(response.head).toMatch(/\r\nX-Blah: blah\r\n/);
    });

    it("uwsgi with variables", async () => {
      const response = await get10(port(), `/var?b=127.0.0.1:${uwsgiPort}`);
      expect(response.body).toBe("SEE-THIS");
    });

    it("uwsgi with variables to upstream", async () => {
      const response = await get10(port(), "/var?b=u");
      expect(response.body).toBe("SEE-THIS");
    });

    describe("repeated headers", () => {
      let response: RawResponse;
      beforeAll(async () => {
        const headers = ["X-Forwarded-For", "Cookie", "Foo"].flatMap((name) => ["foo", "bar", "bazz"].map((v) => `${name}: ${v}\r\n`));
        response = await get10(port(), "/", headers.join(""));
      });

      it("uwsgi with multiple X-Forwarded-For headers", () => {
        expect(response.head).toMatch(/\r\nX-Forwarded-For: foo, bar, bazz\r\n/);
      });

      it("uwsgi with multiple Cookie headers", () => {
        expect(response.head).toMatch(/\r\nX-Cookie: foo; bar; bazz\r\n/);
      });

      it("uwsgi with multiple unknown headers", () => {
        expect(response.head).toMatch(/\r\nX-Foo: foo, bar, bazz\r\n/);
      });
    });
  });

  describe("nginx's uwsgi_body.t", () => {
    const withLength = (body: string) =>
      raw(port(), `GET /body HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    // Byte for byte what uwsgi_body.t sends (for an empty body that is a last chunk, then a stray "0\r\n\r\n" nginx ignores).
    const chunked = (body: string) =>
      raw(
        port(),
        `GET /body HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n` +
          `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
      );

    it("uwsgi no body", async () => {
      expect((await get10(port(), "/body")).body).toBe("SEE-THIS");
    });

    it("uwsgi body", async () => {
      expect((await withLength("foobar")).body).toBe("cl=6 'foobar'");
    });

    it("uwsgi empty body", async () => {
      expect((await withLength("")).body).toBe("cl=0 ''");
    });

    it("uwsgi chunked", async () => {
      expect((await chunked("foobar")).body).toBe("cl=6 'foobar'");
    });

    it("uwsgi empty chunked", async () => {
      expect((await chunked("")).body).toBe("cl=0 ''");
    });
  });

  describe("what a user checks", () => {
    it("passes a GET with a query: path decoded, query and REQUEST_URI as sent, client address", async () => {
      const response = await request(port(), { path: "/environ/a%20b?x=1&y=%2F", headers: { "User-Agent": "tsgi-test" } });
      expect(response.status).toBe(200);
      expect(JSON.parse(response.text)).toEqual({
        REQUEST_METHOD: "GET",
        SCRIPT_NAME: "",
        PATH_INFO: "/environ/a b",
        QUERY_STRING: "x=1&y=%2F",
        REQUEST_URI: "/environ/a%20b?x=1&y=%2F",
        SERVER_PROTOCOL: "HTTP/1.1",
        SERVER_NAME: "localhost",
        SERVER_PORT: String(port()),
        REMOTE_ADDR: "127.0.0.1",
        // Debian's current uwsgi_params sends $host (no port) as HTTP_HOST; older ones pass the client's Host.
        HTTP_HOST: expect.stringMatching(/^127\.0\.0\.1(:\d+)?$/),
        HTTP_USER_AGENT: "tsgi-test",
        "tsgi.url_scheme": "http",
      });
    });

    it("passes a 1 MiB POST body intact", async () => {
      const body = Buffer.from([...bigBody(MIB)].flatMap((chunk) => [...chunk]));
      const response = await request(port(), {
        method: "POST",
        path: "/echo-hash",
        headers: { "Content-Length": body.length },
        body: [body],
      });
      expect(response.text).toBe(`${MIB} ${sha256Of([body])} ${MIB}`);
    });

    it("turns a chunked request body from the client into CONTENT_LENGTH", async () => {
      const pieces = [Buffer.from("first piece, "), Buffer.from("second piece, "), Buffer.alloc(100_000, 0x61)];
      const total = pieces.reduce((sum, piece) => sum + piece.length, 0);
      const response = await request(port(), { method: "POST", path: "/echo-hash", body: pieces });
      expect(response.text).toBe(`${total} ${sha256Of(pieces)} ${total}`);
    });

    it("answers an empty POST with an empty body", async () => {
      const response = await request(port(), { method: "POST", path: "/echo-hash", headers: { "Content-Length": 0 } });
      expect(response.text).toBe(`0 ${sha256Of([])} 0`);
    });

    it("streams a 20 MiB response intact", { timeout: 30_000 }, async () => {
      const response = await request(port(), { path: "/big" });
      expect(response.status).toBe(200);
      expect(response.complete).toBe(true);
      expect(response.length).toBe(BIG_RESPONSE);
      expect(response.sha256).toBe(sha256Of(bigBody(BIG_RESPONSE)));
    });

    it("passes the app's 404 through with its body", async () => {
      const response = await request(port(), { path: "/not-found" });
      expect(response.status).toBe(404);
      expect(response.text).toBe("no such thing\n");
    });

    it("passes Set-Cookie twice as two headers", async () => {
      const response = await request(port(), { path: "/cookies" });
      expect(response.headers["set-cookie"]).toEqual(["a=1; Path=/", "b=2; Path=/"]);
      expect(response.text).toBe("two cookies");
    });

    it("delivers the response to a POST whose body the app never reads", async () => {
      const response = await request(port(), {
        method: "POST",
        path: "/cookies",
        headers: { "Content-Length": 4 * MIB },
        body: [Buffer.alloc(4 * MIB, 0x62)],
      });
      expect(response.status).toBe(200);
      expect(response.text).toBe("two cookies");
    });

    it("never lets a response that broke mid-body look complete to the client", { timeout: 15_000 }, async () => {
      const response = await request(port(), { path: "/broken" });
      expect(response.status).toBe(200);
      expect(response.complete).toBe(false);
      expect(response.length).toBeLessThanOrEqual(MIB);
      expect(appErrors.join("")).toContain("the app failed mid-body");
    });

    it("leaves no upstream error in nginx's log but the one from the broken response", async () => {
      const log = await readFile(join(dir!, "error.log"), "utf8");
      const upstreamErrors = log.split("\n").filter((line) => /\[(error|crit|alert)\]/.test(line) && line.includes("upstream"));
      // At most one line: the reset that made nginx cut the client off ("readv() failed (104: Connection reset by peer)").
      expect(upstreamErrors.length).toBeLessThanOrEqual(1);
      for (const line of upstreamErrors) expect(line).toContain('request: "GET /broken HTTP/1.1"');
    });
  });
});
