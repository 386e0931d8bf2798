/**
 * @module tsgi/middleware/rewrite-body
 *
 * A response post-processor: runs the wrapped app, collects its whole body
 * (returned chunks and legacy write() calls alike), passes it through a
 * transform, and sends the result with a Content-Length that matches. The
 * seeds' "Goodbye" middleware is one instance (`goodbye`).
 *
 * It buffers the body, so it is for HTML/text responses of bounded size, not
 * for streams: a streaming response passes through untouched when
 * `shouldRewrite` says no (by default: only text/* and JSON bodies are rewritten).
 */
import type { Chunk, HeaderList, ResponseBody, TsgiApp, WriteFn } from "../types.ts";
import { concatBytes, getHeader, toBytes, withoutHeader } from "../util.ts";

export interface RewriteBodyOptions {
  /** Which responses to rewrite, from their status and headers (default: text/* and JSON). */
  shouldRewrite?: (status: string, headers: HeaderList) => boolean;
}

const TEXTUAL = /^(text\/|application\/(json|javascript|xml|xhtml\+xml))/i;

function isTextual(_status: string, headers: HeaderList): boolean {
  return TEXTUAL.test(getHeader(headers, "content-type") ?? "");
}

async function collect(body: ResponseBody, into: Uint8Array[]): Promise<void> {
  try {
    for await (const chunk of body as AsyncIterable<Chunk>) into.push(toBytes(chunk));
  } finally {
    await body.close?.();
  }
}

/** Wraps `app` so that its body (as text) goes through `transform` before it is sent. */
export function rewriteBody(
  app: TsgiApp,
  transform: (text: string) => string,
  options: RewriteBodyOptions = {},
): TsgiApp {
  const shouldRewrite = options.shouldRewrite ?? isTextual;
  return async (environ, startResponse) => {
    let status: string | undefined;
    let headers: HeaderList = [];
    const written: Uint8Array[] = [];
    // The inner app's startResponse only records: nothing reaches the server until the body is known.
    // Once a response is passed through untouched, later writes go straight to the server.
    let passThrough: WriteFn | undefined;
    const write: WriteFn = async (chunk) => (passThrough ? passThrough(chunk) : void written.push(toBytes(chunk)));
    const body = await app(environ, (innerStatus, innerHeaders, excInfo) => {
      if (status !== undefined && excInfo === undefined) {
        throw new TypeError("startResponse was called a second time without excInfo (docs/tsgi.md, startResponse)");
      }
      status = innerStatus;
      headers = innerHeaders;
      return write;
    });
    if (status === undefined) {
      // The app calls startResponse lazily, from inside its body: run the body to learn the status.
      await collect(body, written);
      if (status === undefined) throw new TypeError("the wrapped app never called startResponse (docs/tsgi.md, startResponse)");
      return respond(status, headers, written);
    }
    if (!shouldRewrite(status, headers) || environ.REQUEST_METHOD === "HEAD") {
      // Not ours to rewrite (a HEAD body is not the body to rewrite): pass the response through as it is.
      const serverWrite = startResponse(status, headers);
      for (const chunk of written) await serverWrite(chunk);
      passThrough = serverWrite;
      return body;
    }
    await collect(body, written);
    return respond(status, headers, written);

    /** Sends a collected body: rewritten, with a matching Content-Length, when it is ours to rewrite. */
    function respond(finalStatus: string, finalHeaders: HeaderList, chunks: Uint8Array[]): Uint8Array[] {
      if (!shouldRewrite(finalStatus, finalHeaders) || environ.REQUEST_METHOD === "HEAD") {
        startResponse(finalStatus, finalHeaders);
        return chunks;
      }
      const text = new TextDecoder().decode(concatBytes(chunks));
      const rewritten = new TextEncoder().encode(transform(text));
      startResponse(finalStatus, [
        ...withoutHeader(finalHeaders, "content-length"),
        ["Content-Length", String(rewritten.byteLength)],
      ]);
      return [rewritten];
    }
  };
}

/** The seeds' "Goodbye" example: every "Hello" in the wrapped app's text becomes "Goodbye". */
export function goodbye(app: TsgiApp): TsgiApp {
  return rewriteBody(app, (text) => text.replaceAll("Hello", "Goodbye").replaceAll("hello", "goodbye"));
}
