/**
 * @module proxy/static-preconditions
 *
 * RFC 9110's preconditions where `send`'s are looser, for the static file
 * server:
 *
 * - If-Match compares entity-tags strongly (§13.1.1): a weak tag matches
 *   nothing. `send` compares weakly, so `If-Match: W/"…"` went through.
 * - If-Range (§13.1.5) holds only for a strong entity-tag equal to the
 *   current one, or a date exactly equal to Last-Modified; otherwise the
 *   Range is ignored and the whole file is sent, 200. `send` matched an
 *   entity-tag by substring (weak ones included) and took any date not
 *   older than Last-Modified, so a client resuming after the file changed
 *   back to an older copy, or resuming gzip bytes with the plain file's
 *   weak tag, got a 206 of bytes that do not fit what it has.
 *
 * The file server's entity-tags are weak (`W/"size-mtime"`, as `send` makes
 * them), so If-Match other than `*` fails and If-Range works by date — as
 * RFC 9110 wants for a validator that is not strong. nginx's static tags are
 * strong; its comparisons are the same ones.
 *
 * The two checks replace SendStream's own methods of the same names on one
 * stream (internal methods, stable since send 0.x, as proxy/static-compress
 * replaces others).
 */
import type http from "node:http";
import type send from "send";

interface SendInternals {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  isPreconditionFailure(): boolean;
  isRangeFresh(): boolean;
}

/** The entity-tags of an If-Match value (`"a", W/"b"`), each as written. */
function entityTags(value: string): string[] {
  return value.match(/(?:W\/)?"[^"]*"/g) ?? [];
}

/** RFC 9110 §8.8.3.2's strong comparison: both tags strong, and the same characters. */
function strongMatch(a: string, b: string): boolean {
  return !a.startsWith("W/") && !b.startsWith("W/") && a === b;
}

const headerOf = (res: http.ServerResponse, name: string) => {
  const value = res.getHeader(name);
  return typeof value === "string" ? value : undefined;
};

/** Makes `stream` judge If-Match and If-Range as RFC 9110 does (see the module's comment). */
export function strictPreconditions(stream: ReturnType<typeof send>): void {
  const internals = stream as unknown as SendInternals;
  const unmodifiedSince = internals.isPreconditionFailure;
  internals.isPreconditionFailure = function (this: SendInternals) {
    const match = this.req.headers["if-match"];
    // Without If-Match, send's own check of If-Unmodified-Since stands (§13.2.2 evaluates it only then).
    if (!match) return unmodifiedSince.call(this);
    if (match.trim() === "*") return false;
    const etag = headerOf(this.res, "ETag");
    return etag === undefined || !entityTags(match).some((tag) => strongMatch(tag, etag));
  };
  internals.isRangeFresh = function (this: SendInternals) {
    const header = this.req.headers["if-range"];
    const ifRange = (Array.isArray(header) ? header[0] : header)?.trim();
    if (!ifRange) return true;
    if (ifRange.startsWith('"') || ifRange.startsWith("W/")) {
      const etag = headerOf(this.res, "ETag");
      return etag !== undefined && strongMatch(ifRange, etag);
    }
    const lastModified = Date.parse(headerOf(this.res, "Last-Modified") ?? "");
    return !Number.isNaN(lastModified) && Date.parse(ifRange) === lastModified;
  };
}
