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
 * bounded by upstream_timeout. Malformed input, CONNECT and the end of a
 * connection are handled as every front door of ours handles them
 * (http/front-door.ts). An HTTPS listener may offer HTTP/2 too, on the
 * same port (proxy/http2/listener.ts): its HTTP/1.1 connections are served
 * exactly as here.
 */
import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import { guardFrontDoor } from "../http/front-door.ts";
import { ALPN_PROTOCOLS, serveHttp2 } from "./http2/listener.ts";

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
  /** On the HTTPS listener, HTTP/2 too (ALPN h2, proxy/http2/listener.ts); without it, HTTP/1.1 only. */
  http2?: boolean;
}

export function frontServer(proxy: FrontHandlers, { headerTimeoutMs, tls, http2 }: FrontListenerOptions): http.Server {
  // requireHostHeader off: a missing Host is refused by our rules (http/request-rules.ts), which close the
  // connection before a pipelined request runs; node's own 400 for it still let the requests behind it through.
  const options = { headersTimeout: headerTimeoutMs, requestTimeout: 0, connectionsCheckingInterval: HEADER_CHECK_INTERVAL_MS, requireHostHeader: false };
  // An https.Server is an http.Server over TLS: the same handler, the same limits.
  if (!tls) return guarded(http.createServer(options, proxy.handle), proxy);
  const alpn = http2 ? { ALPNProtocols: ALPN_PROTOCOLS } : {};
  const server = https.createServer({ ...options, ...alpn, cert: tls.cert, key: tls.key }, proxy.handle);
  if (http2) serveHttp2(server, proxy.handle);
  return guarded(server, proxy);
}

function guarded(server: http.Server, proxy: FrontHandlers): http.Server {
  server.on("upgrade", proxy.handleUpgrade);
  guardFrontDoor(server);
  return server;
}
