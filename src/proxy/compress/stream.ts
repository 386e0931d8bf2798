/**
 * @module proxy/compress/stream
 *
 * A response body compressed on its way to the client: the worker's bytes go
 * through a node:zlib encoder and what comes out is written to the
 * ServerResponse, never buffered whole. Backpressure holds end to end: a
 * client that reads slowly pauses the encoder's output, the encoder's input
 * then fills and `write` returns false, which pauses the worker's
 * connection until the encoder drains (the same contract as an
 * uncompressed body's onData).
 *
 * A streamed response must not wait in the encoder: when the worker's bytes
 * stop coming for a moment (nothing more read in this turn of the event
 * loop), the encoder is flushed (Z_SYNC_FLUSH, brotli's FLUSH, zstd's
 * e_flush), so that what the worker sent so far reaches the client — server-
 * sent events and slow streams keep flowing. A body that arrives in one piece
 * with its end (the usual small JSON) is never flushed early and compresses
 * as well as it can.
 *
 * A small body of known length (a Content-Length up to ONE_SHOT_MAX, 64 KiB)
 * is the exception: it is gathered — bounded by that length — and compressed
 * in one synchronous call when it is complete, as nginx compresses from its
 * gzip_buffers. Measured with 23 KB of JSON at -c50 (the proxy and a node:http
 * upstream in one process, wrk, gzip level 6, this 2-CPU machine): a zlib
 * stream per response cost about 1,000 µs of CPU per response, one call
 * about 300 µs (the same response uncompressed: 150-220 µs) — fifty deflate
 * states of 256 KiB alive at once fall out of the caches and press on the
 * GC as external memory.
 *
 * zstd: node:zlib has it from Node 22.15 / 23.8 (createZstdCompress); on an
 * older Node (20) it is feature-detected away and never offered.
 */
import type http from "node:http";
import type { Transform } from "node:stream";
import zlib from "node:zlib";
import { ENCODINGS, type Encoding } from "./negotiate.ts";

type ZstdFactory = (options?: { params?: Record<number, number> }) => Transform;
type ZstdSync = (data: Buffer, options?: { params?: Record<number, number> }) => Buffer;
const zstdFactory = (zlib as unknown as { createZstdCompress?: ZstdFactory }).createZstdCompress;
const zstdSync = (zlib as unknown as { zstdCompressSync?: ZstdSync }).zstdCompressSync;

/** A body of known length up to this is compressed in one call once complete, not streamed. */
export const ONE_SHOT_MAX = 64 * 1024;
const zstdConstants = zlib.constants as unknown as Record<string, number | undefined>;

/** The codings this Node can produce, in the proxy's order of preference. */
export const AVAILABLE_ENCODINGS: readonly Encoding[] = ENCODINGS.filter((encoding) => encoding !== "zstd" || typeof zstdFactory === "function");

/** A compressor for `encoding` at `level` (gzip 1-9, br 0-11, zstd 1-19). */
export function createEncoder(encoding: Encoding, level: number): Transform {
  switch (encoding) {
    case "gzip":
      return zlib.createGzip({ level });
    case "br":
      return zlib.createBrotliCompress({
        params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level, [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT },
      });
    case "zstd":
      if (!zstdFactory) throw new Error("zstd is not available in this Node version");
      return zstdFactory({ params: { [zstdConstants.ZSTD_c_compressionLevel!]: level } });
  }
}

/** `data` compressed whole, in one synchronous call. */
export function compressWhole(encoding: Encoding, level: number, data: Buffer): Buffer {
  switch (encoding) {
    case "gzip":
      return zlib.gzipSync(data, { level });
    case "br":
      return zlib.brotliCompressSync(data, {
        params: { [zlib.constants.BROTLI_PARAM_QUALITY]: level, [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.byteLength },
      });
    case "zstd":
      if (!zstdSync) throw new Error("zstd is not available in this Node version");
      return zstdSync(data, { params: { [zstdConstants.ZSTD_c_compressionLevel!]: level } });
  }
}

/** The flush that ends a block without ending the stream, per coding. */
function flushKind(encoding: Encoding): number {
  switch (encoding) {
    case "gzip":
      return zlib.constants.Z_SYNC_FLUSH;
    case "br":
      return zlib.constants.BROTLI_OPERATION_FLUSH;
    case "zstd":
      return zstdConstants.ZSTD_e_flush!;
  }
}

type Encoder = Transform & { flush(kind: number, callback?: () => void): void };

export interface CompressedBodyEvents {
  /** Compressed bytes written to the client (for the access log and metrics). */
  onBytes(bytes: number): void;
  /** The encoder can take more after a `write` returned false. */
  onDrain(): void;
  /** The last compressed byte is written and the response ended. */
  onFinish(): void;
}

/** A response body on its way out encoded: the worker's pieces in, the client's bytes out (see the module's comment). */
export interface BodyEncoder {
  /** One piece of the body; false when the caller should wait for onDrain. */
  write(data: Buffer): boolean;
  /** The body is complete: the last encoded bytes go out, then the response ends (onFinish). */
  end(): void;
  /** The exchange broke off or the client left: nothing more is written. */
  destroy(): void;
}

/** The encoder for one response: one call for a small body of known length, a stream otherwise. */
export function bodyEncoder(res: http.ServerResponse, encoding: Encoding, level: number, knownLength: number | undefined, events: CompressedBodyEvents): BodyEncoder {
  return knownLength !== undefined && knownLength <= ONE_SHOT_MAX ? new WholeBody(res, encoding, level, events) : new CompressedBody(res, encoding, level, events);
}

/** A small body of known length, gathered (never more than its Content-Length) and compressed in one call at its end. */
class WholeBody implements BodyEncoder {
  private chunks: Buffer[] | undefined = [];

  constructor(
    private readonly res: http.ServerResponse,
    private readonly encoding: Encoding,
    private readonly level: number,
    private readonly events: CompressedBodyEvents,
  ) {}

  write(data: Buffer): boolean {
    this.chunks?.push(data);
    return true;
  }

  end(): void {
    const chunks = this.chunks;
    if (!chunks) return;
    this.chunks = undefined;
    let encoded: Buffer;
    try {
      encoded = compressWhole(this.encoding, this.level, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    } catch {
      this.res.destroy();
      return;
    }
    this.events.onBytes(encoded.byteLength);
    this.res.end(encoded);
    this.events.onFinish();
  }

  destroy(): void {
    this.chunks = undefined;
  }
}

export class CompressedBody implements BodyEncoder {
  private readonly encoder: Encoder;
  private readonly flushWith: number;
  private flushScheduled = false;
  private waitingForDrain = false;
  private ended = false;

  constructor(
    private readonly res: http.ServerResponse,
    encoding: Encoding,
    level: number,
    private readonly events: CompressedBodyEvents,
  ) {
    this.encoder = createEncoder(encoding, level) as Encoder;
    this.flushWith = flushKind(encoding);
    this.encoder.on("data", (chunk: Buffer) => {
      events.onBytes(chunk.byteLength);
      if (!res.write(chunk)) {
        this.encoder.pause();
        res.once("drain", () => this.encoder.resume());
      }
    });
    this.encoder.once("end", () => {
      res.end();
      events.onFinish();
    });
    // An encoder error is the proxy's own fault, never the client's: the response is cut short.
    this.encoder.once("error", () => res.destroy());
  }

  /** Compresses one piece of the body; false when the caller should wait for onDrain. */
  write(data: Buffer): boolean {
    if (this.encoder.destroyed) return true;
    const more = this.encoder.write(data);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushIfIdle);
    }
    if (!more && !this.waitingForDrain) {
      this.waitingForDrain = true;
      this.encoder.once("drain", () => {
        this.waitingForDrain = false;
        this.events.onDrain();
      });
    }
    return more;
  }

  /** The body is complete: the encoder's last block goes out, then the response ends (onFinish). */
  end(): void {
    this.ended = true;
    if (!this.encoder.destroyed) this.encoder.end();
  }

  /** The exchange broke off or the client left: the encoder is dropped, nothing more is written. */
  destroy(): void {
    this.ended = true;
    this.encoder.removeAllListeners("data");
    this.encoder.removeAllListeners("end");
    this.encoder.destroy();
  }

  private readonly flushIfIdle = (): void => {
    this.flushScheduled = false;
    if (!this.ended && !this.encoder.destroyed) this.encoder.flush(this.flushWith);
  };
}
