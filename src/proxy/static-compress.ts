/**
 * @module proxy/static-compress
 *
 * A static app's file compressed on the fly, when the app has `compress` and
 * no precompressed sibling is served (nginx's `gzip on` in a static location,
 * Caddy's `encode` before `file_server`). The decisions are the worker path's
 * own (proxy/compress/): the same negotiation of Accept-Encoding among the
 * codings this Node can produce, the same `compressible` rule (type in
 * `types`, size ≥ `min_length`, no `no-transform`), the same weak ETag and the
 * same encoders (proxy/compress/stream.ts).
 *
 * `send` keeps everything else — ETag and Last-Modified, conditional
 * requests (304, 412), index files, the fallback, Cache-Control — through
 * three hooks on one SendStream, installed only when the client accepts a
 * coding (a request without Accept-Encoding costs the negotiation's lookup):
 *
 *   - after `send` sets the Content-Type (its `type`), the file is judged:
 *     compressed, it gets Content-Encoding, its ETag weakened (send's is weak
 *     already: W/"size-mtime"; `fresh` compares weakly, so If-None-Match
 *     with it is still 304 — and a 304 drops Content-Encoding with the other
 *     content headers), and no Accept-Ranges (the encoded bytes are not
 *     rangeable; nginx drops it too);
 *   - the plain file's Content-Length `send` sets is not set: the body goes
 *     chunked, and a HEAD gets the same head as a GET, without a length (as
 *     nginx answers a HEAD it would gzip);
 *   - `send`'s body (its `stream`) goes through the encoder: a file up to
 *     ONE_SHOT_MAX is read and compressed in one call, as a worker's small
 *     body is; a bigger one is piped through a zlib stream, so backpressure
 *     holds (a slow client pauses the encoder, which pauses the file) and it
 *     is never held whole. No idle flushes: a file's bytes are all there.
 *
 * A request with a Range header is never compressed: it gets the plain
 * file's bytes it asks for (206). nginx, which gzips before its range filter
 * sees the response, answers such a request 200 with the whole file gzipped;
 * a range of the plain bytes is what a resuming download or a media player
 * seeking wants.
 */
import { createReadStream, type ReadStream } from "node:fs";
import type http from "node:http";
import type { Transform } from "node:stream";
import type send from "send";
import { weakETag } from "./compress/headers.ts";
import { type CompressPolicy, compressible, type Encoding, negotiate } from "./compress/negotiate.ts";
import { producible } from "./compress/plan.ts";
import { bodyEncoder, createEncoder, ONE_SHOT_MAX } from "./compress/stream.ts";

/** What a file is compressed with for one request. */
export interface OnTheFly {
  encoding: Encoding;
  policy: CompressPolicy;
}

/** How to compress a file for this request, or undefined: a Range request, or no coding this Node produces is accepted. */
export function onTheFlyFor(req: http.IncomingMessage, policy: CompressPolicy | undefined): OnTheFly | undefined {
  if (!policy || req.headers.range !== undefined) return undefined;
  const encoding = negotiate(req.headers["accept-encoding"], producible(policy.encodings));
  return encoding ? { encoding, policy } : undefined;
}

/** The parts of send's SendStream the hooks replace (internal methods, stable since send 0.x). */
interface SendInternals {
  type(path: string): void;
  stream(path: string, options: { start?: number; end?: number }): void;
  onStatError(error: Error): void;
}

/** Hooks `stream` (not yet piped) so that the file it sends is compressed when it qualifies (see the module's comment). */
export function compressOnTheFly(stream: ReturnType<typeof send>, res: http.ServerResponse, { encoding, policy }: OnTheFly): void {
  const internals = stream as unknown as SendInternals;
  let size = 0;
  let compressing = false;
  stream.on("headers", (_res: http.ServerResponse, _path: string, stats: { size: number }) => {
    size = stats.size;
  });
  const setType = internals.type;
  internals.type = function (this: SendInternals, path: string) {
    setType.call(this, path);
    const header = (name: string) => {
      if (name === "content-length") return String(size);
      const value = res.getHeader(name);
      return value === undefined ? undefined : String(value);
    };
    // "GET": a HEAD gets the head a GET would (compressible leaves a worker's HEAD alone: its body is not ours to know).
    compressing = compressible({ method: "GET", status: 200, header }, policy);
    if (!compressing) return;
    res.setHeader("Content-Encoding", encoding);
    const etag = res.getHeader("ETag");
    if (typeof etag === "string") res.setHeader("ETag", weakETag(etag));
    res.removeHeader("Accept-Ranges");
    withoutContentLength(res);
  };
  const sendPlain = internals.stream;
  internals.stream = function (this: SendInternals, path: string, options: { start?: number; end?: number }) {
    if (!compressing) return sendPlain.call(this, path, options);
    sendCompressed(createReadStream(path, options), res, encoding, policy.levels[encoding], size, (error) => this.onStatError(error));
  };
}

/** `send` sets the plain file's length just before the body (or a HEAD's end): a 200 compressed here has none. */
function withoutContentLength(res: http.ServerResponse): void {
  const setHeader = res.setHeader;
  res.setHeader = function (this: http.ServerResponse, name: string, value: number | string | readonly string[]) {
    // An error answer (412, 500: its status is set first by writeHead) keeps its own length.
    if (this.statusCode === 200 && name.toLowerCase() === "content-length") return this;
    return setHeader.call(this, name, value);
  } as typeof res.setHeader;
}

/**
 * The file's bytes through the encoder to the client. A read error (the file
 * became unreadable between send's stat and its open) goes to send's error
 * handling: an answer while no byte is out, a dropped connection after.
 */
function sendCompressed(file: ReadStream, res: http.ServerResponse, encoding: Encoding, level: number, size: number, onReadError: (error: Error) => void): void {
  let encoder: Transform | undefined;
  const cleanup = () => {
    file.destroy();
    encoder?.destroy();
  };
  // The client left (or the response ended): nothing more is read.
  res.once("close", cleanup);
  file.once("error", (error) => {
    cleanup();
    onReadError(error);
  });
  if (size <= ONE_SHOT_MAX) {
    const body = bodyEncoder(res, encoding, level, size, { onBytes() {}, onDrain() {}, onFinish() {} });
    file.on("data", (chunk) => body.write(chunk as Buffer));
    file.once("end", () => {
      // The head goes out now, before the body is ended in one piece: node would give that piece a Content-Length otherwise.
      if (!res.headersSent) res.writeHead(res.statusCode);
      body.end();
    });
    return;
  }
  encoder = createEncoder(encoding, level);
  // An encoder error is the proxy's own fault, never the client's: the response is cut short.
  encoder.once("error", () => res.destroy());
  file.pipe(encoder).pipe(res);
}
