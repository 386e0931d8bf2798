/**
 * @module proxy/limits/body-size
 *
 * client_max_body_size, and request-body buffering, as nginx does them: a
 * request whose Content-Length says it is too large is answered 413 before
 * anything is sent to a worker. A chunked body is read whole before a worker
 * is chosen (nginx's proxy_request_buffering), and sent on with a
 * Content-Length: its framing is checked in full by node's parser first, so a
 * malformed chunked body never reaches a worker even in part (the reliability matrix
 * smuggling rows 15-16), and a body over the limit gets 413 without any
 * worker seeing it. Buffering is in memory and bounded by the limit; a body
 * with a Content-Length, whose framing cannot go wrong, streams through.
 */
import type { IncomingMessage } from "node:http";

/** The error readChunkedBody fails with past the limit; the proxy answers it with 413. */
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

/**
 * True for a body framed by chunked transfer coding — or an HTTP/2 body
 * with no content-length (DATA frames until the stream ends: its size is
 * just as unknown; proxy/http2/messages.ts): it is read whole before
 * forwarding.
 */
export function isChunked(req: IncomingMessage): boolean {
  return req.headers["transfer-encoding"] !== undefined || (req as { bodyOfUnknownLength?: boolean }).bodyOfUnknownLength === true;
}

/** Reads a request body whole; fails with BodyTooLarge past `limit` bytes (0: no limit), or when the client breaks off. */
export function readChunkedBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (limit > 0 && size > limit) {
        req.off("data", onData);
        req.pause();
        reject(new BodyTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => resolve(Buffer.concat(chunks, size)));
    req.once("error", reject);
    req.once("aborted", () => reject(new Error("the client broke off its request body")));
    req.once("close", () => {
      if (!req.complete) reject(new Error("the request body ended early"));
    });
  });
}

/** A streamed body's bytes as they went to a worker, kept for a resend; `overflow` once it grew past its bound (then nothing is kept). */
export interface BodyCopy {
  chunks: Buffer[];
  size: number;
  overflow: boolean;
}

/** The most of a streamed body kept for a resend when client_max_body_size is 0 (no limit). */
export const COPY_LIMIT = 1024 * 1024;

/**
 * Keeps the chunks of a streamed body as they go to the worker, up to
 * `limit` bytes (nginx buffers request bodies for the same reason). It
 * listens without starting the flow: the body is still read only once a
 * worker is connected.
 */
export function keepCopy(req: IncomingMessage, limit: number): BodyCopy {
  const copy = { chunks: [] as Buffer[], size: 0, overflow: false };
  const onData = (chunk: Buffer) => {
    copy.size += chunk.byteLength;
    if (copy.size > limit) {
      copy.overflow = true;
      copy.chunks = [];
      req.off("data", onData);
    } else copy.chunks.push(chunk);
  };
  req.prependListener("data", onData);
  return copy;
}
