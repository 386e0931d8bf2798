/**
 * @module proxy/respond
 *
 * Writing to the client: the proxy's own answers (proxy/refusal.ts says
 * what they are, this module puts them on a ServerResponse), and the
 * worker's response head as the client gets it. An answer that closes the
 * connection marks it, so that a request pipelined behind it is dropped
 * rather than trusted.
 */
import type http from "node:http";
import type { Socket } from "node:net";
import { HOP_BY_HOP_HEADERS } from "../tsgi/util.ts";
import type { Exchange } from "./exchange.ts";
import { answerFor, type Refusal } from "./refusal.ts";
import type { ResponseHead } from "./upstream/response-head.ts";

/** Marks a client connection on which a request was refused with `Connection: close`: nothing after it is trusted. */
const POISONED = Symbol("tsgi connection refused");
type PoisonableSocket = Socket & { [POISONED]?: boolean };

/** Whether a request on this connection was refused with `Connection: close`. */
export function isPoisoned(socket: Socket): boolean {
  return (socket as PoisonableSocket)[POISONED] === true;
}

/** Writes one of the proxy's own answers on a response; a response already under way can only be broken off. */
export function writeAnswer(res: http.ServerResponse, exchange: Exchange, refusal: Refusal): number {
  const answer = answerFor(refusal);
  if (answer.close) markPoisoned(res.socket);
  if (!answer.write || res.writableEnded) return answer.status;
  if (res.headersSent) {
    res.destroy();
    return answer.status;
  }
  const body = `${answer.text}\n`;
  res.writeHead(answer.status, {
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
    "X-Request-Id": exchange.requestId,
    ...answer.headers,
    ...(answer.close ? { Connection: "close" } : {}),
  });
  res.end(body);
  exchange.bytes = Buffer.byteLength(body);
  return answer.status;
}

export function markPoisoned(socket: Socket | null): void {
  if (socket) (socket as PoisonableSocket)[POISONED] = true;
}

/** The worker's response headers for the client: hop-by-hop (and those its Connection lists) removed, our X-Request-Id added. */
export function responseHeaders(head: ResponseHead, requestId: string): string[] {
  const listed = head.connectionTokens;
  const raw = head.headers;
  const flat: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (HOP_BY_HOP_HEADERS.has(lower) || lower === "x-request-id" || (listed.length > 0 && listed.includes(lower))) continue;
    flat.push(raw[i]!, raw[i + 1]!);
  }
  flat.push("X-Request-Id", requestId);
  return flat;
}
