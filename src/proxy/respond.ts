/**
 * @module proxy/respond
 *
 * Writing to the client: the proxy's own answers (proxy/refusal.ts says
 * what they are, this module puts them on a ServerResponse), and the
 * worker's response head as the client gets it. An answer that closes the
 * connection marks it, so that a request pipelined behind it is dropped
 * rather than trusted.
 *
 * The body of an answer (proxy/error-pages/): the configured `error_pages`
 * file for its status, to every client, as nginx's error_page; else an HTML
 * page for a client that prefers HTML, plain text for the rest (the same
 * text as ever) — those two with `Vary: Accept`. Decided only here, when the
 * proxy answers by itself: a proxied response never comes this way, so a
 * worker's own 404 or 500 is never replaced.
 */
import type http from "node:http";
import { constants as http2Constants } from "node:http2";
import { closeIfDraining, linger, markClosing } from "../http/front-door.ts";
import { HOP_BY_HOP_HEADERS } from "../tsgi/util.ts";
import type { Exchange } from "./exchange.ts";
import { type Answer, answerFor, type Refusal } from "./refusal.ts";
import { defaultErrorPage } from "./error-pages/default-page.ts";
import { prefersHtml } from "./error-pages/negotiate.ts";
import type { ErrorPages } from "./error-pages/pages.ts";
import type { ResponseHead } from "./upstream/response-head.ts";
import { answerHeadersWithApp } from "./app-headers.ts";
import { isHttp2Response } from "./http2/messages.ts";

const HTTP2_INTERNAL_ERROR = http2Constants.NGHTTP2_INTERNAL_ERROR;

/** Writes one of the proxy's own answers on a response; a response already under way can only be broken off. */
export function writeAnswer(
  res: http.ServerResponse,
  exchange: Exchange,
  refusal: Refusal,
  pages: ErrorPages,
  appHeaders?: Readonly<Record<string, string>>,
): Answer {
  const answer = answerFor(refusal);
  // An HTTP/2 stream is refused alone: its connection's other streams are not in question (and no Connection: close goes out on it).
  if (answer.close && !isHttp2Response(res)) markClosing(res.socket);
  // Already answered — or the connection was, by the front door, for bytes that broke this request's body.
  if (!answer.write || res.writableEnded || !res.socket || res.socket.writableEnded || res.socket.destroyed) return answer;
  if (res.headersSent) {
    res.destroy();
    return answer;
  }
  const { body, type, vary } = answerBody(answer, exchange, pages);
  closeIfDraining(res);
  const head = { "Content-Type": type, "Content-Length": Buffer.byteLength(body), ...(vary ? VARY_ACCEPT : {}), "X-Request-Id": exchange.requestId };
  res.writeHead(answer.status, {
    // The app's `headers` (nginx's add_header … always): on the proxy's own answers for it too, Vary joined.
    ...answerHeadersWithApp(head, appHeaders),
    ...answer.headers,
    ...(answer.close ? { Connection: "close" } : {}),
  });
  // A HEAD gets the head alone: node writes no body for it, and the Content-Length above is the GET's.
  res.end(body);
  // What went out as body: nothing for a HEAD (nginx's $body_bytes_sent is 0 there too).
  exchange.bytes = exchange.req.method === "HEAD" ? 0 : Buffer.byteLength(body);
  return answer;
}

const VARY_ACCEPT: Readonly<Record<string, string>> = Object.freeze({ Vary: "Accept" });
const HTML = "text/html; charset=utf-8";

/** The body of an answer: the app's (or stack's) page for its status, else HTML or plain text by the client's Accept. */
function answerBody(answer: Answer, exchange: Exchange, pages: ErrorPages): { body: string | Buffer; type: string; vary: boolean } {
  // A redirect (`redirect` apps, https_redirect, trailing_slash) is no error: its one line, whoever asks.
  if (answer.status < 400) return { body: `${answer.text}\n`, type: "text/plain; charset=utf-8", vary: false };
  // The app is known once the request was routed (a 405, a limit, a worker's failure); before that the stack's pages apply.
  const custom = pages.pageFor(exchange.route?.app, answer.status);
  if (custom) return { body: custom, type: HTML, vary: false };
  if (prefersHtml(exchange.req.headers.accept)) {
    const { status, reason, detail } = answer;
    return { body: defaultErrorPage({ status, reason, detail, requestId: exchange.requestId }), type: HTML, vary: true };
  }
  return { body: `${answer.text}\n`, type: "text/plain; charset=utf-8", vary: true };
}

/**
 * Ends a response that cannot be completed (its worker broke off) so that
 * the client sees it cut short, as nginx does: the head and whatever body
 * was written go out — even a head node had not sent yet — then the
 * connection closes without the message's end (short of its Content-Length,
 * or no last chunk). A reset could discard the head still in the buffer.
 */
export function breakOff(res: http.ServerResponse): void {
  const socket = res.socket;
  if (!res.headersSent || !socket || socket.destroyed) {
    res.destroy();
    return;
  }
  if (isHttp2Response(res)) {
    // HTTP/2 cuts one stream, not the connection: the head goes out, then RST_STREAM INTERNAL_ERROR (as nginx does).
    res.stream.close(HTTP2_INTERNAL_ERROR);
    return;
  }
  markClosing(socket);
  res.flushHeaders();
  socket.end();
  // The front door's bounded lingering close: what was written goes out, then the connection is destroyed.
  linger(socket);
}

/**
 * Whether one of a worker's response headers goes on to the client.
 * Hop-by-hop headers, and those the worker's Connection lists, stay on its
 * connection — except Upgrade where it is information rather than an
 * instruction for this hop: on a 426, which RFC 9110 §15.5.22 says must
 * carry it, and wherever Connection does not name it. Of headers that may
 * appear once, only the first is passed on (two Expires: the first, as
 * nginx does). X-Request-Id is ours.
 */
export function passesToClient(lower: string, status: number, connectionTokens: readonly string[], seen: Set<string>): boolean {
  if (lower === "upgrade") return status === 426 || !connectionTokens.includes("upgrade");
  if (HOP_BY_HOP_HEADERS.has(lower) || lower === "x-request-id" || (connectionTokens.length > 0 && connectionTokens.includes(lower))) return false;
  if (SINGLE_VALUED.has(lower)) {
    if (seen.has(lower)) return false;
    seen.add(lower);
  }
  return true;
}

/** Response headers a second copy of which would be ambiguous: the first one counts (nginx keeps the first Expires). */
const SINGLE_VALUED: ReadonlySet<string> = new Set(["expires"]);

/** The worker's response headers for the client (see passesToClient), with our X-Request-Id added. */
export function responseHeaders(head: ResponseHead, requestId: string): string[] {
  const raw = head.headers;
  const flat: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (passesToClient(raw[i]!.toLowerCase(), head.status, head.connectionTokens, seen)) flat.push(raw[i]!, raw[i + 1]!);
  }
  flat.push("X-Request-Id", requestId);
  return flat;
}
