/**
 * @module proxy/http2/head
 *
 * An HTTP/2 request head as the rest of the proxy reads it: the HTTP/1.1
 * shape the passes, the access log and the worker (always spoken to over
 * HTTP/1.1) expect. Pure: raw header pairs in, a verdict out.
 *
 *   pseudo-headers   :method and :path are the request line (node gives them
 *                    as req.method and req.url); :authority becomes the one
 *                    Host (RFC 9113 §8.3.1); none of them is forwarded
 *   Host             a Host that names another entity than :authority is
 *                    malformed (RFC 9113 §8.3.1: a server SHOULD treat it
 *                    so): routing by one and the worker reading the other is
 *                    the confusion that rule prevents
 *   connection-      Connection, Keep-Alive, Proxy-Connection,
 *   specific         Transfer-Encoding, Upgrade, and TE other than
 *                    "trailers" make a request malformed (RFC 9113 §8.2.2).
 *                    nghttp2 already resets such a stream before node sees
 *                    it; the rule is kept here so that no such header can
 *                    ever reach a worker whatever the library does
 *   Cookie           split cookie fields are joined with "; " for the
 *                    HTTP/1.1 hop (RFC 9113 §8.2.3)
 */

/** The request-line pseudo-headers: node hands them over as method and url, they are never forwarded as fields. */
const AUTHORITY = ":authority";

/** Headers that only mean something on an HTTP/1.x connection (RFC 9113 §8.2.2). */
export const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

export interface Http1View {
  /** The header pairs without pseudo-headers, Host first (from :authority when there is one), cookies joined. */
  rawHeaders: string[];
  /** The Host the request is routed by, if it names one. */
  host?: string;
  /** Why the request is malformed (answered 400), if it is. */
  problem?: string;
}

export function http1View(raw: readonly string[]): Http1View {
  let authority: string | undefined;
  let host: string | undefined;
  let cookies: string[] | undefined;
  let cookieAt = -1;
  let problem: string | undefined;
  const fields: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 58 /* ":" */) {
      if (name === AUTHORITY) authority = value;
      continue;
    }
    const lower = name.toLowerCase();
    if (CONNECTION_SPECIFIC.has(lower)) problem ??= `the connection-specific header ${lower} is not allowed in HTTP/2`;
    else if (lower === "te" && value.trim().toLowerCase() !== "trailers") problem ??= `te ${JSON.stringify(value)} is not allowed in HTTP/2 (only "trailers")`;
    else if (lower === "host") {
      if (host !== undefined) problem ??= "Host is sent twice";
      host = value;
    } else if (lower === "cookie") {
      if (cookies === undefined) {
        cookieAt = fields.length + 1; // its place, filled below
        fields.push(name, "");
      }
      (cookies ??= []).push(value);
    } else fields.push(name, value);
  }
  if (cookies !== undefined) fields[cookieAt] = cookies.join("; ");
  if (authority !== undefined && host !== undefined && authority.toLowerCase() !== host.trim().toLowerCase()) {
    problem ??= `Host ${JSON.stringify(host)} differs from :authority ${JSON.stringify(authority)}`;
  }
  const routedBy = authority ?? host;
  // RFC 9113 §8.3.1: a request for an https URI carries :authority or Host (as an HTTP/1.1 one must carry Host).
  if (routedBy === undefined) return { rawHeaders: fields, problem: problem ?? "an HTTP/2 request without :authority or Host" };
  return { rawHeaders: ["host", routedBy, ...fields], host: routedBy, ...(problem ? { problem } : {}) };
}

/** A response header that must not go out on an HTTP/2 response (RFC 9113 §8.2.2); node would throw on it. */
export function isConnectionSpecific(lower: string): boolean {
  return CONNECTION_SPECIFIC.has(lower);
}
