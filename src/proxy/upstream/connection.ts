/**
 * @module proxy/upstream/connection
 *
 * One kept-alive connection from the proxy to a worker, carrying one
 * exchange (request, then response) at a time. It replaces node:http's
 * client on the proxy's hot path: the request head is one pre-built string
 * written as is, the response is read by upstream/response-head.ts and
 * upstream/chunked-decoder.ts, and the socket's listeners are installed once
 * for its whole life rather than per request.
 *
 * Every way an exchange can fail is told apart, because the proxy's retry
 * rules depend on it (the reliability matrix U1-U3, L5):
 *   - "connect": no connection was made (refused, no socket file, connect
 *     timeout): nothing was sent, any method may go elsewhere;
 *   - "dropped": the worker closed or reset the connection before a byte of
 *     the response; on a reused connection that is the keep-alive race;
 *   - "timeout": no response head within the upstream timeout;
 *   - "protocol": a response the proxy will not pass on (502);
 *   - "broken": the connection failed after the head went to the client.
 */
import net from "node:net";
import type { Readable } from "node:stream";
import { ChunkedDecoder } from "./chunked-decoder.ts";
import { parseResponseHead, UpstreamProtocolError, type ResponseHead } from "./response-head.ts";

export type UpstreamAddress = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

export type FailureKind = "connect" | "dropped" | "timeout" | "protocol" | "broken";

export class UpstreamFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    /** Whether the connection had carried an exchange before this one. */
    readonly reused: boolean,
  ) {
    super(message);
    this.name = "UpstreamFailure";
  }
}

/** What the proxy hears of one exchange; exactly one of onEnd / onFail ends it (none after abort()). */
export interface ExchangeHandlers {
  /** The final response head (interim 1xx heads are skipped). */
  onHead(head: ResponseHead): void;
  /** A piece of the body; returning false pauses the worker's side until resume(). */
  onData(data: Buffer): boolean;
  onEnd(): void;
  onFail(failure: UpstreamFailure): void;
  /** For an upgrade request: the worker answered 101; the socket and the bytes after the head are the caller's now. */
  onUpgrade?(head: ResponseHead, socket: net.Socket, rest: Buffer): void;
}

export interface ExchangeRequest {
  method: string;
  /** The serialized request head, CRLFCRLF included (latin1: node's parser hands header bytes over as latin1). */
  head: string;
  /** No body, a buffered one, or the client's request stream (Content-Length framed), piped once connected. */
  body?: Buffer | Readable;
  /** An Upgrade request: a 101 hands the socket over instead of being an error. */
  upgrade?: boolean;
}

export interface ConnectionTimeouts {
  connectMs: number;
  /** Longest silence from the worker while an exchange waits for it (nginx's proxy_read_timeout). */
  readMs: number;
}

const enum Phase {
  Idle,
  Connecting,
  Head,
  Body,
}

export class UpstreamConnection {
  readonly socket: net.Socket;
  /** Exchanges this connection has carried, the current one included. */
  exchanges = 0;
  /** When it last went back to its pool (Date.now()). */
  idleSince = 0;
  /** Called when the connection closes while idle in a pool. */
  onIdleClose: ((connection: UpstreamConnection) => void) | undefined;

  private connected = false;
  private closed = false;
  private phase = Phase.Idle;
  private handlers: ExchangeHandlers | undefined;
  private request: ExchangeRequest | undefined;
  private pending: Buffer | undefined;
  private framing: ResponseHead["framing"] = { kind: "none" };
  private remaining = 0;
  private decoder: ChunkedDecoder | undefined;
  private keepAlive = false;
  private bodySent = false;
  private receivedAny = false;
  private release: ((reusable: boolean) => void) | undefined;
  private error: Error | undefined;

  constructor(
    address: UpstreamAddress,
    private readonly timeouts: ConnectionTimeouts,
  ) {
    this.socket = address.kind === "unix" ? net.connect({ path: address.path }) : net.connect({ host: address.host, port: address.port, noDelay: true });
    this.socket.setTimeout(timeouts.connectMs);
    this.socket.on("connect", () => this.onConnect());
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.socket.on("end", () => this.onWorkerEnd());
    this.socket.on("timeout", () => this.onTimeout());
    this.socket.on("error", (error) => {
      this.error = error;
    });
    this.socket.on("close", () => this.onClose());
    this.socket.on("drain", () => {
      const body = this.request?.body;
      if (body && !Buffer.isBuffer(body) && body.isPaused()) body.resume();
    });
  }

  /** Open and not yet closing: worth keeping for reuse. */
  get usable(): boolean {
    return !this.closed && !this.socket.destroyed && this.phase === Phase.Idle;
  }

  /**
   * Starts an exchange. `release` is called once it has ended, with whether
   * the connection may carry another (the response was complete, both sides
   * keep it alive, the request body was all sent and nothing extra arrived).
   */
  send(request: ExchangeRequest, handlers: ExchangeHandlers, release: (reusable: boolean) => void): void {
    this.exchanges++;
    this.request = request;
    this.handlers = handlers;
    this.release = release;
    this.pending = undefined;
    this.decoder = undefined;
    this.bodySent = false;
    this.receivedAny = false;
    if (this.connected) {
      this.socket.setTimeout(this.timeouts.readMs);
      this.write();
    } else this.phase = Phase.Connecting;
  }

  /** Stops the exchange from the proxy's side (client gone, proxy closing): no handler is called again. */
  abort(): void {
    const release = this.release;
    this.finish();
    this.destroy();
    release?.(false);
  }

  /** Lets a paused body flow again (the client drained); the worker's silence counts again from now. */
  resume(): void {
    this.socket.setTimeout(this.timeouts.readMs);
    this.socket.resume();
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private onConnect(): void {
    this.connected = true;
    this.socket.setTimeout(this.phase === Phase.Connecting ? this.timeouts.readMs : 0);
    if (this.phase === Phase.Connecting) this.write();
  }

  private write(): void {
    this.phase = Phase.Head;
    const request = this.request!;
    const { body } = request;
    if (body === undefined) {
      this.socket.write(request.head, "latin1");
      this.bodySent = true;
    } else if (Buffer.isBuffer(body)) {
      this.socket.cork();
      this.socket.write(request.head, "latin1");
      this.socket.write(body);
      this.socket.uncork();
      this.bodySent = true;
    } else {
      // While the client is still sending, a pause is the client's (body_timeout's business), not the worker's.
      this.socket.setTimeout(0);
      this.socket.write(request.head, "latin1");
      body.on("data", this.onBodyData);
      body.once("end", this.onBodyEnd);
    }
  }

  private readonly onBodyData = (chunk: Buffer): void => {
    if (!this.socket.write(chunk)) (this.request?.body as Readable | undefined)?.pause();
  };

  private readonly onBodyEnd = (): void => {
    this.bodySent = true;
    this.detachBody();
    if (this.phase === Phase.Head) this.socket.setTimeout(this.timeouts.readMs);
  };

  private detachBody(): void {
    const body = this.request?.body;
    if (body && !Buffer.isBuffer(body)) {
      body.off("data", this.onBodyData);
      body.off("end", this.onBodyEnd);
    }
  }

  private onData(chunk: Buffer): void {
    this.receivedAny = true;
    if (this.phase === Phase.Head) {
      this.pending = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
      this.readHead();
    } else if (this.phase === Phase.Body) {
      this.readBody(chunk);
    } else {
      // Bytes nobody asked for (an idle connection, or after a complete response): the connection is unusable.
      this.destroy();
    }
  }

  private readHead(): void {
    const request = this.request!;
    for (;;) {
      let parsed;
      try {
        parsed = parseResponseHead(this.pending!, request.method);
      } catch (error) {
        return this.fail("protocol", (error as Error).message);
      }
      if (!parsed) return;
      const { head, bodyOffset } = parsed;
      const rest = this.pending!.subarray(bodyOffset);
      if (head.status === 101 && request.upgrade && this.handlers?.onUpgrade) {
        const handlers = this.handlers;
        this.finish();
        this.closed = true; // the socket belongs to the tunnel now, never to a pool
        this.socket.setTimeout(0);
        this.socket.removeAllListeners();
        handlers.onUpgrade!(head, this.socket, rest);
        return;
      }
      if (head.status < 200) {
        if (head.status === 101) return this.fail("protocol", "a 101 answer to a request that did not ask to upgrade");
        // An interim response (100 Continue, 103 Early Hints): the final one follows.
        this.pending = rest.byteLength ? rest : undefined;
        if (!this.pending) return;
        continue;
      }
      this.pending = undefined;
      this.phase = Phase.Body;
      this.framing = head.framing;
      this.keepAlive = head.keepAlive;
      if (head.framing.kind === "length") this.remaining = head.framing.length;
      else if (head.framing.kind === "chunked") this.decoder = new ChunkedDecoder();
      this.handlers?.onHead(head);
      if (!this.handlers) return; // the head's handler aborted
      if (head.framing.kind === "none" || (head.framing.kind === "length" && head.framing.length === 0)) {
        if (rest.byteLength) this.keepAlive = false;
        return this.complete();
      }
      if (rest.byteLength) this.readBody(rest);
      return;
    }
  }

  private readBody(chunk: Buffer): void {
    const handlers = this.handlers;
    if (!handlers) return;
    let flowing = true;
    switch (this.framing.kind) {
      case "length": {
        const take = Math.min(this.remaining, chunk.byteLength);
        if (take < chunk.byteLength) this.keepAlive = false; // more than the declared length: never reuse
        this.remaining -= take;
        flowing = handlers.onData(take === chunk.byteLength ? chunk : chunk.subarray(0, take));
        if (this.remaining === 0) return this.complete();
        break;
      }
      case "chunked": {
        let used: number;
        try {
          used = this.decoder!.write(chunk, (data) => {
            if (!handlers.onData(data)) flowing = false;
          });
        } catch (error) {
          return this.fail("broken", (error as UpstreamProtocolError).message);
        }
        if (this.decoder!.done) {
          if (used < chunk.byteLength) this.keepAlive = false;
          return this.complete();
        }
        break;
      }
      case "close":
        flowing = handlers.onData(chunk);
        break;
      case "none":
        this.keepAlive = false;
        return;
    }
    if (!flowing && this.handlers) {
      // The client is slow, not the worker: its silence is not counted while we hold it back.
      this.socket.setTimeout(0);
      this.socket.pause();
    }
  }

  private complete(): void {
    const { handlers, release } = this;
    const reusable = this.keepAlive && this.bodySent && !this.closed && !this.socket.destroyed;
    this.finish();
    if (!reusable) this.destroy();
    else this.socket.setTimeout(0);
    handlers?.onEnd();
    release?.(reusable);
  }

  /** Ends the current exchange's state: from here no handler is called and release is not called again. */
  private finish(): void {
    this.release = undefined;
    this.detachBody();
    this.phase = Phase.Idle;
    this.handlers = undefined;
    this.request = undefined;
    this.pending = undefined;
    this.decoder = undefined;
  }

  private fail(kind: FailureKind, message: string): void {
    const { handlers, release } = this;
    const reused = this.exchanges > 1;
    this.finish();
    this.destroy();
    handlers?.onFail(new UpstreamFailure(kind, message, reused));
    release?.(false);
  }

  private onWorkerEnd(): void {
    if (this.phase === Phase.Body && this.framing.kind === "close") {
      this.keepAlive = false;
      return this.complete();
    }
    // A half-close anywhere else: the worker is done with this connection.
    this.socket.destroy();
  }

  private onTimeout(): void {
    switch (this.phase) {
      case Phase.Connecting:
        return this.fail("connect", `could not connect within ${this.timeouts.connectMs} ms`);
      case Phase.Head:
        return this.fail("timeout", `no response within ${this.timeouts.readMs} ms`);
      case Phase.Body:
        return this.fail("broken", `the response stalled for ${this.timeouts.readMs} ms`);
      default:
        this.destroy();
    }
  }

  private onClose(): void {
    this.closed = true;
    switch (this.phase) {
      case Phase.Connecting:
        return this.fail("connect", this.error?.message ?? "the connection closed before it was made");
      case Phase.Head:
        return this.fail(
          "dropped",
          this.receivedAny ? "the worker closed the connection in the middle of the response head" : (this.error?.message ?? "the worker closed the connection without answering"),
        );
      case Phase.Body:
        return this.fail("broken", this.error?.message ?? "the worker closed the connection in the middle of the response");
      default:
        this.onIdleClose?.(this);
    }
  }
}
