/**
 * @module proxy/upstream/request-head
 *
 * The request head the proxy writes to a worker, built as one string from
 * the client's raw header lines. The rules (the reliability matrix H1, S2; nginx's
 * proxy module):
 *   - hop-by-hop headers, and any the client named in Connection, stay with
 *     the client's connection; so does Expect (node has already answered
 *     100-continue to the client, and the body follows regardless);
 *   - header names node's parser accepts but nginx drops (`_`) never reach
 *     a worker, so `Transfer_Encoding` cannot be mistaken for the real one;
 *   - X-Forwarded-*, Forwarded, X-Request-Id and the mount header are the
 *     proxy's to set: a client's copies are dropped and ours written (which
 *     of the client's hops to keep is proxy/forwarded.ts's decision);
 *   - the body's framing is ours too: a Content-Length for a body read whole,
 *     the client's Content-Length for a streamed one; never Transfer-Encoding.
 * Header bytes go out exactly as they came: node's parser hands them over as
 * latin1 strings, and the head is written as latin1.
 */
import type { IncomingMessage } from "node:http";
import { HOP_BY_HOP_HEADERS } from "../../tsgi/util.ts";
import { isForwardableHeaderName } from "../request-checks.ts";
// The header that tells a gateway worker its mount point (SCRIPT_NAME). Ours
// alone: a client's copy is always dropped, and workers trust it only because
// nothing but this proxy reaches their sockets.
import { SCRIPT_NAME_HEADER } from "../../contract/script-name.ts";

export interface RequestHeadOptions {
  /** The route's mount ("" for none): sent in SCRIPT_NAME_HEADER. */
  mount: string;
  requestId: string;
  /** X-Forwarded-* and Forwarded, as proxy/forwarded.ts computed them. */
  forwarding: readonly (readonly [string, string])[];
  /** A body read whole: its length replaces the client's framing. */
  bufferedLength?: number;
  /** For an upgrade (WebSocket) request: the Upgrade header's value, kept with `Connection: upgrade`. */
  upgrade?: string;
  /** The Host to send when the client sent none (an HTTP/1.0 client). */
  defaultHost: () => string;
}

/** Headers the proxy always sets itself or never forwards, besides the hop-by-hop ones. */
const OURS = new Set(["forwarded", "x-request-id", SCRIPT_NAME_HEADER, "expect"]);

function droppedName(lower: string, listed: ReadonlySet<string> | undefined): boolean {
  return (
    HOP_BY_HOP_HEADERS.has(lower) ||
    OURS.has(lower) ||
    lower.startsWith("x-forwarded-") ||
    (listed !== undefined && listed.has(lower)) ||
    !isForwardableHeaderName(lower)
  );
}

/** The names a Connection header lists, lowercase (besides close/keep-alive, which are hop-by-hop anyway). */
function connectionListed(req: IncomingMessage): Set<string> | undefined {
  const connection = req.headers.connection;
  if (!connection) return undefined;
  const names = new Set<string>();
  for (const token of connection.split(",")) {
    const name = token.trim().toLowerCase();
    if (name) names.add(name);
  }
  return names;
}

export function requestHead(req: IncomingMessage, options: RequestHeadOptions): string {
  const listed = connectionListed(req);
  let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
  let hasHost = false;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === "host") hasHost = true;
    else if (lower === "content-length") {
      if (options.bufferedLength !== undefined) continue;
    } else if (droppedName(lower, listed)) continue;
    head += `${name}: ${raw[i + 1]}\r\n`;
  }
  if (!hasHost) head += `Host: ${options.defaultHost()}\r\n`;
  for (const [name, value] of options.forwarding) head += `${name}: ${value}\r\n`;
  if (options.mount) head += `${SCRIPT_NAME_HEADER}: ${options.mount}\r\n`;
  head += `x-request-id: ${options.requestId}\r\n`;
  if (options.bufferedLength !== undefined) head += `Content-Length: ${options.bufferedLength}\r\n`;
  if (options.upgrade !== undefined) head += `Connection: upgrade\r\nUpgrade: ${options.upgrade}\r\n`;
  return `${head}\r\n`;
}
