/**
 * @module gateway/uwsgi/server
 *
 * The gateway worker's uwsgi listener: what lets a real nginx sit in front of
 * a TSGI app with `uwsgi_pass` + `include uwsgi_params` (docs/uwsgi.md). This
 * module is the connection and server lifecycle; the parts it wires live next
 * to it. Per connection (one request per connection, as nginx uses the
 * protocol):
 *
 * 1. a peer not in `allowedPeers` is closed at once (loopback and unix sockets
 *    by default, like Gunicorn's uwsgi_allow_ips);
 * 2. the packet is buffered until its vars block is complete — never more than
 *    4 + `maxVarsSize` bytes, and for at most `headerTimeout` ms — and parsed
 *    (uwsgi/parser.ts);
 * 3. the vars become the environ (uwsgi/environ.ts), the rest of the stream
 *    is `tsgi.input` (uwsgi/input.ts);
 * 4. `runApp` (tsgi/handler.ts) drives the response into a raw-HTTP
 *    ResponseSink (uwsgi/sink.ts);
 * 5. the unread rest of the body is read to nowhere and the connection closed
 *    (`lingerAndClose`, uwsgi/input.ts).
 *
 * Failures: a broken, oversized or unsupported packet, a peer that stalls or
 * is not allowed — ONE line to the errors stream naming the peer and what was
 * wrong, and that connection is destroyed; nothing else is affected. A
 * well-formed packet whose vars are unusable (no REQUEST_METHOD, a bad
 * CONTENT_LENGTH) or whose body is over `maxBodySize` is answered with 400 /
 * 413 before the app runs. A bug of ours in an event handler costs its one
 * connection (reset), never the worker.
 *
 * Drain (graceful stop): the returned server is a `net.Server` with
 * - `inFlight`: requests whose packet was read and whose response has not yet
 *   been flushed to the socket (or whose socket has not closed);
 * - `closeIdleConnections()`: closes the connections not running a request —
 *   those lingering after their response at once, those still sending their
 *   packet if it has not arrived within a second (nginx sent it as it
 *   connected: a reset would be its 502) — and returns how many;
 * - `closeAllConnections()`: the deadline: drops every connection, resetting
 *   those in flight so nginx sees a failed, not a short, response;
 * the same names as http.Server, so the worker can stop both kinds alike.
 * `server.close(cb)` stops accepting and calls `cb` once every connection has
 * ended (net.Server semantics): in-flight requests finish, a connection still
 * sending its packet gets at most `headerTimeout`. If `options.inFlight` (the
 * worker's registry, gateway/in-flight.ts) is given, every request is also
 * registered there from packet to flushed response, so that the worker's
 * drain, --timeout and --max-requests see uwsgi requests like HTTP ones.
 *
 * What it is not: not a uWSGI replacement — only modifier1=0/modifier2=0
 * packets, no keep-alive (nginx does not keep uwsgi connections alive), no
 * uwsgi_modifier1 30 path rewriting (set `uwsgi_param SCRIPT_NAME` instead).
 *
 * Why one file of ~440 lines: the connection's life (accept, buffer, parse,
 * run, linger, drain) reads as one sequence; its parts (parser, environ,
 * input, sink, errors) are already modules of their own.
 */
import net from "node:net";
import type { Environ, ErrorStream, TsgiApp } from "../../tsgi/types.ts";
import { type BaseEnviron, baseEnviron } from "../../tsgi/environ.ts";
import { type RunOutcome, runApp } from "../../tsgi/handler.ts";
import type { InFlight, InFlightRequest } from "../in-flight.ts";
import { ForbiddenUwsgiPeer, IncompleteUwsgiPacket, UwsgiBodyTooLarge, UwsgiError, UwsgiHeaderTimeout } from "./errors.ts";
import { parseUwsgiPacket, UWSGI_HEADER_SIZE, type UwsgiLimits, type UwsgiParseResult, type UwsgiVar } from "./parser.ts";
import { bodyLength, collectVars, type UwsgiPeer, uwsgiEnviron } from "./environ.ts";
import { BodyInput, lingerAndClose } from "./input.ts";
import { refusalResponse, SocketSink } from "./sink.ts";

export interface UwsgiServerOptions extends UwsgiLimits {
  /** Where rejected packets and app errors are logged, and the app's `tsgi.errors` (default: process.stderr). */
  errors?: ErrorStream;
  /** `tsgi.multiprocess`: true when this worker is one of several serving the app (default false). */
  multiprocess?: boolean;
  /** `tsgi.url_scheme` when nginx sends neither REQUEST_SCHEME nor HTTPS (default "http"). */
  urlScheme?: "http" | "https";
  /** SERVER_NAME / SERVER_PORT when nginx does not send them (default: the listening address). */
  serverName?: string;
  serverPort?: string | number;
  /**
   * The mount point moved from PATH_INFO into SCRIPT_NAME when the path is
   * under it (default none). A `SCRIPT_NAME` var from nginx takes precedence.
   */
  scriptName?: string;
  /**
   * Peer IP addresses allowed to connect; "*" allows any (default
   * ["127.0.0.1", "::1"]). Unix-socket peers are always allowed: the socket
   * file's permissions are their access control.
   */
  allowedPeers?: readonly string[];
  /** Largest CONTENT_LENGTH accepted, in bytes; larger gets 413 (default: no limit — nginx's client_max_body_size applies). */
  maxBodySize?: number;
  /** How long a peer may take to send its whole packet, in ms (default 10 000). */
  headerTimeout?: number;
  /** The worker's in-flight registry, if any (see the module header). */
  inFlight?: InFlight;
  /** Called after each response (access log, counters); `environ` is undefined when the request was refused before the app. */
  onResponse?: (environ: Environ | undefined, outcome: RunOutcome, socket: net.Socket) => void;
}

/** A `net.Server` that also reports and closes its uwsgi connections (see the module header). */
export interface UwsgiServer extends net.Server {
  /** Requests read and not yet answered in full. */
  readonly inFlight: number;
  /** Closes every connection that is not running a request; returns how many. */
  closeIdleConnections(): number;
  /** Drops every connection, resetting those in flight; returns how many. */
  closeAllConnections(): number;
}

/** Trust defaults to this machine: nginx on the same host (Gunicorn's uwsgi_allow_ips default). */
export const DEFAULT_ALLOWED_PEERS: readonly string[] = Object.freeze(["127.0.0.1", "::1"]);

/**
 * nginx writes the whole packet right after connecting; a peer that needs
 * longer than this for at most 64 KiB is stalled or hostile (slowloris).
 */
export const DEFAULT_HEADER_TIMEOUT_MS = 10_000;

/** At a drain, how long a connection still sending its packet may take to finish it (nginx writes it at once). */
const PACKET_GRACE_MS = 1000;

const stderrStream: ErrorStream = { write: (message) => void process.stderr.write(message) };

/** One log line per event, naming the peer; a multi-line message (a stack) stays one indented entry. */
function lineLogger(errors: ErrorStream): (peer: string, message: string) => void {
  return (peer, message) => {
    try {
      errors.write(`tsgi uwsgi: ${peer}: ${message.replace(/\n/g, "\n    ")}\n`);
    } catch {
      // The error log itself failed: keep serving.
    }
  };
}

/* ------------------------------------------------------------------------- */
/* One connection                                                            */
/* ------------------------------------------------------------------------- */

type Phase = "packet" | "request" | "closing";

/** What every connection of one server shares. */
interface ServerContext {
  readonly app: TsgiApp;
  readonly options: UwsgiServerOptions;
  readonly allowedPeers: readonly string[];
  readonly headerTimeout: number;
  baseFor(socket: net.Socket): BaseEnviron;
  log(peer: string, message: string): void;
  requestStarted(connection: UwsgiConnection): void;
  requestFinished(connection: UwsgiConnection): void;
  closed(connection: UwsgiConnection): void;
}

function peerOf(socket: net.Socket): UwsgiPeer {
  return { address: socket.remoteAddress ?? "", port: socket.remotePort };
}

function peerLabel(socket: net.Socket): string {
  const address = socket.remoteAddress;
  if (address === undefined) return "unix socket peer";
  return `${address.includes(":") ? `[${address}]` : address}:${socket.remotePort ?? "?"}`;
}

/** True when the peer may speak uwsgi to us; unix-socket peers have no address and are always allowed. */
export function isAllowedPeer(address: string | undefined, allowed: readonly string[]): boolean {
  if (address === undefined || allowed.includes("*")) return true;
  // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
  const plain = address.startsWith("::ffff:") ? address.slice(7) : address;
  return allowed.includes(plain) || allowed.includes(address);
}

/** One uwsgi connection: reads the packet, runs the request, lingers, closes. */
class UwsgiConnection {
  phase: Phase = "packet";
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the packet needs in all, as far as known. */
  private needed = UWSGI_HEADER_SIZE;
  private input: BodyInput | undefined;
  /** From the packet read until the response is flushed or the socket closes: what drain waits for. */
  busy = false;
  /** The whole packet must arrive within headerTimeout: a deadline, not an idle timer, so a byte now and then does not extend it. */
  private headerTimer: NodeJS.Timeout | undefined;
  private readonly label: string;

  constructor(
    readonly socket: net.Socket,
    private readonly context: ServerContext,
  ) {
    // Computed now: a socket forgets its peer address once closed.
    this.label = peerLabel(socket);
  }

  start(): void {
    const { socket } = this;
    // A reset or a broken pipe is a client leaving (style: client disconnects are normal, not errors).
    socket.on("error", () => undefined);
    socket.on("close", () => this.onClose());
    if (!isAllowedPeer(socket.remoteAddress, this.context.allowedPeers)) {
      this.reject(new ForbiddenUwsgiPeer(socket.remoteAddress ?? ""));
      return;
    }
    socket.on("data", (chunk: Buffer) => this.guard(() => this.onData(chunk)));
    socket.on("end", () => this.guard(() => this.onEnd()));
    this.headerTimer = setTimeout(() => this.guard(() => this.onHeaderTimeout()), this.context.headerTimeout);
  }

  /** Runs an event handler so that our own bug costs one connection, never the worker. */
  private guard(step: () => void): void {
    try {
      step();
    } catch (error) {
      this.internalError(error);
    }
  }

  private internalError(error: unknown): void {
    this.context.log(this.label, `internal error, connection dropped: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    this.socket.resetAndDestroy();
  }

  private onData(chunk: Buffer): void {
    if (this.phase === "packet") this.readPacket(chunk);
    else this.input?.push(chunk);
  }

  private readPacket(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // Parse only once the bytes the packet needs are in: a peer sending one byte at a time costs no re-parsing.
    if (this.pendingBytes < this.needed) return;
    const bytes = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [bytes];
    const result = this.parse(bytes);
    if (result === undefined) return;
    if (result.status === "incomplete") {
      this.needed = result.needed;
      return;
    }
    this.pending = [];
    this.startRequest(result.vars, bytes.subarray(result.consumed));
  }

  /** The packet so far, parsed; undefined when it is broken (the connection is rejected). */
  private parse(bytes: Buffer): UwsgiParseResult | undefined {
    try {
      return parseUwsgiPacket(bytes, this.context.options);
    } catch (error) {
      if (!(error instanceof UwsgiError)) throw error;
      this.reject(error);
      return undefined;
    }
  }

  private onEnd(): void {
    // A peer may half-close after sending its request (allowHalfOpen): only a short packet or body is a problem.
    if (this.phase === "packet") {
      if (this.pendingBytes === 0) this.socket.destroy();
      else this.reject(new IncompleteUwsgiPacket(this.pendingBytes, this.needed));
    } else {
      this.input?.connectionEnded();
    }
  }

  private onHeaderTimeout(): void {
    if (this.phase === "packet") this.reject(new UwsgiHeaderTimeout(this.context.headerTimeout, this.pendingBytes));
  }

  private onClose(): void {
    clearTimeout(this.headerTimer);
    this.input?.connectionEnded();
    this.requestFinished();
    this.context.closed(this);
  }

  /** A broken or unwelcome connection: one log line, then gone. */
  private reject(error: UwsgiError): void {
    clearTimeout(this.headerTimer);
    this.phase = "closing";
    this.pending = [];
    this.context.log(this.label, error.message);
    this.socket.destroy();
  }

  private startRequest(vars: readonly UwsgiVar[], rest: Buffer): void {
    clearTimeout(this.headerTimer);
    let request: { environ: Environ; input: BodyInput };
    try {
      request = this.prepare(vars);
    } catch (error) {
      if (error instanceof UwsgiError) return this.refuse(error, vars);
      throw error;
    }
    this.run(request.environ, request.input, rest);
  }

  /** The environ and body of a well-formed packet; throws a UwsgiError when the request cannot go to the app. */
  private prepare(vars: readonly UwsgiVar[]): { environ: Environ; input: BodyInput } {
    const { context, socket } = this;
    const fields = collectVars(vars);
    const length = bodyLength(fields);
    const limit = context.options.maxBodySize ?? Number.POSITIVE_INFINITY;
    if (length > limit) throw new UwsgiBodyTooLarge(length, limit);
    const input = new BodyInput(socket, length);
    const environ = uwsgiEnviron(context.baseFor(socket), fields, input, peerOf(socket), context.options.scriptName);
    return { environ, input };
  }

  /** Runs the app; `rest` is what came after the packet in the same read: the start of the body. */
  private run(environ: Environ, input: BodyInput, rest: Buffer): void {
    this.input = input;
    this.phase = "request";
    this.busy = true;
    this.context.requestStarted(this);
    this.trackInFlight(environ);
    input.push(rest);
    runApp(this.context.app, environ, new SocketSink(this.socket))
      .then((outcome) => {
        this.linger();
        this.report(environ, outcome);
      })
      .catch((error: unknown) => this.internalError(error));
  }

  /** Registers the request in the worker's registry until its response is flushed or its socket closes. */
  private trackInFlight(environ: Environ): void {
    const registry = this.context.options.inFlight;
    const record: InFlightRequest | undefined = registry && {
      method: environ.REQUEST_METHOD,
      target: environ.REQUEST_URI ?? environ.PATH_INFO,
      startedAt: Date.now(),
      abort: () => this.socket.resetAndDestroy(),
      // Every uwsgi connection closes after its one response already.
      closeAfterResponse: () => undefined,
    };
    if (record) registry!.begin(record);
    const done = () => {
      this.socket.off("finish", done);
      this.socket.off("close", done);
      if (record) registry!.end(record);
      this.requestFinished();
    };
    this.socket.on("finish", done);
    this.socket.on("close", done);
  }

  private requestFinished(): void {
    if (!this.busy) return;
    this.busy = false;
    this.context.requestFinished(this);
  }

  /** Answers a well-formed request that cannot go to the app, then lingers and closes. */
  private refuse(error: UwsgiError, vars: readonly UwsgiVar[]): void {
    this.context.log(this.label, error.message);
    const headOnly = vars.some(([name, value]) => name === "REQUEST_METHOD" && value.toString("latin1") === "HEAD");
    const { response, bodyBytes } = refusalResponse(error.status, headOnly);
    this.socket.write(response);
    this.linger();
    this.report(undefined, { code: error.status, bytes: bodyBytes, clientGone: false });
  }

  /** After the response (or the refusal): no more requests on this connection; see lingerAndClose. */
  private linger(): void {
    this.phase = "closing";
    lingerAndClose(this.socket, this.input);
  }

  private report(environ: Environ | undefined, outcome: RunOutcome): void {
    const hook = this.context.options.onResponse;
    if (!hook) return;
    try {
      hook(environ, outcome, this.socket);
    } catch (error) {
      this.context.log(this.label, `onResponse hook failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/* ------------------------------------------------------------------------- */
/* The server                                                                */
/* ------------------------------------------------------------------------- */

/** The listener: a net.Server that knows its uwsgi connections. */
class UwsgiListener extends net.Server implements UwsgiServer {
  private readonly open = new Set<UwsgiConnection>();
  private running = 0;
  private base: BaseEnviron | undefined;
  private readonly context: ServerContext;

  constructor(app: TsgiApp, options: UwsgiServerOptions) {
    // allowHalfOpen: a peer that half-closes after its request still gets the response.
    // noDelay: head and body go out as written, without waiting on Nagle + delayed ACK.
    super({ allowHalfOpen: true, noDelay: true });
    const errors = options.errors ?? stderrStream;
    this.context = {
      app,
      options,
      allowedPeers: options.allowedPeers ?? DEFAULT_ALLOWED_PEERS,
      headerTimeout: options.headerTimeout ?? DEFAULT_HEADER_TIMEOUT_MS,
      baseFor: (socket) => this.baseFor(socket, options, errors),
      log: lineLogger(errors),
      requestStarted: () => void (this.running += 1),
      requestFinished: () => void (this.running -= 1),
      closed: (connection) => void this.open.delete(connection),
    };
    this.on("connection", (socket: net.Socket) => {
      const connection = new UwsgiConnection(socket, this.context);
      this.open.add(connection);
      connection.start();
    });
  }

  get inFlight(): number {
    return this.running;
  }

  closeIdleConnections(): number {
    let closed = 0;
    for (const connection of this.open) {
      if (connection.busy) continue;
      closed += 1;
      if (connection.phase !== "packet") {
        connection.socket.destroy();
        continue;
      }
      // Over uwsgi every connection carries a request: one still sending its packet is nginx's, committed to this
      // worker (a reset now is a 502 when nginx has no other server to try). It gets PACKET_GRACE_MS to finish
      // its packet — then it runs, and the drain waits for it — and is closed only if still silent by then.
      setTimeout(() => {
        if (!connection.busy && connection.phase === "packet") connection.socket.destroy();
      }, PACKET_GRACE_MS).unref();
    }
    return closed;
  }

  closeAllConnections(): number {
    let closed = 0;
    for (const connection of this.open) {
      if (connection.busy) connection.socket.resetAndDestroy();
      else connection.socket.destroy();
      closed += 1;
    }
    return closed;
  }

  /** Stage one of the environ, built once from the options or the listening address (wsgiref's server_bind). */
  private baseFor(socket: net.Socket, options: UwsgiServerOptions, errors: ErrorStream): BaseEnviron {
    this.base ??= baseEnviron({
      serverName: options.serverName ?? socket.localAddress ?? "localhost",
      serverPort: options.serverPort ?? socket.localPort ?? "",
      urlScheme: options.urlScheme,
      multiprocess: options.multiprocess,
      errors,
    });
    return this.base;
  }
}

/** Serves `app` over the uwsgi protocol; listen() it on a TCP address or a unix socket. */
export function createUwsgiServer(app: TsgiApp, options: UwsgiServerOptions = {}): UwsgiServer {
  return new UwsgiListener(app, options);
}
