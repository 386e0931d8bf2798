/**
 * @module stack/control
 *
 * How the CLI talks to a running stack: a small JSON-over-HTTP API on a unix
 * socket in the state dir (`<state_dir>/control.sock`). The socket file's
 * permissions are its access control, as with pm2's own RPC socket; nothing
 * listens on the network. `status`, `restart`, `scale` and `down` from any
 * terminal reach the foreground `up` or the detached one alike.
 *
 *   GET  /status              -> StackStatus
 *   POST /restart?app=NAME    -> { restarted: string[] }   (no app: every app with workers)
 *   POST /scale?app=NAME&n=N  -> { app, instances }
 *   POST /down                -> { stopping: true }, then the stack stops
 */
import http from "node:http";
import { existsSync, unlinkSync } from "node:fs";
import path from "node:path";

/** Where a stack's control socket lives in its state dir. */
export function controlSocketPath(stateDir: string): string {
  return path.join(stateDir, "control.sock");
}

/** What the control API drives: the stack implements it. */
export interface ControlTarget {
  status(): unknown;
  restart(app?: string): Promise<string[]>;
  reload(app?: string): Promise<unknown>;
  scale(app: string, instances: number): Promise<void>;
  down(): Promise<void>;
}

/** A request the stack refuses (unknown app, bad count): 400 with the message. */
export class ControlError extends Error {}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

async function dispatch(target: ControlTarget, method: string, url: URL): Promise<unknown> {
  const route = `${method} ${url.pathname}`;
  switch (route) {
    case "GET /status":
      return target.status();
    case "POST /reload":
      return target.reload(url.searchParams.get("app") ?? undefined);
    case "POST /restart":
      return { restarted: await target.restart(url.searchParams.get("app") ?? undefined) };
    case "POST /scale": {
      const app = url.searchParams.get("app") ?? "";
      const count = Number(url.searchParams.get("n"));
      if (!Number.isInteger(count) || count < 1) throw new ControlError(`scale ${app}: instances must be a whole number >= 1`);
      await target.scale(app, count);
      return { app, instances: count };
    }
    case "POST /down":
      // Answer first: the stack is about to stop, and this socket with it.
      setImmediate(() => void target.down());
      return { stopping: true };
    default:
      throw new ControlError(`no such control request: ${route}`);
  }
}

/** Serves the control API on `socketPath` (replacing a stale socket file). */
export async function startControlServer(socketPath: string, target: ControlTarget): Promise<http.Server> {
  if (existsSync(socketPath)) unlinkSync(socketPath);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://control");
    dispatch(target, req.method ?? "GET", url).then(
      (body) => send(res, 200, body),
      (error: Error) => send(res, error instanceof ControlError ? 400 : 500, { error: error.message }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  return server;
}

/** Calls the control API of the stack whose socket is `socketPath`; undefined when no stack answers there. */
export function callControl(socketPath: string, method: "GET" | "POST", path: string, timeoutMs = 60_000): Promise<{ status: number; body: any } | undefined> {
  return new Promise((resolve, reject) => {
    if (!existsSync(socketPath)) return resolve(undefined);
    const req = http.request({ socketPath, method, path, timeout: timeoutMs }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on("timeout", () => req.destroy(new Error(`the stack did not answer ${method} ${path} within ${timeoutMs} ms`)));
    req.on("error", (error: NodeJS.ErrnoException) => {
      // A socket file nobody listens on: a stack that died without cleaning up.
      if (error.code === "ECONNREFUSED" || error.code === "ENOENT") resolve(undefined);
      else reject(error);
    });
    req.end();
  });
}
