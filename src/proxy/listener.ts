/**
 * @module proxy/listener
 *
 * A front listener: the node:http server a FrontProxy's request handler runs
 * on, with the connection limits that belong to the listener rather than to
 * a request. header_timeout is node's headersTimeout: a client that has not
 * sent its whole head in time gets 408 and its connection closes, so a
 * slowloris client is cut off while others are served. Node checks it every
 * connectionsCheckingInterval, 30 s by default; here every second, so the
 * limit holds to about a second. There is no cap on a whole request
 * (requestTimeout 0): long uploads and streams are the workers' business,
 * bounded by upstream_timeout.
 */
import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";

/** How often node checks for connections past header_timeout. */
export const HEADER_CHECK_INTERVAL_MS = 1000;

/** PEM certificate chain and private key, for an HTTPS listener. */
export interface TlsCredentials {
  cert: Buffer | string;
  key: Buffer | string;
}

/** What a front listener serves: a FrontProxy's request and upgrade listeners. */
export interface FrontHandlers {
  handle: http.RequestListener;
  handleUpgrade: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
}

export interface FrontListenerOptions {
  headerTimeoutMs: number;
  /** An HTTPS listener with this certificate and key. */
  tls?: TlsCredentials;
}

export function frontServer(proxy: FrontHandlers, { headerTimeoutMs, tls }: FrontListenerOptions): http.Server {
  const options = { headersTimeout: headerTimeoutMs, requestTimeout: 0, connectionsCheckingInterval: HEADER_CHECK_INTERVAL_MS };
  // An https.Server is an http.Server over TLS: the same handler, the same limits.
  const server = tls ? https.createServer({ ...options, cert: tls.cert, key: tls.key }, proxy.handle) : http.createServer(options, proxy.handle);
  server.on("upgrade", proxy.handleUpgrade);
  server.on("clientError", onClientError);
  return server;
}

type SocketWithMessage = Duplex & { _httpMessage?: { headersSent?: boolean } | null };

/**
 * Malformed HTTP: 400 and close, as node does by default — except for bytes
 * after a request that said `Connection: close` (HPE_CLOSED_CONNECTION): that
 * request is still answered, the rest ignored, and the connection closes
 * after the response (the reliability matrix smuggling case 20). Timeouts get 408.
 */
function onClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === "HPE_CLOSED_CONNECTION") return;
  if (error.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const answering = (socket as SocketWithMessage)._httpMessage;
  if (answering && answering.headersSent) {
    socket.destroy();
    return;
  }
  const status =
    error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "408 Request Timeout" : error.code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large" : "400 Bad Request";
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
