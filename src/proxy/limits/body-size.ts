/**
 * @module proxy/limits/body-size
 *
 * client_max_body_size, as nginx enforces it: a request whose Content-Length
 * says it is too large is answered 413 before anything is sent to a worker;
 * a chunked body is counted as it streams and cut off at the limit (the
 * worker sees its request abort; the client gets 413 if no response has
 * started). The proxy does not buffer bodies, so a chunked request over the
 * limit does reach a worker in part — nginx avoids that by buffering the
 * body to disk first (proxy_request_buffering), which this proxy does not do.
 */
import { Transform, type TransformCallback } from "node:stream";
import type { IncomingMessage } from "node:http";

/** The error a BodyCounter fails with; the proxy answers it with 413. */
export class BodyTooLarge extends Error {
  readonly status = 413;
  constructor(readonly limit: number) {
    super(`request body larger than client_max_body_size (${limit} bytes)`);
    this.name = "BodyTooLarge";
  }
}

/** True when the declared Content-Length alone is over the limit (0: no limit). */
export function declaredTooLarge(req: IncomingMessage, limit: number): boolean {
  if (limit <= 0) return false;
  const declared = req.headers["content-length"];
  return declared !== undefined && Number(declared) > limit;
}

/** True when the body's size is not declared, so it must be counted while it streams. */
export function needsCounting(req: IncomingMessage, limit: number): boolean {
  return limit > 0 && req.headers["content-length"] === undefined && req.headers["transfer-encoding"] !== undefined;
}

/** Passes the body through, failing with BodyTooLarge past `limit` bytes. */
export class BodyCounter extends Transform {
  private seen = 0;

  constructor(private readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.byteLength;
    if (this.seen > this.limit) callback(new BodyTooLarge(this.limit));
    else callback(null, chunk);
  }
}
