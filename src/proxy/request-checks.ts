/**
 * @module proxy/request-checks
 *
 * The proxy's own checks of a request's framing, on top of node's strict
 * parser (llhttp), which accepts a few things the reliability matrix's smuggling table
 * says a front proxy must refuse: a Content-Length with leading zeros (`010`,
 * which another parser may read as octal), a Transfer-Encoding other than
 * exactly `chunked` (`,chunked`), and Transfer-Encoding in an HTTP/1.0
 * request. Each is answered 400 and the connection is closed, so that
 * nothing else on it is trusted. Pure: request head in, verdict out.
 */
import type { IncomingMessage } from "node:http";

/** Why a request's framing is refused, or undefined when it is fine. */
export function framingProblem(req: IncomingMessage): string | undefined {
  const raw = req.rawHeaders;
  let transferEncoding: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!.trim();
    if (name === "content-length" && !/^(0|[1-9]\d{0,15})$/.test(value)) {
      return `Content-Length ${JSON.stringify(value)} is not a plain decimal number`;
    }
    if (name === "transfer-encoding") {
      if (transferEncoding !== undefined) return "Transfer-Encoding is sent twice";
      transferEncoding = value;
    }
  }
  if (transferEncoding === undefined) return undefined;
  if (transferEncoding.toLowerCase() !== "chunked") {
    return `Transfer-Encoding ${JSON.stringify(transferEncoding)} is not "chunked"`;
  }
  if (req.httpVersion === "1.0") return "Transfer-Encoding in an HTTP/1.0 request";
  return undefined;
}

/**
 * nginx's large_client_header_buffers (4 x 8k): a request line longer than
 * one buffer is answered 414. node's own limit is the whole head (16 KiB,
 * answered 431 by the listener), which would let a 9 KiB target through.
 */
export const MAX_REQUEST_TARGET = 8 * 1024;
/** More header fields than any client sends: 431 (node would silently keep only the first 2000). */
export const MAX_HEADER_FIELDS = 1000;

/** A head the proxy refuses for its size: the status and why, or undefined. */
export function headSizeProblem(req: IncomingMessage): { status: 414 | 431; reason: string } | undefined {
  if ((req.url ?? "").length > MAX_REQUEST_TARGET) {
    return { status: 414, reason: `the request target is longer than ${MAX_REQUEST_TARGET} bytes` };
  }
  if (req.rawHeaders.length / 2 > MAX_HEADER_FIELDS) {
    return { status: 431, reason: `more than ${MAX_HEADER_FIELDS} header fields` };
  }
  return undefined;
}

/**
 * Header names with "_" are dropped, as nginx's ignore_invalid_headers does:
 * `Transfer_Encoding` would otherwise reach a backend that folds "_" into "-".
 */
export function isForwardableHeaderName(name: string): boolean {
  return !name.includes("_");
}
