/**
 * @module http/front-door
 *
 * What both our HTTP/1.1 listeners — the proxy's and a worker's own
 * (`serve`) — do at the level of a connection, on node:http. One home, so
 * that the two cannot drift apart again:
 *
 *   - malformed bytes never cost the requests before them their responses
 *     (RFC 9112 §9.6): the response in progress, and any queued behind it,
 *     are finished first; only then does the connection get its one 400 (or
 *     408 at the header timeout, 431 for an oversized head, 505 for an
 *     unknown HTTP version) and close. Bytes after a request that said
 *     `Connection: close` (or an HTTP/1.0 one) are ignored, not answered;
 *   - a connection we close after an error is lingered on for at most
 *     LINGER_MS, reading and dropping what the client still sends, then
 *     destroyed: a client that never reads and never closes does not keep a
 *     file descriptor (nginx's lingering close);
 *   - a request refused by the head rules (http/request-rules.ts) marks its
 *     connection closing: requests pipelined behind it are dropped, not
 *     trusted;
 *   - CONNECT is answered 405 and closed (node would close it silently);
 *   - while the listener is closed for a graceful stop, every response whose
 *     head is not yet written says `Connection: close`, and the connection
 *     serves no further request (closeFrontDoor, closeIfDraining).
 */
import type http from "node:http";
import type { Duplex } from "node:stream";
import type { NormalizedTarget } from "./request-rules.ts";

/** How long a connection we close after an error may still linger, reading and dropping what the client sends. */
export const LINGER_MS = 2000;

const CLOSING = Symbol("tsgi connection closing");
const ERROR_ANSWERED = Symbol("tsgi client error answered");
type MarkedSocket = Duplex & { [CLOSING]?: boolean; [ERROR_ANSWERED]?: boolean; _httpMessage?: http.ServerResponse | null };

/** Marks a connection on which a request was refused with `Connection: close`: nothing after it is trusted. */
export function markClosing(socket: Duplex | null | undefined): void {
  if (socket) (socket as MarkedSocket)[CLOSING] = true;
}

/** Whether a request on this connection was refused with `Connection: close`. */
export function isClosing(socket: Duplex | null | undefined): boolean {
  return socket !== null && socket !== undefined && (socket as MarkedSocket)[CLOSING] === true;
}

/** Installs the connection-level rules above on a node:http (or https) server. */
export function guardFrontDoor(server: http.Server): void {
  server.on("clientError", answerClientError);
  server.on("connect", refuseConnect);
}

/**
 * A graceful stop of a guarded listener: no new connections, and idle ones
 * are closed now. The rest close as their last response ends: whoever
 * writes a response head calls closeIfDraining first (so that it says
 * `Connection: close`), and sweepIfDraining after the response. Resolves
 * once every connection has ended (the caller bounds the wait).
 */
export function closeFrontDoor(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/** The listener a response's connection came to (node sets `server` on every socket it accepts). */
function serverOf(res: http.ServerResponse): http.Server | undefined {
  return (res.socket as (Duplex & { server?: http.Server }) | null)?.server;
}

/**
 * Call just before a response's head is written: while its listener is
 * closed for a graceful stop, the response says `Connection: close` and its
 * connection serves no more. One property read, no allocation: it runs on
 * every response of the proxy's hot path.
 */
export function closeIfDraining(res: http.ServerResponse): void {
  const server = serverOf(res);
  if (server && !server.listening) res.shouldKeepAlive = false;
}

/** Call after a response ends: while its listener is closed, connections that fell idle are closed at once. */
export function sweepIfDraining(res: http.ServerResponse): void {
  const server = serverOf(res);
  if (server && !server.listening) setImmediate(() => server.closeIdleConnections());
}

/** The status line for a parse error node hands us. */
function statusFor(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return "408 Request Timeout";
    case "HPE_HEADER_OVERFLOW":
      return "431 Request Header Fields Too Large";
    case "HPE_INVALID_VERSION":
      return "505 HTTP Version Not Supported";
    default:
      return "400 Bad Request";
  }
}

export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  // Bytes after a request that asked to close the connection: that request is answered, the rest ignored.
  if (error.code === "HPE_CLOSED_CONNECTION") return;
  const marked = socket as MarkedSocket;
  if (error.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  // node calls us again for every later chunk on a connection its parser gave up on: one answer is enough.
  if (marked[ERROR_ANSWERED]) return;
  marked[ERROR_ANSWERED] = true;
  const status = statusFor(error);
  afterResponses(marked, () => {
    if (!socket.writable) return void socket.destroy();
    // A request on it was refused with `Connection: close` meanwhile (a broken chunked body): that was its last word.
    if (marked[CLOSING]) socket.end();
    else socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    marked[CLOSING] = true;
    linger(socket);
  });
}

/**
 * Runs `then` once the response in progress on the connection, and any
 * queued behind it, have been sent — unless the bad bytes were the body of
 * the request being answered: then at once (or, with its response already
 * under way, the connection is cut: that response can never be right).
 */
function afterResponses(socket: MarkedSocket, then: () => void): void {
  const current = socket._httpMessage;
  if (!current || current.writableFinished) return then();
  // The bytes that broke were this request's own body (a chunked body): it can never be answered in full.
  if (current.req && !current.req.complete) {
    if (current.headersSent) socket.destroy();
    else then();
    return;
  }
  let done = false;
  const next = () => {
    if (done) return;
    done = true;
    // node hands the connection to the next queued response when this one finishes: look again after that.
    setImmediate(() => (socket.destroyed ? undefined : afterResponses(socket, then)));
  };
  current.once("finish", next);
  current.once("close", next);
}

/** Reads and drops what the client still sends for at most LINGER_MS, then destroys the connection. */
export function linger(socket: Duplex): void {
  socket.on("data", () => undefined);
  socket.resume();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

function refuseConnect(_req: http.IncomingMessage, socket: Duplex): void {
  socket.on("error", () => socket.destroy());
  if (!socket.writable) return void socket.destroy();
  const body = "Method Not Allowed: CONNECT is not supported\n";
  socket.end(
    `HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  linger(socket);
}

/**
 * Makes a request carry its normalized target (http/request-rules.ts): the
 * origin-form URL, and — for an absolute-form target — the host it named as
 * the one Host header, in `headers` and in `rawHeaders` alike.
 */
export function adoptTarget(req: http.IncomingMessage, target: NormalizedTarget): void {
  req.url = target.url;
  if (target.host === undefined) return;
  req.headers.host = target.host;
  const raw: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() !== "host") raw.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  }
  req.rawHeaders = ["Host", target.host, ...raw];
}
