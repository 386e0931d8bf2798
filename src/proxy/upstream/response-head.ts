/**
 * @module proxy/upstream/response-head
 *
 * Reads a worker's response head, strictly. The proxy speaks to workers over
 * its own keep-alive connections (upstream/exchange.ts) rather than through
 * node:http's client: measured on the proxy's hot path, the client side of
 * node:http cost more than everything else the proxy does per request
 * (bench/proxy.mjs). What it gives up — a general-purpose parser — it does
 * not need: a worker's head is short, arrives whole in practice, and must be
 * refused rather than guessed at when its framing is ambiguous, because a
 * response mis-framed on a kept-alive connection poisons the next one
 * (the reliability matrix U4, nginx's proxy_duplicate_headers.t). So: CRLF line ends
 * only, no obs-fold, token header names, one Content-Length of plain digits,
 * Transfer-Encoding exactly "chunked" and never with Content-Length, and a
 * head no larger than MAX_HEAD_BYTES. Any of these broken is a 502.
 */
import { FIELD_NAME, FIELD_VALUE, FIELD_VALUE_CLASS } from "../../contract/http-grammar.ts";

/** nginx's proxy_buffer_size is one page (4-8 KiB); workers never come near this. */
export const MAX_HEAD_BYTES = 16 * 1024;

/** How the body after the head is delimited. */
export type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  /** Read until the worker closes: an HTTP/1.0-style body; the connection cannot be reused. */
  | { kind: "close" };

export interface ResponseHead {
  status: number;
  reason: string;
  /** Every header line in order, as a flat [name, value, name, value, …] list (a repeated Set-Cookie stays two). */
  headers: string[];
  framing: Framing;
  /** Whether the worker keeps the connection open after this response. */
  keepAlive: boolean;
  /** The names listed in the response's Connection header, lowercase: hop-by-hop for this response only. */
  connectionTokens: readonly string[];
}

/** A response the proxy will not pass on: the client gets 502 and the connection to the worker is closed. */
export class UpstreamProtocolError extends Error {
  constructor(message: string) {
    super(`upstream sent an invalid response: ${message}`);
    this.name = "UpstreamProtocolError";
  }
}

const HEAD_END = Buffer.from("\r\n\r\n");
/** The reason phrase is field-value text (contract/http-grammar.ts). */
const STATUS_LINE = new RegExp(`^HTTP\\/1\\.([01]) (\\d{3})(?: (${FIELD_VALUE_CLASS}*))?$`);
const DIGITS = /^\d{1,15}$/;

/**
 * Finds a complete head at the start of `buffer`: its parsed form and the
 * offset where the body starts, or undefined when more bytes are needed.
 * `request` tells what was asked (a HEAD request's response has no body).
 */
export function parseResponseHead(buffer: Buffer, requestMethod: string): { head: ResponseHead; bodyOffset: number } | undefined {
  const end = buffer.indexOf(HEAD_END);
  if (end === -1) {
    if (buffer.byteLength > MAX_HEAD_BYTES) throw new UpstreamProtocolError(`a head over ${MAX_HEAD_BYTES} bytes`);
    // A line ended by a bare LF means the head will never end the way we read it: refuse it now, not at the timeout.
    for (let lf = buffer.indexOf(10); lf !== -1; lf = buffer.indexOf(10, lf + 1)) {
      if (lf === 0 || buffer[lf - 1] !== 13) throw new UpstreamProtocolError("a line ended by a bare LF");
    }
    return undefined;
  }
  if (end + 4 > MAX_HEAD_BYTES) throw new UpstreamProtocolError(`a head over ${MAX_HEAD_BYTES} bytes`);
  const lines = buffer.toString("latin1", 0, end).split("\r\n");
  const statusLine = STATUS_LINE.exec(lines[0]!);
  if (!statusLine) throw new UpstreamProtocolError(`status line ${JSON.stringify(lines[0]!.slice(0, 80))}`);
  const minor = statusLine[1]!;
  const status = Number(statusLine[2]);
  if (status < 100) throw new UpstreamProtocolError(`status ${status}`);

  const headers: string[] = [];
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let connection = "";
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!FIELD_NAME.test(name)) throw new UpstreamProtocolError(`header line ${JSON.stringify(line.slice(0, 80))}`);
    // Optional whitespace is spaces and tabs only: a CR (or any other control) around a value is refused below.
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (!FIELD_VALUE.test(value)) throw new UpstreamProtocolError(`a control character in header ${name}`);
    const lower = name.length === 14 || name.length === 17 || name.length === 10 ? name.toLowerCase() : "";
    if (lower === "content-length") {
      if (contentLength !== undefined) throw new UpstreamProtocolError("two Content-Length headers");
      if (!DIGITS.test(value)) throw new UpstreamProtocolError(`Content-Length ${JSON.stringify(value)}`);
      contentLength = value;
    } else if (lower === "transfer-encoding") {
      if (transferEncoding !== undefined) throw new UpstreamProtocolError("two Transfer-Encoding headers");
      transferEncoding = value;
    } else if (lower === "connection") {
      connection = connection ? `${connection},${value}` : value;
    }
    headers.push(name, value);
  }

  const connectionTokens = connection
    ? connection
        .toLowerCase()
        .split(",")
        .map((token) => token.trim())
        .filter(Boolean)
    : [];
  let keepAlive = minor === "1" ? !connectionTokens.includes("close") : connectionTokens.includes("keep-alive");

  let framing: Framing;
  if (transferEncoding !== undefined) {
    if (contentLength !== undefined) throw new UpstreamProtocolError("both Content-Length and Transfer-Encoding");
    if (transferEncoding.toLowerCase() !== "chunked") throw new UpstreamProtocolError(`Transfer-Encoding ${JSON.stringify(transferEncoding)}`);
    if (minor === "0") throw new UpstreamProtocolError("Transfer-Encoding in an HTTP/1.0 response");
  }
  if (requestMethod === "HEAD" || status < 200 || status === 204 || status === 304) framing = { kind: "none" };
  else if (transferEncoding !== undefined) framing = { kind: "chunked" };
  else if (contentLength !== undefined) framing = { kind: "length", length: Number(contentLength) };
  else {
    framing = { kind: "close" };
    keepAlive = false;
  }
  return {
    head: { status, reason: statusLine[3] ?? "", headers, framing, keepAlive, connectionTokens },
    bodyOffset: end + 4,
  };
}
