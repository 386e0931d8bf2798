/**
 * @module proxy/http2/messages
 *
 * The request and response classes node:http2's compatibility API builds
 * for our HTTP/2 listener, so that the proxy's handler — written against
 * node:http's IncomingMessage and ServerResponse — runs unchanged on an h2
 * stream. Only the differences are here:
 *
 *   request    rawHeaders without pseudo-headers, Host from :authority,
 *              cookies joined (proxy/http2/head.ts); why it is malformed,
 *              if it is; whether its body has no declared length (DATA
 *              frames until END_STREAM: read whole, like a chunked one)
 *   response   no reason phrase (HTTP/2 has none, node warns on one) and no
 *              connection-specific header (RFC 9113 §8.2.2; node throws on
 *              one): a worker's Upgrade on a 426, our own Connection: close
 *
 * `instanceof` on these classes is how the shared code tells an h2 message
 * from an HTTP/1.1 one, off the HTTP/1.1 hot path.
 */
import http2 from "node:http2";
import type { OutgoingHttpHeaders } from "node:http";
import { http1View, isConnectionSpecific } from "./head.ts";

export class FrontHttp2Request extends http2.Http2ServerRequest {
  /** Why the request is malformed (the head-rules pass answers it 400), if it is. */
  readonly malformed: string | undefined;
  /** A body with no content-length: read whole before a worker is chosen, sent on with one. */
  readonly bodyOfUnknownLength: boolean;
  private http1RawHeaders: string[];

  constructor(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, options: unknown, rawHeaders: string[]) {
    // @ts-expect-error -- node's constructor takes (stream, headers, options, rawHeaders); its typings omit it.
    super(stream, headers, options, rawHeaders);
    const view = http1View(rawHeaders);
    this.http1RawHeaders = view.rawHeaders;
    if (view.host !== undefined) this.headers.host = view.host;
    this.malformed = view.problem;
    this.bodyOfUnknownLength = !stream.endAfterHeaders && headers["content-length"] === undefined;
  }

  // node's rawHeaders (a getter without a setter) lists the pseudo-headers too; the proxy reads, and may rewrite
  // (an absolute-form target's Host), the HTTP/1.1 view. An accessor of the class, so every request has one shape.
  // @ts-expect-error -- node's typings call rawHeaders a property; it is an accessor in node's class.
  override get rawHeaders(): string[] {
    return this.http1RawHeaders;
  }

  override set rawHeaders(value: string[]) {
    this.http1RawHeaders = value;
  }
}

export class FrontHttp2Response extends http2.Http2ServerResponse<FrontHttp2Request> {
  override writeHead(statusCode: number, reasonOrHeaders?: string | OutgoingHttpHeaders | readonly string[], headers?: OutgoingHttpHeaders | readonly string[]): this {
    const given = typeof reasonOrHeaders === "string" ? headers : reasonOrHeaders;
    try {
      // @ts-expect-error -- node accepts a flat [name, value, ...] array here (as node:http does); its typings do not say so.
      return super.writeHead(statusCode, given === undefined ? undefined : withoutConnectionHeaders(given));
    } catch (error) {
      // node refuses, after copying them in, heads HTTP/1.1 lets through (a single-value header twice, such as two
      // ETags): none of those headers may stay for the answer written instead (a worker's Set-Cookie on our 502).
      for (const name of this.getHeaderNames()) this.removeHeader(name);
      throw error;
    }
  }
}

function withoutConnectionHeaders(headers: OutgoingHttpHeaders | readonly string[]): OutgoingHttpHeaders | string[] {
  if (Array.isArray(headers)) {
    const flat = headers as readonly string[];
    const kept: string[] = [];
    for (let i = 0; i < flat.length; i += 2) if (!isConnectionSpecific(flat[i]!.toLowerCase())) kept.push(flat[i]!, flat[i + 1]!);
    return kept;
  }
  const kept: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!isConnectionSpecific(name.toLowerCase())) kept[name] = value;
  return kept;
}

/** Whether a response goes out on an HTTP/2 stream. */
export function isHttp2Response(res: object): res is FrontHttp2Response {
  return res instanceof http2.Http2ServerResponse;
}

/** Whether a request came on an HTTP/2 stream. */
export function isHttp2Request(req: object): req is FrontHttp2Request {
  return req instanceof FrontHttp2Request;
}
