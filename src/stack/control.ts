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
 *   POST /restart?app=NAME    -> { restarted: string[], pools: PoolOutcome[] }   (no app: every app with workers)
 *   POST /scale?app=NAME&n=N  -> { app, instances, pool: PoolOutcome }   (N, or +K / -K from the running count)
 *   POST /down                -> { stopping: true }, then the stack stops
 *
 * The admin listener (admin/server.ts) serves the same requests over TCP,
 * behind its token: the CLI and the status page use one API.
 *
 * A refusal is answered `{ error, code }` with the error's status (400), any
 * other failure 500 with its code when it is a catalog error; the CLI shows
 * the message and keeps the code on the error it throws. The CONTROL group of
 * the catalog (src/errors.ts, docs/errors.md) is stated here.
 */
import { MAX_INSTANCES } from "../contract/limits.ts";
import http from "node:http";
import { existsSync, unlinkSync } from "node:fs";
import path from "node:path";
import { errorGroup, TsgiStackError } from "../errors.ts";
import type { OutcomeCount, SeriesPoint, StackStatus } from "./status.ts";
import type { MetricsJson } from "../proxy/stats.ts";

/** Where a stack's control socket lives in its state dir. */
export function controlSocketPath(stateDir: string): string {
  return path.join(stateDir, "control.sock");
}

/** How an app's pool stands after `restart` or `scale`: what the CLI needs to say whether it worked. */
export interface PoolOutcome {
  app: string;
  ready: number;
  instances: number;
  /** Why the pool is short, when it is (a halt's message). */
  error?: string;
}

/** What the control API drives: the stack implements it. */
export interface ControlTarget {
  status(): StackStatus;
  restart(app?: string): Promise<PoolOutcome[]>;
  reload(app?: string): Promise<unknown>;
  scale(app: string, instances: number): Promise<PoolOutcome>;
  down(): Promise<void>;
}

/**
 * What a running stack offers its admin listener (admin/, a room above this
 * one, which the CLI hands the stack as `StackOptions.admin`): the control
 * API's actions, the status, the plots' points as they come, the outcome
 * counts and the proxy processes' counters.
 */
export interface ObservedStack extends ControlTarget {
  /** The plots' points, oldest first (the last minutes). */
  series(): SeriesPoint[];
  /** Called each second with the newest point. Returns the unsubscribe function. */
  onSample(listener: (point: SeriesPoint) => void): () => void;
  outcomes(): OutcomeCount[];
  /** Every proxy process's metrics (prom-client JSON), to be summed. */
  proxyMetrics(): MetricsJson[];
  /** The admin listener's address and token as the plan has them (TSGI_ADMIN_TOKEN is read by the admin room). */
  readonly adminSettings: { host: string; port: number; token?: string };
}

/** A request the stack refuses (unknown app, bad count): 400 with the message. The subclasses say which refusal. */
export class ControlError extends TsgiStackError {
  static readonly code: string = "TSGI_ERR_CONTROL_REFUSED";
  static readonly status: number = 400;
}

/** `restart`, `reload` or `scale` named an app the running config does not have. */
export class UnknownApp extends ControlError {
  static override readonly code = "TSGI_ERR_CONTROL_UNKNOWN_APP";

  constructor(
    readonly app: string,
    apps: readonly string[],
  ) {
    super(`no app named "${app}" (apps: ${apps.join(", ")})`, { at: app });
  }
}

/** `restart`, `reload` or `scale` named a static app: the proxy serves it, it has no workers. */
export class StaticAppRefused extends ControlError {
  static override readonly code = "TSGI_ERR_CONTROL_STATIC_APP";

  constructor(
    readonly app: string,
    verb: string,
    kind: "static" | "redirect" = "static",
  ) {
    super(`cannot ${verb} "${app}": it is a ${kind} app, served by the proxy itself, with no workers`, { at: app });
  }
}

/** `scale` with a count that is not a whole number >= 1. */
export class BadInstanceCount extends ControlError {
  static override readonly code = "TSGI_ERR_CONTROL_BAD_INSTANCES";
}

/** A method and path the control API does not have (a CLI newer than the running stack). */
export class UnknownControlRequest extends ControlError {
  static override readonly code = "TSGI_ERR_CONTROL_UNKNOWN_REQUEST";
  static override readonly status = 404;
}

/** The control socket could not be opened: `up` cannot be reached by `status`, `down`, `reload`. */
export class ControlSocketFailed extends TsgiStackError {
  static readonly code = "TSGI_ERR_CONTROL_SOCKET";

  constructor(
    readonly socketPath: string,
    cause: Error,
  ) {
    super(`cannot open the control socket ${socketPath}: ${cause.message}`, { at: socketPath, cause });
  }
}

/** No stack answers on the config file's control socket. */
export class StackNotRunning extends TsgiStackError {
  static readonly code = "TSGI_ERR_CONTROL_NOT_RUNNING";

  constructor(
    readonly file: string,
    /** The config file of the stack that does answer on the same state dir's socket, if one does. */
    readonly otherFile?: string,
  ) {
    super(
      otherFile
        ? `the stack of ${file} is not running (its state_dir is in use by the stack of ${otherFile}; give each config file a state_dir of its own)`
        : `the stack of ${file} is not running`,
      { at: file },
    );
  }
}

/** No stack answers, but pm2's daemon of its state dir still runs: the stack process died and left its workers. */
export class StackLeftBehind extends TsgiStackError {
  static readonly code = "TSGI_ERR_CONTROL_LEFT_BEHIND";

  constructor(
    readonly file: string,
    readonly daemonPid: number,
  ) {
    super(
      `the stack of ${file} is not running, but its stack process died and left pm2's daemon (pid ${daemonPid}) running its workers: ` +
        `\`tsgi-stack down -c ${file}\` stops them, \`tsgi-stack up -c ${file}\` replaces them`,
      { at: file },
    );
  }
}

/** The stack took the request but did not answer in time. */
export class ControlTimeout extends TsgiStackError {
  static readonly code = "TSGI_ERR_CONTROL_TIMEOUT";

  constructor(method: string, path: string, readonly timeoutMs: number) {
    super(`the stack did not answer ${method} ${path} within ${timeoutMs} ms`, { at: `${method} ${path}` });
  }
}

/** The stack answered a request with an error; `stackCode` is the code it gave (its own error's), when it gave one. */
export class ControlRequestFailed extends TsgiStackError {
  static readonly code = "TSGI_ERR_CONTROL_FAILED";

  constructor(
    message: string,
    readonly answerStatus: number,
    readonly stackCode: string | undefined,
  ) {
    super(message);
  }
}

/** The control API's failures, for the catalog (docs/errors.md). */
export const controlErrors = errorGroup("CONTROL", [
  ControlError,
  UnknownApp,
  StaticAppRefused,
  BadInstanceCount,
  UnknownControlRequest,
  ControlSocketFailed,
  StackNotRunning,
  StackLeftBehind,
  ControlTimeout,
  ControlRequestFailed,
]);

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

/** A query parameter with `+` kept as a plus (URLSearchParams reads it as a space, and `n=+1` means one more). */
function rawParam(url: URL, name: string): string {
  const match = new RegExp(`[?&]${name}=([^&]*)`).exec(url.search);
  try {
    return match ? decodeURIComponent(match[1]!) : "";
  } catch {
    return match![1]!;
  }
}

/** `n` of a scale request: a count, or `+K` / `-K` from the app's running count (pm2's `scale app +1`). NaN when it is neither. */
function instancesWanted(target: ControlTarget, app: string, n: string): number {
  const relative = /^[+-]\d+$/.test(n.trim());
  if (!relative) return /^\d+$/.test(n.trim()) ? Number(n) : Number.NaN;
  const running = target.status().pools.find((pool) => pool.app === app)?.instances;
  // An app with no pool: scale() itself refuses it by name (unknown, or static).
  if (running === undefined) return 1;
  return changedInstances(app, running, Number(n.trim()));
}

/**
 * `scale APP +K` / `-K`: the app's running count moved by `change`; refused,
 * naming the app and what it runs, below 1 or above MAX_INSTANCES. The
 * control API and the CLI (which checks before it asks) share it.
 */
export function changedInstances(app: string, running: number, change: number): number {
  const target = running + change;
  const asked = `scale ${app} ${change < 0 ? "" : "+"}${change}`;
  if (target < 1) throw new BadInstanceCount(`${asked}: ${app} runs ${running} worker(s); an app keeps at least 1 (\`down\` stops the stack)`, { at: app });
  if (target > MAX_INSTANCES) throw new BadInstanceCount(`${asked}: ${app} runs ${running} worker(s); an app runs at most ${MAX_INSTANCES}`, { at: app });
  return target;
}

async function dispatch(target: ControlTarget, method: string, url: URL): Promise<unknown> {
  const route = `${method} ${url.pathname}`;
  switch (route) {
    case "GET /status":
      return target.status();
    case "POST /reload":
      return target.reload(url.searchParams.get("app") ?? undefined);
    case "POST /restart": {
      const pools = await target.restart(url.searchParams.get("app") ?? undefined);
      return { restarted: pools.map((pool) => pool.app), pools };
    }
    case "POST /scale": {
      const app = url.searchParams.get("app") ?? "";
      const count = instancesWanted(target, app, rawParam(url, "n"));
      if (!Number.isInteger(count) || count < 1 || count > MAX_INSTANCES) {
        throw new BadInstanceCount(`scale ${app}: instances must be a whole number from 1 to ${MAX_INSTANCES}`, { at: app });
      }
      const pool = await target.scale(app, count);
      return { app, instances: count, pool };
    }
    case "POST /down":
      // Answer first: the stack is about to stop, and this socket with it.
      setImmediate(() => void target.down());
      return { stopping: true };
    default:
      throw new UnknownControlRequest(`no such control request: ${route}`, { at: route });
  }
}

/** One control request's answer: 200 and the result, or the refusal's status (500 for any other failure) with `{ error, code }`. */
export function answer(target: ControlTarget, method: string, url: URL): Promise<{ status: number; body: unknown }> {
  return dispatch(target, method, url).then(
    (body) => ({ status: 200, body }),
    (error: Error) => {
      const code = error instanceof TsgiStackError ? { code: error.code } : {};
      return { status: error instanceof ControlError ? (error.status ?? 400) : 500, body: { error: error.message, ...code } };
    },
  );
}

/** Serves the control API on `socketPath` (replacing a stale socket file). */
export async function startControlServer(socketPath: string, target: ControlTarget): Promise<http.Server> {
  if (existsSync(socketPath)) unlinkSync(socketPath);
  const server = http.createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://control");
    } catch {
      return send(res, 400, { error: "the request target is not a path" });
    }
    void answer(target, req.method ?? "GET", url).then(({ status, body }) => send(res, status, body));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) => reject(new ControlSocketFailed(socketPath, error)));
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
    req.on("timeout", () => req.destroy(new ControlTimeout(method, path, timeoutMs)));
    req.on("error", (error: NodeJS.ErrnoException) => {
      // A socket file nobody listens on: a stack that died without cleaning up.
      if (error.code === "ECONNREFUSED" || error.code === "ENOENT") resolve(undefined);
      else reject(error);
    });
    req.end();
  });
}
