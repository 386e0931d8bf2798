/**
 * HTTPS at the front door: `proxy.tls` with a certificate and key serves the
 * same routes over TLS (X-Forwarded-Proto https), and a certificate that
 * cannot be used stops `up` with a line naming `proxy.tls` before anything
 * starts. The certificate is made here by openssl (Debian's, on every machine).
 */
import { afterAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { renameSync, writeFileSync } from "node:fs";
import https from "node:https";
import tls from "node:tls";
import path from "node:path";
import { ROOT, isAlive, runCli, sleep } from "../helpers/serve.ts";
import { pm2DaemonPid, stackDir, statusJson, up } from "../helpers/stack.ts";

const started = new Set<ChildProcess>();
const seenPids = new Set<number>();

afterAll(async () => {
  for (const child of started) if (child.exitCode === null) process.kill(child.pid!, "SIGKILL");
  for (const pid of seenPids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
});

function selfSigned(dir: string, name = "cert", subject = "localhost"): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}-key.pem`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", `/CN=${subject}`], {
    stdio: "ignore",
  });
  return { cert, key };
}

function httpsGet(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { rejectUnauthorized: false, agent: false, headers: { host } }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

/** The common name of the certificate a fresh TLS connection to `url` is shown. */
function presentedName(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      const name = String(socket.getPeerCertificate().subject?.CN ?? "");
      socket.destroy();
      resolve(name);
    });
    socket.on("error", reject);
  });
}

const config = (tls: string, workers = 1) => `
proxy:
  listen: ["127.0.0.1:0"]
  admin: "127.0.0.1:0"
  workers: ${workers}
  tls: ${tls}
apps:
  legacy:
    command: node ${ROOT}/examples/legacy/server.js
    routes: [{ host: legacy.localhost }]
`;

describe("tsgi-stack up with proxy.tls", () => {
  it("serves the routes over HTTPS too", async () => {
    const { dir, file } = stackDir("");
    const { cert, key } = selfSigned(dir);
    writeFileSync(file, config(`{ cert: ${cert}, key: ${key}, listen: ["127.0.0.1:0"] }`));
    const stack = await up(file, { serving: /serving on (http:\/\/[^/\s]+)\/, (https:\/\/[^/\s]+)\//, onSpawn: (child) => started.add(child) });
    seenPids.add(stack.child.pid!);
    const status = await statusJson(file);
    for (const row of status.workers) seenPids.add(row.pid);
    seenPids.add(pm2DaemonPid(dir)!);
    expect(status.listenTls).toHaveLength(1);

    const secure = await httpsGet(`${stack.match[2]}/x`, "legacy.localhost");
    expect(secure.status).toBe(200);
    expect(secure.body).toMatch(/^Hello from a plain node:http server \(pid \d+\): GET \/x/);
    // proxy.tls.http2 defaults to true: the proxy process offers HTTP/2 on the same port (curl from Debian, with nghttp2).
    const port = new URL(stack.match[2]!).port;
    const h2 = execFileSync("curl", ["-sk", "--http2", "--max-time", "5", "--resolve", `legacy.localhost:${port}:127.0.0.1`, "-w", "\\n%{http_version}", `https://legacy.localhost:${port}/x`], { encoding: "utf8" });
    expect(h2).toMatch(/^Hello from a plain node:http server \(pid \d+\): GET \/x[\s\S]*\n2$/);

    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
    await sleep(200);
    expect([...seenPids].filter(isAlive)).toEqual([]);
  });

  it("with two proxy processes, a renewed certificate reaches both: every new connection is shown the new one", async () => {
    const { dir, file } = stackDir("");
    const { cert, key } = selfSigned(dir, "live", "old.localhost");
    writeFileSync(file, config(`{ cert: ${cert}, key: ${key}, listen: ["127.0.0.1:0"] }`, 2));
    const stack = await up(file, { serving: /serving on (http:\/\/[^/\s]+)\/, (https:\/\/[^/\s]+)\//, onSpawn: (child) => started.add(child) });
    seenPids.add(stack.child.pid!);
    const status = await statusJson(file);
    for (const row of status.workers) seenPids.add(row.pid);
    for (const proxy of status.proxies) seenPids.add(proxy.pid);
    seenPids.add(pm2DaemonPid(dir)!);
    expect(status.proxies).toHaveLength(2);
    expect(await presentedName(stack.match[2]!)).toBe("old.localhost");

    // certbot's way: the new pair written beside, then moved over the live files.
    const renewed = selfSigned(dir, "renewed", "new.localhost");
    renameSync(renewed.key, key);
    renameSync(renewed.cert, cert);
    const deadline = Date.now() + 15_000;
    let names: string[] = [];
    for (;;) {
      // Twenty fresh connections: the kernel hands them to both processes.
      names = await Promise.all(Array.from({ length: 20 }, () => presentedName(stack.match[2]!)));
      const bothSaid = [0, 1].every((index) => stack.output().includes(`proxy.${index}: proxy.tls: loaded the new certificate`));
      if ((bothSaid && names.every((name) => name === "new.localhost")) || Date.now() > deadline) break;
      await sleep(250);
    }
    expect(new Set(names)).toEqual(new Set(["new.localhost"]));
    // Each proxy process watches the files itself and says so.
    for (const index of [0, 1]) expect(stack.output()).toMatch(new RegExp(`proxy\\.${index}: proxy\\.tls: loaded the new certificate`));

    process.kill(stack.child.pid!, "SIGINT");
    expect(await stack.exited).toBe(0);
  }, 60_000);

  it("refuses a certificate it cannot use, naming proxy.tls, before anything starts", async () => {
    const { dir, file } = stackDir("");
    const bogus = path.join(dir, "bogus.pem");
    writeFileSync(bogus, "not a certificate\n");
    writeFileSync(file, config(`{ cert: ${bogus}, key: ${bogus} }`));
    const result = await runCli(["up", "-c", file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/proxy\.tls\.cert: \S*bogus\.pem: not a PEM certificate/);
    expect(pm2DaemonPid(dir)).toBeUndefined();
  });
});
