/**
 * @module stack/proxy-process
 *
 * One proxy process (`proxy.workers` of them run): a FrontProxy serving the
 * listening sockets the stack process holds and hands over, with its own
 * access log writer and certificate watch. Its event loop carries nothing but
 * proxied traffic: the supervisor, pm2's bus and the control API live in the
 * stack process, which sends this one what it needs (stack/proxy-messages.ts).
 *
 * Run by the stack process as `node dist/stack/proxy-process.js`, with an IPC
 * channel. On `stop` it closes its listeners, lets the requests in flight
 * finish and exits 0. If the stack process goes away (the channel closes),
 * it does the same: a proxy never outlives its stack.
 */
import type http from "node:http";
import type tls from "node:tls";
import { AccessLog } from "../proxy/access-log.ts";
import { frontServer } from "../proxy/listener.ts";
import { closeFrontDoor } from "../http/front-door.ts";
import { type AccessEntry, FrontProxy, type FrontProxyOptions } from "../proxy/server.ts";
import { ProxyStats } from "../proxy/stats.ts";
import { loadCertificate, watchCertificate } from "../proxy/tls-reload.ts";
import type { FromProxy, ListenerSpec, ToProxy } from "./proxy-messages.ts";
import type { ProxySettings } from "./proxy-settings.ts";
import { type LogWriteError, logWriteError } from "./log-writes.ts";
import { guardStdio } from "./output.ts";

/** The exit code of a proxy process that could not start serving (the gateway's BOOT_ERROR). */
const PROXY_BOOT_ERROR = 3;

const send = (message: FromProxy) => process.send?.(message);
const say = (line: string) => send({ type: "say", line });

let settings: ProxySettings | undefined;
let proxy: FrontProxy | undefined;
let accessLog: AccessLog | undefined;
let listeners: ListenerSpec[] = [];
const servers: http.Server[] = [];
let stopWatchingCertificate: (() => void) | undefined;
let stopping = false;

/** This process's counters and recent errors, reported to the stack every REPORT_STATS_MS. */
const stats = new ProxyStats();
const REPORT_STATS_MS = 1000;

function optionsFor(next: ProxySettings): FrontProxyOptions {
  return {
    ...next.proxy,
    onHealthChange: (_app, endpoint, healthy, reason) =>
      say(`${endpoint.id} ${healthy ? "is healthy again" : "failed its health check, out of the pool"}: ${reason}`),
    onResponse: next.accessLog
      ? (entry: AccessEntry) => {
          stats.record(entry);
          accessLog?.write(entry);
        }
      : (entry: AccessEntry) => stats.record(entry),
    onUpstreamFailure: (app, _worker, kind, retried) => stats.upstreamFailure(app, kind, retried),
  };
}

/** The stack's `status`, page and metrics read these: one report a second, small (counters, not requests). */
const statsTimer = setInterval(() => {
  if (!proxy || stopping) return;
  try {
    send({ type: "stats", metrics: stats.metrics(), upstreams: proxy.upstreamView(), errors: stats.takeErrors() });
  } catch {
    // The channel is closing: the stack is going, and this process with it ("disconnect").
  }
}, REPORT_STATS_MS);
statsTimer.unref();

/** An access log that cannot be written is said once per kind of error (and once a minute while it lasts), never thrown. */
let lastLogError = { code: "", at: 0 };
function onAccessLogError(error: NodeJS.ErrnoException, dropped: number): void {
  reportDropped(dropped, error);
  const now = Date.now();
  if (error.code === lastLogError.code && now - lastLogError.at < 60_000) return;
  lastLogError = { code: error.code ?? "", at: now };
  say(`access log: cannot write (${error.code ?? error.message}): ${dropped} line(s) dropped so far this time (${accessLog?.dropped ?? dropped} in all); serving goes on`);
}

/**
 * The dropped lines go to the stack process (for `status`) at most once per
 * REPORT_INTERVAL_MS: on a full disk every event-loop turn's write fails,
 * and one IPC message per turn would cost the traffic the log is about.
 */
const REPORT_INTERVAL_MS = 1000;
let unreported: { lines: number; error: LogWriteError } | undefined;
let reportTimer: NodeJS.Timeout | undefined;

function reportDropped(lines: number, error: unknown): void {
  unreported = { lines: (unreported?.lines ?? 0) + lines, error: logWriteError(error) };
  if (reportTimer) return;
  sendDropped();
  reportTimer = setTimeout(() => {
    reportTimer = undefined;
    sendDropped();
  }, REPORT_INTERVAL_MS);
  reportTimer.unref();
}

function sendDropped(): void {
  if (!unreported) return;
  send({ type: "log-dropped", ...unreported });
  unreported = undefined;
}

/** (Re)opens the access log when its file or format changed; none for `access_log: off`. The old one is flushed and closed behind. */
function useAccessLog(next: ProxySettings, previous: ProxySettings | undefined): void {
  const same = next.accessLog?.file === previous?.accessLog?.file && next.accessLog?.format === previous?.accessLog?.format;
  if (same && (accessLog || !next.accessLog)) return;
  const old = accessLog;
  accessLog = undefined;
  if (next.accessLog) {
    try {
      accessLog = new AccessLog(next.accessLog.file, next.accessLog.format, onAccessLogError);
    } catch (error) {
      say(`access log: cannot open ${next.accessLog.file} (${(error as Error).message}); serving without it`);
    }
  }
  void old?.close();
}

/** Synchronous, so that the listener messages that follow the first one find the proxy built. */
function configure(next: ProxySettings, specs: ListenerSpec[] | undefined): void {
  const previous = settings;
  settings = next;
  if (specs) listeners = specs;
  useAccessLog(next, previous);
  if (proxy) proxy.reconfigure(optionsFor(next));
  else proxy = new FrontProxy(optionsFor(next));
}

function serveListener(index: number, handle: unknown): void {
  if (!proxy || !settings) throw new Error("proxy process: a listener arrived before the configuration");
  const spec = listeners[index];
  if (!spec) throw new Error(`proxy process: no listener #${index}`);
  const credentials = spec.tls && settings.tls ? loadCertificate(settings.tls) : undefined;
  const server = frontServer(proxy, { headerTimeoutMs: settings.headerTimeoutMs, ...(credentials ? { tls: credentials, http2: settings.tls!.http2 } : {}) });
  servers[index] = server;
  server.on("connection", (socket: { once(event: "close", listener: () => void): unknown }) => {
    stats.connectionOpened();
    socket.once("close", () => stats.connectionClosed());
  });
  // A socket the stack bound but this process cannot listen on: no use restarting it (exit 3, as a worker that cannot boot).
  server.once("error", (error) => {
    say(`cannot serve ${spec.address}: ${error.message}`);
    process.exit(PROXY_BOOT_ERROR);
  });
  server.listen(handle as Parameters<http.Server["listen"]>[0], () => {
    if (servers.filter(Boolean).length === listeners.length) whenAllListen();
  });
}

function whenAllListen(): void {
  const tlsServers = servers.filter((_, index) => listeners[index]?.tls) as unknown as tls.Server[];
  if (tlsServers.length && settings?.tls) {
    const files = settings.tls;
    // A renewed certificate (certbot's symlink swap, or an overwrite) is used for new connections without a restart.
    stopWatchingCertificate = watchCertificate(tlsServers, files, {
      onReload: () => say(`proxy.tls: loaded the new certificate from ${files.cert}`),
      onError: (error) => say(`proxy.tls: kept the current certificate: ${error.message}`),
    });
  }
  send({ type: "ready" });
}

/**
 * Stops accepting, lets the requests in flight finish (for at most the
 * settings' drain time, then their connections are cut), then exits.
 * WebSocket tunnels are closed at once: they are long-lived by nature, and a
 * server's close() would wait for them.
 */
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  stopWatchingCertificate?.();
  const live = servers.filter(Boolean);
  // Every response from now on says Connection: close, and each connection closes when its last one ends.
  const drained = Promise.all(live.map((server) => closeFrontDoor(server)));
  proxy?.close();
  const cut = setTimeout(() => live.forEach((server) => server.closeAllConnections()), settings?.drainTimeoutMs ?? 30_000);
  await drained;
  clearTimeout(cut);
  await accessLog?.close();
  sendDropped();
  process.exit(0);
}

// The stack hands this process its own stdout and stderr (the terminal, or stack.log): a failed write
// there (a Node warning on a full disk) is dropped, and must not end the proxy with an unhandled 'error'.
guardStdio(() => undefined);

process.on("message", (message: ToProxy, handle: unknown) => {
  switch (message.type) {
    case "configure":
      configure(message.settings, message.listeners);
      return;
    case "listener":
      serveListener(message.index, handle);
      return;
    case "endpoints":
      proxy?.setEndpoints(message.app, message.endpoints);
      return;
    case "stop":
      void stop();
      return;
  }
});
// The stack process is gone (killed, crashed): a proxy never outlives its stack.
process.on("disconnect", () => void stop());
// The stack process stops its proxies through the channel; a terminal's Ctrl-C reaches the whole group, so it is ignored here.
process.on("SIGINT", () => undefined);
process.on("SIGTERM", () => void stop());
