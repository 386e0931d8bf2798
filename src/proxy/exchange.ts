/**
 * @module proxy/exchange
 *
 * One request's record while the proxy handles it: its request id, when it
 * arrived, where it was routed, the body bytes sent back, and the access-log
 * entry made from all that once it ends. Request passes, tries and the
 * upgrade tunnel write into it; nothing else keeps per-request state.
 */
import { randomUUID } from "node:crypto";
import type http from "node:http";
import type { RouteMatch } from "./router.ts";

/** One line of the access log: plain data, rendered by proxy/access-log.ts. */
export interface AccessEntry {
  remoteAddr: string;
  method: string;
  url: string;
  httpVersion: string;
  status: number;
  /** Body bytes sent to the client. */
  bytes: number;
  referer?: string;
  userAgent?: string;
  app?: string;
  /** The worker that answered ("app.slot"). */
  endpoint?: string;
  /** Milliseconds from the request's arrival to the end of its response. */
  ms: number;
  requestId: string;
  /** When the proxy answered by itself: the catalog code of its answer (proxy/errors.ts, docs/errors.md). */
  error?: string;
}

/** A client's X-Request-Id is kept when it looks like an id; anything else is replaced by ours. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdOf(req: http.IncomingMessage): string {
  const given = req.headers["x-request-id"];
  return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
}

export class Exchange {
  readonly startedAt = Date.now();
  readonly url: string;
  readonly requestId: string;
  route?: RouteMatch;
  /** Body bytes written to the client so far. */
  bytes = 0;
  private logged = false;

  constructor(
    readonly req: http.IncomingMessage,
    private readonly onEnd: ((entry: AccessEntry) => void) | undefined,
  ) {
    this.url = req.url ?? "/";
    this.requestId = requestIdOf(req);
  }

  /** Ends the exchange with `status`, answered by `endpoint` (a worker's "app.slot") or by the proxy itself (`error`, its code): one access entry, once. */
  end(status: number, endpoint?: string, error?: string): void {
    if (this.logged) return;
    this.logged = true;
    const req = this.req;
    this.onEnd?.({
      remoteAddr: req.socket.remoteAddress ?? "-",
      method: req.method ?? "GET",
      url: this.url,
      httpVersion: req.httpVersion,
      status,
      bytes: this.bytes,
      referer: req.headers.referer,
      userAgent: req.headers["user-agent"],
      app: this.route?.app,
      endpoint,
      ms: Date.now() - this.startedAt,
      requestId: this.requestId,
      ...(error === undefined ? {} : { error }),
    });
  }
}
