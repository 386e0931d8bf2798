/**
 * @module test/helpers/serve
 *
 * Starts `tsgi-stack serve …` as a real child process on 127.0.0.1 port 0,
 * waits for its "ready:" line, and reads back the addresses it bound. Every
 * process started here is stopped by its pid in `stopAll()` (call it in
 * afterEach/afterAll), so no test leaves a worker behind.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The built CLI (`npm test` builds it first): tests run the package as a user gets it. */
export const BIN = path.join(ROOT, "dist/cli/bin.js");
export const fixture = (name: string) => path.join(ROOT, "test/fixtures/apps", name);

export interface Served {
  child: ChildProcess;
  pid: number;
  /** "http://127.0.0.1:PORT" of the first HTTP listener, when there is one. */
  url: string;
  /** Every listener the worker reported, as printed ("http://…", "uwsgi://…", "http+unix:…"). */
  listeners: string[];
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started = new Set<ChildProcess>();

/** Runs the CLI to completion (for commands that are expected to exit). */
export async function runCli(args: string[], timeoutMs = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  started.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (data) => (stdout += data));
  child.stderr.on("data", (data) => (stderr += data));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  started.delete(child);
  return { code, stdout, stderr };
}

/** Starts `tsgi-stack serve <args>` and waits until a worker (or the arbiter) reports ready. */
export async function serve(args: string[], options: { readyPattern?: RegExp; timeoutMs?: number } = {}): Promise<Served> {
  const child = spawn(process.execPath, [BIN, "serve", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  started.add(child);
  let stdout = "";
  let stderr = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      started.delete(child);
      resolve({ code, signal });
    }),
  );
  const readyPattern = options.readyPattern ?? /ready: (.+)$/m;
  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`serve ${args.join(" ")} not ready in time\nstdout: ${stdout}\nstderr: ${stderr}`)),
      options.timeoutMs ?? 15_000,
    );
    child.stdout!.on("data", (data) => {
      stdout += data;
      const match = readyPattern.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] ?? "");
      }
    });
    child.stderr!.on("data", (data) => (stderr += data));
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code ?? signal}) before ready\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
  const line = await ready;
  const listeners = line.split(", ").map((entry) => entry.trim());
  const url = listeners.find((entry) => entry.startsWith("http://")) ?? "";
  return { child, pid: child.pid!, url, listeners, stdout: () => stdout, stderr: () => stderr, exited };
}

/** SIGKILLs every process still running from this file's helpers, by pid, and waits for each to go. */
export async function stopAll(): Promise<void> {
  await Promise.all(
    [...started].map(async (child) => {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = once(child, "exit");
        process.kill(child.pid!, "SIGKILL");
        await gone;
      }
      started.delete(child);
    }),
  );
}

/** True while `pid` runs; a zombie (a pm2 daemon exited, not yet reaped by init) counts as gone, as the stack counts it. */
export { isAlive } from "../../src/supervisor/probes.ts";

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every `everyMs` until it gives a value; throws, naming `what`, after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * GET on a fresh connection that is closed afterwards: for tests where a
 * pooled keep-alive connection to a worker that was just replaced would fail
 * for reasons that belong to the client, not to the server under test.
 */
export function httpGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, headers: { connection: "close", ...headers } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    request.on("error", reject);
  });
}
