/**
 * @module proxy/http2/listener
 *
 * HTTP/2 on the proxy's TLS listener, beside HTTP/1.1 on the same port.
 * The TLS server offers ALPN h2 and http/1.1 and hands each connection, by
 * the protocol it negotiated, either to node:https's own HTTP/1.1 handling —
 * untouched: its header timeout, front-door rules, upgrades and WebSockets —
 * or to a node:http2 server that runs the same request handler on each
 * stream (proxy/http2/messages.ts adapts the messages).
 *
 * Why not http2.createSecureServer({ allowHTTP1: true }): its HTTP/1.1
 * connections are not those of an http.Server — no headersTimeout check
 * (slowloris), no closeIdleConnections for a graceful stop — so HTTP/1.1
 * over TLS would lose what the plain listener has. Here the listening
 * server stays the https.Server (certificate hot reload and the stop code
 * see no difference), and the h2 server is only a session factory.
 *
 * A connection with no stream open for the server's keepAliveTimeout is
 * closed, as an idle HTTP/1.1 one is (closeWhenIdle).
 *
 * A graceful stop: the https.Server's closeIdleConnections (which
 * closeFrontDoor calls) also sends GOAWAY on every h2 session — streams
 * under way finish, no new ones start — and closeAllConnections (the drain
 * timeout's cut) destroys them.
 */
import http2 from "node:http2";
import type http from "node:http";
import type https from "node:https";
import type { TLSSocket } from "node:tls";
import { FrontHttp2Request, FrontHttp2Response } from "./messages.ts";
import { MAX_HEADER_FIELDS } from "../../http/request-rules.ts";

/** What both protocols are offered as, most preferred first. */
export const ALPN_PROTOCOLS = ["h2", "http/1.1"];

/** nginx's http2_max_concurrent_streams. */
export const MAX_CONCURRENT_STREAMS = 128;
/** The largest header list (HPACK-decoded, 32 bytes a field included) a client may send: nginx's 4 x 8k header buffers. */
export const MAX_HEADER_LIST_SIZE = 32 * 1024;

/** How long an idle connection told GOAWAY has to go before it is cut. */
const GOAWAY_GRACE_MS = 1000;

/** Serves HTTP/2 on an https.Server built with ALPN_PROTOCOLS: its h2 connections go to `handle`, one call per stream. */
export function serveHttp2(server: https.Server, handle: http.RequestListener): void {
  const h2 = http2.createServer({
    Http2ServerRequest: FrontHttp2Request,
    Http2ServerResponse: FrontHttp2Response,
    settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: MAX_HEADER_LIST_SIZE },
    // node resets a stream past 128 header fields by default; HTTP/1.1's limit holds instead (4 for the pseudo-headers).
    maxHeaderListPairs: MAX_HEADER_FIELDS + 4,
  });
  const onStream = handle as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
  h2.on("request", onStream);
  // CONNECT too goes to the handler, whose head rules refuse it (405 with Allow, a request id and a log line);
  // node's own answer would be a bare 405.
  h2.on("connect", onStream);
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    closeWhenIdle(session, server.keepAliveTimeout);
  });
  // The https.Server's own HTTP/1.1 connection listener, kept for every connection that did not choose h2.
  const http1 = server.listeners("secureConnection") as ((socket: TLSSocket) => void)[];
  server.removeAllListeners("secureConnection");
  server.on("secureConnection", (socket: TLSSocket) => {
    if (socket.alpnProtocol === "h2") h2.emit("connection", socket);
    else for (const listener of http1) listener.call(server, socket);
  });
  const closeIdle = server.closeIdleConnections.bind(server);
  server.closeIdleConnections = () => {
    closeIdle();
    for (const session of sessions) session.close();
  };
  const closeAll = server.closeAllConnections.bind(server);
  server.closeAllConnections = () => {
    closeAll();
    for (const session of sessions) session.destroy();
  };
}

/**
 * An h2 connection with no stream open for `idleMs` is closed (GOAWAY), as
 * an idle HTTP/1.1 keep-alive connection is after the server's
 * keepAliveTimeout, and as nginx's keepalive_timeout does for h2: no client
 * holds a connection (and its memory) for nothing. The time counts from the
 * connection's start or its last stream's end, whatever else arrives: PING
 * and SETTINGS frames, or a HEADERS frame trickled in byte by byte, would
 * each reset a timeout that counts silence (the session's own), so that a
 * client sending one now and then could hold the connection for ever.
 */
function closeWhenIdle(session: http2.ServerHttp2Session, idleMs: number): void {
  if (!(idleMs > 0)) return;
  let open = 0;
  const closeIdle = () => {
    session.close();
    // GOAWAY is sent; a client in the middle of a frame keeps node's session open, so it is cut after a moment —
    // unless a stream that crossed the GOAWAY is being answered: close() ends the session after it.
    setTimeout(() => open === 0 && session.destroy(), GOAWAY_GRACE_MS).unref();
  };
  let timer: NodeJS.Timeout | undefined = setTimeout(closeIdle, idleMs);
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    open += 1;
    clearTimeout(timer);
    timer = undefined;
    stream.once("close", () => {
      open -= 1;
      if (open === 0 && !session.closed && !session.destroyed) timer = setTimeout(closeIdle, idleMs);
    });
  });
  session.once("close", () => clearTimeout(timer));
}
