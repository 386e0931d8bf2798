/**
 * @module stack/proxy-fleet
 *
 * The stack process's side of its proxy processes (`proxy.workers`, default
 * 1): it binds the listening sockets itself and keeps them, starts the proxy
 * processes (stack/proxy-process.ts) and hands each the sockets, sends every
 * one the workers' membership and each config change, replaces one that dies,
 * and stops them.
 *
 * The sockets are bound here and never accepted on here: each proxy process
 * listens on its copy, and the kernel spreads connections among them, as
 * among nginx's worker processes. Because this process keeps the socket
 * open, a proxy process that dies takes no listener with it: connections
 * that arrive meanwhile wait in the socket's accept queue until a sibling or
 * its replacement takes them — never refused.
 */
import { type ChildProcess, fork } from "node:child_process";
import { lookup } from "node:dns/promises";
import net from "node:net";
import { fileURLToPath } from "node:url";
import os, { constants } from "node:os";
import { getSystemErrorMap } from "node:util";
import type { Endpoint } from "../proxy/balancing/selector.ts";
import type { FromProxy, ListenerSpec, ProxyReport, ToProxy } from "./proxy-messages.ts";
import type { MetricsJson } from "../proxy/stats.ts";
import { sumMetrics } from "./metrics-sum.ts";
import type { ProxySettings } from "./proxy-settings.ts";
import { ListenFailed, ProxyStartFailed } from "./errors.ts";
import { type LogWriteFailures, LogWriteCounter } from "./log-writes.ts";

/** The program a proxy process runs: the built neighbour of this module (from dist/ when our sources run unbuilt, in the tests). */
export const PROXY_PROCESS_ENTRY = fileURLToPath(
  new URL(import.meta.url.endsWith(".ts") ? "../../dist/stack/proxy-process.js" : "./proxy-process.js", import.meta.url),
);

/** A proxy process must be serving this soon after it starts. */
const READY_TIMEOUT_MS = 15_000;
/** A proxy process that dies younger than this is crash-looping: its next start waits (doubling, up to the cap). */
const FAST_EXIT_MS = 1_000;
const MAX_RESTART_DELAY_MS = 5_000;

/**
 * node:net's bound-but-not-listening TCP handle, the one node:cluster shares
 * among its workers: bind() here, listen() in each proxy process. The public
 * net.Server cannot hold a socket without accepting on it.
 */
interface ServerHandle {
  getsockname(out: { address?: string; port?: number }): number;
  close(): void;
}
type CreateServerHandle = (address: string, port: number, addressType: 4 | 6, fd: undefined, flags: number) => ServerHandle | number;

function createServerHandle(): CreateServerHandle {
  const create = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;
  if (typeof create !== "function") throw new Error(`this Node.js (${process.version}) has no net._createServerHandle: the proxy cannot share its listeners`);
  return create;
}

function formatAddress(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** Binds host:port (a name is looked up first, as server.listen does); the error names the address. */
async function bindSocket(address: { host: string; port: number }): Promise<{ handle: ServerHandle; bound: string }> {
  const shown = formatAddress(address.host, address.port);
  let ip = address.host;
  let family: 4 | 6 = net.isIPv6(ip) ? 6 : 4;
  if (!net.isIP(ip)) {
    try {
      const found = await lookup(address.host);
      ip = found.address;
      family = found.family === 6 ? 6 : 4;
    } catch (error) {
      throw new ListenFailed(shown, (error as Error).message, (error as NodeJS.ErrnoException).code);
    }
  }
  const refused = (errno: number) => {
    const [name, message] = getSystemErrorMap().get(errno) ?? [String(errno), "error"];
    // The words node's own listen() error has, so a message reads the same whichever path found it.
    return new ListenFailed(shown, `listen ${name}: ${message} ${shown}`, name);
  };
  const handle = createServerHandle()(ip, address.port, family, undefined, 0);
  if (typeof handle === "number") throw refused(handle);
  const out: { address?: string; port?: number } = {};
  handle.getsockname(out);
  // libuv defers a bind's EADDRINUSE to listen(), which runs in the proxy processes: an unbound socket says so here.
  if (!out.port || (address.port !== 0 && out.port !== address.port)) {
    handle.close();
    throw refused(-constants.errno.EADDRINUSE);
  }
  return { handle, bound: formatAddress(address.host, out.port) };
}

/** How many proxy processes `proxy.workers` asks for: `auto` is one per CPU the process may use (nginx's worker_processes auto). */
export function proxyProcessCount(workers: number | "auto"): number {
  return workers === "auto" ? Math.max(1, os.availableParallelism()) : workers;
}

/** One proxy process, as `status` shows it. */
export interface ProxyProcessStatus {
  index: number;
  pid: number;
  state: "starting" | "ready" | "stopping";
  /** Times this slot's process was replaced after dying. */
  restarts: number;
  /** When the current process started (ISO time). */
  since: string;
}

interface Member {
  index: number;
  child: ChildProcess;
  state: ProxyProcessStatus["state"];
  restarts: number;
  fastExits: number;
  startedAt: number;
  ready: Promise<void>;
  /** Its last stats report (every second). */
  report?: ProxyReport;
}

export class ProxyFleet {
  private readonly sockets: { handle: ServerHandle; spec: ListenerSpec }[] = [];
  private readonly members = new Map<number, Member>();
  private readonly endpoints = new Map<string, Endpoint[]>();
  private settings: ProxySettings | undefined;
  /** Access log lines the proxy processes could not write, summed over every process (replaced ones too). */
  private readonly accessLogWrites = new LogWriteCounter();
  private count = 0;
  private stopping = false;
  /** The last metrics of proxy processes that exited: their counts stay in the totals, which never go down. */
  private readonly retiredMetrics: MetricsJson[] = [];
  private reportListener: ((report: ProxyReport) => void) | undefined;

  constructor(private readonly say: (line: string) => void) {}

  /** Binds the listeners before anything starts (a port in use fails here); returns them as bound (port 0 made real). */
  async bind(addresses: readonly { host: string; port: number }[], tls: boolean): Promise<string[]> {
    const bound: string[] = [];
    for (const [index, address] of addresses.entries()) {
      const socket = await bindSocket(address).catch((error: unknown) => {
        throw error instanceof ListenFailed ? error.withKey(`${tls ? "proxy.tls.listen" : "proxy.listen"}[${index}]`) : error;
      });
      this.sockets.push({ handle: socket.handle, spec: { tls, address: socket.bound } });
      bound.push(socket.bound);
    }
    return bound;
  }

  /** Starts `proxy.workers` proxy processes on the bound sockets; resolves once every one serves. */
  async start(settings: ProxySettings, workers: number | "auto"): Promise<void> {
    this.settings = settings;
    this.count = proxyProcessCount(workers);
    const count = this.count;
    for (let index = 0; index < count; index++) this.spawn(index, 0);
    await Promise.all([...this.members.values()].map((member) => member.ready));
  }

  /** An app's ready workers, to every proxy process (and to those started later). */
  setEndpoints(app: string, endpoints: Endpoint[]): void {
    this.endpoints.set(app, endpoints);
    this.broadcast({ type: "endpoints", app, endpoints });
  }

  /** A config reload: new settings to every proxy process, and as many processes as `proxy.workers` now says. */
  reconfigure(settings: ProxySettings, workers: number | "auto"): void {
    this.settings = settings;
    this.broadcast({ type: "configure", settings });
    const before = this.count;
    const count = proxyProcessCount(workers);
    this.count = count;
    for (let index = before; index < count; index++) this.spawn(index, 0);
    for (let index = count; index < before; index++) this.retire(index);
  }

  status(): ProxyProcessStatus[] {
    return [...this.members.values()]
      .sort((a, b) => a.index - b.index)
      .map((member) => ({
        index: member.index,
        pid: member.child.pid ?? 0,
        state: member.state,
        restarts: member.restarts,
        since: new Date(member.startedAt).toISOString(),
      }));
  }

  /** The latest report of each proxy process running now. */
  reports(): ProxyReport[] {
    return [...this.members.values()].flatMap((member) => (member.report ? [member.report] : []));
  }

  /**
   * The metrics of every proxy process this stack ran, as a list to sum
   * (AggregatorRegistry.aggregate): each running one's latest, and the last
   * of each that exited — its counters only, a gauge of a dead process is
   * no longer true.
   */
  metrics(): MetricsJson[] {
    return [...this.retiredMetrics, ...this.reports().map((report) => report.metrics)];
  }

  /** Keeps a dead proxy process's counters; past a few, they are summed into one, so a crash loop costs no memory. */
  private keepRetired(metrics: MetricsJson): void {
    this.retiredMetrics.push(metrics.filter((metric) => String(metric.type) !== "gauge"));
    if (this.retiredMetrics.length <= 4) return;
    const all = this.retiredMetrics.splice(0);
    sumMetrics(all).then(
      (summed) => this.retiredMetrics.unshift(summed),
      // Summing failed: keep them apart rather than lose them.
      () => this.retiredMetrics.unshift(...all),
    );
  }

  /** Told each report as it arrives (the stack reads the errors in it). */
  onReport(listener: (report: ProxyReport) => void): void {
    this.reportListener = listener;
  }

  /** The access log's failed writes, over every proxy process this stack ran. */
  accessLogFailures(): LogWriteFailures {
    return this.accessLogWrites.snapshot();
  }

  /** Closes the listeners, lets each proxy process finish its requests in flight, and waits for every one to exit. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const { handle } of this.sockets) handle.close();
    this.sockets.length = 0;
    await Promise.all([...this.members.keys()].map((index) => this.retire(index)));
  }

  private spawn(index: number, restarts: number, fastExits = 0): void {
    const settings = this.settings!;
    // No inherited execArgv (a --cpu-prof or --inspect meant for the stack), and no terminal input.
    const child = fork(PROXY_PROCESS_ENTRY, [], { execArgv: [], stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "json" });
    let markReady!: () => void;
    let failStart!: (error: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failStart = reject;
    });
    ready.catch(() => undefined); // a restart's readiness is nobody's to await
    const member: Member = { index, child, state: "starting", restarts, fastExits, startedAt: Date.now(), ready };
    this.members.set(index, member);
    // One that never serves is killed: its exit replaces it (or fails the stack's start).
    const timer = setTimeout(() => {
      failStart(new ProxyStartFailed(`proxy process ${index} (pid ${child.pid}) did not serve within ${READY_TIMEOUT_MS} ms`));
      child.kill("SIGKILL");
    }, READY_TIMEOUT_MS);
    timer.unref();

    child.on("message", (message: FromProxy) => {
      if (message.type === "ready") {
        clearTimeout(timer);
        if (member.state === "starting") member.state = "ready";
        markReady();
      } else if (message.type === "say") {
        this.say(this.count > 1 ? `proxy.${index}: ${message.line}` : `proxy: ${message.line}`);
      } else if (message.type === "log-dropped") {
        this.accessLogWrites.record(message.lines, message.error);
      } else if (message.type === "stats") {
        const { metrics, upstreams, errors } = message;
        member.report = { metrics, upstreams, errors };
        this.reportListener?.(member.report);
      }
    });
    child.on("error", (error) => this.say(`proxy process ${index}: ${error.message}`));
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      failStart(new ProxyStartFailed(`proxy process ${index} (pid ${child.pid}) exited before serving (${signal ?? `code ${code}`})`));
      if (this.members.get(index) === member) this.members.delete(index);
      if (member.report) this.keepRetired(member.report.metrics);
      if (this.stopping || member.state === "stopping") return;
      this.replace(member, signal ?? `code ${code}`);
    });

    this.sendTo(child, { type: "configure", settings, listeners: this.sockets.map((socket) => socket.spec) });
    this.sockets.forEach((socket, listener) => this.sendTo(child, { type: "listener", index: listener }, socket.handle));
    for (const [app, endpoints] of this.endpoints) this.sendTo(child, { type: "endpoints", app, endpoints });
  }

  /** A proxy process died: another takes its place at once (later, when it keeps dying young). */
  private replace(dead: Member, how: string): void {
    const young = Date.now() - dead.startedAt < FAST_EXIT_MS;
    const fastExits = young ? dead.fastExits + 1 : 0;
    const delay = young ? Math.min(MAX_RESTART_DELAY_MS, 100 * 2 ** (fastExits - 1)) : 0;
    this.say(`proxy process ${dead.index} (pid ${dead.child.pid}) exited (${how}): starting another${delay ? ` in ${delay} ms` : ""}`);
    const restart = () => {
      if (!this.stopping && dead.index < this.count && !this.members.has(dead.index)) this.spawn(dead.index, dead.restarts + 1, fastExits);
    };
    if (delay) setTimeout(restart, delay).unref();
    else restart();
  }

  /** Tells one proxy process to drain and exit; resolves when it has. */
  private retire(index: number): Promise<void> {
    const member = this.members.get(index);
    if (!member) return Promise.resolve();
    member.state = "stopping";
    const { child } = member;
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    if (child.connected) this.sendTo(child, { type: "stop" });
    else child.kill("SIGTERM");
    return exited;
  }

  private broadcast(message: ToProxy): void {
    for (const member of this.members.values()) {
      if (member.state !== "stopping") this.sendTo(member.child, message);
    }
  }

  /** A send to a process that is exiting fails quietly: its replacement is sent the whole state anyway. */
  private sendTo(child: ChildProcess, message: ToProxy, handle?: ServerHandle): void {
    if (!child.connected) return;
    child.send(message, handle as net.Server | undefined, (error) => {
      if (error && !this.stopping) this.say(`proxy process (pid ${child.pid}): ${error.message}`);
    });
  }
}
