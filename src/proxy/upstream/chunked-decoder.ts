/**
 * @module proxy/upstream/chunked-decoder
 *
 * Takes a worker's chunked response body apart as it arrives, for
 * upstream/exchange.ts. The proxy re-frames every response it passes on
 * (the reliability matrix: "never forward raw framing"): it hands the client the chunk
 * data only, and node's ServerResponse chunks it again. Strict like the head:
 * hex sizes only (chunk extensions are skipped), CRLF after each chunk's data,
 * trailers read and dropped; anything else is an UpstreamProtocolError, and
 * the bytes after the last chunk are reported so the caller can tell a
 * worker that sent more than one response's worth.
 */
import { UpstreamProtocolError } from "./response-head.ts";

const enum State {
  Size,
  Extension,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerLineStart,
  TrailerLine,
  TrailerLf,
  FinalLf,
  Done,
}

const CR = 13;
const LF = 10;
/** Chunk sizes past this many hex digits are refused (2^60 bytes is already absurd). */
const MAX_SIZE_DIGITS = 15;
/** Bytes of one chunk's extensions tolerated (node's parser allows 16 KiB). */
const MAX_EXTENSION_BYTES = 16 * 1024;
/** Bytes of trailer section tolerated before the body counts as broken. */
const MAX_TRAILER_BYTES = 16 * 1024;

function hexValue(byte: number): number {
  if (byte >= 48 && byte <= 57) return byte - 48;
  if (byte >= 97 && byte <= 102) return byte - 87;
  if (byte >= 65 && byte <= 70) return byte - 55;
  return -1;
}

export class ChunkedDecoder {
  private state = State.Size;
  private size = 0;
  private digits = 0;
  private remaining = 0;
  private trailerBytes = 0;
  private extensionBytes = 0;

  get done(): boolean {
    return this.state === State.Done;
  }

  /**
   * Feeds bytes of the body; calls `onData` with each piece of chunk data
   * (views into `input`, not copies) and returns how many bytes of `input`
   * belonged to the body (less than its length only once the last chunk and
   * trailers are complete).
   */
  write(input: Buffer, onData: (data: Buffer) => void): number {
    let i = 0;
    const length = input.byteLength;
    while (i < length && this.state !== State.Done) {
      const byte = input[i]!;
      switch (this.state) {
        case State.Size: {
          const value = hexValue(byte);
          if (value >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) throw new UpstreamProtocolError("a chunk size too large");
            this.size = this.size * 16 + value;
            i++;
          } else if (this.digits === 0) {
            throw new UpstreamProtocolError("a chunk line without a size");
          } else if (byte === CR) {
            this.state = State.SizeLf;
            i++;
          } else if (byte === 0x3b /* ; */) {
            this.state = State.Extension;
            i++;
          } else {
            throw new UpstreamProtocolError("an invalid character in a chunk size");
          }
          break;
        }
        case State.Extension: {
          const cr = input.indexOf(CR, i);
          const end = cr === -1 ? length : cr;
          if (input.subarray(i, end).includes(LF)) throw new UpstreamProtocolError("a bare LF in a chunk extension");
          this.extensionBytes += end - i;
          if (this.extensionBytes > MAX_EXTENSION_BYTES) throw new UpstreamProtocolError("a chunk extension too long");
          i = end;
          if (cr !== -1) {
            i++;
            this.state = State.SizeLf;
          }
          break;
        }
        case State.SizeLf: {
          if (byte !== LF) throw new UpstreamProtocolError("a chunk size line not ended by CRLF");
          i++;
          if (this.size === 0) this.state = State.TrailerLineStart;
          else {
            this.remaining = this.size;
            this.state = State.Data;
          }
          this.size = 0;
          this.digits = 0;
          this.extensionBytes = 0;
          break;
        }
        case State.Data: {
          const take = Math.min(this.remaining, length - i);
          onData(input.subarray(i, i + take));
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = State.DataCr;
          break;
        }
        case State.DataCr:
          if (byte !== CR) throw new UpstreamProtocolError("chunk data not followed by CRLF");
          this.state = State.DataLf;
          i++;
          break;
        case State.DataLf:
          if (byte !== LF) throw new UpstreamProtocolError("chunk data not followed by CRLF");
          this.state = State.Size;
          i++;
          break;
        case State.TrailerLineStart:
          if (byte === CR) {
            this.state = State.FinalLf;
            i++;
          } else this.state = State.TrailerLine;
          break;
        case State.TrailerLine: {
          const cr = input.indexOf(CR, i);
          const end = cr === -1 ? length : cr;
          this.trailerBytes += end - i;
          if (this.trailerBytes > MAX_TRAILER_BYTES) throw new UpstreamProtocolError("trailers too large");
          if (input.subarray(i, end).includes(LF)) throw new UpstreamProtocolError("a bare LF in the trailers");
          i = end;
          if (cr !== -1) {
            this.state = State.TrailerLf;
            i++;
          }
          break;
        }
        case State.TrailerLf:
          if (byte !== LF) throw new UpstreamProtocolError("a trailer line not ended by CRLF");
          this.state = State.TrailerLineStart;
          i++;
          break;
        case State.FinalLf:
          if (byte !== LF) throw new UpstreamProtocolError("the last chunk not ended by CRLF");
          this.state = State.Done;
          i++;
          break;
      }
    }
    return i;
  }
}
