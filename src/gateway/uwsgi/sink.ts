/**
 * @module gateway/uwsgi/sink
 *
 * The response side of a uwsgi connection: raw HTTP/1.1 written to the
 * socket, which is what nginx's uwsgi module reads back.
 *
 * - `SocketSink` is the ResponseSink `runApp` (tsgi/handler.ts, the one place
 *   the response rules live) drives: status line, headers,
 *   `Connection: close`, then the body. No chunked encoding: nginx's uwsgi
 *   module reads a body without Content-Length up to the connection's end.
 *   That is why a response that breaks mid-body is ended with a TCP reset,
 *   never a FIN: a FIN would make a truncated body look complete, and nginx
 *   would pass it on as such. The sink only transports: the body bytes of
 *   RunOutcome are counted in tsgi/handler.ts, and the head is not one of them.
 * - `refusalResponse` is the whole response to a request refused before the
 *   app ran (400, 413): a plain status text, no diagnostics to the client.
 */
import type net from "node:net";
import type { HeaderList } from "../../tsgi/types.ts";
import { ClientAwareSink, drainOrClose, type ResponseSink } from "../../tsgi/handler.ts";
import { statusLine } from "../../tsgi/util.ts";

/** Header text is sent one byte per char (latin-1), as node:http does; other chars cannot be sent. */
const NOT_LATIN1 = /[^\x00-\xff]/;

/** A ResponseSink writing HTTP/1.1 to a uwsgi connection; the body ends with the connection. */
export class SocketSink extends ClientAwareSink implements ResponseSink {
  private finished = false;

  constructor(private readonly socket: net.Socket) {
    super();
    socket.once("close", () => this.onClose());
  }

  sendHead(_code: number, status: string, headers: HeaderList): void {
    const head = responseHead(status, headers);
    // Corked until the next tick, the head leaves in one segment with the first body chunk.
    this.socket.cork();
    this.socket.write(head);
    process.nextTick(() => this.socket.uncork());
  }

  write(bytes: Uint8Array): boolean {
    return this.socket.write(bytes);
  }

  writeText(text: string): boolean {
    return this.socket.write(text, "utf8");
  }

  drained(): Promise<void> {
    if (this.clientGone || !this.socket.writableNeedDrain) return Promise.resolve();
    return drainOrClose(this.socket);
  }

  end(): void {
    this.finished = true;
    this.socket.end();
  }

  abort(): void {
    this.finished = true;
    // What was written goes out first (it may still be corked by sendHead), then a reset, not a
    // FIN: without Content-Length a FIN would make the truncated body look complete.
    while (this.socket.writableCorked > 0) this.socket.uncork();
    this.socket.resetAndDestroy();
  }

  /** The socket closed before the response ended: the client is gone. */
  private onClose(): void {
    if (!this.finished) this.markClientGone();
  }
}

/** Status line and headers, ending the head; throws TypeError on a char that latin-1 cannot carry. */
function responseHead(status: string, headers: HeaderList): Buffer {
  let head = `HTTP/1.1 ${status}\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  // One request per connection: say so, for any HTTP-aware reader (nginx ignores it).
  head += "Connection: close\r\n\r\n";
  if (NOT_LATIN1.test(head)) throw new TypeError("a response header has a character that is not latin-1 (above U+00FF)");
  return Buffer.from(head, "latin1");
}

/** A refusal as sent, and how many of its bytes are body (what RunOutcome.bytes counts). */
export interface Refusal {
  readonly response: Buffer;
  readonly bodyBytes: number;
}

/** A complete response for a request refused before the app ran; no diagnostics to the client. */
export function refusalResponse(status: number, headOnly: boolean): Refusal {
  const line = statusLine(status);
  const text = `${line.slice(4)}\n`;
  const head =
    `HTTP/1.1 ${line}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n`;
  const body = headOnly ? "" : text;
  return { response: Buffer.from(head + body, "latin1"), bodyBytes: Buffer.byteLength(body) };
}
