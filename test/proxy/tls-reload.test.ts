/**
 * Renewed certificates reach new TLS connections without a restart: real
 * certificates made by openssl, a real https server on 127.0.0.1:0, and
 * tls.connect reading which certificate the server presents. The files are
 * replaced the two ways renewal tools do it — overwritten in place, and new
 * files behind a symlink swap (certbot's live/ -> archive/) — and a pair that
 * cannot be used is reported while the old one keeps being served.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { CertificateError, loadCertificate, watchCertificate } from "../../src/proxy/tls-reload.ts";
import { type CertPair, selfSignedPair } from "../helpers/certs.ts";

const INTERVAL = 100;


let root: string;
/** Three distinct self-signed pairs, made once. */
let A: CertPair, B: CertPair, C: CertPair;


beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), "tsgi-tls-reload-"));
  A = selfSignedPair(root, "a");
  B = selfSignedPair(root, "b");
  C = selfSignedPair(root, "c");
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dirCount = 0;
function freshDir(): string {
  const dir = path.join(root, `case-${++dirCount}`);
  mkdirSync(dir);
  return dir;
}

/** The files a server is configured with, holding a copy of `pair`. */
function installed(pair: CertPair): { cert: string; key: string } {
  const dir = freshDir();
  const files = { cert: path.join(dir, "cert.pem"), key: path.join(dir, "key.pem") };
  copyFileSync(pair.cert, files.cert);
  copyFileSync(pair.key, files.key);
  return files;
}

function overwrite(files: { cert: string; key: string }, pair: CertPair): void {
  writeFileSync(files.cert, readFileSync(pair.cert));
  writeFileSync(files.key, readFileSync(pair.key));
}

const servers: https.Server[] = [];
const stops: (() => void)[] = [];
const sockets: tls.TLSSocket[] = [];

afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
});

async function serve(files: { cert: string; key: string }): Promise<{ server: https.Server; port: number }> {
  const server = https.createServer({ cert: readFileSync(files.cert), key: readFileSync(files.key) }, (_req, res) => res.end("ok"));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

function watch(list: https.Server[], files: { cert: string; key: string }) {
  const onReload = vi.fn();
  const onError = vi.fn<(error: Error) => void>();
  const stop = watchCertificate(list, files, { intervalMs: INTERVAL, onReload, onError });
  stops.push(stop);
  return { onReload, onError, stop };
}

/** Opens a TLS connection and keeps it; resolves once the handshake is done. */
function connect(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => resolve(socket));
    sockets.push(socket);
    socket.once("error", reject);
  });
}

/** The fingerprint of the certificate a new connection is given. */
async function presented(port: number): Promise<string> {
  const socket = await connect(port);
  const fingerprint = socket.getPeerCertificate().fingerprint256;
  socket.destroy();
  return fingerprint;
}

/** One keep-alive HTTP request over an open TLS connection. */
function request(socket: tls.TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const onData = (chunk: Buffer) => {
      text += chunk.toString("latin1");
      if (text.endsWith("\r\n\r\nok")) {
        socket.off("data", onData);
        resolve(text);
      }
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30 * INTERVAL): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(INTERVAL / 4);
  }
}

describe("loadCertificate", () => {
  it("returns the bytes of a usable pair", () => {
    expect(loadCertificate(A)).toEqual({ cert: readFileSync(A.cert), key: readFileSync(A.key) });
  });

  type BadCase = [what: string, make: (files: { cert: string; key: string }) => void, fault: "cert" | "key", message: RegExp];
  const CASES: BadCase[] = [
    ["missing certificate", (files) => rmSync(files.cert), "cert", /cannot read the certificate/],
    ["missing key", (files) => rmSync(files.key), "key", /cannot read the private key/],
    ["garbage certificate", (files) => writeFileSync(files.cert, "not a certificate\n"), "cert", /not a PEM certificate/],
    ["half-written certificate", (files) => writeFileSync(files.cert, readFileSync(A.cert).subarray(0, 200)), "cert", /not a PEM certificate/],
    ["garbage key", (files) => writeFileSync(files.key, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "key", /not a usable PEM private key/],
    ["key of another certificate", (files) => copyFileSync(B.key, files.key), "key", /does not match the certificate in/],
    ["key and certificate swapped", (files) => {
      copyFileSync(A.key, files.cert);
      copyFileSync(A.cert, files.key);
    }, "cert", /not a PEM certificate/],
  ];
  it.each(CASES)("%s: throws a CertificateError naming the file at fault", (_what, make, fault, message) => {
    const files = installed(A);
    make(files);
    let thrown: unknown;
    try {
      loadCertificate(files);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(CertificateError);
    const error = thrown as CertificateError;
    expect(error.file).toBe(files[fault]);
    expect(error.message.startsWith(`${files[fault]}: `)).toBe(true);
    expect(error.message).toMatch(message);
  });
});

describe("watchCertificate", () => {
  it("serves a certificate overwritten in place to new connections, leaving open ones alone", async () => {
    const files = installed(A);
    const { server, port } = await serve(files);
    const { onReload, onError } = watch([server], files);
    expect(await presented(port)).toBe(A.fingerprint);
    const open = await connect(port);
    expect(await request(open)).toMatch(/^HTTP\/1.1 200/);

    overwrite(files, B);
    await waitFor(async () => (await presented(port)) === B.fingerprint, "the new certificate");
    expect(onReload).toHaveBeenCalledTimes(1);
    expect(onError).not.toHaveBeenCalled();

    // The connection opened before still works, on the certificate it agreed.
    expect(open.getPeerCertificate().fingerprint256).toBe(A.fingerprint);
    expect(await request(open)).toMatch(/^HTTP\/1.1 200/);
    expect(open.destroyed).toBe(false);
  });

  it("follows a symlink swap (certbot's live/ -> archive/)", async () => {
    const dir = freshDir();
    mkdirSync(path.join(dir, "archive"));
    mkdirSync(path.join(dir, "live"));
    const link = (pair: CertPair, n: number) => {
      copyFileSync(pair.cert, path.join(dir, "archive", `cert${n}.pem`));
      copyFileSync(pair.key, path.join(dir, "archive", `privkey${n}.pem`));
      for (const [name, target] of [
        ["cert.pem", `cert${n}.pem`],
        ["privkey.pem", `privkey${n}.pem`],
      ] as const) {
        // A new link renamed over the old one: atomic, and the old inode stays as it was.
        const tmp = path.join(dir, "live", `${name}.tmp`);
        symlinkSync(path.join("..", "archive", target), tmp);
        renameSync(tmp, path.join(dir, "live", name));
      }
    };
    link(A, 1);
    const files = { cert: path.join(dir, "live", "cert.pem"), key: path.join(dir, "live", "privkey.pem") };
    const { server, port } = await serve(files);
    const { onReload, onError } = watch([server], files);
    expect(await presented(port)).toBe(A.fingerprint);

    link(B, 2);
    await waitFor(async () => (await presented(port)) === B.fingerprint, "the certificate behind the new link");
    link(C, 3);
    await waitFor(async () => (await presented(port)) === C.fingerprint, "the third certificate");
    expect(onReload).toHaveBeenCalledTimes(2);
    expect(onError).not.toHaveBeenCalled();
  });

  it("updates every server given", async () => {
    const files = installed(A);
    const one = await serve(files);
    const two = await serve(files);
    watch([one.server, two.server], files);
    overwrite(files, B);
    await waitFor(async () => (await presented(one.port)) === B.fingerprint, "server one");
    expect(await presented(two.port)).toBe(B.fingerprint);
  });

  it("waits for the key written just after its certificate, even when a poll sees the certificate alone", async () => {
    const files = installed(A);
    const { server, port } = await serve(files);
    const MARK = 103; // a delay nothing else here uses, to count the watcher's polls
    const timers = vi.spyOn(globalThis, "setTimeout");
    try {
      const polls = () => timers.mock.calls.filter(([, delay]) => delay === MARK).length;
      const onReload = vi.fn();
      const onError = vi.fn();
      stops.push(watchCertificate([server], files, { intervalMs: MARK, onReload, onError }));
      writeFileSync(files.cert, readFileSync(B.cert));
      // A poll completes (it schedules the next) with B's certificate beside A's key...
      const seen = polls();
      await waitFor(() => polls() > seen, "a poll");
      // ...and the key follows well within one interval.
      writeFileSync(files.key, readFileSync(B.key));
      await waitFor(() => onReload.mock.calls.length > 0, "the reload");
      expect(await presented(port)).toBe(B.fingerprint);
      await sleep(3 * MARK);
      expect(onReload).toHaveBeenCalledTimes(1);
      expect(onError).not.toHaveBeenCalled();
    } finally {
      timers.mockRestore();
    }
  });

  it("reports a garbage certificate once, naming it, keeps the old one, and recovers", async () => {
    const files = installed(A);
    const { server, port } = await serve(files);
    const { onReload, onError } = watch([server], files);
    writeFileSync(files.cert, "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n");
    await waitFor(() => onError.mock.calls.length > 0, "the error");
    const error = onError.mock.calls[0]![0];
    expect(error).toBeInstanceOf(CertificateError);
    expect((error as CertificateError).file).toBe(files.cert);
    expect(error.message).toContain(files.cert);
    expect(await presented(port)).toBe(A.fingerprint);
    await sleep(4 * INTERVAL);
    expect(onError).toHaveBeenCalledTimes(1); // not once per poll
    expect(onReload).not.toHaveBeenCalled();

    overwrite(files, B);
    await waitFor(async () => (await presented(port)) === B.fingerprint, "the fixed certificate");
    expect(onReload).toHaveBeenCalledTimes(1);
  });

  it("reports a key that does not match the certificate, naming the key, and keeps the old pair", async () => {
    const files = installed(A);
    const { server, port } = await serve(files);
    const { onReload, onError } = watch([server], files);
    writeFileSync(files.cert, readFileSync(B.cert)); // B's certificate, A's key still
    await waitFor(() => onError.mock.calls.length > 0, "the error");
    const error = onError.mock.calls[0]![0] as CertificateError;
    expect(error.file).toBe(files.key);
    expect(error.message).toMatch(/does not match the certificate/);
    expect(await presented(port)).toBe(A.fingerprint);
    expect(onReload).not.toHaveBeenCalled();

    // The matching key arriving late: tried again, and loaded.
    writeFileSync(files.key, readFileSync(B.key));
    await waitFor(async () => (await presented(port)) === B.fingerprint, "the completed pair");
    expect(onReload).toHaveBeenCalledTimes(1);
  });

  it("does not reload a pair whose bytes did not change (touch)", async () => {
    const files = installed(A);
    const { server } = await serve(files);
    const { onReload, onError } = watch([server], files);
    const later = new Date(Date.now() + 60_000);
    utimesSync(files.cert, later, later);
    overwrite(files, A);
    await sleep(6 * INTERVAL);
    expect(onReload).not.toHaveBeenCalled();
    expect(onError).not.toHaveBeenCalled();
  });

  it("keeps watching when a callback throws", async () => {
    const files = installed(A);
    const { server, port } = await serve(files);
    const warnings = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    try {
      const onReload = vi.fn(() => {
        throw new Error("boom");
      });
      stops.push(watchCertificate([server], files, { intervalMs: INTERVAL, onReload }));
      overwrite(files, B);
      await waitFor(() => onReload.mock.calls.length === 1, "the first reload");
      overwrite(files, C);
      await waitFor(async () => (await presented(port)) === C.fingerprint, "the second reload");
      expect(warnings).toHaveBeenCalled();
    } finally {
      warnings.mockRestore();
    }
  });

  it("stop() ends the polling: no more reloads, no timer left behind", async () => {
    const files = installed(A);
    const { server, port } = await serve(files);
    const INTERVAL_MARK = 97; // a delay nothing else here uses, to find the watcher's timers
    const timers = vi.spyOn(globalThis, "setTimeout");
    try {
      const onReload = vi.fn();
      const stop = watchCertificate([server], files, { intervalMs: INTERVAL_MARK, onReload });
      await sleep(3 * INTERVAL_MARK);
      const polls = () => timers.mock.calls.filter(([, delay]) => delay === INTERVAL_MARK).length;
      expect(polls()).toBeGreaterThanOrEqual(2); // it was polling
      const ticks = timers.mock.results.filter((_, i) => timers.mock.calls[i]![1] === INTERVAL_MARK).map((r) => r.value as NodeJS.Timeout);
      expect(ticks.every((t) => !t.hasRef())).toBe(true); // and never held the process open

      stop();
      stop(); // idempotent
      const before = polls();
      overwrite(files, B);
      await sleep(6 * INTERVAL_MARK);
      expect(polls()).toBe(before);
      expect(onReload).not.toHaveBeenCalled();
      expect(await presented(port)).toBe(A.fingerprint);
    } finally {
      timers.mockRestore();
    }
  });
});
